"""Fully-connected network (lectures 1-3, 5-7): depth, width, activation, residual, norm."""

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers


class MLP(nn.Module):
  """`depth` hidden layers of `width` units: Dense -> Norm -> activation (-> + residual).

  The input is flattened, so the same model takes vectors or images. With
  `residual=True` every hidden layer after the first adds its input back (h + f(h)); the
  first layer changes the dimension, so it has no skip. `norm` is an activation
  normalizer of `layers.NORMS` ('instance' needs spatial axes, so an MLP rejects it);
  `weight_param` reparametrizes every Dense kernel, the head's included
  (`layers.WEIGHT_PARAMS`: 'weight_norm', 'spectral_norm'; see `layers.reparametrized`).
  """
  num_outputs: int
  depth: int = 2
  width: int = 128
  activation: str = "relu"
  residual: bool = False
  norm: str = "none"
  weight_param: str = "standard"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    act = layers.get_activation(self.activation)
    layers.check_norm(self.norm, spatial=False)
    wp = self.weight_param

    def dense(features, name):
      return layers.reparametrized(nn.Dense(features, name=name), wp, name=f"{name}_{wp}")

    h = jnp.reshape(x, (x.shape[0], -1))
    for i in range(self.depth):
      y = dense(self.width, f"dense_{i}")(h, train)
      y = layers.Norm(self.norm, name=f"norm_{i}")(y, train=train)
      y = act(y)
      h = h + y if (self.residual and i > 0) else y
    return dense(self.num_outputs, "head")(h, train)
