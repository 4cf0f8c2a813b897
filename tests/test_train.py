"""The training loop: artifacts, resume (also after kill -9), NaN stop, exact evaluation."""

import json
import os
import re
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from conftest import binary_env, run_train, tiny_config, train_cmd, REPO
from leeml import checkpoint, data, datasets, losses, models, optim, parallel, steps, train
from leeml.datasets import synthetic
from leeml.train_state import TrainState
from leeml.metric_writers import read_jsonl


def _ckpt_steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def _final_params(workdir, config):
  """The params of the latest checkpoint in `workdir`, restored on the host."""
  config = tiny_config() if config is None else config
  state = train.train_and_evaluate(config, workdir)  # resumes; no steps left to run
  return jax.tree.map(np.asarray, parallel.to_host(state.params)), int(state.step)


def test_run_writes_checkpoints_metrics_and_events(workdir):
  config = tiny_config()
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 60
  assert _ckpt_steps(workdir) == [20, 40, 60]  # every 20 steps, keep 3
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train_recs = [r for r in records if "train_loss" in r]
  assert [r["step"] for r in train_recs] == list(range(1, 61))
  for key in ("learning_rate", "grad_norm", "param_norm", "update_norm", "train_accuracy"):
    assert all(np.isfinite(r[key]) for r in train_recs), key
  assert train_recs[0]["learning_rate"] == pytest.approx(0.1)
  assert train_recs[-1]["train_loss"] < 0.6 * train_recs[0]["train_loss"]
  evals = [r for r in records if "eval_accuracy" in r]
  assert len(evals) == 1 and evals[0]["step"] == 60 and evals[0]["eval_accuracy"] > 0.6
  events = os.listdir(os.path.join(workdir, "tensorboard"))
  assert len(events) == 1 and events[0].startswith("events.out.tfevents")
  assert os.path.getsize(os.path.join(workdir, "tensorboard", events[0])) > 1000
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["model"]["width"] == 32


