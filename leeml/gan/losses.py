"""GAN losses by name, on critic outputs (logits for the classifier losses).

With D(x) = sigmoid(f(x)) and f the critic's output (a logit), per batch means:

  name            critic loss (minimized)                 generator loss (minimized)
  minimax         -E log D(x) - E log(1 - D(G(z)))        E log(1 - D(G(z)))
                  = E softplus(-f(x)) + E softplus(f(g))  = -E softplus(f(g))
  non_saturating  same as minimax                         -E log D(G(z)) = E softplus(-f(g))
  wgan            E f(g) - E f(x)  (+ weight clipping)     -E f(g)
  wgan_gp         E f(g) - E f(x) + λ E (|∇f(x̂)| - 1)²     -E f(g)
  hinge           E relu(1 - f(x)) + E relu(1 + f(g))     -E f(g)

Sources: minimax and non-saturating, Goodfellow et al. (2014) sec. 3; wgan, Arjovsky et
al. (2017) Algorithm 1 (clip c = 0.01); wgan_gp, Gulrajani et al. (2017) Algorithm 1
(λ = 10, x̂ uniform on segments between real and generated points); hinge, Lim & Ye
(2017) and Miyato et al. (2018). The minimax critic loss at the optimal D equals
log 4 - 2·JS(P_data || P_G) (Goodfellow et al., Theorem 1).
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp


def minimax_critic(real: jax.Array, fake: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))


def minimax_generator(fake: jax.Array) -> jax.Array:
  return -jnp.mean(jax.nn.softplus(fake))


def non_saturating_generator(fake: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-fake))


def wasserstein_critic(real: jax.Array, fake: jax.Array) -> jax.Array:
  return jnp.mean(fake) - jnp.mean(real)


def wasserstein_generator(fake: jax.Array) -> jax.Array:
  return -jnp.mean(fake)


def hinge_critic(real: jax.Array, fake: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


@dataclasses.dataclass(frozen=True)
class GanLoss:
  """A named pair of losses, and what the critic update needs besides them."""
  critic: Callable[[jax.Array, jax.Array], jax.Array]
  generator: Callable[[jax.Array], jax.Array]
  gradient_penalty: bool = False   # add λ E (|∇_x f(x̂)| - 1)² to the critic loss
  clip: bool = False               # clip every critic parameter to [-c, c] after its update


GAN_LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss(minimax_critic, minimax_generator),
    "non_saturating": GanLoss(minimax_critic, non_saturating_generator),
    "wgan": GanLoss(wasserstein_critic, wasserstein_generator, clip=True),
    "wgan_gp": GanLoss(wasserstein_critic, wasserstein_generator, gradient_penalty=True),
    "hinge": GanLoss(hinge_critic, wasserstein_generator),
}


def get_gan_loss(name: str) -> GanLoss:
  if name not in GAN_LOSSES:
    raise ValueError(f"gan.loss={name!r} is not one of: {', '.join(sorted(GAN_LOSSES))}")
  return GAN_LOSSES[name]


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array], real: jax.Array,
                     fake: jax.Array, key: jax.Array) -> jax.Array:
  """E (|∇_x f(x̂)|₂ - 1)², x̂ = ε x + (1 - ε) g, ε ~ U[0, 1] per example.

  `critic_fn` maps a batch (B, ...) to outputs (B,) (or (B, 1)); each example's output
  depends only on that example, so the gradient of the sum gives per-example gradients.
  """
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
  norms = jnp.sqrt(jnp.sum(jnp.reshape(grads, (grads.shape[0], -1)) ** 2, axis=-1) + 1e-12)
  return jnp.mean((norms - 1.0) ** 2)


def clip_params(params, clip_value: float):
  """WGAN weight clipping: every parameter into [-c, c]."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
