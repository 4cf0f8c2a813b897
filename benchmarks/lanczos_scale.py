r"""Experiment C of lecture 4: Lanczos top-5 Hessian eigenvalues of a ≥1M-parameter model.

  python benchmarks/lanczos_scale.py [--width=1000] [--iters=30] [--examples=1497]

An MLP 64-width-width-10 (tanh; width 1000: 1,076,010 parameters) on the digits training
split, MSE on one-hot targets, at its initialization and after a short training; the
Hessian of the full-dataset loss is only touched through HVPs (jvp of grad, batched with
lax.scan), inside one jitted Lanczos loop with full reorthogonalization. Prints a table:
parameters, seconds for one HVP, seconds for the Lanczos run (compile excluded and
included), the top-5 Ritz values and their residuals |Hu - θu| / θ.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import ml_collections  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import optax  # pylint: disable=wrong-import-position
from absl import app, flags  # pylint: disable=wrong-import-position

from leeml import curvature, datasets, losses  # pylint: disable=wrong-import-position
from leeml.models import MLP  # pylint: disable=wrong-import-position

_WIDTH = flags.DEFINE_integer("width", 1000, "Hidden width (2 hidden layers).")
_ITERS = flags.DEFINE_integer("iters", 30, "Lanczos iterations.")
_EXAMPLES = flags.DEFINE_integer("examples", 1497, "Training examples in the loss.")
_BATCH = flags.DEFINE_integer("batch", 512, "HVP batch size (lax.scan over batches).")
_TRAIN = flags.DEFINE_integer("train_steps", 200, "Full-batch Adam steps before the 2nd row.")


def main(_):
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": "digits"}))
  x = np.asarray(ds.train.inputs[: _EXAMPLES.value], np.float32)
  x = x.reshape(len(x), -1)
  y = np.asarray(ds.train.targets[: _EXAMPLES.value])
  model = MLP(num_outputs=10, depth=2, width=_WIDTH.value, activation="tanh")
  variables = model.init(jax.random.PRNGKey(0), x[:1])
  params = variables["params"]
  batch_loss = curvature.model_batch_loss(model, variables, losses.get_loss("mse"))
  batches = jax.tree.map(jnp.asarray, curvature.stack_batches(x, y, _BATCH.value))
  dim = sum(p.size for p in jax.tree.leaves(params))

  tx = optax.adam(1e-3)
  loss = jax.jit(lambda p: curvature.dataset_loss(batch_loss, p, batches))

  @jax.jit
  def train(p):
    def step(carry, _):
      p, s = carry
      upd, s = tx.update(jax.grad(lambda q: curvature.dataset_loss(batch_loss, q, batches))(p),
                         s, p)
      return (optax.apply_updates(p, upd), s), None
    return jax.lax.scan(step, (p, tx.init(p)), None, length=_TRAIN.value)[0][0]

  print(f"devices: {jax.devices()}  cpu count: {os.cpu_count()}")
  print(f"model: MLP 64-{_WIDTH.value}-{_WIDTH.value}-10 tanh, {dim:,} parameters; "
        f"{len(x)} digits examples, batch {_BATCH.value}; {_ITERS.value} Lanczos iterations")
  header = ("point", "params", "loss", "HVP s", "Lanczos s (1st, incl. compile)",
            "Lanczos s (2nd)", "top-5 eigenvalues", "max residual")
  print(" | ".join(header))
  points = [("init", params)]
  if _TRAIN.value:
    points.append((f"after {_TRAIN.value} Adam steps", train(params)))
  for name, p in points:
    op = curvature.dataset_operator(batch_loss, p, batches)
    mv = jax.jit(op.matvec)
    v = jnp.ones(dim, jnp.float32) / np.sqrt(dim)
    mv(op.operand, v).block_until_ready()
    t = time.perf_counter()
    for _ in range(3):
      mv(op.operand, v).block_until_ready()
    t_hvp = (time.perf_counter() - t) / 3
    times = []
    for _ in range(2):
      t = time.perf_counter()
      vals, vecs = curvature.extreme_eigenpairs(op.matvec, op.operand, dim, 5, which="top",
                                                num_iters=_ITERS.value)
      times.append(time.perf_counter() - t)
    resid = max(float(np.linalg.norm(np.asarray(mv(op.operand, jnp.asarray(vecs[:, i])))
                                     - vals[i] * vecs[:, i]) / abs(vals[i]))
                for i in range(5))
    print(" | ".join((name, f"{dim:,}", f"{float(loss(p)):.4f}", f"{t_hvp:.3f}",
                      f"{times[0]:.1f}", f"{times[1]:.1f}",
                      ", ".join(f"{v:.4g}" for v in vals), f"{resid:.1e}")))


if __name__ == "__main__":
  app.run(main)
