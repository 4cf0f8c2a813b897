"""Finding critical points: minimize the gradient norm (lecture 4, "Empirical study").

A critical point is where ∇L = 0, whatever its kind; gradient descent on L avoids saddles
and maxima, so (as in the lecture's source) critical points are found by minimizing
    G(θ) = ½ |∇L(θ)|²,   ∇G = H ∇L   (one Hessian-vector product).
Two phases: Adam on G (cheap, from anywhere), then Levenberg–Marquardt steps on the
residual r(θ) = ∇L(θ), whose Jacobian is H (small models: dense H). The LM step minimizes
|∇L + H d|² + ν|d|²:
    d = -(H² + νI)⁻¹ H ∇L = -Σ_i λ_i / (λ_i² + ν) (u_iᵀ ∇L) u_i,
a Newton step on directions with λ_i² ≫ ν and a short gradient step on G (∇G = H ∇L)
on the flat ones, so it never jumps along near-zero eigenvalues. ν (relative to max λ²)
is divided by 10 after a step that lowers |∇L| and multiplied by 10 until one does.
Newton's method is attracted to critical points of *any* kind (Dauphin et al. 2014),
which is what makes saddles reachable here while gradient descent avoids them.

The step is solved, not diagonalized (`DampedSystem`): H² and H ∇L are formed once per
LM step in float64, max λ² = (max |λ|)² comes from a few Lanczos iterations (ARPACK), and
each damping tried is one Cholesky solve of (H² + ν max λ² I). That is the first form of d
above, so the iterates equal those of an eigendecomposition per step (the second form, used
before) up to rounding; the full spectrum is computed once, at the end, by the caller's
classification (`critical.classify_critical_point`). Per LM step on 610 parameters (CPU
seconds, one BLAS thread): H² 0.013, max |λ| 0.007, a Cholesky solve 0.008, against 0.08
for the float64 `eigh`; the jitted (∇L, H) (`dense.grad_and_hessian`, compiled once per
loss) is 0.08. The dampings are tried one at a time, smallest first, each with one jitted
evaluation of |∇L| (compiled once): the first that lowers |∇L| is taken.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg
import scipy.sparse.linalg
from jax.flatten_util import ravel_pytree
from threadpoolctl import threadpool_limits

from leeml.curvature import dense
from leeml.curvature.hvp import hvp


class SearchResult(NamedTuple):
  params: object
  grad_norm: float
  loss: float
  grad_norms: np.ndarray   # |∇L| after each Adam chunk and each LM step (the trace)


# Below this many parameters max |λ| comes from the full spectrum (ARPACK needs a few more
# dimensions than the one eigenvalue it returns, and small spectra cost nothing).
_DENSE_SCALE_DIM = 64


def _norm(tree):
  return jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(tree)))


class DampedSystem:
  """The Levenberg–Marquardt system of one point: `step(nu)` = (H² + ν s I)⁻¹ H g with
  s = max λ² (`scale`), by a float64 Cholesky solve on one BLAS thread (`dense.eigh`'s
  reason). H is symmetrized first, as `dense.eigh` does."""

  def __init__(self, h, g):
    h = np.asarray(h, np.float64)
    self.h = 0.5 * (h + h.T)
    self.hg = self.h @ np.asarray(g, np.float64)
    with threadpool_limits(1, user_api="blas"):
      self.h2 = self.h @ self.h
      self.scale = max_abs_eigenvalue(self.h) ** 2 or 1.0

  def step(self, nu: float) -> np.ndarray | None:
    """d(ν) with ν relative to `scale`; None when H² + ν s I is not numerically positive
    definite (ν s below the rounding of H²)."""
    a = self.h2 + (nu * self.scale) * np.eye(len(self.h2))
    with threadpool_limits(1, user_api="blas"):
      try:
        factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
      except np.linalg.LinAlgError:
        return None
      return scipy.linalg.cho_solve(factor, self.hg, check_finite=False)


def max_abs_eigenvalue(h) -> float:
  """max_i |λ_i| of a symmetric matrix (float64): Lanczos (ARPACK, to machine precision,
  from a fixed start vector) above `_DENSE_SCALE_DIM` rows, else the full spectrum."""
  h = np.asarray(h, np.float64)
  if len(h) <= _DENSE_SCALE_DIM:
    return float(np.max(np.abs(np.linalg.eigvalsh(h)))) if h.size else 0.0
  v0 = np.random.default_rng(0).standard_normal(len(h))
  top = scipy.sparse.linalg.eigsh(h, k=1, which="LM", v0=v0, tol=0,
                                  return_eigenvectors=False)
  return float(np.abs(top[0]))


def make_gradient_norm_minimizer(loss, *, adam_steps: int, learning_rate: float,
                                 lm_steps: int, target: float = 0.0, mu: float = 1e-4):
  """Returns `search(params) -> SearchResult` for a closure `loss(params)`.

  Compiled once per minimizer (reuse it across starting points of the same shapes).
  `target`: stop the Newton phase once |∇L| ≤ target.
  """
  grad = jax.grad(loss)
  tx = optax.adam(learning_rate)
  grad_and_hessian = dense.grad_and_hessian(loss)

  @jax.jit
  def adam(params):
    def step(carry, _):
      p, s = carry
      g = grad(p)
      hg = hvp(loss, p, g)  # ∇G = H ∇L
      upd, s = tx.update(hg, s, p)
      return (optax.apply_updates(p, upd), s), _norm(g)
    (p, _), norms = jax.lax.scan(step, (params, tx.init(params)), None, length=adam_steps)
    return p, norms

  @jax.jit
  def grad_norm_at(like, flat):
    """|∇L| at `flat` (flat float32 params shaped like `like`)."""
    return _norm(grad(ravel_pytree(like)[1](flat)))

  value = jax.jit(loss)

  def search(params) -> SearchResult:
    trace = []
    if adam_steps:
      params, norms = adam(params)
      trace.extend(np.asarray(norms)[:: max(1, adam_steps // 20)].tolist())
    flat, unravel = ravel_pytree(params)
    like = params
    flat = np.asarray(flat, np.float64)

    def norm_at(f):
      return float(grad_norm_at(like, f.astype(np.float32)))

    nu = mu  # LM damping, relative to max λ²
    gnorm = norm_at(flat)
    for _ in range(lm_steps):
      if gnorm <= target:
        break
      g, h = grad_and_hessian(unravel(jnp.asarray(flat, jnp.float32)))
      system = DampedSystem(h, g)
      accepted = False
      while nu <= 1e6:  # the dampings this step may try, in order
        d = system.step(nu)
        if d is not None:
          cand = flat - d
          cnorm = norm_at(cand)
          if cnorm < gnorm:
            flat, gnorm, accepted = cand, cnorm, True
            nu = max(nu / 10, 1e-12)
            break
        nu *= 10
      trace.append(gnorm)
      if not accepted:  # no damping lowers |∇L| (a critical point of G, not of L)
        break
    params = unravel(jnp.asarray(flat, jnp.float32))
    return SearchResult(params, norm_at(flat), float(value(params)), np.asarray(trace))
  return search
