"""Lectures 10-11: self-attention vs RNN — step counting, timing helpers, end to end."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lec11_rnn_vs_attention as lec11_config
from leeml import claims
from leeml.datasets import sequence_tasks
from leeml.lectures import lec11_rnn_vs_attention as lec11
from leeml.models import sequence


pytestmark = pytest.mark.usefixtures("quick_compiles")


def test_loop_iterations_add_in_sequence_and_multiply_when_nested():
  def f(x):
    def inner(c, _):
      return c * 2.0, None
    def outer(c, _):
      return jax.lax.scan(inner, c, None, length=3)[0], None
    y = jax.lax.scan(outer, x, None, length=4)[0]            # 4 × 3
    return jax.lax.scan(lambda c, _: (c + 1.0, None), y, None, length=5)[0]   # + 5
  assert lec11.loop_iterations(jax.make_jaxpr(f)(1.0).jaxpr) == 17
  assert lec11.loop_iterations(jax.make_jaxpr(jnp.sin)(1.0).jaxpr) == 0


@pytest.mark.parametrize("length", [5, 12])
def test_sequential_steps_rnn_is_length_attention_is_one(length):
  for kind in sequence.KINDS:
    m = sequence.make(kind, 8, num_outputs=4, vocab_size=9, num_heads=2)
    want = 1 if kind == "attention" else length
    assert lec11.sequential_steps(m, length) == want, kind


def test_loglog_slope_and_crossover():
  ls = [16, 64, 256, 1024]
  assert lec11.loglog_slope(ls, [3.0 * L ** 2 for L in ls], 64) == pytest.approx(2.0)
  assert lec11.loglog_slope(ls, [7.0 * L for L in ls], 16) == pytest.approx(1.0)
  t = {"attention": {L: {"ms": v} for L, v in zip(ls, [1, 2, 50, 900])},
       "lstm": {L: {"ms": v} for L, v in zip(ls, [3, 10, 40, 160])}}
  assert lec11.crossover(t, "lstm", ls) == ("attention is faster at L=16; LSTM overtakes "
                                            "at L=256")


def test_models_and_parameters_are_built_once_unless_positions_are_learned():
  cfg = lec11_config.get_config("smoke")
  assert [lec11.model_length(cfg, L) for L in (8, 32)] == [16, 16]
  for kind in sequence.KINDS:   # sinusoidal positions: the parameters do not depend on L
    m = sequence.make(kind, 8, num_outputs=4, vocab_size=9, num_heads=2)
    assert sequence.count_params(m, 8) == sequence.count_params(m, 64), kind
  cfg.attention.positions = "learned"
  assert [lec11.model_length(cfg, L) for L in (8, 32)] == [8, 32]


def test_distance_trains_last_query_attention_and_times_the_whole_layer():
  # Part B trains attention with its last layer at the last position only (the same
  # parameters and logits: tests/test_sequence_models.py); parts A and C keep the model.
  cfg = lec11_config.get_config("smoke")
  models = lec11.build_models(cfg, 16)
  assert cfg.distance.last_query and not models["attention"].model.last_query
  assert lec11.distance_model(cfg, models["attention"].model).last_query
  assert lec11.distance_model(cfg, models["gru"].model) is models["gru"].model
  cfg.distance.last_query = False
  assert lec11.distance_model(cfg, models["attention"].model) is models["attention"].model


def test_fwd_bwd_measures_the_same_program_with_shared_parameters():
  # The timing table reuses one init per kind for every L: the compiled program (its
  # temporary memory) depends on the parameters' shapes only.
  cfg = lec11_config.get_config("smoke")
  model = sequence.make("attention", 8, num_outputs=cfg.task.num_values,
                        vocab_size=sequence_tasks.recall_vocab_size(
                            cfg.task.num_values, cfg.task.num_distractors),
                        num_heads=2)
  fresh = lec11.time_fwd_bwd(model, 4, 8, cfg.task, warmup=0, repeats=1)
  shared = lec11.time_fwd_bwd(model, 4, 8, cfg.task, warmup=0, repeats=1,
                              params=lec11.init_params(model, 32, seed=3))
  assert shared["temp_bytes"] == fresh["temp_bytes"] > 0


@pytest.mark.slow  # ~15 CPU-s (two GRU programs); tests/test_lec10's member test covers the
def test_population_member_equals_a_single_run():  # same column mechanism in the default run
  # The seeds train as members of one population, each on its own data: seed 1's member
  # of a (0, 1) population (vmapped) computes what a population of seed 1 alone computes.
  cfg = lec11_config.get_config("smoke")
  cfg.train.num_steps = 5
  model = lec11.build_models(cfg, 8)["gru"].model
  both = lec11.recall_population(model, cfg.train, cfg.task, 8, (0, 1))
  one = lec11.recall_population(model, cfg.train, cfg.task, 8, (1,))
  assert both["loss"].shape == (2, 5)
  np.testing.assert_allclose(both["loss"][1], one["loss"][0], rtol=1e-5)
  assert both["accuracy"][1] == one["accuracy"][0]
  assert not np.allclose(both["loss"][0], both["loss"][1])   # seeds differ
  # Test accuracy over each seed's own 64 test sequences: a multiple of 1/64.
  assert np.allclose(both["accuracy"] * 64, np.round(both["accuracy"] * 64))


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec11_runs_end_to_end(tmp_path):
  config = lec11_config.get_config("smoke")
  config.seeds = (0, 1, 2)
  config.kinds = ("simple", "attention")   # the two the claims name; keeps compiles few
  config.distance.lengths = (8,)
  config.train.num_steps = 10
  config.timing.lengths = (8, 16)
  config.timing.warmup = config.timing.repeats = 1
  config.cost.lengths = (8, 16)          # reuses the timing table's compiles
  section = lec11.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec11.parallel.sequential_steps", "lec11.distance.attention_recalls_far",
      "lec11.distance.simple_rnn_falls_to_chance", "lec11.cost.attention_quadratic"]
  assert section.verdicts[0].verdict == claims.PASS
  dist, timing, cost = section.tables
  # Parameter counts are matched: within 10% of the target, equal to a fresh count.
  for row in dist.rows:
    n = int(row[2].replace(",", ""))
    assert abs(n - config.target_params) <= 0.1 * config.target_params
  assert [r[0] for r in timing.rows] == ["8", "16"]
  assert [r[3:] for r in timing.rows] == [("8", "1"), ("16", "1")]
  # Attention's compiled temporary memory grows with L, faster than the RNNs' (their
  # activations are O(L·d); attention adds the O(L²) weights).
  mib = [float(r[2]) for r in cost.rows]
  assert mib[1] > 1.5 * mib[0] > 0
  assert dict(section.verdicts[3].numbers)["log-log slope of compiled temp memory"].mean > 1.0
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
