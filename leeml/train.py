"""`train_and_evaluate(config, workdir)`: classification and regression through the one loop.

config -> validated -> data, model, optax chain -> TrainState replicated over the mesh ->
jitted, donated train step on data-sharded batches -> `leeml.loop.run_loop` (metrics to
JSONL, TensorBoard and tqdm; evaluation; orbax checkpoints; NaN/inf stop). Rerunning with
the same workdir resumes from the latest checkpoint; because the batch order and the step
RNG are functions of (seed, step), a resumed run replays exactly the steps an
uninterrupted run would have taken.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from leeml import (config as config_lib, data, datasets, loop, losses, models, optim, parallel,
                   pipeline, runtime, steps)
from leeml.train_state import TrainState

# The loop's error, re-exported: callers catch `train.NonFiniteError`.
NonFiniteError = loop.NonFiniteError


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


def train_and_evaluate(config, workdir: str, *, mesh=None) -> TrainState:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the state."""
  config_lib.validate(config)
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
                 out_shardings=replicated, compiler_options=runtime.once_compiler_options())
  state = init(init_rng)
  train_rng = jax.device_put(train_rng, replicated)

  feeder = pipeline.choose(config.input_pipeline, dataset.train, config.batch_size,
                           config.seed, mesh)
  train_step = jax.jit(feeder.wrap(
      steps.make_train_step(model, tx, loss_fn, label_smoothing=config.loss.label_smoothing,
                            classification=classification,
                            # the norms only on the loop's log steps, where they are written
                            diagnostics_every=config.log_every_steps,
                            num_train_steps=config.num_train_steps)), donate_argnums=0,
      compiler_options=runtime.step_compiler_options())
  eval_step = jax.jit(steps.make_eval_step(model, loss_fn, classification=classification),
                      compiler_options=runtime.step_compiler_options())

  logging.info("input pipeline: %s", feeder.name)

  def evaluation(state, step):  # pylint: disable=unused-argument
    metrics = evaluate(eval_step, state, dataset.test, config, mesh)
    if config.eval_on_train:  # eval-mode loss/accuracy over the whole training split
      on_train = evaluate(eval_step, state, dataset.train, config, mesh)
      metrics.update({k.replace("eval_", "eval_train_"): v for k, v in on_train.items()})
    return metrics

  state, _ = loop.run_loop(
      state=state, step_fn=lambda s, i: train_step(s, feeder.feed(i), train_rng),
      config=config, workdir=workdir, evaluate=evaluation, desc="train")
  return state
