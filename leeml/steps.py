"""Pure train and eval steps. `leeml.train` jits them over the mesh with the state donated.

Every step checks that its loss and gradients are finite (cheap: one sum per gradient
leaf) and records the first step that was not in `TrainState.nonfinite_step`. The norms
of `DIAGNOSTIC_METRICS` cost three more passes over the parameters (about 13% of a small
MLP's step on CPU, BENCHMARKS.md), so a step built with `diagnostics_every=k` computes
them only when `done = state.step + 1` is a multiple of k or the last step, inside the
same compiled step (`jax.lax.cond`), and reports NaN on the other steps.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from leeml import optim
from leeml.train_state import TrainState

# Metrics computed only on diagnostic steps (NaN on the others); a loop that writes
# per-step records drops these keys from the records of non-log steps.
DIAGNOSTIC_METRICS = ("grad_norm", "param_norm", "update_norm")


def tree_finite(tree) -> jax.Array:
  """True when every element of every floating leaf of `tree` is finite.

  One sum per leaf (accumulated in at least float32) and one add: a NaN or an inf
  anywhere makes the total NaN or inf, so nothing non-finite is missed; a finite tree
  reads as non-finite only if its sum overflows float32 (|sum| > 3.4e38). This is the
  cheapest exact check measured (BENCHMARKS.md): 1.5x cheaper than the squared norm's
  reduction and 3x cheaper than `all(isfinite(.))`, which XLA:CPU reduces leaf by leaf.
  """
  total = jnp.zeros((), jnp.float32)
  for leaf in jax.tree.leaves(tree):
    if jnp.issubdtype(leaf.dtype, jnp.inexact):
      s = jnp.sum(leaf, dtype=jnp.promote_types(leaf.dtype, jnp.float32))
      total = total + (s.real + s.imag if jnp.iscomplexobj(s) else s)
  return jnp.isfinite(total)


def diagnostics_due(done, diagnostics_every: int, num_train_steps: int | None = None):
  """Whether step `done` (counted from 1) computes the diagnostic norms: `done` is a
  multiple of `diagnostics_every` or equals `num_train_steps`.

  For a traced `done` the answer is traced even when `diagnostics_every == 1` (`done >
  0`, which XLA cannot fold): every k then runs the norms through the same compiled
  `lax.cond` branch, and they agree bit for bit (inlined into the step, XLA fuses the
  norm of the update differently and the last bit can differ).
  """
  if isinstance(diagnostics_every, bool) or not isinstance(diagnostics_every, int) \
      or diagnostics_every < 1:
    raise ValueError(f"diagnostics_every={diagnostics_every!r} must be an integer >= 1")
  if num_train_steps is not None and (isinstance(num_train_steps, bool) or
                                      not isinstance(num_train_steps, int) or
                                      num_train_steps < 1):
    raise ValueError(f"num_train_steps={num_train_steps!r} must be None or an integer >= 1")
  if diagnostics_every == 1:
    return done > 0
  due = done % diagnostics_every == 0
  if num_train_steps is not None:
    due = due | (done == num_train_steps)
  return due


def _norms(tx: optax.GradientTransformation, grads, opt_state, params) -> dict:
  # The update is recomputed here rather than passed in, so that on steps without
  # diagnostics nothing has to be materialized for them.
  updates, _ = tx.update(grads, opt_state, params)
  return {"grad_norm": optax.tree.norm(grads), "param_norm": optax.tree.norm(params),
          "update_norm": optax.tree.norm(updates)}


def diagnostic_norms(tx: optax.GradientTransformation, grads, opt_state, params,
                     diagnostics: bool | jax.Array = True) -> dict:
  """{grad_norm, param_norm, update_norm} of `grads`, `params` and the update `tx` makes
  from them (the state before the update) when `diagnostics` is true, NaN of the same
  dtype otherwise. A traced `diagnostics` becomes one `jax.lax.cond` (both branches in
  the same compiled step; only the taken one runs)."""
  norms = functools.partial(_norms, tx)
  if diagnostics is True:
    return norms(grads, opt_state, params)
  shapes = jax.eval_shape(norms, grads, opt_state, params)

  def placeholders(*_):
    return {k: jnp.full(s.shape, jnp.nan, s.dtype) for k, s in shapes.items()}

  if diagnostics is False:
    return placeholders()
  return jax.lax.cond(diagnostics, norms, placeholders, grads, opt_state, params)


def sequenced_after(scalars: dict, tree):
  """`tree` plus an exact zero computed from `scalars`: what reads the result runs after
  `scalars` are computed.

  The train state is donated, so the update overwrites the old parameters and optimizer
  state in place. XLA:CPU copies every donated buffer that something reads without a
  data path to the overwriting update (it drops `optimization_barrier`s before copy
  insertion), which makes the norms of the old state cost a full copy of the params and
  optimizer state on every step. Routing the gradients through the norms orders the
  update after them, and no copy is made. The zero is `0 * s` for a finite sum s of the
  scalars and 0 otherwise (NaN placeholders), so values do not change (a -0.0 gradient
  element becomes +0.0).
  """
  total = sum(jnp.sum(v).astype(jnp.float32) for v in scalars.values())
  zero = jnp.where(jnp.isfinite(total), total * 0.0, 0.0)
  return jax.tree.map(
      lambda x: x + zero.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else x, tree)


def apply_gradients(state: TrainState, tx: optax.GradientTransformation, grads, loss, *,
                    batch_stats=None, diagnostics: bool | jax.Array = True
                    ) -> tuple[TrainState, dict]:
  """One optimizer update of `state` with `grads`, and the metrics every step logs.

  Shared by every train step built on `TrainState` (this module's and `leeml.seq2seq`'s):
  the state advances one step and records the first non-finite step (a NaN/inf loss or
  any NaN/inf gradient element, `tree_finite`); the metrics are train_loss,
  learning_rate, `nonfinite`, and the `DIAGNOSTIC_METRICS` norms (of the gradients, of
  the parameters before the update, and of the update), which are NaN unless
  `diagnostics` (a Python bool, or a traced boolean such as `diagnostics_due(...)`).
  """
  # On the gradients as computed (before `sequenced_after`: read twice, its sum would be
  # materialized).
  finite = jnp.isfinite(loss) & tree_finite(grads)
  norms = diagnostic_norms(tx, grads, state.opt_state, state.params, diagnostics)
  if diagnostics is not False:
    grads = sequenced_after(norms, grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
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
      **norms,
      "nonfinite": (~finite).astype(jnp.float32),
  }
  return new_state, metrics


def make_train_step(model, tx: optax.GradientTransformation, loss_fn: Callable, *,
                    label_smoothing: float = 0.0, classification: bool = True,
                    diagnostics_every: int = 1, num_train_steps: int | None = None):
  """Returns `train_step(state, batch, rng) -> (state, metrics)`.

  `batch` = {'inputs', 'targets'}; `rng` is the run's training key, folded with the step
  (so dropout noise is a function of (seed, step) and a resumed run replays it exactly).
  Metrics are replicated scalars: loss, accuracy, learning rate, `nonfinite` (1.0 when
  this step's loss or gradients were NaN/inf), and the grad/param/update norms, computed
  when `done = state.step + 1` is a multiple of `diagnostics_every` or equals
  `num_train_steps` and NaN otherwise (`diagnostics_every=1`: every step).
  """
  diagnostics_due(0, diagnostics_every, num_train_steps)  # validates the two arguments

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
    new_state, metrics = apply_gradients(
        state, tx, grads, loss, batch_stats=batch_stats,
        diagnostics=diagnostics_due(state.step + 1, diagnostics_every, num_train_steps))
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
