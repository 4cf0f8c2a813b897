"""The GAN state and its alternating update: k critic steps, then one generator step.

`GANState` holds two parameter sets and two optax states (and the critic's
`batch_stats`, where spectral norm keeps its power-iteration vectors). It is a pytree of
arrays only, so `leeml.checkpoint.save/restore` checkpoint and resume it like a
`TrainState`. `make_gan_step` returns one pure function `step(state, real, rng)`; `real`
holds one real batch per critic step, shape (k, B, ...). All noise is drawn from
`fold_in(rng, state.step)`, so a run is a function of (seed, step) and a resumed run
replays exactly. `jit_gan_step` jits it over a `leeml.parallel` mesh: the batch axis of
`real` is sharded along `data`, the state is replicated (XLA inserts the all-reduces).

Conditional GANs (Mirza & Osindero 2014; projection critic, Miyato & Koyama 2018): `real`
may be a dict {"images": (k, B, ...), "labels": (k, B) int32}. Then the generator is
called as G(z, labels) and the critic as D(x, labels). The labels of the generated
examples are the real batch's labels: critic step i generates for the labels of real
batch i, the generator step for those of the last real batch. So generated labels follow
the data's label distribution p(y) (the conditional GAN models p(x | y) only), real and
fake halves of every critic batch hold the same multiset of labels (the critic cannot
tell them apart by label frequency), and no extra random numbers are drawn: the
unconditional step's noise stream is unchanged. The gradient penalty interpolates images
only, with the (shared) labels held fixed. Unconditional use (`real` an array) is exactly
as before.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from leeml import parallel
from leeml.gan import losses as gan_losses


@flax.struct.dataclass
class GANState:
  step: jax.Array
  g_params: Any
  d_params: Any
  d_stats: Any          # critic `batch_stats` (spectral norm's u, sigma); {} without
  g_opt_state: Any
  d_opt_state: Any
  nonfinite_step: jax.Array   # -1 while every loss and gradient so far was finite

  @classmethod
  def create(cls, g_variables, d_variables, g_tx, d_tx):
    g, d = g_variables["params"], d_variables["params"]
    return cls(step=jnp.asarray(0, jnp.int32), g_params=g, d_params=d,
               d_stats=d_variables.get("batch_stats", {}), g_opt_state=g_tx.init(g),
               d_opt_state=d_tx.init(d), nonfinite_step=jnp.asarray(-1, jnp.int32))


def split_real(real):
  """(images, labels) of a real batch: `real` itself and None, or a dict's two entries."""
  if isinstance(real, dict):
    if set(real) != {"images", "labels"}:
      raise ValueError(f"a conditional real batch is a dict with keys 'images' and "
                       f"'labels', got {sorted(real)}")
    return real["images"], real["labels"]
  return real, None


def _conditioned(labels):
  """Extra positional arguments of G and D: (labels,) when conditional, else ()."""
  return () if labels is None else (labels,)


def init_gan_state(generator, critic, g_tx, d_tx, key, *, latent_dim: int,
                   sample) -> GANState:
  """Initializes both networks from `key` (`sample`: one real batch, for the shapes).

  `sample` is an array (B, ...) or, for a conditional GAN, {"images": (B, ...),
  "labels": (B,)}.
  """
  images, labels = split_real(sample)
  kg, kd = jax.random.split(key)
  z = jnp.zeros((images.shape[0], latent_dim), images.dtype)
  g_vars = generator.init(kg, z, *_conditioned(labels))
  d_vars = critic.init(kd, images, *_conditioned(labels))
  return GANState.create(g_vars, d_vars, g_tx, d_tx)


