"""Lecture 14 (mode collapse): the run configs, the real-data pool, the best-variant rule,
and the experiment end to end at smoke scale (a rerun reuses the finished runs)."""

import pytest
import os

import numpy as np

from configs import lec14_mode_collapse as config_lib
from leeml import claims
from leeml.gan import mixtures
from leeml.lectures import lec14_mode_collapse as lec


def test_run_config_takes_the_variant_fields():
  config = config_lib.get_config("cpu")
  c = lec.run_config(config, "grid25", "wgan_gp", seed=2)
  assert (c.loss, c.critic_steps, c.seed) == ("wgan_gp", 5, 2)
  assert c.num_train_steps == config.variants.wgan_gp.num_train_steps["grid25"]
  assert c.num_train_steps // c.eval_every_steps == config.snapshots
  assert c.d_optimizer.learning_rate == config.variants.wgan_gp.learning_rate
  assert c.checkpoint_every_steps == c.eval_every_steps   # snapshots restored from these
  assert lec.eval_steps(c)[-1] == c.num_train_steps and c.keep_checkpoints == config.snapshots
  assert config.thresholds.ring8_best_modes == 7.5
  assert config.thresholds.grid25_best_modes == 23.0


def test_real_pool_is_the_scaled_mixture():
  config = config_lib.get_config("smoke")
  pool = lec.real_pool(config, "grid25")
  centers, std = mixtures.mixture("grid25")
  assert pool.inputs.shape == (config.pool_size, 2) and pool.inputs.dtype == np.float32
  x = pool.inputs * lec.data_scale(config, "grid25")
  # Every point lies near the center it was drawn from; all 25 modes are present.
  np.testing.assert_array_less(np.linalg.norm(x - centers[pool.targets], axis=1), 6 * std)
  assert set(pool.targets.tolist()) == set(range(25))
  np.testing.assert_array_equal(lec.real_pool(config, "grid25").inputs, pool.inputs)


def test_best_variant_and_final_values():
  r = {"grid25": {
      "a": [{"modes": [3, 20], "high_quality": [0.1, 0.5]},
            {"modes": [4, 22], "high_quality": [0.1, 0.7]}],
      "b": [{"modes": [9, 21], "high_quality": [0.2, 0.9]},
            {"modes": [9, 21], "high_quality": [0.2, 0.9]}],
      "c": [{"modes": [9, 5], "high_quality": [0.2, 0.1]}] * 2}}
  np.testing.assert_array_equal(lec.final(r, "grid25", "a", "modes"), [20, 22])
  assert lec.best_variant(r, "grid25") == "b"   # 21 = 21 modes, the higher quality wins
  check = lec._claims(config_lib.get_config("cpu"))[1].check
  ev = check(r)
  assert not ev.passed and "best variant: b" in ev.detail
  assert ev.numbers["a: modes covered (of 25)"].mean == 21.0


@pytest.mark.slow  # end to end / subprocess; the slow run (.ci/run-slow) covers it
def test_lec14_mode_collapse_runs_end_to_end(tmp_path, quick_compiles):
  config = config_lib.get_config("smoke")
  config.variants.vanilla.num_train_steps = dict(ring8=20, grid25=20)
  del config.variants["spectral_norm"]   # test time; its critic runs in test_gan_train
  section = lec.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec14_mode_collapse.best_covers_ring8", "lec14_mode_collapse.best_covers_grid25"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  assert all("raised" not in v.detail for v in section.verdicts)
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000
  assert len(section.figures) == 3
  rows = section.tables[0].rows
  assert [(row[0], row[1]) for row in rows] == [
      (m, v) for m in config.mixtures for v in config.variants]
  # The recorded metrics are those of the saved samples (recomputed here).
  runs = sorted(os.listdir(tmp_path / "runs"))   # one population per (mixture, variant)
  assert len(runs) == len(config.mixtures) * len(config.variants)
  run = next(d for d in runs if d.startswith("ring8_vanilla"))
  samples = np.load(tmp_path / "runs" / run / "samples_0000020.npy")
  assert samples.shape == (len(config.seeds), config.eval_samples, 2)
  samples = samples[0]
  centers, std = mixtures.mixture("ring8")
  v = next(v for v in section.verdicts if v.claim.id.endswith("ring8"))
  assert v.numbers["vanilla: modes covered (of 8)"].values == (
      mixtures.modes_covered(samples, centers, std, min_count=config.min_count),)
  # A rerun reuses every finished run (same directories, same numbers).
  again = lec.run(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "runs")) == runs
  assert again.tables == section.tables
