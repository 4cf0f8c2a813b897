"""A small convolutional network (lecture 9): conv blocks with pooling, then dense layers."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers


class CNN(nn.Module):
  """For each entry of `channels`: Conv(k x k, 'SAME') -> Norm -> activation -> 2x2 pool.

  Then flatten -> Dense(dense_width) -> activation -> Dense(num_outputs). Inputs are
  NHWC; a 3-D batch (N, H, W) is given a channel axis.
  """
  num_outputs: int
  channels: Sequence[int] = (32, 64)
  kernel_size: int = 3
  pool: str = "max"
  dense_width: int = 256
  activation: str = "relu"
  norm: str = "none"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    act = layers.get_activation(self.activation)
    layers.check_norm(self.norm)
    layers.check_pool(self.pool)
    if x.ndim == 3:
      x = x[..., None]
    # conv -> relu -> max-pool without a norm in between is computed by the conv layer in
    # the cheaper, equivalent order max-pool -> bias -> relu (see layers.Conv2D).
    fuse = self.norm == "none" and self.pool == "max" and self.activation == "relu"
    for i, c in enumerate(self.channels):
      conv = layers.Conv2D(c, self.kernel_size, name=f"conv_{i}")
      if fuse:
        x = conv(x, max_pool_relu=True)
        continue
      x = layers.Norm(self.norm, name=f"norm_{i}")(conv(x), train=train)
      x = layers.pool_2x2(act(x), self.pool)
    x = jnp.reshape(x, (x.shape[0], -1))
    if self.dense_width > 0:
      x = act(nn.Dense(self.dense_width, name="dense")(x))
    return nn.Dense(self.num_outputs, name="head")(x)
