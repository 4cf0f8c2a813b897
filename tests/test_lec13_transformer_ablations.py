"""Lecture 13: Transformer ablations — helpers, population groups, end to end at smoke scale.

That a population member equals the single run of its seed is tests/test_seq2seq_train.py's
(`seq2seq.program`)."""

import os

import numpy as np
import pytest

from configs import lec13_transformer_ablations as lec13_config
from leeml import claims, seq2seq
from leeml.lectures import lec13_transformer_ablations as lec13

pytestmark = pytest.mark.usefixtures("quick_compiles")


def test_variants_differ_from_the_base_only_where_they_say():
  config = lec13_config.get_config("cpu")
  for name in config.variants:
    seq2seq.validate(lec13.variant_config(config, name))
  v = {n: lec13.variant_config(config, n) for n in config.variants}
  assert v["none"].model.positions == "none" and v["learned"].model.positions == "learned"
  assert v["deep_pre"].model.num_layers == 6 and v["deep_pre"].model.residual
  assert not v["deep_pre_no_residual"].model.residual
  assert v["deep_post"].model.norm_position == "post"
  assert v["deep_post"].schedule.warmup_steps == 0 < v["deep_post_warmup"].schedule.warmup_steps
  # Only the named switch differs between compared variants (same lr, steps, width).
  for a, b in (("deep_pre", "deep_post"), ("deep_pre", "deep_pre_no_residual"),
               ("sinusoidal", "none")):
    da, db = v[a].to_dict(), v[b].to_dict()
    assert da["optimizer"] == db["optimizer"] and da["num_train_steps"] == db["num_train_steps"]
  assert len(config.seeds) >= 3


def test_final_loss_treats_divergence_as_infinite():
  loss = np.array([[3.0, 2.0, 1.0, 1.0], [3.0, 2.0, np.nan, np.nan]])
  np.testing.assert_array_equal(lec13.final_loss(loss, 0.5), [1.0, np.inf])
  assert lec13._ratio(np.array([1.0, np.inf]), np.array([1.0, 1.0])) == np.inf  # pylint: disable=protected-access


def test_post_ln_with_and_without_warmup_share_one_population():
  """Variants that differ only in traced hyperparameters (warmup_steps) train as one
  population (one compile); every other switch is a compile of its own."""
  config = lec13_config.get_config("cpu")
  groups = lec13.program_groups(config)
  assert ["deep_post", "deep_post_warmup"] in groups
  assert sorted(n for g in groups for n in g) == sorted(config.variants)
  assert len(groups) == len(config.variants) - 1
  post, warm = (seq2seq.traced_defaults(lec13.variant_config(config, n))
                for n in ("deep_post", "deep_post_warmup"))
  assert post["warmup_steps"] == 0 and warm["warmup_steps"] == config.variants[
      "deep_post_warmup"].schedule.warmup_steps > 0
  assert {k: v for k, v in post.items() if k != "warmup_steps"} == {
      k: v for k, v in warm.items() if k != "warmup_steps"}


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec13_runs_end_to_end(tmp_path):
  config = lec13_config.get_config("smoke")
  for name in config.variants:   # one layer each: compile time (the runs are 10 steps)
    config.variants[name].model.num_layers = 1
  section = lec13.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec13.positions.needed_for_order", "lec13.residual.deep_needs_residual",
      "lec13.layer_norm.post_ln_needs_warmup"]
  # 10 smoke steps solve nothing: the positions claim FAILs honestly at this scale.
  assert section.verdicts[0].verdict == claims.FAIL
  numbers = dict(section.verdicts[1].numbers)
  assert numbers["final train loss, with residual"].n == len(config.seeds)
  assert 0.5 < numbers["final train loss, with residual"].mean < 5.0   # ~log(13) early on
  (table,) = section.tables
  assert len(table.rows) == 8   # deep_pre is in B and in C
  assert [r[1] for r in table.rows[:3]] == [lec13.LABEL[k] for k in
                                            ("sinusoidal", "learned", "none")]
  (fig,) = section.figures
  assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
