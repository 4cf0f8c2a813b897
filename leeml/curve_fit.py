"""Many small full-batch fits at once (lectures 1-2): one jitted program, vmapped over seeds.

`train_and_evaluate` costs ~1-2 s per run in setup; the piecewise-linear and deep-vs-fat
experiments need dozens of fits of tiny 1-D regressors. Here all seeds of one
architecture train together: `jax.vmap` over the initialization keys of a `lax.scan` of
full-batch steps, built from the same pieces as the core (leeml.models, leeml.losses,
leeml.optim), so the result is the same kind of network `train_and_evaluate` trains.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leeml import losses, models, optim, timing
from leeml.config import base_config


def model_config(depth: int, width: int, activation: str = "relu", residual: bool = False):
  return ml_collections.ConfigDict(dict(name="mlp", depth=depth, width=width,
                                        activation=activation, residual=residual, norm="none"))


def optimizer_config(**overrides):
  """The core's optimizer section with overrides (e.g. name='adam', learning_rate=1e-2)."""
  cfg = base_config().optimizer
  cfg.update(overrides)
  return cfg


def fit(model_cfg, x, y, seeds, *, optimizer_cfg, num_steps: int, schedule_cfg=None,
        record_every: int = 1, kinks_in_range: bool = True) -> dict:
  """Trains one MLP per seed on (x [N, 1], y [N, m]) with full-batch MSE.

  `kinks_in_range`: re-draw the first layer's biases so that unit i's kink
  (w_i x + b_i = 0) sits at a uniform random point of [min x, max x]. Flax initializes
  biases to 0, which with one input puts *every* first-layer kink at x = 0 — and then
  every later kink too (each unit is s x on both sides of 0) — so a net starts as 2
  pieces; the lecture's picture is one hard sigmoid per segment, spread over the curve.

  Returns numpy arrays: 'params' (a pytree stacked over seeds), 'loss' [S, T] (full-batch
  training MSE before steps 0, record_every, ...), 'final_loss' [S] (after the last step).
  The seed only picks the initialization (the data and the order are fixed: full batch).
  """
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  model = models.get_model(model_cfg, num_outputs=y.shape[-1])
  schedule_cfg = schedule_cfg or base_config().schedule
  tx = optim.make_optimizer(optimizer_cfg, schedule_cfg, num_steps)
  mse = losses.get_loss("mse")
  with timing.phase("train"):
    out = _fit_fn(model, tx, mse, num_steps, record_every, kinks_in_range)(
        jnp.asarray(seeds, jnp.uint32), x, y)
    return jax.tree.map(np.asarray, out)


@functools.lru_cache(maxsize=32)
def _fit_fn(model, tx, loss_fn, num_steps, record_every, kinks_in_range):
  """The jitted vmapped program; cached per (model, optimizer, steps) so a second call
  with other seeds or data of the same shapes does not retrace."""

  def loss_of(params, x, y):
    return jnp.mean(loss_fn(model.apply({"params": params}, x), y))

  def one_seed(seed, x, y):
    init_key, kink_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, x[:1])["params"]
    if kinks_in_range:
      first = params["dense_0"]
      u = jax.random.uniform(kink_key, first["bias"].shape, minval=x[:, 0].min(),
                             maxval=x[:, 0].max())
      params = {**params, "dense_0": {**first, "bias": -first["kernel"][0] * u}}

    def step(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_of)(params, x, y)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = jax.tree.map(lambda p, u: p + u, params, updates)
      return (params, opt_state), loss

    def block(carry, _):  # record the loss once per `record_every` steps
      carry, losses_ = jax.lax.scan(step, carry, None, length=record_every)
      return carry, losses_[0]

    (params, _), history = jax.lax.scan(block, (params, tx.init(params)), None,
                                        length=num_steps // record_every)
    return {"params": params, "loss": history, "final_loss": loss_of(params, x, y)}

  return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None)))


def predict(model_cfg, params, x, num_outputs: int = 1) -> np.ndarray:
  """Outputs [S, N, m] of the stacked per-seed params on inputs x [N, d]."""
  model = models.get_model(model_cfg, num_outputs=num_outputs)
  apply = jax.vmap(lambda p: model.apply({"params": p}, jnp.asarray(x, jnp.float32)))
  with timing.phase("eval"):
    return np.asarray(apply(params))


def seed_params(params, i: int):
  """The i-th seed's params (numpy float64) from a stacked pytree, for leeml.piecewise."""
  return jax.tree.map(lambda a: np.asarray(a[i], np.float64), params)
