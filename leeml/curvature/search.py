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
    nu = mu  # LM damping, relative to max λ²
    gnorm = float(grad_norm(params))
    for _ in range(lm_steps):
      if gnorm <= target:
        break
      g, h = grad_and_hessian(unravel(jnp.asarray(flat, jnp.float32)))
      lam, q = dense.eigh(h)
      coef = q.T @ np.asarray(g, np.float64)
      scale = float(np.max(lam ** 2)) or 1.0
      while nu <= 1e6:
        cand = flat - q @ (lam / (lam ** 2 + nu * scale) * coef)
        cnorm = float(grad_norm(unravel(jnp.asarray(cand, jnp.float32))))
        if cnorm < gnorm:
          flat, gnorm = cand, cnorm
          nu = max(nu / 10, 1e-12)
          break
        nu *= 10
      else:  # no damping lowers |∇L| (a critical point of G that is not one of L)
        trace.append(gnorm)
        break
      trace.append(gnorm)
    params = unravel(jnp.asarray(flat, jnp.float32))
    return SearchResult(params, float(grad_norm(params)), float(value(params)),
                        np.asarray(trace))
  return search