def make_gan_step(generator, critic, g_tx: optax.GradientTransformation,
                  d_tx: optax.GradientTransformation, *, loss: str, latent_dim: int,
                  gp_weight: float = 10.0, clip_value: float = 0.01,
                  unroll_critic: bool = False):
  """Returns `step(state, real, rng) -> (state, metrics)`, k = real.shape[0] critic steps.

  unroll_critic: with k = 1, run the critic step outside `lax.scan` (no while loop). The
  same operations, fused differently (float round-off, not the algorithm, changes):
  XLA:CPU runs a small convolution inside a while loop, even of length 1, much slower
  (lec14_digits' conv GAN: 33.5 -> 19.0 CPU ms per step). Off by default, so existing
  runs keep their bits.

  `real` is (k, B, ...) or, conditional, {"images": (k, B, ...), "labels": (k, B)} (see
  the module docstring: generated examples take the real batch's labels).
  Critic step i: z ~ N(0, I), g = G(z) (no gradient to G), one forward of the critic on
  [real_i; g] (so spectral norm updates its statistics once per step), the named critic
  loss (+ gp_weight · gradient penalty for 'wgan_gp'), an update of the critic (then
  clipping to [-clip_value, clip_value] for 'wgan'). Generator step: fresh z, the named
  generator loss through the updated critic (statistics not updated), one update of G.
  """
  spec = gan_losses.get_gan_loss(loss)

  def critic_out(d_params, d_stats, x, labels, train):
    variables = {"params": d_params}
    cond = _conditioned(labels)
    if d_stats:
      variables["batch_stats"] = d_stats
      if train:
        out, new = critic.apply(variables, x, *cond, train=True, mutable=["batch_stats"])
        return out, new["batch_stats"]
    return critic.apply(variables, x, *cond, train=False), d_stats

  def generate(g_params, key, n, labels):
    z = jax.random.normal(key, (n, latent_dim))
    return generator.apply({"params": g_params}, z, *_conditioned(labels), train=True)

  def critic_step(carry, inputs):
    d_params, d_stats, d_opt_state, g_params = carry
    (real, labels), key = inputs
    kz, kgp = jax.random.split(key)
    fake = jax.lax.stop_gradient(
        generate(g_params, kz, real.shape[0], labels).astype(real.dtype))
    both = None if labels is None else jnp.concatenate([labels, labels])

    def loss_of(p):
      out, stats = critic_out(p, d_stats, jnp.concatenate([real, fake]), both, True)
      r, f = out[: real.shape[0]], out[real.shape[0]:]
      value = spec.critic(r, f)
      gp = jnp.zeros((), value.dtype)
      if spec.gradient_penalty:
        gp = gan_losses.gradient_penalty(
            lambda x: critic_out(p, stats, x, labels, False)[0], real, fake, kgp)
        value = value + gp_weight * gp
      return value, (stats, gp, jnp.mean(r), jnp.mean(f))

    (value, (stats, gp, r_mean, f_mean)), grads = jax.value_and_grad(
        loss_of, has_aux=True)(d_params)
    updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if spec.clip:
      d_params = gan_losses.clip_params(d_params, clip_value)
    metrics = {"d_loss": value, "gradient_penalty": gp, "real_score": r_mean,
               "fake_score": f_mean, "d_grad_norm": optax.tree.norm(grads)}
    return (d_params, stats, d_opt_state, g_params), metrics

  def step(state: GANState, real, rng):
    images, labels = split_real(real)
    keys = jax.random.split(jax.random.fold_in(rng, state.step), images.shape[0] + 1)
    carry = (state.d_params, state.d_stats, state.d_opt_state, state.g_params)
    if unroll_critic and images.shape[0] == 1:
      carry, d_metrics = critic_step(carry, ((images[0], None if labels is None else
                                              labels[0]), keys[0]))
      d_metrics = jax.tree.map(lambda v: v[None], d_metrics)
    else:
      carry, d_metrics = jax.lax.scan(critic_step, carry, ((images, labels), keys[:-1]))
    d_params, d_stats, d_opt_state, _ = carry
    g_labels = None if labels is None else labels[-1]

    def g_loss_of(gp):
      fake = generate(gp, keys[-1], images.shape[1], g_labels).astype(images.dtype)
      return spec.generator(critic_out(d_params, d_stats, fake, g_labels, False)[0])

    g_loss, g_grads = jax.value_and_grad(g_loss_of)(state.g_params)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    metrics = {k: v[-1] for k, v in d_metrics.items()}
    metrics["g_loss"] = g_loss
    metrics["g_grad_norm"] = optax.tree.norm(g_grads)
    finite = (jnp.isfinite(metrics["d_loss"]) & jnp.isfinite(g_loss)
              & jnp.isfinite(metrics["d_grad_norm"]) & jnp.isfinite(metrics["g_grad_norm"]))
    metrics["nonfinite"] = (~finite).astype(jnp.float32)
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, d_stats=d_stats,
        g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        nonfinite_step=jnp.where((state.nonfinite_step < 0) & ~finite, state.step,
                                 state.nonfinite_step))
    return new_state, metrics

  return step


def jit_gan_step(step, mesh=None, *, donate: bool = True):
  """`jax.jit(step)` with `real`'s batch axis (axis 1) sharded over `mesh`'s data axis."""
  mesh = parallel.make_mesh() if mesh is None else mesh
  rep = parallel.replicated(mesh)
  real_sharding = NamedSharding(mesh, P(None, parallel.DATA_AXIS))
  return jax.jit(step, in_shardings=(rep, real_sharding, rep), out_shardings=(rep, rep),
                 donate_argnums=(0,) if donate else ())
