"""The full Hessian matrix of a small model (lecture 4: "H is the Hessian matrix").

Order of rows and columns: that of `jax.flatten_util.ravel_pytree(params)`: the leaves of
the params pytree in `jax.tree_util` order (dict keys sorted, e.g. for a Flax MLP
'dense_0'/'bias', 'dense_0'/'kernel', ..., 'head'/'bias', 'head'/'kernel'), each leaf
flattened row-major (C order), concatenated. `unravel` maps a column or eigenvector back
to the params pytree. Memory is dim² floats: meant for ≲5k parameters.

`dense_hessian` runs once (eagerly); `grad_and_hessian(loss)` is the jitted, cached form
for a loss evaluated at many points (the critical-point search and classification
compile it once per loss closure and parameter shapes).

Eigendecompositions run in float64 numpy on one BLAS thread: a 610² `eigh` took 0.25 s on
one thread and 2.9 s on two under load on 2 cores (OpenBLAS threads spin against the
other processes; quiet, the two are within ~1.5x).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from threadpoolctl import threadpool_limits


def dense_hessian(loss, params):
  """(H, unravel): H[i, j] = ∂²loss/∂θ_i∂θ_j in `ravel_pytree` order (see module doc)."""
  flat, unravel = ravel_pytree(params)
  h = jax.hessian(lambda f: loss(unravel(f)))(flat)
  return h, unravel


@functools.lru_cache(maxsize=16)
def grad_and_hessian(loss):
  """A jitted `params -> (∇loss as a flat vector, H)` (ravel order), cached per `loss`
  object (so one compile serves every point of the same shapes)."""
  def fn(params):
    flat, unravel = ravel_pytree(params)
    f = lambda v: loss(unravel(v))  # noqa: E731
    return jax.grad(f)(flat), jax.hessian(f)(flat)
  return jax.jit(fn)


def eigh(h) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues (ascending) and eigenvectors (columns) of a Hessian, in float64 numpy.

  The matrix is symmetrized first (autodiff gives H and Hᵀ equal only up to rounding).
  """
  h = np.asarray(h, np.float64)
  with threadpool_limits(1, user_api="blas"):
    return np.linalg.eigh(0.5 * (h + h.T))


def hessian_spectrum(loss, params) -> np.ndarray:
  """All eigenvalues of the Hessian of `loss` at `params`, ascending (float64)."""
  h, _ = dense_hessian(loss, params)
  return eigh(jnp.asarray(h))[0]
