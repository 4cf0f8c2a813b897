"""`train_and_evaluate(config, workdir)`: the one training loop every lecture runs through.

config -> validated -> data, model, optax chain -> TrainState replicated over the mesh ->
jitted, donated train step on data-sharded batches -> metrics (JSONL, TensorBoard, tqdm)
-> orbax checkpoints. Rerunning with the same workdir resumes from the latest checkpoint;
because the batch order and the step RNG are functions of (seed, step), a resumed run
replays exactly the steps an uninterrupted run would have taken.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm.auto import tqdm

from leeml import (checkpoint, config as config_lib, data, datasets, losses, models, optim,
                   parallel, pipeline, runtime, steps)
from leeml.metric_writers import MetricWriter
from leeml.train_state import TrainState


class NonFiniteError(FloatingPointError):
  """The loss or the gradients became NaN/inf; the message names the step."""


def _check_finite(state: TrainState, manager) -> None:
  bad = int(parallel.to_host(state.nonfinite_step))
  if bad >= 0:  # steps count updates from 1, as in metrics.jsonl and checkpoint names
    raise NonFiniteError(
        f"loss or gradients became NaN/inf at step {bad + 1}; stopping. Last good "
        f"checkpoint: step {manager.latest_step()} in {manager.directory}")


def evaluate(eval_step, state, split, config, mesh) -> dict:
  """Exact averages over a split (padded batches, weighted sums)."""
  totals: dict = {}
  for local in data.eval_batches(split, config.eval_batch_size, jax.process_index(),
                                 jax.process_count()):
    sums = parallel.to_host(eval_step(state, parallel.global_batch(local, mesh)))
    for k, v in sums.items():
      totals[k] = totals.get(k, 0.0) + float(v)
  out = {"eval_loss": totals["loss"] / totals["count"]}
  if "correct" in totals:
    out["eval_accuracy"] = totals["correct"] / totals["count"]
  return out


def _write_config(config, workdir: str) -> None:
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    if old != new:
      changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
      logging.warning("resuming %s with a changed config (sections: %s)", workdir, changed)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(new, f, indent=2)


def train_and_evaluate(config, workdir: str, *, mesh=None) -> TrainState:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the state."""
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  _write_config(config, workdir)
  mesh = parallel.make_mesh() if mesh is None else mesh
  replicated = parallel.replicated(mesh)

  dataset = datasets.get_dataset(config.dataset)
  classification = dataset.num_classes > 0
  model = models.get_model(config.model, num_outputs=dataset.num_classes or
                           int(np.prod(dataset.train.element_spec["targets"][0])))
  tx = optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps)
  loss_fn = losses.get_loss(config.loss.name)

  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  sample = jnp.zeros((1, *dataset.input_shape), dataset.train.element_spec["inputs"][1])
  init = jax.jit(lambda r: TrainState.create(model.init(r, sample, train=False), tx),
                 out_shardings=replicated)
  state = init(init_rng)
  train_rng = jax.device_put(train_rng, replicated)

  feeder = pipeline.choose(config.input_pipeline, dataset.train, config.batch_size,
                           config.seed, mesh)
  train_step = jax.jit(feeder.wrap(
      steps.make_train_step(model, tx, loss_fn, label_smoothing=config.loss.label_smoothing,
                            classification=classification)), donate_argnums=0,
      compiler_options=runtime.step_compiler_options())
  eval_step = jax.jit(steps.make_eval_step(model, loss_fn, classification=classification),
                      compiler_options=runtime.step_compiler_options())

  manager = checkpoint.make_manager(workdir, keep=config.keep_checkpoints)
  if manager.latest_step() is not None:
    state = checkpoint.restore(manager, state)
    logging.info("resumed from step %d in %s", manager.latest_step(), workdir)
  logging.info("input pipeline: %s", feeder.name)
  start = int(parallel.to_host(state.step))

  writer = MetricWriter(workdir)
  pending: list[tuple[int, dict]] = []
  bar = tqdm(total=config.num_train_steps, initial=start, desc="train", unit="step",
             disable=not config.progress_bar or jax.process_index() != 0, dynamic_ncols=True)
  t0, s0 = time.perf_counter(), start

  def flush(step):
    nonlocal t0, s0
    host = parallel.to_host(pending)
    for s, m in host:
      writer.write(s, m, tensorboard=False)
    if pending:
      means = {k: np.mean([m[k] for _, m in host]) for k in host[-1][1]}
      writer.write(step, means, jsonl=False)
      now = time.perf_counter()
      last = pending[-1][1]
      rate = (step - s0) / max(now - t0, 1e-9)
      bar.set_postfix(loss=f"{float(last['train_loss']):.4g}", steps_per_s=f"{rate:.1f}")
      t0, s0 = now, step
    pending.clear()
    writer.flush()

  try:
    for step in range(start, config.num_train_steps):
      state, metrics = train_step(state, feeder.feed(step), train_rng)
      done = step + 1
      pending.append((done, metrics))
      bar.update(1)
      last = done == config.num_train_steps
      if done % config.log_every_steps == 0 or last:
        flush(done)
        _check_finite(state, manager)
      if config.eval_every_steps and done % config.eval_every_steps == 0 or last:
        metrics = evaluate(eval_step, state, dataset.test, config, mesh)
        if config.eval_on_train:  # eval-mode loss/accuracy over the whole training split
          on_train = evaluate(eval_step, state, dataset.train, config, mesh)
          metrics.update({k.replace("eval_", "eval_train_"): v for k, v in on_train.items()})
        writer.write(done, metrics)
      if done % config.checkpoint_every_steps == 0 or last:
        _check_finite(state, manager)  # never put a NaN on disk
        checkpoint.save(manager, done, state)
  finally:
    if pending:  # e.g. metrics of the steps before an error
      flush(pending[-1][0])
    bar.close()
    manager.wait_until_finished()
    writer.close()
  return state

