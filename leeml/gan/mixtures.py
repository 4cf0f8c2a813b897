"""2-D Gaussian mixtures (ring of 8, 5×5 grid) and their mode-coverage metrics.

The benchmarks of VEEGAN (Srivastava et al., 2017, sec. 5.1) and PacGAN (Lin et al.,
2018, sec. 5): equal-weight isotropic Gaussians of standard deviation σ at
  ring-8:   8 centers evenly on a circle of radius r (VEEGAN: r = 2, σ = 0.02)
  grid-25:  25 centers (-4 + 2i, -4 + 2j), i, j = 0..4 (spacing 2; VEEGAN σ = 0.05).
Metrics on n generated samples (both papers: n = 2500, threshold 20):
  high-quality %  share of samples within 3σ (Euclidean) of their nearest center;
  modes covered   number of centers holding ≥ `min_count` samples within 3σ.
"""

import jax
import jax.numpy as jnp
import numpy as np


def ring_centers(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
  angle = 2 * np.pi * np.arange(num_modes) / num_modes
  return np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).astype(np.float32)


def grid_centers(side: int = 5, spacing: float = 2.0) -> np.ndarray:
  axis = (np.arange(side) - (side - 1) / 2) * spacing
  x, y = np.meshgrid(axis, axis, indexing="ij")
  return np.stack([x.ravel(), y.ravel()], -1).astype(np.float32)


MIXTURES = {
    "ring8": dict(centers=ring_centers, std=0.02),
    "grid25": dict(centers=grid_centers, std=0.05),
}


def mixture(name: str) -> tuple[np.ndarray, float]:
  """(centers (M, 2), σ) of a named mixture."""
  if name not in MIXTURES:
    raise ValueError(f"mixture {name!r} is not one of: {', '.join(sorted(MIXTURES))}")
  m = MIXTURES[name]
  return m["centers"](), m["std"]


def sample(key: jax.Array, n: int, centers, std: float) -> jax.Array:
  """n samples: a uniformly chosen center plus N(0, σ² I)."""
  centers = jnp.asarray(centers)
  kc, kn = jax.random.split(key)
  idx = jax.random.randint(kc, (n,), 0, centers.shape[0])
  return centers[idx] + std * jax.random.normal(kn, (n, centers.shape[1]))


def assign(samples, centers, std: float, num_std: float = 3.0):
  """Per sample: index of the nearest center, and whether it lies within num_std·σ."""
  s, c = np.asarray(samples, np.float64), np.asarray(centers, np.float64)
  d = np.linalg.norm(s[:, None, :] - c[None, :, :], axis=-1)
  nearest = np.argmin(d, axis=1)
  return nearest, d[np.arange(len(s)), nearest] <= num_std * std


def high_quality_fraction(samples, centers, std: float, num_std: float = 3.0) -> float:
  """Share of samples within num_std·σ of their nearest center."""
  return float(np.mean(assign(samples, centers, std, num_std)[1]))


def mode_counts(samples, centers, std: float, num_std: float = 3.0) -> np.ndarray:
  """High-quality samples held by each center, shape (M,)."""
  nearest, good = assign(samples, centers, std, num_std)
  return np.bincount(nearest[good], minlength=len(centers))


def modes_covered(samples, centers, std: float, *, min_count: int = 20,
                  num_std: float = 3.0) -> int:
  """Number of centers holding at least `min_count` samples within num_std·σ."""
  return int(np.sum(mode_counts(samples, centers, std, num_std) >= min_count))
