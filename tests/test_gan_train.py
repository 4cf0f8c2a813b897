"""The GAN loop: resume replays bit for bit, the seed decides the run, a NaN stops the run
without reaching a checkpoint, and 8 devices give the 1-device parameters."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, binary_env
from leeml import checkpoint, config as config_lib
from leeml.gan import mixtures, models
from leeml.gan.train import gan_config, make_gan_optimizers, train_gan
from leeml.metric_writers import read_jsonl
from leeml.train import NonFiniteError

BATCH = 16


def tiny_gan_config(**overrides):
  c = gan_config()
  c.num_steps, c.critic_steps, c.latent_dim = 4, 2, 3
  c.g_optimizer.learning_rate = c.d_optimizer.learning_rate = 1e-3
  c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 1, 2, 2
  c.progress_bar = False
  for k, v in overrides.items():
    c[k] = v
  return c


def _parts(config, *, nan_from_step=None, weight_param="standard"):
  g = models.MLPGenerator(out_dim=2, depth=1, width=8)
  d = models.MLPCritic(depth=1, width=8, weight_param=weight_param)
  centers, std = mixtures.mixture("ring8")

  def real_batch(step):
    rng = np.random.default_rng([config.seed, step])
    idx = rng.integers(0, len(centers), (config.critic_steps, BATCH))
    x = (centers[idx] + std * rng.standard_normal(idx.shape + (2,))).astype(np.float32)
    if nan_from_step is not None and step >= nan_from_step:
      x[0, 0, 0] = np.nan
    return x

  def evaluate(state, step):
    return {"eval_g_sum": float(sum(np.sum(x) for x in jax.tree.leaves(state.g_params))),
            "eval_step": step}

  return dict(generator=g, critic=d, real_batch=real_batch, init_sample=real_batch(0)[0],
              evaluate=evaluate)


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_config_fields_and_optimizers():
  c = tiny_gan_config()
  g_tx, d_tx = make_gan_optimizers(c)
  params = {"w": np.ones(3, np.float32)}
  s = g_tx.init(params)
  assert float(s.hyperparams["learning_rate"]) == pytest.approx(1e-3)
  # One Adam step moves every coordinate by lr (bias-corrected m / sqrt(v) = sign(g)).
  updates, _ = d_tx.update({"w": np.array([2.0, -3.0, 0.5], np.float32)}, d_tx.init(params))
  np.testing.assert_allclose(updates["w"], [-1e-3, 1e-3, -1e-3], rtol=1e-4)
  # Linear decay to half the rate; the critic's spans num_steps · critic_steps = 8 updates.
  c.d_optimizer.end_learning_rate_factor = 0.5
  _, d_tx = make_gan_optimizers(c)
  s, grad, sizes = d_tx.init(params), {"w": np.full(3, 0.3, np.float32)}, []
  for _ in range(8):
    updates, s = d_tx.update(grad, s)
    sizes.append(float(-updates["w"][0]))  # Adam on a constant gradient steps by lr
  np.testing.assert_allclose(sizes, 1e-3 * (1 - 0.5 * np.arange(8) / 8), rtol=1e-4)
  bad = tiny_gan_config(loss="nonsaturating")
  with pytest.raises(config_lib.ConfigError, match="config.loss='nonsaturating'"):
    train_gan(bad, None, **_parts(bad))
  bad = tiny_gan_config()
  bad.d_optimizer.lr = 1.0
  with pytest.raises(config_lib.ConfigError, match="d_optimizer.lr"):
    train_gan(bad, None, **_parts(bad))


def test_resume_replays_bit_for_bit_and_the_seed_decides(tmp_path, quick_compiles):
  config = tiny_gan_config(loss="hinge")
  parts = _parts(config, weight_param="spectral_norm")  # the critic's batch_stats resume too
  full, full_history = train_gan(config, str(tmp_path / "full"), **parts)

  half = tiny_gan_config(loss="hinge", num_steps=2)
  train_gan(half, str(tmp_path / "split"), **parts)
  assert sorted(os.listdir(tmp_path / "split" / "checkpoints")) == ["2"]
  resumed, history = train_gan(config, str(tmp_path / "split"), **parts)

  assert int(resumed.step) == int(full.step) == 4
  for a, b in zip(_leaves(full), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  # The history (the first half read back from metrics.jsonl) equals the one-go history.
  assert history == full_history
  assert [r["step"] for r in history if "eval_g_sum" in r] == [2, 4]
  assert [r["step"] for r in history if "train_d_loss" in r] == [1, 2, 3, 4]
  assert history[-1]["eval_g_sum"] == pytest.approx(
      sum(float(np.sum(x)) for x in jax.tree.leaves(full.g_params)))
  assert read_jsonl(str(tmp_path / "split" / "metrics.jsonl")) == history
  with open(tmp_path / "full" / "config.json", encoding="utf-8") as f:
    assert json.load(f)["loss"] == "hinge"
  # Same seed, same run (above, even through a resume); another seed, another run.
  other = tiny_gan_config(loss="hinge", seed=1)
  other_state, _ = train_gan(other, None, **parts)
  for a, b in zip(_leaves(full.g_params), _leaves(other_state.g_params), strict=True):
    assert not np.allclose(a, b)


def test_a_nan_stops_the_run_and_never_reaches_a_checkpoint(tmp_path, quick_compiles):
  config = tiny_gan_config(num_steps=6, log_every_steps=3)
  workdir = str(tmp_path / "nan")
  with pytest.raises(NonFiniteError, match="at step 4;.*Last good checkpoint: step 2"):
    train_gan(config, workdir, **_parts(config, nan_from_step=3))
  manager = checkpoint.make_manager(workdir, keep=3)
  assert manager.all_steps() == [2]
  state, _ = train_gan(tiny_gan_config(num_steps=2), None, **_parts(config))
  restored = checkpoint.restore(manager, state)
  assert int(restored.step) == 2 and int(restored.nonfinite_step) == -1
  assert all(np.all(np.isfinite(x)) for x in _leaves(restored))
  for a, b in zip(_leaves(state), _leaves(restored), strict=True):
    np.testing.assert_array_equal(a, b)  # the checkpoint is the clean run's step 2
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in records if "train_nonfinite" in r] == [3, 4]
  assert records[-1]["train_nonfinite"] == pytest.approx(1 / 1)  # step 4 alone, flushed


# Runs in a fresh interpreter: the forced host device count must be set before jax starts.
_EIGHT_VS_ONE = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, "tests")
jax.config.update("jax_disable_most_optimizations", True)
from test_gan_train import _parts, tiny_gan_config
from leeml import parallel
from leeml.gan.train import train_gan
assert jax.device_count() == 8, jax.devices()
out = {}
for loss, wp in (("wgan_gp", "spectral_norm"),):  # the penalty and the SN statistics
  config = tiny_gan_config(loss=loss, num_steps=5)
  for n in (8, 1):
    state, history = train_gan(config, None, mesh=parallel.make_mesh(jax.devices()[:n]),
                               **_parts(config, weight_param=wp))
    out[f"{loss}_{n}"] = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(
        (state.g_params, state.d_params, state.d_stats))]
    out[f"{loss}_{n}_devices"] = len(state.g_params["head"]["kernel"].sharding.device_set)
print("RESULT" + json.dumps(out))
"""


def test_eight_devices_give_the_one_device_params(tmp_path):
  proc = subprocess.run([sys.executable, "-c", _EIGHT_VS_ONE], cwd=REPO,
                        env=binary_env(device_count=8), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT")[-1])
  for loss in ("wgan_gp",):
    assert out[f"{loss}_8_devices"] == 8 and out[f"{loss}_1_devices"] == 1
    eight, one = out[f"{loss}_8"], out[f"{loss}_1"]
    assert len(eight) == len(one) > 4
    for a, b in zip(eight, one):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=loss)
