"""Lecture 5 (momentum): the population's arms against the lecture's rule, steps-to-target,
the experiment end to end."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import lec05_momentum as lec05_config
from leeml import claims, curve_fit, models, population
from leeml.lectures import lec05_momentum as lec05


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 3)).astype(np.float32)
  return x, (x[:, 0] > 0).astype(np.int32)


def _linear_program(batch_size=64):
  x, y = _data()
  model = ml_collections.ConfigDict(dict(name="mlp", depth=0, width=1, activation="relu",
                                         residual=False, norm="none"))
  opt = curve_fit.optimizer_config(name="lecture_momentum", learning_rate=0.5, momentum=0.9)
  return x, y, curve_fit.classifier_program(
      model, x, y, 2, loss="softmax_cross_entropy", optimizer_cfg=opt, num_steps=6,
      batch_size=batch_size, hparams={"learning_rate": 0.5, "momentum": 0.9})


def test_momentum_zero_member_is_full_batch_gd_and_momentum_member_is_the_lecture_rule():
  # batch = all examples: the mini-batch is a permutation, so a step is full-batch GD
  # (lambda = 0) or the lecture's momentum (lambda = 0.9), which a Python loop reproduces
  # from the member's own initial params (k_init of the seed).
  x, y, program = _linear_program()
  members = population.grid([0, 1], arm="sgd", momentum=[0.0]) + population.grid(
      [0], arm="momentum", momentum=[0.9])
  r = curve_fit.train_curves(program, members, num_steps=6, eval_every=3)
  assert r["train_loss"].shape == (3, 2) and r["batch_loss"].shape == (3, 6)
  np.testing.assert_array_equal(r["eval_steps"], [3, 6])
  model = models.get_model(ml_collections.ConfigDict(dict(
      name="mlp", depth=0, width=1, activation="relu", residual=False, norm="none")), 2)
  loss = lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      model.apply({"params": p}, x), y))
  for i, m in enumerate(members):
    k_init, _ = jax.random.split(jax.random.PRNGKey(m.seed))
    params = model.init(k_init, x[:1])["params"]
    move = jax.tree.map(jnp.zeros_like, params)
    expected, batch = [], []
    for t in range(6):
      batch.append(float(loss(params)))
      move = jax.tree.map(lambda v, g: m.hparams["momentum"] * v - 0.5 * g, move,
                          jax.grad(loss)(params))
      params = jax.tree.map(lambda a, v: a + v, params, move)
      if t % 3 == 2:
        expected.append(float(loss(params)))
    np.testing.assert_allclose(r["batch_loss"][i], batch, rtol=2e-5)
    np.testing.assert_allclose(r["train_loss"][i], expected, rtol=2e-5)
  assert r["train_loss"][0, -1] != r["train_loss"][1, -1]  # seeds: different inits
  assert r["train_loss"][2, -1] != r["train_loss"][0, -1]  # momentum moves differently
  with pytest.raises(ValueError, match="multiple of eval_every"):
    curve_fit.train_curves(program, members, num_steps=6, eval_every=4)


def test_network_arms_share_one_program_and_differ_only_in_momentum():
  config = lec05_config.get_config("smoke")
  members = lec05.network_members(config.network, config.seeds)
  assert [(m.arm, m.seed, m.hparams["momentum"]) for m in members] == [
      ("sgd", 0, 0.0), ("sgd", 1, 0.0), ("momentum", 0, 0.9), ("momentum", 1, 0.9)]
  assert {m.hparams["learning_rate"] for m in members} == {config.network.learning_rate}
  with pytest.raises(ValueError, match="not one of"):
    curve_fit.classifier_program(
        ml_collections.ConfigDict(dict(config.network.model)), *_data(), 2,
        loss="softmax_cross_entropy", optimizer_cfg=curve_fit.optimizer_config(), num_steps=2,
        batch_size=8, hparams={"lr": 0.1})


def test_steps_to_target():
  steps = np.array([0, 10, 20, 30])
  assert lec05.steps_to_target(steps, [2.0, 0.5, 0.2, 0.1], 0.3) == 20
  assert lec05.steps_to_target(steps, [2.0, np.nan, np.nan, np.nan], 0.3) == float("inf")


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec05_runs_end_to_end_and_judges_its_claims(tmp_path, quick_compiles):
  config = lec05_config.get_config("smoke")
  config.surface.start_w1 = (1.5, 1.8)
  config.surface.start_w2 = (0.0,)
  config.network.num_examples = 256
  config.network.num_steps = 40
  config.network.model.width = 16
  config.network.target_loss = 1.5
  section = lec05.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec05.surface.gd_stops_at_local_min", "lec05.surface.momentum_passes_local_min",
      "lec05.network.momentum_reaches_target_faster"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  # GD from both starts stops in the analytic local minimum (w1 ~ 0.96, L ~ 0.294);
  # momentum from w1 = 1.8 reaches the global minimum (pilot: 1.5 does not).
  gd = section.verdicts[0]
  assert gd.passed and gd.numbers["GD final loss"].mean == pytest.approx(0.2936, abs=1e-3)
  mom = section.verdicts[1]
  assert mom.numbers["share of starts where momentum ends in the global minimum"].mean == 0.5
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  assert len(section.tables[0].rows) == 2
