"""`train_gan(config, workdir, ...)`: the GAN training loop (lecture 14); `program(...)`:
the same GAN as a `leeml.population` Program (many seeds on one compile).

The GAN counterpart of `leeml.train.train_and_evaluate`, on the same loop
(`leeml.loop.run_loop`): the state is built from `config.seed` and replicated over a
`leeml.parallel` mesh; one jitted, donated step (`leeml.gan.step`: k critic updates, then
one generator update) runs per loop iteration on a real batch sharded along `data`;
metrics go to `workdir/metrics.jsonl` (and TensorBoard) at log steps as interval means;
orbax checkpoints go to `workdir/checkpoints`, never with a NaN/inf in them; rerunning
with the same workdir resumes from the latest checkpoint.
Because the real batches are a function of (seed, step) (the caller's `real_batch`) and
all noise of a step is drawn from `fold_in(rng, state.step)`, a resumed run replays the
uninterrupted run bit for bit.

The data and the networks come from the caller (a 2-D mixture and MLPs, digits and conv
nets, conditional or not): `real_batch(step)` returns a pytree of numpy arrays with
leading axes (k, B, ...), k = `config.critic_steps`, and `init_sample` is one batch
(B, ...) of the same pytree for the shapes. Both are passed through untouched.

Config fields (an `ml_collections.ConfigDict`; `gan_config()` lists them with defaults):
  seed                    init and noise (the data's seed is the caller's)
  num_train_steps         generator updates (each after `critic_steps` critic updates)
  critic_steps            k, critic updates per generator update
  loss                    a name of `leeml.gan.GAN_LOSSES` (minimax, non_saturating, wgan,
                          wgan_gp, hinge)
  latent_dim              size of z ~ N(0, I)
  gp_weight               λ of the gradient penalty ('wgan_gp')
  clip_value              c of the weight clipping ('wgan')
  g_optimizer,            Adam of each network: learning_rate, b1, b2 (Gulrajani et al.
  d_optimizer               2017 use 1e-4, 0.5, 0.9 for WGAN-GP), end_learning_rate_factor
                            (1: constant; else a linear decay to that fraction of the rate
                            over the run: num_train_steps updates of G, num_train_steps·k of
                            the critic)
  log_every_steps,        the loop's fields (`leeml.loop.loop_config()`): log interval
  eval_every_steps,         (of the logged means of the step metrics), calls of
  checkpoint_every_steps,   `evaluate(state, step)` (0: only at the end), orbax saves
  keep_checkpoints,         (also at the end), how many the manager keeps, tqdm bar
  progress_bar

`program(config, generator=, critic=, train=, batch_size=)` is the population form (the
lectures' path: the seeds of one GAN train on one compile, `population.run`): the state is
the `GANState`, the step is `make_gan_step`'s, and the real batches are the core's: step t
reads rows `data.train_indices(t, k·B, N, seed)` of the in-memory split `train` (the
member's (seed, epoch) permutations), reshaped to (k, B, ...); `train.inputs` are the
images, `train.targets` the labels of a conditional GAN. Member `seed` computes what
`train_gan` with `config.seed = seed` computes when its `real_batch(step)` reads the same
rows (`real_batch_of` builds that function; tests/test_gan_train.py checks the equality).
The config's loop fields (log/eval/checkpoint periods) are not read by `program`: they
are `population.run`'s arguments.
"""

from typing import Any, Callable

import jax
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from leeml import config as config_lib, data, loop, parallel, population
from leeml.gan import losses as gan_losses
from leeml.gan.step import GANState, init_gan_state, jit_gan_step, make_gan_step


