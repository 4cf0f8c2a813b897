"""Lecture 3 experiment end to end at a tiny scale: runs, verdicts, claims, plot, reuse."""

import os

import pytest

from configs import lec03 as lec03_config
from leeml import claims, diagnose
from leeml.lectures import lec03


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec03_runs_end_to_end_and_judges_its_claims(tmp_path):
  config = lec03_config.get_config("smoke")
  config.seeds = (0,)  # one seed keeps this test ~20 s (5 tiny training runs)
  config.degradation.num_train_steps = 60
  config.degradation.eval_every_steps = 20
  config.degradation.log_every_steps = 20
  config.degradation.checkpoint_every_steps = 60
  config.overfitting.num_train_steps = 100
  config.overfitting.eval_every_steps = 10
  config.overfitting.log_every_steps = 10
  config.overfitting.checkpoint_every_steps = 100
  section = lec03.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec03.deeper_plain_has_higher_train_loss", "lec03.diagnose_says_optimization",
      "lec03.residual_deep_trains_as_well_as_shallow", "lec03.diagnose_says_overfitting"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) and v.numbers for v in section.verdicts)
  # The small-training-set case: 100 steps of Adam memorise 100 examples, validation worsens.
  over = section.verdicts[3]
  assert over.numbers["final train loss"].n == 1
  assert over.numbers["final train loss"].mean < 0.1 < over.numbers["final val loss"].mean
  (table,) = section.tables
  assert [r[0] for r in table.rows] == ["plain 2", "plain 8", "residual 2", "residual 8",
                                        "overfitting"]
  assert all(r[5] in diagnose.REMEDIES.values() for r in table.rows)
  (fig,) = section.figures
  assert os.path.getsize(fig.path) > 10_000
  again = lec03.run(config, str(tmp_path))  # finished runs are reused
  assert again.verdicts[0].numbers == section.verdicts[0].numbers
