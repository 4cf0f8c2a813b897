"""Optimizers and learning-rate schedules built from config.

``make_optimizer`` returns ``clip_by_global_norm`` (only if
``grad_clip_norm > 0``) chained with the chosen optimizer wrapped in
``optax.inject_hyperparams``, so the scheduled learning rate lives in the
optimizer state and ``learning_rate_of`` can read it back for logging.

Learning-rate bookkeeping (optax 0.2.x ``inject_hyperparams`` semantics): the
state produced by ``init`` holds ``schedule(0)``; after ``n >= 1`` updates it
holds ``schedule(n - 1)``, i.e. the learning rate that the most recent update
used.  So in a loop ``for step in range(N): state = update(state)`` the value
read after the update at ``step`` is ``schedule(step)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS: tuple[str, ...] = (
  "sgd", "momentum", "lecture_momentum", "adagrad", "rmsprop", "adam",
  "adamw", "radam",
)
SCHEDULES: tuple[str, ...] = (
  "constant", "step", "exponential", "cosine", "warmup_cosine",
  "warmup_linear",
)
# Schedules that honour warmup_steps > 0; the rest reject it rather than
# silently ignoring a field the user set.
_WARMUP_SCHEDULES = ("constant", "warmup_cosine", "warmup_linear")
# Optimizer fields that may be given as (traced) arrays through
# ``make_optimizer(..., hyperparams=...)``: one compiled step then serves every
# value (``leeml.population`` trains many members this way).
TRACED_FIELDS: tuple[str, ...] = (
  "learning_rate", "momentum", "b1", "b2", "eps", "weight_decay",
  "rms_decay", "initial_accumulator_value", "warmup_steps",
)
# Of those, the one that is a schedule field (``schedule.warmup_steps``).
SCHEDULE_FIELDS: tuple[str, ...] = ("warmup_steps",)


def _scalar(value):
  """A Python number as a float; an array (possibly traced) unchanged."""
  return value if isinstance(value, jax.Array) else float(value)


def _check_name(field: str, name: str, valid: tuple[str, ...]) -> None:
  if name not in valid:
    raise ValueError(
      f"{field}={name!r} is not one of: {', '.join(sorted(valid))}")


# --------------------------------------------------------------------------
# Lecture momentum
# --------------------------------------------------------------------------


class LectureMomentumState(NamedTuple):
  """``m``: the previous movement m_t (a pytree like params)."""
  m: optax.Updates


def lecture_momentum(learning_rate, momentum: float = 0.9
           ) -> optax.GradientTransformation:
  r"""Gradient descent with momentum exactly as written in Lee's lecture 5.

  .. math::  m_{t+1} = \lambda m_t - \eta g_t, \qquad
         \theta_{t+1} = \theta_t + m_{t+1},  \quad m_0 = 0.

  The returned update *is* ``m_{t+1}``: apply it with
  ``optax.apply_updates``.  ``learning_rate`` and ``momentum`` must be
  scalars (floats or 0-d arrays); for a schedule wrap this factory with
  ``optax.inject_hyperparams`` (``make_optimizer`` does), which passes the
  current values in as plain arguments every step.

  Relation to ``optax.sgd(eta, momentum=lam)``: optax keeps
  ``v_{t+1} = g_t + lam v_t`` and returns ``-eta v_{t+1}``.  With a
  constant eta, ``m = -eta v`` turns one recursion into the other, so the two
  are identical.  When eta varies they differ: optax rescales the whole
  accumulated velocity by the *current* eta_t (past gradient g_k contributes
  ``eta_t lam^(t-k) g_k``), whereas here each gradient keeps the rate it was
  taken with (``eta_k lam^(t-k) g_k``).  E.g. right after a step decay of
  the lr, optax's step shrinks immediately while ours still carries the old,
  larger movement that only fades at rate lam (and during warmup ours lags).
  """

  def init_fn(params):
    return LectureMomentumState(m=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    m = jax.tree.map(
      # Cast the scalars to each leaf's dtype so m keeps the params'
      # dtype (otherwise a weak/strong f32 mix could change the state
      # dtype after step one and force a re-trace).
      lambda m_t, g: (jnp.asarray(momentum, g.dtype) * m_t
              - jnp.asarray(learning_rate, g.dtype) * g),
      state.m, updates)
    return m, LectureMomentumState(m=m)

  return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------


def _linear_warmup(lr, warmup) -> optax.Schedule:
  """0 -> lr linearly over ``warmup`` steps, then lr; ``warmup`` may be traced (0: lr).

  The same float operations as ``optax.linear_schedule(0.0, lr, warmup)`` joined
  with ``constant_schedule(lr)`` at ``warmup``, so the two give equal numbers as
  functions (`tests/test_optim.py`). Inside a compiled train step XLA folds a static
  warmup length differently from a traced one: the learning rate then differs by up to
  1 ulp on some warmup steps (measured: 4.7e-10 at lr 1e-2), enough for a chaotic run to
  end elsewhere (lec06's post-norm Adam + warmup: final loss 0.844 +- 0.386 static,
  0.943 +- 0.469 traced, 3 seeds)."""
  def schedule(count):
    done = jnp.clip(count, 0, warmup)
    ramp = (0.0 - lr) * (1 - done / jnp.maximum(warmup, 1)) + lr
    return jnp.where(warmup > 0, ramp, lr)
  return schedule


def make_schedule(schedule_cfg, base_learning_rate: float,
          num_train_steps: int, *, warmup_steps=None) -> optax.Schedule:
  """Build the learning-rate schedule ``step -> lr`` named by ``schedule_cfg``.

  * constant: ``lr`` (after a linear 0 -> lr warmup if ``warmup_steps > 0``).
  * step: ``lr * decay_rate ** (#boundaries <= step)``.
  * exponential: ``lr * decay_rate ** (step / decay_steps)`` (not clipped).
  * cosine: cosine from ``lr`` to ``end_learning_rate_factor * lr`` over
    ``decay_steps``, then constant.
  * warmup_cosine / warmup_linear: linear 0 -> lr over ``warmup_steps``, then
    cosine / linear decay to ``end_learning_rate_factor * lr`` over
    ``decay_steps`` (counted from the end of warmup), then constant.

  ``decay_steps == 0`` means ``num_train_steps - warmup_steps``.  Only
  constant/warmup_* accept ``warmup_steps > 0``.

  ``warmup_steps``: replaces ``schedule_cfg.warmup_steps``; an array (possibly traced,
  one compiled step for every value) with the constant schedule, or with warmup_* when
  ``decay_steps > 0`` is set (otherwise the decay length would depend on it).
  """
  name = schedule_cfg.name
  _check_name("schedule.name", name, SCHEDULES)
  lr = _scalar(base_learning_rate)
  if isinstance(warmup_steps, jax.Array):
    return _traced_warmup_schedule(schedule_cfg, name, lr, warmup_steps)
  warmup = int(schedule_cfg.warmup_steps if warmup_steps is None else warmup_steps)
  if warmup < 0:
    raise ValueError(f"schedule.warmup_steps={warmup} must be >= 0")
  if warmup > 0 and name not in _WARMUP_SCHEDULES:
    raise ValueError(
      f"schedule.warmup_steps={warmup} is only supported by: "
      f"{', '.join(_WARMUP_SCHEDULES)} (schedule.name={name!r})")
  decay_steps = int(schedule_cfg.decay_steps) or (num_train_steps - warmup)
  end_factor = float(schedule_cfg.end_learning_rate_factor)
  rate = float(schedule_cfg.decay_rate)

  if name == "constant":
    if warmup == 0:
      return optax.constant_schedule(lr)
    return optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup),
       optax.constant_schedule(lr)], [warmup])
  if name == "step":
    # Repeated boundaries compound, hence counting rather than a dict.
    bounds = sorted(int(b) for b in schedule_cfg.boundaries)
    return lambda step: lr * rate ** jnp.sum(
      jnp.asarray(step) >= jnp.asarray(bounds, jnp.int32))

  if decay_steps <= 0:
    raise ValueError(
      f"schedule.decay_steps resolved to {decay_steps} (decay_steps="
      f"{schedule_cfg.decay_steps}, num_train_steps={num_train_steps}, "
      f"warmup_steps={warmup}); it must be > 0")
  if name == "exponential":
    return optax.exponential_decay(lr, decay_steps, rate)
  if name == "cosine":
    return optax.cosine_decay_schedule(lr, decay_steps, alpha=end_factor)
  if name == "warmup_cosine":
    decay = optax.cosine_decay_schedule(lr, decay_steps, alpha=end_factor)
  else:  # warmup_linear
    decay = optax.linear_schedule(lr, end_factor * lr, decay_steps)
  if warmup == 0:
    return decay
  # join_schedules hands the second schedule (step - warmup).
  return optax.join_schedules(
    [optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


def _traced_warmup_schedule(schedule_cfg, name: str, lr, warmup) -> optax.Schedule:
  if name not in _WARMUP_SCHEDULES:
    raise ValueError(f"a traced warmup_steps needs schedule.name in: "
                     f"{', '.join(_WARMUP_SCHEDULES)} (not {name!r})")
  if name == "constant":
    return _linear_warmup(lr, warmup)
  decay_steps = int(schedule_cfg.decay_steps)
  if decay_steps <= 0:
    raise ValueError(f"a traced warmup_steps with schedule.name={name!r} needs "
                     "schedule.decay_steps > 0 (its default depends on the warmup)")
  end_factor = float(schedule_cfg.end_learning_rate_factor)
  if name == "warmup_cosine":
    decay = optax.cosine_decay_schedule(lr, decay_steps, alpha=end_factor)
  else:
    decay = optax.linear_schedule(lr, end_factor * lr, decay_steps)
  # An integer boundary, so the decay sees an integer count (as in the static schedule).
  boundary = jnp.asarray(warmup).astype(jnp.int32)
  return optax.join_schedules([_linear_warmup(lr, warmup), decay], [boundary])


# --------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------


def _optimizer_factory(cfg, hyperparams=None) -> tuple[Any, dict[str, Any]]:
  """(optax factory taking ``learning_rate``, its other hyperparameters)."""
  name = cfg.name
  _check_name("optimizer.name", name, OPTIMIZERS)
  hyperparams = hyperparams or {}

  def get(field):
    return _scalar(hyperparams.get(field, cfg[field]))

  eps = get("eps")
  if name == "sgd":
    return optax.sgd, {}
  if name == "momentum":
    return optax.sgd, dict(momentum=get("momentum"),
                 nesterov=bool(cfg.nesterov))
  if name == "lecture_momentum":
    return lecture_momentum, dict(momentum=get("momentum"))
  if name == "adagrad":
    return optax.adagrad, dict(
      initial_accumulator_value=get("initial_accumulator_value"),
      eps=eps)
  if name == "rmsprop":
    return optax.rmsprop, dict(decay=get("rms_decay"), eps=eps)
  adam_like = dict(b1=get("b1"), b2=get("b2"), eps=eps)
  if name == "adam":
    return optax.adam, adam_like
  if name == "adamw":
    return optax.adamw, dict(adam_like,
                 weight_decay=get("weight_decay"))
  return optax.radam, adam_like  # radam


def make_optimizer(optimizer_cfg, schedule_cfg, num_train_steps: int, *,
           hyperparams=None) -> optax.GradientTransformation:
  """``[clip_by_global_norm] -> inject_hyperparams(optimizer)``.

  The learning rate is ``make_schedule(schedule_cfg,
  optimizer_cfg.learning_rate, num_train_steps)``.  Numeric hyperparameters
  (momentum, b1, ...) are injected too, so they are visible in the state.
  ``weight_decay`` is used by adamw only and ignored by the others;
  ``nesterov`` only by momentum; ``grad_clip_norm <= 0`` disables clipping.

  ``hyperparams``: optional ``{field: value}`` replacing fields of
  ``optimizer_cfg`` (names in ``TRACED_FIELDS``; ``warmup_steps`` replaces
  ``schedule_cfg.warmup_steps``, see ``make_schedule``); values may be traced
  arrays, so one jitted step serves many settings.  With the same values as
  floats the chain computes the same numbers as from the config.
  """
  unknown = sorted(set(hyperparams or ()) - set(TRACED_FIELDS))
  if unknown:
    raise ValueError(f"optimizer hyperparameter {unknown[0]!r} is not one of: "
             f"{', '.join(TRACED_FIELDS)}")
  hyperparams = dict(hyperparams or {})
  warmup = hyperparams.pop("warmup_steps", None)
  factory, hparams = _optimizer_factory(optimizer_cfg, hyperparams)
  lr = hyperparams.get("learning_rate", optimizer_cfg.learning_rate)
  schedule = make_schedule(schedule_cfg, lr, num_train_steps, warmup_steps=warmup)
  # inject_hyperparams keeps bools (nesterov) static and turns the numeric
  # values into state arrays; the schedule is evaluated on its own count.
  opt = optax.inject_hyperparams(factory)(learning_rate=schedule, **hparams)
  clip = float(optimizer_cfg.grad_clip_norm)
  if clip > 0:
    return optax.chain(optax.clip_by_global_norm(clip), opt)
  return opt


def _find_lr(state):
  hparams = getattr(state, "hyperparams", None)
  if isinstance(hparams, dict) and "learning_rate" in hparams:
    return hparams["learning_rate"]
  if isinstance(state, (tuple, list)):  # chain states, NamedTuples
    for sub in state:
      found = _find_lr(sub)
      if found is not None:
        return found
  return None


def learning_rate_of(opt_state) -> jax.Array:
  """Learning rate stored by ``inject_hyperparams`` in ``opt_state``.

  Equals ``schedule(0)`` right after ``init`` and ``schedule(n - 1)`` after
  ``n >= 1`` updates (the rate used by the latest update).  Pure pytree
  traversal, so it works on traced states under ``jit``.
  """
  lr = _find_lr(opt_state)
  if lr is None:
    raise ValueError("no inject_hyperparams state with a learning_rate "
             "found in opt_state (was it built by make_optimizer?)")
  return lr
