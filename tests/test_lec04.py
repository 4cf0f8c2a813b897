"""Lecture 4: the tiny network's critical points against the analytic ones; end to end."""

import os

import numpy as np
import pytest

from configs import lec04 as lec04_config
from leeml import claims, curvature
from leeml.lectures import lec04


def test_tiny_network_matches_analysis():
  cfg = lec04_config.get_config("smoke").tiny
  cfg.starts_per_axis = 3
  t = lec04.tiny_network(cfg)
  # The lecture's numbers: H(0) = [[0, -2], [-2, 0]], λ = ±2, u ∝ (1, 1) for λ = -2.
  assert t["saddle"].kind == curvature.SADDLE
  np.testing.assert_allclose(t["saddle"].eigenvalues, [-2.0, 2.0], atol=1e-5)
  u = np.asarray(t["saddle"].escape_direction["w"])
  assert abs(u[0]) == pytest.approx(abs(u[1]), rel=1e-5) and u[0] * u[1] > 0
  # The start (0, 0) is in the 3x3 grid of starts: found there, as the saddle.
  found = t["found"]
  assert len(found) == 9 and all(f["grad_norm"] <= cfg.grad_target for f in found)
  assert all(f["kind"] == f["analytic_kind"] and f["distance"] < 1e-3 for f in found)
  assert {f["kind"] for f in found} == {curvature.SADDLE, curvature.LOCAL_MIN}
  # Minima on w1 w2 = 1: eigenvalues 0 and 2(w1² + w2²).
  for f in found:
    if f["kind"] == curvature.LOCAL_MIN:
      np.testing.assert_allclose(f["eigenvalues"], [0.0, 2 * np.sum(f["w"] ** 2)], atol=1e-4)
  # Escape: L goes from 1 to (1 - η²/2)² after the step along u, then to ~0 by GD.
  assert t["saddle_loss"] == 1.0 and t["gd_at_saddle_moved"] == 0.0
  assert t["escape_loss"] == pytest.approx((1 - cfg.escape_step ** 2 / 2) ** 2, rel=1e-5)
  assert t["final_loss"] < 1e-6
  assert abs(t["path"][-1, 0] * t["path"][-1, 1] - 1.0) < 1e-3


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec04_runs_end_to_end(tmp_path):
  config = lec04_config.get_config("smoke")
  config.tiny.starts_per_axis = 3
  config.seeds = (0,)
  config.minratio.train_steps = (300,)
  section = lec04.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec04.tiny_net.critical_points_classified", "lec04.tiny_net.saddle_escape",
      "lec04.minratio.critical_points_found", "lec04.minratio.local_minima_rare"]
  assert section.verdicts[0].verdict == claims.PASS
  assert section.verdicts[1].verdict == claims.PASS
  table = section.tables[0]
  (row,) = table.rows
  assert row[0] == "0" and row[1] == "300"
  # 300 Adam steps from the init lower the MSE well below its value at init (~0.3).
  assert float(row[2]) < 0.1 and float(row[3]) <= float(row[2]) * 1.5
  assert float(row[4]) < 1e-2  # |∇L| after the search
  assert "610" in table.title  # 64*8+8 + 8*10+10 parameters
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