def test_extending_a_finished_run_matches_one_long_run(tmp_path):
  long_dir, split_dir = str(tmp_path / "long"), str(tmp_path / "split")
  long_state = train.train_and_evaluate(tiny_config(num_train_steps=50), long_dir)
  train.train_and_evaluate(tiny_config(num_train_steps=30), split_dir)
  split_state = train.train_and_evaluate(tiny_config(num_train_steps=50), split_dir)
  assert int(split_state.step) == 50
  for a, b in zip(jax.tree.leaves(long_state.params), jax.tree.leaves(split_state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The short run ended with a checkpoint at 30; the rerun logged 31..50 exactly once.
  steps_logged = [r["step"] for r in read_jsonl(os.path.join(split_dir, "metrics.jsonl"))
                  if "train_loss" in r]
  assert steps_logged == list(range(1, 51))


def test_kill_9_and_resume_gives_bit_identical_params(tmp_path):
  # Long enough (~5 s here) that the kill reliably lands mid-run; if it does not, the
  # assertion on `at_kill` fails rather than passing vacuously.
  flags = ("--config.num_train_steps=16000", "--config.checkpoint_every_steps=1000",
           "--config.log_every_steps=500", "--config.keep_checkpoints=2")
  whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
  run_train(whole, *flags)

  proc = subprocess.Popen(train_cmd(killed, *flags), env=binary_env(), cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while time.time() < deadline and not any(s >= 3000 for s in _ckpt_steps(killed)):
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  at_kill = _ckpt_steps(killed)
  assert at_kill and 3000 <= max(at_kill) < 16000, f"the run was not killed mid-way: {at_kill}"

  resumed = run_train(killed, *flags)
  assert re.search(r"resumed from step \d+", resumed.stderr)
  assert _ckpt_steps(killed)[-1] == 16000
  config = tiny_config(num_train_steps=16000, checkpoint_every_steps=1000, keep_checkpoints=2,
                       log_every_steps=500)
  p_whole, s_whole = _final_params(whole, config)
  p_killed, s_killed = _final_params(killed, config)
  assert s_whole == s_killed == 16000
  for a, b in zip(jax.tree.leaves(p_whole), jax.tree.leaves(p_killed)):
    assert a.dtype == b.dtype and np.array_equal(a, b)


def _blobs_with_a_nan(cfg, bad_example):
  ds = synthetic.gaussian_blobs(cfg)
  inputs = ds.train.inputs.copy()
  inputs[bad_example] = np.nan
  return data.Dataset("nan_blobs", data.ArraySplit(inputs, ds.train.targets), ds.test,
                      ds.num_classes)


def test_nan_stops_with_the_step_and_keeps_last_good_checkpoint(workdir, monkeypatch):
  config = tiny_config(num_train_steps=60, checkpoint_every_steps=10, log_every_steps=10)
  config.dataset.num_train = 2048  # one epoch is 64 steps: every batch holds unseen examples
  # Poison an example first read by step index 34, i.e. the 35th update ("step 35").
  first_seen = {}
  for s in range(60):
    for i in data.train_indices(s, config.batch_size, config.dataset.num_train, config.seed):
      first_seen.setdefault(int(i), s)
  bad = next(i for i, s in first_seen.items() if s == 34)
  blobs = datasets.get_spec("gaussian_blobs")
  monkeypatch.setitem(datasets.DATASETS, "nan_blobs", datasets.DatasetSpec(
      "nan_blobs", lambda cfg: _blobs_with_a_nan(cfg, bad),
      blobs.fields, "blobs with one NaN input"))
  config.dataset.name = "nan_blobs"

  with pytest.raises(train.NonFiniteError, match=r"NaN/inf at step 35;") as err:
    train.train_and_evaluate(config, workdir)
  assert "\n" not in str(err.value) and "step 30" in str(err.value)
  assert _ckpt_steps(workdir) == [10, 20, 30]  # nothing at or after the bad step
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  flagged = [r["step"] for r in records if r.get("nonfinite") == 1.0]
  assert flagged and flagged[0] == 35

  manager = checkpoint.make_manager(workdir, keep=3)
  clean = tiny_config()
  ds = datasets.get_dataset(clean.dataset)
  model = models.get_model(clean.model, ds.num_classes)
  tx = optim.make_optimizer(clean.optimizer, clean.schedule, clean.num_train_steps)
  template = TrainState.create(model.init(jax.random.PRNGKey(0), ds.train.inputs[:1]), tx)
  restored = checkpoint.restore(manager, template)
  assert int(restored.step) == 30 and int(restored.nonfinite_step) == -1
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(restored.params))


def test_evaluation_is_exact_over_padded_batches(workdir):
  config = tiny_config(eval_batch_size=64)
  config.dataset.num_test = 250  # 4 batches, the last one padded with 6 dummies
  state = train.train_and_evaluate(config, workdir)
  ds = datasets.get_dataset(config.dataset)
  model = models.get_model(config.model, ds.num_classes)
  logits = np.asarray(model.apply(state.variables(), ds.test.inputs))
  want_acc = np.mean(np.argmax(logits, -1) == ds.test.targets)
  want_loss = np.mean(np.asarray(losses.softmax_cross_entropy(logits, ds.test.targets)))
  mesh = parallel.make_mesh()
  eval_step = jax.jit(steps.make_eval_step(model, losses.get_loss("softmax_cross_entropy")))
  got = train.evaluate(eval_step, state, ds.test, config, mesh)
  assert got["eval_accuracy"] == pytest.approx(want_acc, abs=1e-7)
  assert got["eval_loss"] == pytest.approx(want_loss, rel=1e-5)


def test_device_and_host_pipelines_feed_the_same_batches(tmp_path):
  states = {}
  for kind in ("device", "host"):
    states[kind] = train.train_and_evaluate(tiny_config(input_pipeline=kind, num_train_steps=40),
                                            str(tmp_path / kind))
  # batch 32 over 512 examples: epochs turn over inside the run (and straddle no batch);
  # the same order on both paths means the same parameters.
  for a, b in zip(jax.tree.leaves(states["device"].params), jax.tree.leaves(states["host"].params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_device_indices_equal_host_indices_across_epoch_boundaries():
  for batch, n in ((32, 100), (7, 7), (128, 1797), (1, 5)):
    fn = jax.jit(lambda s, p, q, b=batch: data.device_train_indices(s, b, p, q))
    for s in (0, 1, 3, 13, 57, 1000):
      e = data.first_epoch(s, batch, n)
      got = fn(s, data.epoch_permutation(3, e, n), data.epoch_permutation(3, e + 1, n))
      np.testing.assert_array_equal(np.asarray(got), data.train_indices(s, batch, n, 3))
