"""Pure train and eval steps. `leeml.train` jits them over the mesh with the state donated."""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from leeml import optim
from leeml.train_state import TrainState


def apply_gradients(state: TrainState, tx: optax.GradientTransformation, grads, loss, *,
                    batch_stats=None) -> tuple[TrainState, dict]:
  """One optimizer update of `state` with `grads`, and the metrics every step logs.

  Shared by every train step built on `TrainState` (this module's and `leeml.seq2seq`'s):
  the state advances one step and records the first non-finite step; the metrics are
  train_loss, learning_rate, grad/param/update norms and `nonfinite`.
  """
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  # The state is not frozen on a NaN (that would cost selects over params and optimizer
  # state every step): the loop checks `nonfinite_step` before every checkpoint save
  # and stops, so a NaN state never reaches disk and the last good checkpoint stands.
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state,
      batch_stats=state.batch_stats if batch_stats is None else batch_stats,
      nonfinite_step=jnp.where((state.nonfinite_step < 0) & ~finite, state.step,
                               state.nonfinite_step))
  metrics = {
      "train_loss": loss,
      "learning_rate": optim.learning_rate_of(opt_state),
      "grad_norm": grad_norm,
      "param_norm": optax.tree.norm(state.params),
      "update_norm": optax.tree.norm(updates),
      "nonfinite": (~finite).astype(jnp.float32),
  }
  return new_state, metrics


def make_train_step(model, tx: optax.GradientTransformation, loss_fn: Callable, *,
                    label_smoothing: float = 0.0, classification: bool = True):
  """Returns `train_step(state, batch, rng) -> (state, metrics)`.

  `batch` = {'inputs', 'targets'}; `rng` is the run's training key, folded with the step
  (so dropout noise is a function of (seed, step) and a resumed run replays it exactly).
  Metrics are replicated scalars: loss, accuracy, learning rate, grad/param/update norms,
  and `nonfinite` (1.0 when this step's loss or gradients were NaN/inf).
  """

  def train_step(state: TrainState, batch, rng):
    step_rng = jax.random.fold_in(rng, state.step)
    mutable = ["batch_stats"] if state.batch_stats else False

    def loss_of(params):
      variables = {"params": params}
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
      out = model.apply(variables, batch["inputs"], train=True, rngs={"dropout": step_rng},
                        mutable=mutable)
      outputs, new_vars = out if mutable else (out, {})
      loss = jnp.mean(loss_fn(outputs, batch["targets"], label_smoothing=label_smoothing))
      return loss, (outputs, new_vars.get("batch_stats", state.batch_stats))

    (loss, (outputs, batch_stats)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    new_state, metrics = apply_gradients(state, tx, grads, loss, batch_stats=batch_stats)
    if classification:
      metrics["train_accuracy"] = jnp.mean(jnp.argmax(outputs, -1) == batch["targets"])
    return new_state, metrics

  return train_step


def make_eval_step(model, loss_fn: Callable, *, classification: bool = True):
  """Returns `eval_step(state, batch) -> sums`: weighted sums, so padded examples
  (weight 0) do not count and per-batch results add up to exact split averages."""

  def eval_step(state: TrainState, batch):
    outputs = model.apply(state.variables(), batch["inputs"], train=False)
    w = batch["weights"]
    sums = {"loss": jnp.sum(w * loss_fn(outputs, batch["targets"])), "count": jnp.sum(w)}
    if classification:
      sums["correct"] = jnp.sum(w * (jnp.argmax(outputs, -1) == batch["targets"]))
    return sums

  return eval_step
