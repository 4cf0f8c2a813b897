"""Finding critical points: minimize the gradient norm (lecture 4, "Empirical study").

A critical point is where ∇L = 0, whatever its kind; gradient descent on L avoids saddles
and maxima, so (as in the lecture's source) critical points are found by minimizing
    G(θ) = ½ |∇L(θ)|²,   ∇G = H ∇L   (one Hessian-vector product).
Two phases: Adam on G (cheap, from anywhere), then Newton steps on the residual
r(θ) = ∇L(θ) with Jacobian H (small models: dense H), on the eigen-directions whose
|λ| > μ·max|λ| only (a truncated pseudo-inverse; flat directions are left alone):
    d = -Σ_{|λ_i| > μ max|λ|} (u_iᵀ ∇L / λ_i) u_i,
with backtracking on |∇L| and μ shrinking after a step that lowers |∇L|, growing
otherwise. Newton's method is attracted to critical points of *any* kind (Dauphin et
al. 2014), which is what makes saddles reachable here while gradient descent avoids them.
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
  def grad_and_hessian(params):
    h, _ = dense.dense_hessian(loss, params)
    return ravel_pytree(grad(params))[0], h

  grad_norm = jax.jit(lambda p: _norm(grad(p)))
  value = jax.jit(loss)

  def search(params) -> SearchResult:
    trace = []
    if adam_steps:
      params, norms = adam(params)
      trace.extend(np.asarray(norms)[:: max(1, adam_steps // 20)].tolist())
    flat, unravel = ravel_pytree(params)
    flat = np.asarray(flat, np.float64)
    damping = mu
    gnorm = float(grad_norm(params))
    for _ in range(lm_steps):
      if gnorm <= target:
        break
      g, h = grad_and_hessian(unravel(jnp.asarray(flat, jnp.float32)))
      lam, q = dense.eigh(h)
      g = np.asarray(g, np.float64)
      # Newton on ∇L restricted to |λ| > μ·max|λ| (pseudo-inverse), halved until |∇L|
      # drops; a larger cutoff (more damping) when no halving helps.
      for _ in range(4):
        keep = np.abs(lam) > damping * np.max(np.abs(lam))
        step = -q[:, keep] @ ((q[:, keep].T @ g) / lam[keep])
        accepted = False
        for t in (1.0, 0.5, 0.25, 0.125):
          cand = flat + t * step
          cnorm = float(grad_norm(unravel(jnp.asarray(cand, jnp.float32))))
          if cnorm < gnorm:
            flat, gnorm, accepted = cand, cnorm, True
            break
        if accepted:
          damping = max(damping / 10, 1e-7)
          break
        damping = min(damping * 10, 0.5)
      trace.append(gnorm)
    params = unravel(jnp.asarray(flat, jnp.float32))
    return SearchResult(params, float(grad_norm(params)), float(value(params)),
                        np.asarray(trace))
  return search
