"""Curvature library: HVP vs dense Hessian, Lanczos vs eigvalsh, SLQ, critical points."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from leeml import curvature, losses
from leeml.models import MLP


def _mlp_problem(seed=0, depth=1, width=8, in_dim=5, out=3, n=37, norm="none"):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, in_dim)).astype(np.float32)
  y = rng.integers(0, out, n).astype(np.int32)
  model = MLP(num_outputs=out, depth=depth, width=width, activation="tanh", norm=norm)
  variables = model.init(jax.random.PRNGKey(seed), x[:2])
  return model, dict(variables), x, y


def _full_loss(model, variables, x, y):
  batch_loss = curvature.model_batch_loss(model, variables, losses.softmax_cross_entropy)
  batch = {"inputs": x, "targets": y, "weights": np.ones(len(x), np.float32)}
  return lambda p: batch_loss(p, batch) / len(x), batch_loss


def test_dense_hessian_order_is_ravel_pytree():
  # loss = Σ c_i θ_i² with c_i = position in ravel order + 1  =>  H = diag(2c).
  params = {"b": jnp.zeros((2, 3)), "a": jnp.zeros(4)}
  flat, unravel = ravel_pytree(params)
  c = unravel(jnp.arange(1.0, flat.size + 1))
  loss = lambda p: sum(jnp.sum(ci * pi ** 2) for ci, pi in zip(jax.tree.leaves(c),
                                                                jax.tree.leaves(p)))
  h, _ = curvature.dense_hessian(loss, params)
  np.testing.assert_allclose(h, np.diag(2 * np.arange(1.0, 11)), atol=1e-6)
  # ravel order: keys sorted ('a' first), each leaf row-major.
  assert np.array_equal(np.asarray(ravel_pytree({"b": jnp.arange(6.).reshape(2, 3) + 4,
                                                 "a": jnp.arange(4.)})[0]), np.arange(10.))


def _hessian_and_hvp(loss, params, v_flat):
  """(H, H v) from `dense_hessian` and `hvp` in ONE jitted program (eagerly, the two
  dispatch and compile every primitive separately: 5x slower on this tiny MLP)."""
  @jax.jit
  def both(params, v_flat):
    h, unravel = curvature.dense_hessian(loss, params)
    return h, ravel_pytree(curvature.hvp(loss, params, unravel(v_flat)))[0]
  return both(params, v_flat)


def test_hvp_equals_dense_hessian_times_v():
  model, variables, x, y = _mlp_problem()
  loss, _ = _full_loss(model, variables, x, y)
  v_flat = jax.random.normal(jax.random.PRNGKey(1), (75,))
  h, hv = _hessian_and_hvp(loss, variables["params"], v_flat)
  assert h.shape == (75, 75)  # 5*8+8 + 8*3+3
  np.testing.assert_allclose(hv, h @ v_flat, atol=1e-5, rtol=0)
  assert float(jnp.linalg.norm(hv)) > 1e-2  # not trivially zero


def test_dataset_hvp_in_batches_equals_full_batch():
  model, variables, x, y = _mlp_problem(n=37)
  loss, batch_loss = _full_loss(model, variables, x, y)
  params = variables["params"]
  batches = curvature.stack_batches(x, y, batch_size=8)  # 5 batches, 3 padded examples
  assert batches["inputs"].shape == (5, 8, 5) and batches["weights"].sum() == 37
  v = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size).reshape(p.shape) * 1.0), params)
  want = ravel_pytree(curvature.hvp(loss, params, v))[0]
  got = ravel_pytree(jax.jit(curvature.dataset_hvp, static_argnums=0)(
      batch_loss, params, batches, v))[0]
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  assert float(curvature.dataset_loss(batch_loss, params, batches)) == pytest.approx(
      float(loss(params)), rel=1e-5)
  np.testing.assert_allclose(
      ravel_pytree(curvature.dataset_grad(batch_loss, params, batches))[0],
      ravel_pytree(jax.grad(loss)(params))[0], atol=1e-6)


def test_hvp_with_batch_stats_uses_running_statistics():
  model, variables, x, y = _mlp_problem(norm="batch")
  # Non-trivial running statistics, as after training.
  variables["batch_stats"] = jax.tree.map(lambda s: s + 0.5, variables["batch_stats"])
  loss, batch_loss = _full_loss(model, variables, x, y)
  params = variables["params"]
  dim = ravel_pytree(params)[0].size
  v = jnp.sin(jnp.arange(dim) * 0.37)
  h, hv = _hessian_and_hvp(loss, params, v)
  np.testing.assert_allclose(hv, h @ v, atol=1e-5, rtol=0)
  # Eval mode: an example's loss does not depend on the rest of the batch (running stats,
  # not batch statistics): the first 18 examples and the other 19, each in a batch filled
  # up with copies of themselves (weight 0), add up to the loss of the whole batch.
  n = len(x)
  fill = lambda idx: np.concatenate([idx, np.resize(idx, n - len(idx))])  # noqa: E731
  rows = [np.arange(n), fill(np.arange(18)), fill(np.arange(18, n))]
  weights = np.stack([np.ones(n), np.arange(n) < 18, np.arange(n) < n - 18]).astype(np.float32)
  sums = jax.jit(jax.vmap(lambda xs, ys, w: batch_loss(params, {"inputs": xs, "targets": ys,
                                                                "weights": w})))(
      np.stack([x[r] for r in rows]), np.stack([y[r] for r in rows]), weights)
  l_all, l_first, l_rest = (float(s) for s in sums)
  assert l_all == pytest.approx(float(loss(params)) * n, rel=1e-5)
  assert l_all == pytest.approx(l_first + l_rest, rel=1e-5)


@pytest.fixture(scope="module")
def small_mlp_hessian():
  """A 484-parameter MLP (8-16-16-4, tanh) on 64 random examples: loss, params, spectrum."""
  model, variables, x, y = _mlp_problem(seed=3, depth=2, width=16, in_dim=8, out=4, n=64)
  _, batch_loss = _full_loss(model, variables, x, y)
  params = variables["params"]
  batches = curvature.stack_batches(x, y, 32)
  op = curvature.dataset_operator(batch_loss, params, batches)
  loss = lambda p: curvature.dataset_loss(batch_loss, p, batches)
  h, _ = curvature.dense_hessian(loss, params)
  return op, np.linalg.eigvalsh(np.asarray(h, np.float64))


def test_lanczos_top_and_bottom_k_equal_eigvalsh(small_mlp_hessian):
  op, exact = small_mlp_hessian
  assert op.dim == 484
  top = curvature.top_eigenvalues(op.matvec, op.operand, op.dim, k=5, num_iters=120)
  np.testing.assert_allclose(top, exact[::-1][:5], rtol=1e-3)
  # The smallest eigenvalues (negative here: a random init is not a minimum) sit in a
  # cluster near zero; a full-length run (num_iters = dim) resolves them exactly.
  vals, vecs = curvature.extreme_eigenpairs(op.matvec, op.operand, op.dim, 5,
                                            which="bottom", num_iters=op.dim)
  assert exact[0] < 0
  np.testing.assert_allclose(vals, exact[:5], rtol=1e-3)
  # Ritz vectors are eigenvectors: |H u - λ u| small relative to ||H||.
  u = jnp.asarray(vecs[:, 0])
  resid = np.linalg.norm(np.asarray(op.matvec(op.operand, u)) - vals[0] * vecs[:, 0])
  assert resid < 1e-3 * abs(exact[-1])


def test_lanczos_survives_repeated_eigenvalues():
  # An invariant subspace is hit early (3 distinct values): breakdown -> fresh vectors.
  lam = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 5.0, -3.0, -3.0])
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))
  a = jnp.asarray(q @ np.diag(lam) @ q.T, jnp.float32)
  res = curvature.lanczos(_matmul, a, 8, 8, jax.random.PRNGKey(0))
  theta, vecs = curvature.ritz(res)
  np.testing.assert_allclose(theta, np.sort(lam), atol=1e-4)
  np.testing.assert_allclose(vecs.T @ vecs, np.eye(8), atol=1e-4)


def _matmul(a, x):
  return a @ x


def test_spectral_density_matches_known_spectrum():
  rng = np.random.default_rng(0)
  lam = np.concatenate([rng.uniform(-1.0, 1.0, 190), [10.0, 12.0, 15.0] * 3 + [20.0]])
  a = jnp.asarray(np.diag(lam), jnp.float32)
  sd = curvature.spectral_density(_matmul, a, 200, num_iters=40, num_probes=8)
  assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=0.02)
  np.testing.assert_allclose(sd.weights.sum(axis=1), 1.0, atol=1e-4)
  # Quadrature is exact on low-degree polynomials: Σ τ θ = vᵀAv, whose mean is tr(A)/n.
  mean_est = float(np.mean(np.sum(sd.weights * sd.nodes, axis=1)))
  assert mean_est == pytest.approx(lam.mean(), abs=0.25)
  # 95% of the eigenvalues lie in [-1, 1]: so does most of the estimated mass.
  bulk = (sd.grid > -1.2) & (sd.grid < 1.2)
  assert np.trapezoid(sd.density[bulk], sd.grid[bulk]) > 0.8


def _quadratic(lam, seed=0):
  """L(θ) = ½ θᵀ Q diag(lam) Qᵀ θ on a pytree θ = {'w': [n]}; critical point θ = 0."""
  n = len(lam)
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
  h = jnp.asarray(q @ np.diag(lam) @ q.T, jnp.float32)
  return (lambda p: 0.5 * p["w"] @ h @ p["w"]), {"w": jnp.zeros(n)}


@pytest.mark.parametrize("lam, kind, ratio", [
    ([1.0, 2.0, 3.0, 0.5], curvature.LOCAL_MIN, 1.0),
    ([-1.0, -2.0, -0.1], curvature.LOCAL_MAX, 0.0),
    ([2.0, -2.0], curvature.SADDLE, 0.5),          # the lecture's w1·w2 example at 0
    ([3.0, 1.0, 1.0, -0.2], curvature.SADDLE, 0.75),
    ([1.0, 2.0, 0.0], curvature.LOCAL_MIN, 1.0),   # degenerate: one flat direction
    ([0.0, 0.0], curvature.FLAT, float("nan")),
])
def test_classify_critical_point_on_quadratics(lam, kind, ratio):
  loss, params = _quadratic(lam)
  cp = curvature.classify_critical_point(loss, params)
  assert cp.kind == kind
  np.testing.assert_allclose(cp.eigenvalues, np.sort(lam), atol=1e-5)
  assert cp.grad_norm == 0.0
  assert cp.num_zero == int(np.sum(np.asarray(lam) == 0))
  if np.isnan(ratio):
    assert np.isnan(cp.minimum_ratio)
  else:
    assert cp.minimum_ratio == pytest.approx(ratio)
  assert (cp.escape_direction is not None) == (kind == curvature.SADDLE)


def test_classify_tolerance_is_relative():
  # |λ| ≤ 1e-4 · max|λ| counts as zero: a rounding-size negative does not make a saddle.
  cp = curvature.classify_spectrum([100.0, 1.0, -5e-3])
  assert cp.kind == curvature.LOCAL_MIN and cp.num_zero == 1 and cp.tol == pytest.approx(1e-2)
  assert curvature.classify_spectrum([100.0, 1.0, -5e-2]).kind == curvature.SADDLE


def test_escape_saddle_decreases_loss_along_negative_curvature():
  lam = [2.0, 1.0, -0.5]
  loss, params = _quadratic(lam, seed=1)
  cp = curvature.classify_critical_point(loss, params)
  assert cp.kind == curvature.SADDLE
  new, new_loss = curvature.escape_saddle(loss, params, cp.escape_direction, 0.3)
  # Exactly ½ λ_min η² on a quadratic: the loss decreases from 0.
  assert new_loss == pytest.approx(0.5 * -0.5 * 0.3 ** 2, rel=1e-4)
  assert new_loss < float(loss(params))
  # Gradient descent alone never leaves the saddle (gradient exactly 0 there).
  assert float(jnp.linalg.norm(jax.grad(loss)(params)["w"])) == 0.0
  assert float(jnp.linalg.norm(new["w"])) == pytest.approx(0.3, rel=1e-5)


@pytest.mark.parametrize("n", [3, 120])   # the full-spectrum scale, and Lanczos (ARPACK)
def test_damped_system_step_equals_eigen_formula(n):
  # d(ν) = (H² + ν s I)⁻¹ H g by Cholesky equals Σ_i λ_i / (λ_i² + ν s) (u_iᵀ g) u_i,
  # s = max λ², the eigendecomposition form the search used before (search.py).
  rng = np.random.default_rng(n)
  a = rng.normal(size=(n, n))
  h = a + a.T
  h[:, 0] *= 1e-3   # a nearly flat direction
  h[0, :] *= 1e-3
  g = rng.normal(size=n)
  lam, q = np.linalg.eigh(h)
  system = curvature.DampedSystem(h, g)
  assert system.scale == pytest.approx(np.max(lam ** 2), rel=1e-12)
  for nu in (1e-8, 1e-4, 1.0, 1e6):
    expected = q @ (lam / (lam ** 2 + nu * np.max(lam ** 2)) * (q.T @ g))
    np.testing.assert_allclose(system.step(nu), expected, rtol=0,
                               atol=1e-8 * np.max(np.abs(expected)))


def test_gradient_norm_minimizer_finds_a_saddle_of_a_quadratic():
  # Newton-type steps are attracted to the saddle at 0 of a quadratic with λ = (2, 1, -0.5)
  # (where gradient descent on L would leave it): one LM step lands there.
  loss, params = _quadratic([2.0, 1.0, -0.5], seed=2)
  start = jax.tree.map(lambda p: p + 0.3, params)
  search = curvature.make_gradient_norm_minimizer(loss, adam_steps=0, learning_rate=1e-3,
                                                  lm_steps=5, target=1e-6)
  r = search(start)
  assert r.grad_norm <= 1e-6 and len(r.grad_norms) <= 3
  assert curvature.classify_critical_point(loss, r.params).kind == curvature.SADDLE
