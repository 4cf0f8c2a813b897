"""Lecture 9: MAC counts, the invariance sweep and the 1-D CNN against hand-computed
values; the experiment end to end at a reduced smoke config."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import lec09_cnn as lec09_config
from leeml import claims
from leeml.lectures import lec09_cnn as lec09
from leeml.models import CNN, MLP


def test_forward_macs_hand_counted():
  cfg = dict(channels=(16, 32), kernel_size=3, pool="max", dense_width=0)
  # conv 16x16x(9*1*16) + conv 8x8x(9*16*32) + head (4*4*32)*10
  assert lec09.forward_macs(cfg, (16, 16, 1)) == 16 * 16 * 144 + 64 * 4608 + 512 * 10
  # without pooling the second conv runs at 16x16 and the head reads 16*16*32 values
  cfg["pool"] = "none"
  assert lec09.forward_macs(cfg, (16, 16, 1)) == 16 * 16 * 144 + 256 * 4608 + 8192 * 10
  cfg.update(dense_width=64, strides=2, padding="VALID")  # 16 -> 7 -> 3
  assert lec09.forward_macs(cfg, (16, 16, 1)) == (49 * 144 + 9 * 4608 + 9 * 32 * 64
                                                   + 64 * 10)


def test_cnn1d_has_the_paper_cnn_shape():
  model = lec09.CNN1D(num_outputs=10)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 40)))["params"]
  # 40 -> 19 -> 10 -> 5 positions (k 5/3/3, stride 2, padding 1): 25 * 5 = 125 features.
  assert params["head"]["kernel"].shape == (125, 10)
  assert lec09.num_params(params) == (5 * 25 + 25) + 2 * (3 * 25 * 25 + 25) + 1260


def test_sweep_accuracy_matches_rot90_and_identity():
  # A random CNN; the sweep's 0° / x1 points are the untransformed images, and ±90°
  # are exact quarter turns (np.rot90, the warp's documented convention).
  x = jax.random.uniform(jax.random.PRNGKey(0), (40, 8, 8, 1))
  model = CNN(num_outputs=10, channels=(4,), dense_width=0)
  params = model.init(jax.random.PRNGKey(1), x)["params"]
  apply = jax.jit(lambda p, v: model.apply({"params": p}, v))
  y = jnp.argmax(apply(params, x), -1)  # labels the model gets right on the raw images
  y = y.at[:10].set((y[:10] + 1) % 10)  # ... except the first 10
  acc = lambda v: float(np.mean(np.asarray(jnp.argmax(apply(params, v), -1) == y)))
  s = lec09.sweep_accuracy(model, params, x, y, (0, 90), (1.0,))
  assert acc(x) == 0.75
  assert s["rotation"][0] == s["scale"][0] == 0.75
  quarter = [acc(jnp.asarray(np.rot90(np.asarray(x), k, axes=(1, 2)).copy())) for k in (1, -1)]
  assert s["rotation"][1] == pytest.approx(np.mean(quarter), abs=1e-12)


def _blobs(n=200, shape=(10,)):
  rng = np.random.default_rng(0)
  y = rng.integers(0, 10, n).astype(np.int32)
  x = np.eye(10, dtype=np.float32)[y] * 4 + rng.normal(size=(n, 10)).astype(np.float32)
  x = np.pad(x, ((0, 0), (0, int(np.prod(shape)) - 10))).reshape(n, *shape)
  return x[:150], y[:150], x[150:], y[150:]


_TCFG = ml_collections.ConfigDict(dict(steps=40, batch_size=32, learning_rate=0.05))
_BLOBS = _blobs(shape=(4, 4, 1))  # 10 informative pixels of 16 (the MLP flattens)


def test_train_arm_member_equals_its_single_run_and_learns():
  # One population of two seeds == each seed trained alone (the engine's promise, on
  # this lecture's program), timed or not; and the logistic model learns the blobs.
  logistic_program = lec09.classifier_program(MLP(num_outputs=10, depth=0), _BLOBS, _TCFG,
                                              family="mlp")
  both = lec09.train_arm(logistic_program, (3, 4), _TCFG, eval_every=20)
  alone = lec09.train_arm(logistic_program, (4,), _TCFG, eval_every=20, timed=True)[0]
  assert [r["seed"] for r in both] == [3, 4] and both[0]["history"] != both[1]["history"]
  assert both[1]["history"] == alone["history"] and len(alone["history"]) == 2
  assert [h["step"] for h in alone["history"]] == [20, 40]
  jax.tree.map(np.testing.assert_array_equal, both[1]["params"], alone["params"])
  assert alone["test_accuracy"] > 0.7 and alone["train_accuracy"] > 0.7  # chance: 0.1
  assert alone["num_params"] == 16 * 10 + 10 and alone["nonfinite_step"] is None
  assert alone["seconds_per_step"] > 0 and np.isnan(both[0]["seconds_per_step"])


def _reduced_config():
  c = lec09_config.get_config("smoke")
  c.seeds = (0,)
  c.digits.steps, c.digits.eval_every = 20, 10
  c.mnist1d.steps = 20
  c.pooling.setups = ((16, (16, 32)),)
  c.rf.cnn_archs = {"default": c.rf.cnn_archs.default_3x3_maxpool.to_dict()}
  c.rf.layer_archs = {"dilated": c.rf.layer_archs.dilated}
  return c


# ~25 s of CPU time (about ten small models compile), more than this file's 30 s budget
# shares with the rest: run with `pytest -m slow`.
@pytest.mark.slow
def test_lec09_runs_end_to_end_and_judges_its_claims(tmp_path, quick_compiles):
  del quick_compiles
  config = _reduced_config()
  section = lec09.run(config, str(tmp_path))
  ids = [v.claim.id for v in section.verdicts]
  assert ids == [
      "lec09.receptive_field.analytic_equals_empirical", "lec09.sharing.fewer_parameters",
      "lec09.sharing.cnn_best_test", "lec09.sharing.mlp_fits_train_but_tests_worse",
      "lec09.mnist1d.logistic_mlp_cnn_order", "lec09.mnist1d.shuffled_cnn_below_mlp",
      "lec09.pooling.cuts_computation", "lec09.pooling.little_accuracy_loss",
      "lec09.invariance.rotation_hurts", "lec09.invariance.scaling_hurts",
      "lec09.invariance.augmentation_recovers"]
  by_id = {v.claim.id: v for v in section.verdicts}
  # Exact, config-independent claims pass even at this size.
  assert by_id["lec09.receptive_field.analytic_equals_empirical"].verdict == claims.PASS
  assert by_id["lec09.sharing.fewer_parameters"].verdict == claims.PASS
  macs = by_id["lec09.pooling.cuts_computation"].numbers["MACs no pool / max pool"]
  assert macs.mean == (16 * 16 * 144 + 256 * 4608 + 8192 * 10) / (16 * 16 * 144 + 64 * 4608
                                                                   + 512 * 10)
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  # The augmented arm trains on warped minibatches: the same CNN and seed, other numbers.
  aug = by_id["lec09.invariance.augmentation_recovers"].numbers
  assert (aug["plain CNN, untransformed test accuracy"].mean
          != aug["augmented CNN, untransformed test accuracy"].mean)
  assert all(v.numbers for v in section.verdicts), [v.detail for v in section.verdicts]
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 5_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  tables = {t.title.split(":")[0].split(" (")[0]: t for t in section.tables}
  sharing = next(t for t in section.tables if t.title.startswith("Parameter sharing"))
  assert [r[:2] for r in sharing.rows] == [("cnn", "9,930"), ("locally_connected", "343,050"),
                                           ("mlp", "134,154")]
  assert len(tables) == 5
