"""Critical points: is a point of zero gradient a local minimum, a local maximum or a saddle?

Lecture 4 ("When gradient is small: local minimum and saddle point"): near a critical
point θ', L(θ) ≈ L(θ') + ½ (θ-θ')ᵀ H (θ-θ'), so the eigenvalues of H decide:
all positive → local minimum, all negative → local maximum, some of each → saddle point;
and from a saddle, moving along an eigenvector u of a negative eigenvalue λ lowers the
loss by ½ λ |u|² < 0 ("H may tell us the parameter update direction").
Minimum ratio (lecture 4, "Empirical study") = #positive eigenvalues / #eigenvalues.

Tolerance: eigenvalues are rounding-noisy and networks have exactly flat directions
(parameter symmetries, dead units), so an eigenvalue with |λ| ≤ tol counts as *zero*:
    tol = max(atol, rtol · max_i |λ_i|)   (defaults atol=0, rtol=1e-4; float32 Hessians
                                           carry relative errors ~1e-6..1e-5).
Zero eigenvalues make the second-order test inconclusive in their directions; such a
point is still reported by the sign of the others, with `num_zero` > 0 ("degenerate").
The minimum ratio counts only the non-zero eigenvalues: #positive / (#positive +
#negative), so it is 1 exactly when no eigenvalue is clearly negative (a local minimum up
to the flat directions); `minimum_ratio_all` is the lecture's #positive / #all.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from leeml.curvature import dense

LOCAL_MIN, LOCAL_MAX, SADDLE, FLAT = "local min", "local max", "saddle point", "flat"


class CriticalPoint(NamedTuple):
  kind: str                 # LOCAL_MIN, LOCAL_MAX, SADDLE or FLAT (every |λ| ≤ tol)
  eigenvalues: np.ndarray   # ascending (those given: all, or the extreme ones)
  tol: float
  num_positive: int
  num_negative: int
  num_zero: int
  minimum_ratio: float      # #pos / (#pos + #neg)   (module doc)
  minimum_ratio_all: float  # #pos / #all           (the lecture's, zeros not positive)
  escape_direction: Any = None   # unit eigenvector of the most negative λ (saddle), or None
  grad_norm: float = float("nan")

  @property
  def degenerate(self) -> bool:
    return self.num_zero > 0


def zero_tolerance(eigenvalues, rtol: float = 1e-4, atol: float = 0.0) -> float:
  ev = np.asarray(eigenvalues, np.float64)
  return float(max(atol, rtol * (np.max(np.abs(ev)) if ev.size else 0.0)))


def classify_spectrum(eigenvalues, *, rtol: float = 1e-4, atol: float = 0.0,
                      escape_direction=None, grad_norm: float = float("nan")) -> CriticalPoint:
  """Classifies a critical point from (all, or the extreme) eigenvalues of its Hessian."""
  ev = np.sort(np.asarray(eigenvalues, np.float64).ravel())
  tol = zero_tolerance(ev, rtol, atol)
  pos, neg = int(np.sum(ev > tol)), int(np.sum(ev < -tol))
  zero = ev.size - pos - neg
  if pos and neg:
    kind = SADDLE
  elif pos:
    kind = LOCAL_MIN
  elif neg:
    kind = LOCAL_MAX
  else:
    kind = FLAT
  ratio = pos / (pos + neg) if pos + neg else float("nan")
  return CriticalPoint(kind, ev, tol, pos, neg, zero, ratio, pos / max(ev.size, 1),
                       escape_direction if kind == SADDLE else None, grad_norm)


def classify_critical_point(loss, params, *, rtol: float = 1e-4,
                            atol: float = 0.0) -> CriticalPoint:
  """Dense-Hessian classification of `params` for a closure `loss(params)` (small models).

  Also reports |∇L| (a point is critical only if it is ~0: the caller judges), and for a
  saddle the unit eigenvector of the most negative eigenvalue as a params pytree.
  """
  g, h = dense.grad_and_hessian(loss)(params)  # jitted once per `loss` (dense.py)
  unravel = ravel_pytree(params)[1]
  ev, vecs = dense.eigh(h)
  gnorm = float(np.sqrt(np.sum(np.asarray(g, np.float32) ** 2)))
  direction = unravel(jnp.asarray(vecs[:, 0], jnp.float32))
  return classify_spectrum(ev, rtol=rtol, atol=atol, escape_direction=direction,
                           grad_norm=gnorm)


def escape_saddle(loss, params, direction, step_size: float):
  """One step from a saddle along ±`direction` (a negative-curvature eigenvector).

  Both signs lower the loss to second order (½ λ η² < 0); the one with the lower loss is
  taken (third-order terms break the tie). Returns (new params, its loss).
  """
  cands = [jax.tree.map(lambda p, u, s=s: p + s * step_size * u, params, direction)
           for s in (1.0, -1.0)]
  losses = [float(loss(c)) for c in cands]
  best = int(np.argmin(losses))
  return cands[best], losses[best]
