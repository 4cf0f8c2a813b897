r"""Input pipeline vs the train step it feeds: is the pipeline ever the bottleneck?

  python benchmarks/input_pipeline.py [--steps=300] [--batch=128]

For each dataset, in one process on the current device:
  pipeline batches/s   - the pipeline alone: host = indices + gather + global array;
                         device = the jitted index computation + gather, nothing else;
  step steps/s         - the train step alone on one fixed, already-placed batch;
  fed steps/s          - the train step fed by that pipeline (what training runs at).
The pipeline is not the bottleneck when fed steps/s is close to step steps/s.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from absl import app, flags  # pylint: disable=wrong-import-position

from leeml import (data, datasets, losses, models, optim, parallel,  # pylint: disable=wrong-import-position
                   pipeline, steps)
from leeml.config import base_config  # pylint: disable=wrong-import-position
from leeml.train_state import TrainState  # pylint: disable=wrong-import-position

_STEPS = flags.DEFINE_integer("steps", 300, "Timed steps per measurement.")
_BATCH = flags.DEFINE_integer("batch", 128, "Global batch size.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Median over this many timings.")


def _median_rate(fn, n: int, repeats: int) -> float:
  fn(0)  # warm-up (compiles)
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    out = None
    for i in range(n):
      out = fn(i)
    jax.block_until_ready(out)
    rates.append(n / (time.perf_counter() - t))
  return float(np.median(rates))


def _mnist_sized(seed=0) -> data.Dataset:
  """A 60,000 x 28x28x1 float32 training split (MNIST-sized; random pixels)."""
  rng = np.random.default_rng(seed)
  split = data.ArraySplit(rng.random((60000, 28, 28, 1), dtype=np.float32),
                          rng.integers(0, 10, 60000).astype(np.int32))
  return data.Dataset("mnist_sized_random", split, split, 10)


def bench(name, ds, batch, n, repeats, mesh):
  base = base_config()
  model = models.get_model(ml_collections.ConfigDict(dict(
      name="mlp", depth=2, width=256, activation="relu", residual=False, norm="none")), 10)
  tx = optim.make_optimizer(base.optimizer, base.schedule, 10**6)
  step_fn = steps.make_train_step(model, tx, losses.get_loss("softmax_cross_entropy"))
  variables = model.init(jax.random.PRNGKey(0), ds.train.inputs[:1])
  rng = jax.device_put(jax.random.PRNGKey(1), parallel.replicated(mesh))
  rows = []
  for kind in ("host", "device"):
    feeder = pipeline.choose(kind, ds.train, batch, 0, mesh)
    if kind == "host":
      feed_only = lambda i, f=feeder: f.feed(i)["inputs"]
    else:
      gather = jax.jit(lambda feed, s: feed["inputs"][data.device_train_indices(
          s, batch, feed["perm"], feed["perm_next"])])
      feed_only = lambda i, f=feeder, g=gather: g(f.feed(i), i)
    pipe_rate = _median_rate(feed_only, n, repeats)

    fixed = parallel.global_batch(ds.train.get_batch(np.arange(batch)), mesh)
    plain = jax.jit(step_fn, donate_argnums=0)
    fed = jax.jit(feeder.wrap(step_fn), donate_argnums=0)
    # A fresh copy: the donated steps consume the state's buffers.
    state = TrainState.create(jax.tree.map(np.array, variables), tx)
    holder = {"state": jax.device_put(state, parallel.replicated(mesh))}

    def run_plain(i):
      holder["state"], m = plain(holder["state"], fixed, rng)
      return m["train_loss"]

    def run_fed(i):
      holder["state"], m = fed(holder["state"], feeder.feed(i), rng)
      return m["train_loss"]

    step_rate = _median_rate(run_plain, n, repeats)
    fed_rate = _median_rate(run_fed, n, repeats)
    rows.append((name, f"{len(ds.train)} x {ds.input_shape}", kind, pipe_rate, step_rate,
                 fed_rate, fed_rate / step_rate))
  return rows


def main(argv):
  del argv
  mesh = parallel.make_mesh()
  cases = [
      ("digits", datasets.get_dataset(ml_collections.ConfigDict({"name": "digits"}))),
      ("mnist1d", datasets.get_dataset(ml_collections.ConfigDict({"name": "mnist1d"}))),
      ("mnist-sized", _mnist_sized()),
  ]
  print(f"jax {jax.__version__}, {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"batch {_BATCH.value}, MLP 2x256, {_STEPS.value} steps, median of {_REPEATS.value}\n")
  print("| dataset | train split | pipeline | pipeline batches/s | step steps/s (fixed batch) "
        "| fed steps/s | fed / step |")
  print("|---|---|---|---:|---:|---:|---:|")
  for name, ds in cases:
    for row in bench(name, ds, _BATCH.value, _STEPS.value, _REPEATS.value, mesh):
      print("| {} | {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.2f} |".format(*row))


if __name__ == "__main__":
  app.run(main)
