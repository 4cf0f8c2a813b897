"""Lecture 8: the computed error surface against closed forms; the experiment end to end."""

import os

import numpy as np
import pytest

from configs import lec08 as lec08_config
from leeml import claims
from leeml.lectures import lec08


def test_error_surface_matches_closed_forms():
  cfg = lec08_config.get_config("smoke").surface
  s = lec08.error_surface(cfg)
  y1, y2 = cfg.start
  ce, mse = s["softmax_cross_entropy"], s["softmax_mse"]
  # CE = log(1 + e^(y2 - y1)) (y3 = -1000 contributes nothing); its gradient is p - onehot.
  assert ce["start_loss"] == pytest.approx(np.log1p(np.exp(y2 - y1)), rel=1e-5)
  p1 = 1.0 / (1.0 + np.exp(y2 - y1))
  assert ce["start_grad_norm"] == pytest.approx(np.sqrt(2) * (1 - p1), rel=1e-5)
  # softmax-MSE = (p1 - 1)^2 + p2^2 = 2 (1 - p1)^2; d/dy1 = -4 (1 - p1)^2 p1 (chain rule
  # through the softmax), and d/dy2 = -d/dy1, so |grad| = 4 sqrt(2) (1 - p1)^2 p1.
  assert mse["start_loss"] == pytest.approx(2 * (1 - p1) ** 2, rel=1e-5)
  # (float32 softmax near 1 has a spacing of 6e-8, so p1 ~ 1e-7 carries a few % error.)
  assert mse["start_grad_norm"] == pytest.approx(4 * np.sqrt(2) * (1 - p1) ** 2 * p1, rel=0.1)
  # The grid holds the same function: its corner (y1, y2) = (-E, E) is the largest CE.
  assert s["softmax_cross_entropy"]["grid"].shape == (cfg.grid, cfg.grid)
  assert s["softmax_cross_entropy"]["grid"][-1, 0] == pytest.approx(
      np.log1p(np.exp(2 * cfg.extent)), rel=1e-5)
  assert ce["final_prob"] > 0.9 and mse["moved"] < 1e-2


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec08_runs_end_to_end_and_judges_its_claims(tmp_path):
  config = lec08_config.get_config("smoke")
  config.datasets = ("digits",)
  config.seeds = (0, 1)
  config.train.num_train_steps = 100
  config.train.eval_every_steps = 50
  config.train.log_every_steps = 50
  config.train.checkpoint_every_steps = 100
  section = lec08.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec08.ce_trains_faster.digits", "lec08.mse_flat_where_loss_large",
      "lec08.gd_escapes_with_ce_only"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  train_claim = section.verdicts[0]
  ce = train_claim.numbers["CE final train accuracy"]
  assert ce.n == 2 and ce.mean > 0.5  # 100 SGD steps on digits: well above chance (0.1)
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  (table,) = section.tables
  assert [r[:2] for r in table.rows] == [("digits", "cross-entropy"),
                                        ("digits", "MSE (softmax, one-hot)")]
  # A rerun reuses the finished runs: same numbers, no training.
  again = lec08.run(config, str(tmp_path))
  assert again.verdicts[0].numbers["CE final train accuracy"] == ce
