"""MLP generator and critic for low-dimensional data (2-D mixtures, 1-D toys).

The critic outputs one number per example, shape (B,): a logit for the classifier losses
(minimax, non-saturating, hinge) or a score for the Wasserstein ones (`leeml.gan.losses`).
`weight_param='spectral_norm'` divides every critic kernel by its largest singular value
(Miyato et al., 2018; one power-iteration step per training call, `u` and `sigma` kept in
`batch_stats`; see `leeml.models.layers.reparametrized`).
"""

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers


class MLPGenerator(nn.Module):
  """z (B, latent) -> x (B, out_dim): `depth` hidden layers of `width` units, linear head."""
  out_dim: int = 2
  depth: int = 3
  width: int = 128
  activation: str = "relu"

  @nn.compact
  def __call__(self, z, *, train: bool = False):
    del train
    act = layers.get_activation(self.activation)
    h = z
    for i in range(self.depth):
      h = act(nn.Dense(self.width, name=f"dense_{i}")(h))
    return nn.Dense(self.out_dim, name="head")(h)


class MLPCritic(nn.Module):
  """x (B, ...) -> f(x) (B,): `depth` hidden layers, kernels optionally reparametrized."""
  depth: int = 3
  width: int = 128
  activation: str = "leaky_relu"
  weight_param: str = "standard"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    act = layers.get_activation(self.activation)
    wp = self.weight_param

    def dense(features, name):
      return layers.reparametrized(nn.Dense(features, name=name), wp, name=f"{name}_{wp}")

    h = jnp.reshape(x, (x.shape[0], -1))
    for i in range(self.depth):
      h = act(dense(self.width, f"dense_{i}")(h, train))
    return dense(1, "head")(h, train)[:, 0]
