"""Small networks on in-memory arrays, trained as populations (lectures 1-2, 5, 6).

Every fit here is a `leeml.population.Program` run by `population.run` (the one batch
sampler: the core's (seed, step) epoch permutations; full-batch gradient descent is
`batch_size = len(train)`), with the core's pieces (`leeml.models`, `leeml.losses`,
`leeml.optim`, `leeml.steps`):

* `regression_program` / `fit`: 1-D curve fits with full-batch MSE (lectures 1-2); all
  seeds of one architecture are members of one Program (one compile).
* `classifier_program` / `train_curves`: a classifier on an array split with mini-batch
  steps (the core's `steps.make_train_step`) and the full-train loss every `eval_every`
  steps (lectures 5-6); traced optimizer hyperparameters (`optim.TRACED_FIELDS`, e.g. the
  learning rate and the momentum) make arms of one Program.

Programs are cached per (architecture, optimizer, steps, data), so a second call with the
same shapes and data reuses the compiled engine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import data, datasets, losses, models, optim, population, steps, timing
from leeml.config import base_config
from leeml.train_state import TrainState

_PROGRAMS: dict[tuple, population.Program] = {}


def model_config(depth: int, width: int, activation: str = "relu", residual: bool = False):
  return ml_collections.ConfigDict(dict(name="mlp", depth=depth, width=width,
                                        activation=activation, residual=residual, norm="none"))


def optimizer_config(**overrides):
  """The core's optimizer section with overrides (e.g. name='adam', learning_rate=1e-2)."""
  cfg = base_config().optimizer
  cfg.update(overrides)
  return cfg


def schedule_config(**overrides):
  """The core's schedule section with overrides (e.g. warmup_steps=100)."""
  cfg = base_config().schedule
  cfg.update(overrides)
  return cfg


def _key(*parts) -> tuple:
  """A cache key: configs as JSON, arrays by content."""
  out = []
  for p in parts:
    if isinstance(p, ml_collections.ConfigDict):
      p = json.dumps(p.to_dict(), sort_keys=True, default=str)
    elif isinstance(p, np.ndarray):
      p = (p.shape, str(p.dtype), hashlib.sha1(np.ascontiguousarray(p).tobytes()).hexdigest())
    out.append(p)
  return tuple(out)


def _cached(key: tuple, build) -> population.Program:
  if key not in _PROGRAMS:
    _PROGRAMS[key] = build()
    while len(_PROGRAMS) > 32:
      _PROGRAMS.pop(next(iter(_PROGRAMS)))
  return _PROGRAMS[key]


# ----------------------------------------------------------------------------- curve fits


def regression_program(model_cfg, x, y, *, optimizer_cfg, num_steps: int, schedule_cfg=None,
                       kinks_in_range: bool = True,
                       activations: Sequence[str] | None = None) -> population.Program:
  """Full-batch MSE fits of an MLP on (x [N, 1], y [N, m]); members are seeds.

  `activations`: several activations of the same architecture in one Program (one
  compile): the traced hyperparameter 'activation' is an index into them, and the
  network's output is the selected activation's (`jnp.where`: the other networks get
  exactly zero gradient). Default: `model_cfg.activation` alone.

  `kinks_in_range`: re-draw the first layer's biases so that unit i's kink
  (w_i x + b_i = 0) sits at a uniform random point of [min x, max x]. Flax initializes
  biases to 0, which with one input puts *every* first-layer kink at x = 0 (and then
  every later kink too: each unit is s x on both sides of 0), so a net starts as 2
  pieces; the lecture's picture is one hard sigmoid per segment, spread over the curve.
  The kinks are drawn at step 0 with the member's training key, so a member's start is
  (flax init with k_init, kinks with k_train) for `k_init, k_train = split(PRNGKey(seed))`
  (what the pre-population `fit` drew); the data range is the full batch's.
  """
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.float32)
  schedule_cfg = schedule_cfg or base_config().schedule
  acts = tuple(activations or (model_cfg.activation,))

  def build():
    nets = []
    for act in acts:  # activations have no parameters: one params tree serves them all
      cfg = ml_collections.ConfigDict(model_cfg.to_dict())
      cfg.activation = act
      nets.append(models.get_model(cfg, num_outputs=y.shape[-1]))
    tx = optim.make_optimizer(optimizer_cfg, schedule_cfg, num_steps)
    mse = losses.get_loss("mse")

    def apply(params, inputs, hparams):
      out = nets[0].apply({"params": params}, inputs)
      for i, net in enumerate(nets[1:], 1):
        out = jnp.where(hparams["activation"] == i, net.apply({"params": params}, inputs), out)
      return out

    def init(key):
      params = nets[0].init(key, jnp.zeros((1, x.shape[-1]), jnp.float32))["params"]
      return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}

    def spread_kinks(params, inputs, rng):
      first = params["dense_0"]
      u = jax.random.uniform(rng, first["bias"].shape, minval=inputs[:, 0].min(),
                             maxval=inputs[:, 0].max())
      return {**params, "dense_0": {**first, "bias": -first["kernel"][0] * u}}

    def train_step(state, batch, rng, hparams):
      params = state["params"]
      if kinks_in_range:
        params = jax.lax.cond(state["step"] == 0, spread_kinks, lambda p, *_: p, params,
                              batch["inputs"], rng)

      def loss_of(p):
        return jnp.mean(mse(apply(p, batch["inputs"], hparams), batch["targets"]))

      loss, grads = jax.value_and_grad(loss_of)(params)
      updates, opt_state = tx.update(grads, state["opt_state"], params)
      return ({**state, "params": optax.apply_updates(params, updates),
               "opt_state": opt_state, "step": state["step"] + 1},
              {"train_loss": loss})

    # No `evaluate`: the final loss is computed from the final params on the host
    # (`predict`), which spares a compile per Program.
    return population.Program(init=init, train_step=train_step, train=data.ArraySplit(x, y),
                              batch_size=len(x), hparams={"activation": 0.0}, family="mlp")

  return _cached(_key("regression", model_cfg, acts, optimizer_cfg, schedule_cfg, num_steps,
                      kinks_in_range, x, y), build)


