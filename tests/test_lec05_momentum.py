"""Lecture 5 (momentum): the shared network loop, steps-to-target, the experiment end to end."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import lec05_momentum as lec05_config
from leeml import claims
from leeml.lectures import lec05_momentum as lec05



class Linear(nn.Module):
  num_outputs: int = 2

  @nn.compact
  def __call__(self, x, *, train=False):
    return nn.Dense(self.num_outputs, kernel_init=nn.initializers.zeros)(x)


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 3)).astype(np.float32)
  return x, (x[:, 0] > 0).astype(np.int32)


def test_network_curves_full_batch_sgd_matches_a_hand_loop():
  # batch = all examples: the mini-batch is a permutation, so the step equals full-batch
  # GD, which a plain Python loop reproduces.
  x, y = _data()
  model = Linear()
  r = lec05.network_curves(model, optax.sgd(0.5), x, y, "softmax_cross_entropy", (0, 1), 6,
                           64, 3)
  assert r["train_loss"].shape == (2, 3) and r["batch_loss"].shape == (2, 6)
  params = {"Dense_0": {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)}}
  loss = lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      model.apply({"params": p}, x), y))
  expected = [float(loss(params))]
  for t in range(6):
    params = jax.tree.map(lambda a, g: a - 0.5 * g, params, jax.grad(loss)(params))
    if t % 3 == 2:
      expected.append(float(loss(params)))
  np.testing.assert_allclose(r["train_loss"][0], expected, rtol=1e-5)
  np.testing.assert_allclose(r["train_loss"][1], expected, rtol=1e-5)  # zero init: seeds agree
  assert r["train_loss"][0, 0] == pytest.approx(np.log(2), rel=1e-6)


def test_steps_to_target_and_optimizer_fields():
  steps = np.array([0, 10, 20, 30])
  assert lec05.steps_to_target(steps, [2.0, 0.5, 0.2, 0.1], 0.3) == 20
  assert lec05.steps_to_target(steps, [2.0, np.nan, np.nan, np.nan], 0.3) == float("inf")
  tx = lec05.optimizer(dict(name="adam", learning_rate=1.0, schedule_warmup_steps=4), 10)
  params = jnp.zeros(1)
  state = tx.init(params)
  moves = []
  for _ in range(5):
    upd, state = tx.update(jnp.ones(1), state, params)
    moves.append(float(-upd[0]))
  # Adam's step is lr * sign(g) for a constant gradient; lr warms up 0, 1/4, ..., 1.
  np.testing.assert_allclose(moves, [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-5)
  with pytest.raises(ValueError, match="unknown optimizer field"):
    lec05.optimizer(dict(name="sgd", lr=0.1), 10)


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
