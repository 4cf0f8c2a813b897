"""The GAN trainer: its config and optimizers, and its history through a resume; the seed
decides the run; the population form's member == the train_gan run of its seed. Resume after kill -9, the NaN stop and 8 devices == 1 are
tests/test_trainers.py's, for every trainer."""

import json
import os

import jax
import numpy as np
import pytest

from leeml import config as config_lib, data, population
from leeml.gan import mixtures, models
from leeml.gan.train import gan_config, make_gan_optimizers, real_batch_of, train_gan
from leeml.gan.train import program as gan_program
from leeml.metric_writers import read_jsonl

BATCH = 16


def tiny_gan_config(**overrides):
  c = gan_config()
  c.num_train_steps, c.critic_steps, c.latent_dim = 4, 2, 3
  c.g_optimizer.learning_rate = c.d_optimizer.learning_rate = 1e-3
  c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 1, 2, 2
  c.progress_bar = False
  for k, v in overrides.items():
    c[k] = v
  return c


def gan_parts(config, *, nan_from_step=None, weight_param="standard"):
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
  # Linear decay to half the rate; the critic's spans num_train_steps · critic_steps = 8 updates.
  c.d_optimizer.end_learning_rate_factor = 0.5
  _, d_tx = make_gan_optimizers(c)
  s, grad, sizes = d_tx.init(params), {"w": np.full(3, 0.3, np.float32)}, []
  for _ in range(8):
    updates, s = d_tx.update(grad, s)
    sizes.append(float(-updates["w"][0]))  # Adam on a constant gradient steps by lr
  np.testing.assert_allclose(sizes, 1e-3 * (1 - 0.5 * np.arange(8) / 8), rtol=1e-4)
  bad = tiny_gan_config(loss="nonsaturating")
  with pytest.raises(config_lib.ConfigError, match="config.loss='nonsaturating'"):
    train_gan(bad, None, **gan_parts(bad))
  bad = tiny_gan_config()
  bad.d_optimizer.lr = 1.0
  with pytest.raises(config_lib.ConfigError, match="d_optimizer.lr"):
    train_gan(bad, None, **gan_parts(bad))
  for section, key in (("", "num_train_steps"), ("", "gp_weight"), ("g_optimizer.", "b2")):
    bad = tiny_gan_config()
    del (bad[section[:-1]] if section else bad)[key]
    with pytest.raises(config_lib.ConfigError, match=rf"^config\.{section}{key} is missing"):
      train_gan(bad, None, **gan_parts(tiny_gan_config()))


@pytest.mark.slow  # ~19 s
def test_history_reads_back_through_a_resume_and_the_seed_decides(tmp_path, quick_compiles):
  config = tiny_gan_config(loss="hinge")
  parts = gan_parts(config, weight_param="spectral_norm")  # the critic's batch_stats resume too
  full, full_history = train_gan(config, str(tmp_path / "full"), **parts)

  half = tiny_gan_config(loss="hinge", num_train_steps=2)
  train_gan(half, str(tmp_path / "split"), **parts)
  assert sorted(os.listdir(tmp_path / "split" / "checkpoints")) == ["2"]
  resumed, history = train_gan(config, str(tmp_path / "split"), **parts)

  assert int(resumed.step) == int(full.step) == 4
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


def test_program_member_is_the_train_gan_run_of_its_seed(quick_compiles):
  # The population form (leeml.gan.train.program) computes, for member `seed`, what
  # train_gan computes with config.seed = seed on the same rows of the same split.
  config = tiny_gan_config(num_train_steps=3, seed=1)
  parts = gan_parts(config)
  centers, std = mixtures.mixture("ring8")
  rng = np.random.default_rng(0)
  x = (centers[rng.integers(0, 8, 40)] + std * rng.standard_normal((40, 2))).astype(np.float32)
  split = data.ArraySplit(x, np.zeros(40, np.int32))
  program = gan_program(config, generator=parts["generator"], critic=parts["critic"],
                        train=split, batch_size=BATCH)
  assert program.batch_size == config.critic_steps * BATCH
  result = population.run(program, population.grid([0, 1]), num_steps=3, progress=False)
  real_batch = real_batch_of(split, config, BATCH, seed=1)
  state, _ = train_gan(config, None, generator=parts["generator"], critic=parts["critic"],
                       real_batch=real_batch, init_sample=real_batch(0)[0])
  assert int(result.states[1].step) == int(state.step) == 3
  for a, b in zip(_leaves(result.states[1]), _leaves(state), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # Members differ by seed; the program's config is validated like train_gan's.
  assert not np.allclose(_leaves(result.states[0].g_params)[0], _leaves(state.g_params)[0])
  with pytest.raises(config_lib.ConfigError, match="exceeds the 40 training examples"):
    gan_program(config, generator=parts["generator"], critic=parts["critic"], train=split,
                batch_size=32)