def fit_activations(model_cfg, x, y, seeds, activations: Sequence[str], *, optimizer_cfg,
                    num_steps: int, schedule_cfg=None, record_every: int = 1,
                    kinks_in_range: bool = True, strategy: str | None = None
                    ) -> dict[str, dict]:
  """{activation: `fit` dict} for every seed x activation, trained as one population."""
  program = regression_program(model_cfg, x, y, optimizer_cfg=optimizer_cfg,
                               num_steps=num_steps, schedule_cfg=schedule_cfg,
                               kinks_in_range=kinks_in_range, activations=activations)
  seeds = [int(s) for s in seeds]
  members = population.grid(seeds, activation=[float(i) for i in range(len(activations))])
  with timing.phase("train"):
    result = population.run(program, members, num_steps=num_steps, strategy=strategy,
                            progress=False)
  _, loss = result.curves("train_loss")  # column t: the loss before step t
  t = num_steps // record_every
  out = {}
  for a, act in enumerate(activations):
    ids = [i for i, m in enumerate(members) if m.hparams["activation"] == a]
    params = jax.tree.map(lambda *p: np.stack(p), *[result.params(i) for i in ids])
    cfg = ml_collections.ConfigDict(model_cfg.to_dict())
    cfg.activation = act
    pred = predict(cfg, params, x, num_outputs=np.shape(y)[-1])
    out[act] = {"params": params, "loss": loss[ids, :t * record_every:record_every],
                "final_loss": np.mean((pred - np.asarray(y, np.float64)) ** 2, axis=(1, 2)),
                "nonfinite_step": np.array([result.nonfinite_steps.get(i, 0) for i in ids])}
  return out


def fit(model_cfg, x, y, seeds, *, optimizer_cfg, num_steps: int, schedule_cfg=None,
        record_every: int = 1, kinks_in_range: bool = True, strategy: str | None = None) -> dict:
  """Trains one MLP per seed on (x [N, 1], y [N, m]) with full-batch MSE
  (`regression_program`, the seeds as population members).

  Returns numpy arrays: 'params' (a pytree stacked over seeds), 'loss' [S, T] (full-batch
  training MSE before steps 0, record_every, ...; T = num_steps // record_every),
  'final_loss' [S] (after the last step, from the final params in float64: `predict`),
  'nonfinite_step' [S] (0: finite throughout; else the 1-based step where the member
  stopped). The seed only picks the initialization (the data are the full batch every
  step).
  """
  act = model_cfg.activation
  return fit_activations(model_cfg, x, y, seeds, (act,), optimizer_cfg=optimizer_cfg,
                         num_steps=num_steps, schedule_cfg=schedule_cfg,
                         record_every=record_every, kinks_in_range=kinks_in_range,
                         strategy=strategy)[act]


_NUMPY_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0),
                      "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
                      "tanh": np.tanh, "identity": lambda z: z}


def predict(model_cfg, params, x, num_outputs: int = 1) -> np.ndarray:
  """Outputs [S, N, m] of the stacked per-seed params on inputs x [N, d], in numpy float64
  (`leeml.models.MLP`'s forward pass without a norm: no compile per architecture)."""
  if model_cfg.get("norm", "none") != "none" or model_cfg.activation not in _NUMPY_ACTIVATIONS:
    raise ValueError(f"predict: an MLP with norm 'none' and activation in "
                     f"{sorted(_NUMPY_ACTIVATIONS)}, not {model_cfg.to_dict()}")
  act = _NUMPY_ACTIVATIONS[model_cfg.activation]
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  out = []
  with timing.phase("eval"):
    for i in range(len(params["head"]["bias"])):
      p = seed_params(params, i)
      h = x
      for d in range(model_cfg.depth):
        z = act(h @ p[f"dense_{d}"]["kernel"] + p[f"dense_{d}"]["bias"])
        h = h + z if (model_cfg.residual and d > 0) else z
      out.append(h @ p["head"]["kernel"] + p["head"]["bias"])
  if out[0].shape[-1] != num_outputs:
    raise ValueError(f"predict: the params have {out[0].shape[-1]} outputs, not {num_outputs}")
  return np.stack(out)


