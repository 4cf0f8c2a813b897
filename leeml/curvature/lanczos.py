"""Lanczos with full reorthogonalization: extreme Hessian eigenpairs from HVPs alone.

m Lanczos iterations build an orthonormal basis V of the Krylov space
span{v, Hv, ..., H^(m-1) v} and the tridiagonal T = Vᵀ H V; the eigenvalues of T (Ritz
values) approach H's extreme eigenvalues first (Golub & Van Loan, Matrix Computations,
§10.1). In floating point plain Lanczos loses orthogonality and repeats converged
eigenvalues, so each new vector is orthogonalized against *all* previous ones, twice
("twice is enough", Giraud et al. 2005). The whole loop is one `lax.fori_loop`: it jits
once and costs m HVPs plus O(m² n) for the reorthogonalization.

If the Krylov space is exhausted (β ≈ 0: v lies in an invariant subspace, e.g. a quadratic
with repeated eigenvalues) the next vector is a fresh random one orthogonal to V, with
β = 0: T becomes block diagonal and its eigenvalues are still eigenvalues of H.

Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019)
turns the same T into a spectral density: for a random unit v, the eigenvalues θ_k of T
and weights τ_k = (first component of T's k-th eigenvector)² are a Gauss quadrature of the
spectral measure Σ_i (v·u_i)² δ(λ_i), whose expectation over v is the eigenvalue density.
"""

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class LanczosResult(NamedTuple):
  alphas: jax.Array   # [m]   diagonal of T
  betas: jax.Array    # [m-1] off-diagonal of T
  basis: jax.Array    # [m, n] orthonormal rows (the Lanczos vectors)


def _orthogonalize(w, basis):
  for _ in range(2):  # twice is enough (module doc)
    w = w - basis.T @ (basis @ w)
  return w


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def lanczos(matvec: Callable[[Any, jax.Array], jax.Array], operand: Any, dim: int,
            num_iters: int, key: jax.Array) -> LanczosResult:
  """`num_iters` (≤ dim) Lanczos steps of the symmetric operator x -> matvec(operand, x).

  The operator's data (`operand`: a matrix, or params and batches) is a traced argument,
  not a constant baked into the program; `matvec` is static (the same function object
  reuses the compiled loop, e.g. `hvp.dataset_operator(...).matvec`).
  """
  m = min(num_iters, dim)
  v0 = jax.random.normal(key, (dim,), jnp.float32)
  basis = jnp.zeros((m + 1, dim), jnp.float32).at[0].set(v0 / jnp.linalg.norm(v0))

  def body(j, state):
    basis, alphas, betas, scale = state
    v = basis[j]
    w = matvec(operand, v).astype(jnp.float32)
    alpha = jnp.dot(w, v)
    w = w - alpha * v - jnp.where(j > 0, betas[j - 1], 0.0) * basis[jnp.maximum(j - 1, 0)]
    w = _orthogonalize(w, basis)
    beta = jnp.linalg.norm(w)
    scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
    # Breakdown: |w| is rounding noise relative to ||H|| (float32 eps ~1e-7, times margin).
    broke = beta <= 1e-5 * scale

    def fresh(_):
      r = jax.random.normal(jax.random.fold_in(key, j + 1), (dim,), jnp.float32)
      r = _orthogonalize(r, basis)
      return r / jnp.maximum(jnp.linalg.norm(r), 1e-30), jnp.float32(0.0)

    v_next, beta = jax.lax.cond(broke, fresh, lambda _: (w / beta, beta), None)
    return basis.at[j + 1].set(v_next), alphas.at[j].set(alpha), betas.at[j].set(beta), scale

  init = (basis, jnp.zeros(m, jnp.float32), jnp.zeros(m, jnp.float32), jnp.float32(0.0))
  basis, alphas, betas, _ = jax.lax.fori_loop(0, m, body, init)
  return LanczosResult(alphas, betas[: m - 1], basis[:m])


def tridiagonal(result: LanczosResult) -> np.ndarray:
  a, b = np.asarray(result.alphas, np.float64), np.asarray(result.betas, np.float64)
  return np.diag(a) + np.diag(b, 1) + np.diag(b, -1)


def ritz(result: LanczosResult, select=None) -> tuple[np.ndarray, np.ndarray]:
  """Ritz values (ascending, float64) and Ritz vectors ([n, len] columns, unit norm) of a
  run; `select` (indices into the ascending values) limits the vectors formed."""
  theta, s = np.linalg.eigh(tridiagonal(result))
  idx = np.arange(len(theta)) if select is None else np.asarray(select)
  vectors = np.asarray(result.basis).T @ s[:, idx].astype(np.float32)
  return theta[idx], vectors


def extreme_eigenpairs(matvec, operand, dim: int, k: int, *, which: str = "top",
                       num_iters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """The k largest ('top', descending) or smallest ('bottom', ascending) eigenvalues of
  the operator and their Ritz vectors ([n, k]). Accurate once `num_iters` ≫ k; with
  num_iters = dim (small models) the result is the exact spectrum up to rounding."""
  if which not in ("top", "bottom"):
    raise ValueError(f"which={which!r} is not one of: bottom, top")
  res = lanczos(matvec, operand, dim, num_iters, jax.random.PRNGKey(seed))
  m = len(res.alphas)
  k = min(k, m)
  select = np.arange(m - 1, m - 1 - k, -1) if which == "top" else np.arange(k)
  return ritz(res, select)


def top_eigenvalues(matvec, operand, dim: int, k: int = 5, **kw) -> np.ndarray:
  return extreme_eigenpairs(matvec, operand, dim, k, which="top", **kw)[0]


def bottom_eigenvalues(matvec, operand, dim: int, k: int = 5, **kw) -> np.ndarray:
  return extreme_eigenpairs(matvec, operand, dim, k, which="bottom", **kw)[0]


class SpectralDensity(NamedTuple):
  grid: np.ndarray       # eigenvalue axis
  density: np.ndarray    # smoothed density on `grid` (integrates to ~1)
  nodes: np.ndarray      # [probes, m] quadrature nodes θ (Ritz values)
  weights: np.ndarray    # [probes, m] quadrature weights τ (sum to 1 per probe)


def spectral_density(matvec, operand, dim: int, *, num_iters: int = 30, num_probes: int = 4,
                     seed: int = 0, grid_size: int = 400, sigma: float | None = None,
                     ) -> SpectralDensity:
  """Stochastic Lanczos quadrature (module doc), smoothed with a Gaussian of width
  `sigma` (default: 1% of the spectral range, as in Ghorbani et al. 2019)."""
  nodes, weights = [], []
  for p in range(num_probes):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), p)
    res = lanczos(matvec, operand, dim, num_iters, key)
    theta, s = np.linalg.eigh(tridiagonal(res))
    nodes.append(theta)
    weights.append(s[0] ** 2)
  nodes, weights = np.stack(nodes), np.stack(weights)
  lo, hi = nodes.min(), nodes.max()
  span = max(hi - lo, 1e-12)
  sigma = sigma or 0.01 * span
  grid = np.linspace(lo - 0.05 * span - 3 * sigma, hi + 0.05 * span + 3 * sigma, grid_size)
  kern = np.exp(-0.5 * ((grid[None, None] - nodes[..., None]) / sigma) ** 2)
  kern /= sigma * np.sqrt(2 * np.pi)
  density = np.mean(np.sum(weights[..., None] * kern, axis=1), axis=0)
  return SpectralDensity(grid, density, nodes, weights)
