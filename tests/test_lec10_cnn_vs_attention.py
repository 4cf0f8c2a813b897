"""Lectures 10-11: data subsets, the augmented pool, and the experiment end to end."""

import os

import numpy as np
import pytest

from configs import lec10_cnn_vs_attention as lec10_config
from leeml import claims
from leeml.lectures import lec10_cnn_vs_attention as lec10


def test_training_sets_are_nested_and_deterministic():
  cfg = lec10_config.get_config("cpu").data
  sets = lec10.training_sets(cfg, 1497, seed=3)
  assert [lab for lab, _ in sets] == ["10%", "30%", "100%", "100% + 3x aug"]
  sizes = [len(i) for _, i in sets]
  assert sizes == [150, 449, 1497, 4 * 1497]
  assert set(sets[0][1]) <= set(sets[1][1]) <= set(sets[2][1]) == set(range(1497))
  again = lec10.training_sets(cfg, 1497, seed=3)
  np.testing.assert_array_equal(sets[1][1], again[1][1])
  other = lec10.training_sets(cfg, 1497, seed=4)
  assert not np.array_equal(sets[0][1], other[0][1])


def test_augmented_pool_keeps_originals_and_labels():
  cfg = lec10_config.get_config("cpu").data
  cfg.augment_copies = 2
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(5, 8, 8, 1)).astype(np.float32)
  y = np.arange(5)
  px, py = lec10.augmented_pool(cfg, x, y, seed=0)
  assert px.shape == (15, 8, 8, 1)
  np.testing.assert_array_equal(px[:5], x)
  np.testing.assert_array_equal(py, np.tile(y, 3))
  # The copies are warped (not equal to the originals), with most of the ink kept.
  assert np.abs(px[5:] - np.tile(x, (2, 1, 1, 1))).max() > 0.05
  assert 0.5 < px[5:].sum() / (2 * x.sum()) < 1.2


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec10_runs_end_to_end(tmp_path):
  config = lec10_config.get_config("smoke")
  config.equivalence.kernel_sizes = (3,)
  config.data.fractions = (0.1,)
  config.data.augment_copies = 1
  config.train.steps = 40
  config.vit["depth"] = 2
  section = lec10.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec10_cnn_vs_attention.conv_equals_attention",
      "lec10_cnn_vs_attention.cnn_wins_with_little_data",
      "lec10_cnn_vs_attention.gap_shrinks_with_data",
      "lec10_cnn_vs_attention.attention_distance_grows_with_depth"]
  assert section.verdicts[0].verdict == claims.PASS
  eq, acc, dist = section.tables
  assert len(eq.rows) == 2 and all(float(r[3]) <= 1e-4 for r in eq.rows)
  assert [r[:2] for r in acc.rows] == [("10%", "150"), ("100% + 1x aug", "2994")]
  # 40 Adam steps lift both models well above chance (10%) on the 300 test digits.
  for row in acc.rows:
    assert float(row[2].split()[0]) > 0.3 and float(row[3].split()[0]) > 0.2
  # Distances are in pixels of an 8x8 image: between 0 and the diagonal.
  for row in dist.rows:
    assert all(0.0 < float(cell.split()[0]) < 8 * np.sqrt(2) for cell in row[1:])
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
