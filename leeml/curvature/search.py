"""Finding critical points: minimize the gradient norm (lecture 4, "Empirical study").

A critical point is where ∇L = 0, whatever its kind; gradient descent on L avoids saddles
and maxima, so (as in the lecture's source) critical points are found by minimizing
    G(θ) = ½ |∇L(θ)|²,   ∇G = H ∇L   (one Hessian-vector product).
Two phases: Adam on G (cheap, from anywhere), then Levenberg–Marquardt steps on the
residual r(θ) = ∇L(θ), whose Jacobian is H (small models: dense H, eigendecomposed once
per step). The LM step minimizes |∇L + H d|² + ν|d|²:
    d = -(H² + νI)⁻¹ H ∇L = -Σ_i λ_i / (λ_i² + ν) (u_iᵀ ∇L) u_i,
a Newton step on directions with λ_i² ≫ ν and a short gradient step on G (∇G = H ∇L)
on the flat ones, so it never jumps along near-zero eigenvalues. ν (relative to max λ²)
is divided by 10 after a step that lowers |∇L| and multiplied by 10 until one does.
Newton's method is attracted to critical points of *any* kind (Dauphin et al. 2014),
which is what makes saddles reachable here while gradient descent avoids them.

Cost: one LM step is one jitted (∇L, H) (`dense.grad_and_hessian`, compiled once per
loss), one float64 `eigh` (one BLAS thread, `dense.eigh`) and ONE jitted evaluation of
|∇L| at every damping ν the step may try (ν, 10ν, ..., ≤ 1e6, padded to a fixed count so
it compiles once); the first ν that lowers |∇L| is taken, as trying them one by one
would. The eigendecomposition is most of the time at ~600 parameters.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from leeml.curvature import dense
from leeml.curvature.hvp import hvp


class SearchResult(NamedTuple):
  params: object
  grad_norm: float
  loss: float
  grad_norms: np.ndarray   # |∇L| after each Adam chunk and each LM step (the trace)


# ν runs from ≥ 1e-12 to ≤ 1e6 by factors of 10: at most 19 values per step.
_NUM_DAMPINGS = 19


def _norm(tree):
  return jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(tree)))


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
  def grad_norms(like, flats):
    """|∇L| at each row of `flats` (flat float32 params shaped like `like`)."""
    unravel = ravel_pytree(like)[1]
    return jax.vmap(lambda f: _norm(grad(unravel(f))))(flats)

  value = jax.jit(loss)

  def search(params) -> SearchResult:
    trace = []
    if adam_steps:
      params, norms = adam(params)
      trace.extend(np.asarray(norms)[:: max(1, adam_steps // 20)].tolist())
    flat, unravel = ravel_pytree(params)
    like = params
    flat = np.asarray(flat, np.float64)
    nu = mu  # LM damping, relative to max λ²
    gnorm = float(grad_norms(like, flat[None].astype(np.float32))[0])
    for _ in range(lm_steps):
      if gnorm <= target:
        break
      g, h = grad_and_hessian(unravel(jnp.asarray(flat, jnp.float32)))
      lam, q = dense.eigh(h)
      coef = q.T @ np.asarray(g, np.float64)
      scale = float(np.max(lam ** 2)) or 1.0
      nus = []
      while nu <= 1e6:  # the dampings this step may try, in order
        nus.append(nu)
        nu *= 10
      if not nus:
        trace.append(gnorm)
        break
      nus_arr = np.asarray(nus)
      steps = (lam[:, None] / (lam[:, None] ** 2 + nus_arr[None] * scale)) * coef[:, None]
      cands = flat[None] - (q @ steps).T                          # [len(nus), n]
      padded = np.concatenate([cands, np.repeat(flat[None], max(0, _NUM_DAMPINGS - len(nus)), 0)])
      cnorms = np.asarray(grad_norms(like, padded.astype(np.float32)))[: len(nus)]
      better = np.flatnonzero(cnorms < gnorm)
      if not better.size:  # no damping lowers |∇L| (a critical point of G, not of L)
        trace.append(gnorm)
        break
      k = int(better[0])
      flat, gnorm = cands[k], float(cnorms[k])
      nu = max(nus[k] / 10, 1e-12)
      trace.append(gnorm)
    params = unravel(jnp.asarray(flat, jnp.float32))
    return SearchResult(params, float(grad_norms(like, flat[None].astype(np.float32))[0]),
                        float(value(params)), np.asarray(trace))
  return search