def gan_config() -> ml_collections.ConfigDict:
  """Every field `train_gan` reads, with its default (and therefore its type)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.update(loop.loop_config())
  c.critic_steps = 1
  c.loss = "non_saturating"
  c.latent_dim = 2
  c.gp_weight = 10.0
  c.clip_value = 0.01
  c.g_optimizer = ml_collections.ConfigDict(dict(learning_rate=1e-4, b1=0.5, b2=0.9,
                                                end_learning_rate_factor=1.0))
  c.d_optimizer = ml_collections.ConfigDict(dict(learning_rate=1e-4, b1=0.5, b2=0.9,
                                                end_learning_rate_factor=1.0))
  c.log_every_steps = 100
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 2
  return c


def validate_gan_config(config) -> None:
  """Raises `leeml.config.ConfigError` (one line naming the field) for a config that
  `train_gan` cannot run: unknown or missing keys, wrong types, impossible values, unknown
  loss."""
  base = gan_config()
  config_lib.check_keys("", config, {k: base[k] for k in base.keys()}, "train_gan field",
                        required=True)
  for name in ("g_optimizer", "d_optimizer"):
    config_lib.check_keys(f"{name}.", config[name], base[name].to_dict(), "Adam field",
                          required=True)
  config_lib.validate_loop(config)
  config_lib.one_of("loss", config.loss, gan_losses.GAN_LOSSES)
  for path in ("critic_steps", "latent_dim", "g_optimizer.learning_rate",
               "d_optimizer.learning_rate"):
    config_lib.positive(config, path)
  for path in ("gp_weight", "clip_value"):
    config_lib.positive(config, path, allow_zero=True)
  for name in ("g_optimizer", "d_optimizer"):
    config_lib.positive(config, f"{name}.end_learning_rate_factor", allow_zero=True)
  for name in ("g_optimizer", "d_optimizer"):
    for b in ("b1", "b2"):
      if not 0.0 <= config[name][b] < 1.0:
        raise config_lib.ConfigError(f"config.{name}.{b} must be in [0, 1) "
                                     f"(got {config[name][b]!r})")


def make_gan_optimizers(config) -> tuple[optax.GradientTransformation,
                                         optax.GradientTransformation]:
  """(generator, critic) Adam chains from `config.g_optimizer` / `config.d_optimizer`
  (fields learning_rate, b1, b2, end_learning_rate_factor), with the learning rate
  injected so it can be logged. The critic takes `critic_steps` updates per step, so its
  decay spans num_train_steps · critic_steps updates."""
  def adam(c, updates: int):
    lr = c.learning_rate
    if c.end_learning_rate_factor != 1.0:
      lr = optax.linear_schedule(c.learning_rate, c.learning_rate * c.end_learning_rate_factor,
                                 updates)
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=c.b1, b2=c.b2)
  return (adam(config.g_optimizer, config.num_train_steps),
          adam(config.d_optimizer, config.num_train_steps * config.critic_steps))


def _place_batch(real, mesh):
  """Every leaf (k, B, ...) as a global array, batch axis B sharded along `data`. Each
  process holds the whole global batch (it is a function of the step), so this also
  works with several processes."""
  sharding = NamedSharding(mesh, P(None, parallel.DATA_AXIS))

  def place(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
  return jax.tree.map(place, real)


def _check_batch(real, config, mesh) -> None:
  for path, x in jax.tree_util.tree_leaves_with_path(real):
    shape = np.shape(x)
    where = f"real_batch(step){jax.tree_util.keystr(path)}"
    if len(shape) < 2 or shape[0] != config.critic_steps:
      raise ValueError(f"{where} has shape {shape}; expected (critic_steps="
                       f"{config.critic_steps}, batch, ...)")
    if shape[1] % mesh.size:
      raise ValueError(f"{where}: batch {shape[1]} is not divisible by the device count "
                       f"{mesh.size}")


def _learning_rates(state: GANState) -> dict:
  out = {}
  for name, opt_state in (("g", state.g_opt_state), ("d", state.d_opt_state)):
    hyper = getattr(opt_state, "hyperparams", None)
    if hyper and "learning_rate" in hyper:
      out[f"train_{name}_learning_rate"] = float(parallel.to_host(hyper["learning_rate"]))
  return out


def train_gan(config, workdir: str | None, *, generator, critic,
              real_batch: Callable[[int], Any], init_sample: Any, mesh=None,
              evaluate: Callable[[GANState, int], dict] | None = None
              ) -> tuple[GANState, list[dict]]:
  """Trains a GAN for `config.num_train_steps` steps; returns (final state, history).

  `history` holds every record logged (also those of earlier, resumed-from invocations,
  read back from workdir/metrics.jsonl): {"step", "train_<metric>": interval mean, ...}
  at log steps and {"step", **evaluate(state, step)} at eval steps, in step order.
  `workdir=None` trains without touching the disk (no checkpoints, no resume).
  Raises `leeml.loop.NonFiniteError` naming the step if a loss or gradient turns NaN/inf.
  """
  validate_gan_config(config)
  mesh = parallel.make_mesh() if mesh is None else mesh
  replicated = parallel.replicated(mesh)
  g_tx, d_tx = make_gan_optimizers(config)

  init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  init = jax.jit(lambda key, sample: init_gan_state(
      generator, critic, g_tx, d_tx, key, latent_dim=config.latent_dim, sample=sample),
                 out_shardings=replicated)
  state = init(init_rng, init_sample)
  step_rng = jax.device_put(step_rng, replicated)
  gan_step = jit_gan_step(make_gan_step(
      generator, critic, g_tx, d_tx, loss=config.loss, latent_dim=config.latent_dim,
      gp_weight=config.gp_weight, clip_value=config.clip_value), mesh)
  checked = False

  def step_fn(state, step):
    nonlocal checked
    real = real_batch(step)
    if not checked:  # the first batch of this call: its shapes against the config
      _check_batch(real, config, mesh)
      checked = True
    state, metrics = gan_step(state, _place_batch(real, mesh), step_rng)
    return state, {f"train_{k}": v for k, v in metrics.items()}

  return loop.run_loop(
      state=state, step_fn=step_fn, config=config, workdir=workdir, evaluate=evaluate,
      per_step_records=False, log_extra=_learning_rates, keep_history=True,
      desc=f"gan {config.loss}", postfix=("train_d_loss", "train_g_loss"))


def real_batch_of(train: data.ArraySplit, config, batch_size: int, seed: int,
                  conditional: bool = False) -> Callable[[int], Any]:
  """`real_batch(step)` for `train_gan` reading what a `program` member of `seed` reads:
  rows `data.train_indices(step, k·B, N, seed)` of `train`, as (k, B, ...)."""
  k = config.critic_steps

  def real_batch(step: int):
    idx = data.train_indices(step, k * batch_size, len(train), seed)
    return _as_real(train.get_batch(idx), k, batch_size, conditional)
  return real_batch


def _as_real(batch, k: int, batch_size: int, conditional: bool):
  """A (k·B, ...) batch {"inputs", "targets"} as `make_gan_step`'s real (k, B, ...)."""
  images = batch["inputs"].reshape((k, batch_size) + batch["inputs"].shape[1:])
  if conditional:
    return {"images": images, "labels": batch["targets"].reshape(k, batch_size)}
  return images


