"""The classification trainer: artifacts, extending a run, exact evaluation, input pipelines.

Resume after kill -9, the NaN stop and 8 devices == 1 are tests/test_trainers.py's, for every
trainer."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from leeml import data, datasets, losses, models, parallel, steps, train
from leeml.metric_writers import read_jsonl


def _ckpt_steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def test_run_writes_checkpoints_metrics_and_events(workdir):
  config = tiny_config()
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 60
  assert _ckpt_steps(workdir) == [20, 40, 60]  # every 20 steps, keep 3
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train_recs = [r for r in records if "train_loss" in r]
  assert [r["step"] for r in train_recs] == list(range(1, 61))
  for key in ("learning_rate", "train_accuracy", "nonfinite"):
    assert all(np.isfinite(r[key]) for r in train_recs), key
  # The norms are in the records of the log steps (every 10), and only there once the
  # step computes them only on log steps (steps.DIAGNOSTIC_METRICS).
  for key in ("grad_norm", "param_norm", "update_norm"):
    assert all(np.isfinite(r[key]) and r[key] > 0 for r in train_recs if r["step"] % 10 == 0)
    if key in getattr(steps, "DIAGNOSTIC_METRICS", ()):
      assert not any(key in r for r in train_recs if r["step"] % 10), key
  assert train_recs[0]["learning_rate"] == pytest.approx(0.1)
  assert train_recs[-1]["train_loss"] < 0.6 * train_recs[0]["train_loss"]
  evals = [r for r in records if "eval_accuracy" in r]
  assert len(evals) == 1 and evals[0]["step"] == 60 and evals[0]["eval_accuracy"] > 0.6
  events = os.listdir(os.path.join(workdir, "tensorboard"))
  assert len(events) == 1 and events[0].startswith("events.out.tfevents")
  assert os.path.getsize(os.path.join(workdir, "tensorboard", events[0])) > 1000
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["model"]["width"] == 32


@pytest.mark.slow  # ~23 s
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
