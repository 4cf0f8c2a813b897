"""Mode-coverage and high-quality metrics on constructed sample sets with known answers."""

import jax
import numpy as np
import pytest

from leeml.gan import mixtures


def test_centers():
  ring = mixtures.ring_centers()
  assert ring.shape == (8, 2)
  np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0, rtol=1e-6)
  grid = mixtures.grid_centers()
  assert grid.shape == (25, 2)
  np.testing.assert_allclose(sorted(set(np.round(grid[:, 0], 6))), [-4, -2, 0, 2, 4])


def test_true_samples_cover_every_mode_with_997_percent_quality():
  for name in ("ring8", "grid25"):
    centers, std = mixtures.mixture(name)
    x = mixtures.sample(jax.random.PRNGKey(0), 25000, centers, std)
    assert mixtures.modes_covered(x, centers, std) == len(centers)
    # P(|N(0, I_2)| ≤ 3) = 1 - exp(-9/2) = 0.98889 (Rayleigh), not the 1-D 0.9973.
    assert mixtures.high_quality_fraction(x, centers, std) == pytest.approx(
        1 - np.exp(-4.5), abs=0.003)


def test_constructed_sets():
  centers, std = mixtures.mixture("ring8")
  # 30 samples exactly on each of modes 0..4, 19 on mode 5 (below 20), none on 6, 7,
  # and 51 far from every mode (at the origin).
  x = np.concatenate([np.repeat(centers[:5], 30, 0), np.repeat(centers[5:6], 19, 0),
                      np.zeros((51, 2), np.float32)])
  assert mixtures.modes_covered(x, centers, std) == 5
  assert mixtures.modes_covered(x, centers, std, min_count=19) == 6
  np.testing.assert_allclose(mixtures.high_quality_fraction(x, centers, std),
                             169 / 220)
  np.testing.assert_array_equal(mixtures.mode_counts(x, centers, std),
                                [30, 30, 30, 30, 30, 19, 0, 0])


def test_three_sigma_boundary():
  centers, std = mixtures.mixture("grid25")
  c = centers[7]
  just_in = c + np.array([2.99 * std, 0.0])
  just_out = c + np.array([0.0, 3.01 * std])
  np.testing.assert_array_equal(
      mixtures.assign(np.stack([just_in, just_out]), centers, std)[1], [True, False])


def test_unknown_mixture():
  with pytest.raises(ValueError, match="ring8"):
    mixtures.mixture("spiral")