def program(config, *, generator, critic, train: data.ArraySplit, batch_size: int,
            conditional: bool = False, family: str = "",
            unroll_critic: bool = False) -> population.Program:
  """The GAN of `config` as a population Program (see the module docstring).

  One population step is one `train_gan` step: `config.critic_steps` critic updates on
  k = critic_steps real batches of `batch_size`, then one generator update. Members freeze
  at a step whose loss or gradient is NaN/inf (the step's `nonfinite` metric). `family`:
  `population.default_strategy`'s hint ('mlp', 'cnn'). unroll_critic: `make_gan_step`'s
  (k = 1 without a loop: faster conv GANs on XLA:CPU, other round-off).
  """
  validate_gan_config(config)
  k = config.critic_steps
  if k * batch_size > len(train):
    raise config_lib.ConfigError(
        f"config.critic_steps × batch = {k * batch_size} exceeds the {len(train)} training "
        "examples")
  g_tx, d_tx = make_gan_optimizers(config)
  gan_step = make_gan_step(generator, critic, g_tx, d_tx, loss=config.loss,
                           latent_dim=config.latent_dim, gp_weight=config.gp_weight,
                           clip_value=config.clip_value, unroll_critic=unroll_critic)
  first = {"inputs": train.inputs[:k * batch_size], "targets": train.targets[:k * batch_size]}
  sample = jax.tree.map(lambda a: a[0], _as_real(first, k, batch_size, conditional))

  def init(key):
    return init_gan_state(generator, critic, g_tx, d_tx, key, latent_dim=config.latent_dim,
                          sample=sample)

  def train_step(state, batch, rng, hparams):
    del hparams
    return gan_step(state, _as_real(batch, k, batch_size, conditional), rng)

  return population.Program(init=init, train_step=train_step, train=train,
                            batch_size=k * batch_size, family=family)