def seed_params(params, i: int):
  """The i-th seed's params (numpy float64) from a stacked pytree, for leeml.piecewise."""
  return jax.tree.map(lambda a: np.asarray(a[i], np.float64), params)


# ----------------------------------------------------------------------------- classifiers


def load_arrays(dataset_cfg, num_examples: int = 0):
  """(x [n, d] float32, y [n] int32, num_classes) of a registered dataset's train split
  (its first `num_examples`; 0 = all), inputs flattened."""
  ds = datasets.get_dataset(ml_collections.ConfigDict(dict(dataset_cfg)))
  x = np.asarray(ds.train.inputs, np.float32)
  y = np.asarray(ds.train.targets, np.int32)
  if num_examples:
    x, y = x[:num_examples], y[:num_examples]
  return x.reshape(len(x), -1), y, ds.num_classes


def classifier_program(model_cfg, x, y, num_classes: int, *, loss: str, optimizer_cfg,
                       schedule_cfg=None, num_steps: int, batch_size: int,
                       hparams: Mapping[str, float] | None = None,
                       diagnostics_every: int | None = None) -> population.Program:
  """Mini-batch training of `model_cfg` on (x, y) by the core's `steps.make_train_step`.

  `hparams`: the traced optimizer fields and their defaults (names in
  `optim.TRACED_FIELDS`; default: the learning rate). `diagnostics_every`: steps between
  the grad/param/update norms (1: every step; default: only the last step). Evaluation:
  the loss and accuracy over all of (x, y) (split 'train').
  """
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.int32)
  schedule_cfg = schedule_cfg or base_config().schedule
  defaults = dict(hparams or {"learning_rate": float(optimizer_cfg.learning_rate)})
  unknown = sorted(set(defaults) - set(optim.TRACED_FIELDS))
  if unknown:
    raise ValueError(f"hyperparameter {unknown[0]!r} is not one of: "
                     f"{', '.join(optim.TRACED_FIELDS)}")

  def build():
    model = models.get_model(model_cfg, num_outputs=num_classes)
    loss_fn = losses.get_loss(loss)
    sample = jnp.zeros((1, x.shape[-1]), jnp.float32)

    def tx_of(hp):
      return optim.make_optimizer(optimizer_cfg, schedule_cfg, num_steps, hyperparams=hp)

    def init(key, hp):
      return TrainState.create(model.init(key, sample, train=False), tx_of(hp))

    def train_step(state, batch, rng, hp):
      step = steps.make_train_step(model, tx_of(hp), loss_fn,
                                   diagnostics_every=diagnostics_every or num_steps,
                                   num_train_steps=num_steps)
      return step(state, batch, rng)

    eval_step = steps.make_eval_step(model, loss_fn)
    train = data.ArraySplit(x, y)
    return population.Program(init=init, train_step=train_step, train=train,
                              batch_size=batch_size, hparams=defaults, evaluate=eval_step,
                              splits={"train": train}, eval_batch_size=len(x),
                              family=str(model_cfg.name))

  return _cached(_key("classifier", model_cfg, loss, optimizer_cfg, schedule_cfg, num_steps,
                      batch_size, tuple(sorted(defaults.items())), diagnostics_every,
                      num_classes, x, y), build)


def train_curves(program: population.Program, members: Sequence[population.Member], *,
                 num_steps: int, eval_every: int, strategy: str | None = None,
                 desc: str = "population") -> dict[str, Any]:
  """Trains `members` of `program` and returns numpy arrays: `eval_steps` [E]
  (eval_every, 2 eval_every, ..., num_steps), `train_loss` [P, E] (the mean loss over the
  whole training split), `batch_loss` and `grad_norm` [P, num_steps] (each step's
  mini-batch loss and gradient norm, NaN where not computed), `nonfinite_step` [P] (the
  1-based step where a member stopped on a NaN/inf, 0 if never) and the `result`."""
  if num_steps % eval_every:
    raise ValueError(f"num_steps={num_steps} is not a multiple of eval_every={eval_every}")
  with timing.phase("train"):  # the periodic full-train losses are evaluated inside `run`
    result = population.run(program, members, num_steps=num_steps, eval_every=eval_every,
                            strategy=strategy, progress=False, desc=desc)
  eval_steps, train_loss = result.curves("eval_train_loss")
  _, batch_loss = result.curves("train_loss")
  grad_norm = np.full((len(members), num_steps), np.nan)
  if any("grad_norm" in r for r in result.records):  # the steps that computed the norms
    g_steps, g = result.curves("grad_norm")
    grad_norm[:, g_steps - 1] = g
  return {"eval_steps": eval_steps, "train_loss": train_loss, "batch_loss": batch_loss,
          "grad_norm": grad_norm,
          "nonfinite_step": np.array([result.nonfinite_steps.get(i, 0)
                                      for i in range(len(members))]),
          "result": result}
