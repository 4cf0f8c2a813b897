"""A small convolutional network (lecture 9): conv blocks with pooling, then dense layers."""

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers

PADDINGS = ("SAME", "VALID")


class CNN(nn.Module):
  """For each entry of `channels`: Conv(k x k, strides, padding) -> Norm -> activation -> pool.

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
  # Lecture 9's "stride" and "padding" of every conv layer. Stride 1 + 'SAME' (the
  # default) uses layers.Conv2D's fast path; anything else is nn.Conv (same params).
  strides: int = 1
  padding: str = "SAME"
  # Lecture 7: every conv/dense kernel reparametrized (layers.WEIGHT_PARAMS).
  weight_param: str = "standard"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    act = layers.get_activation(self.activation)
    layers.check_norm(self.norm)
    layers.check_pool(self.pool)
    if x.ndim == 3:
      x = x[..., None]
    # conv -> relu -> max-pool without a norm in between is computed by the conv layer in
    # the cheaper, equivalent order max-pool -> bias -> relu (see layers.Conv2D).
    if self.padding not in PADDINGS:
      raise ValueError(f"model.padding={self.padding!r} is not one of: {', '.join(PADDINGS)}")
    fast = self.strides == 1 and self.padding == "SAME"
    fuse = fast and self.norm == "none" and self.pool == "max" and self.activation == "relu"
    def rp(layer):  # `layer` itself for "standard"; see layers.reparametrized
      return functools.partial(layers.reparametrized(
          layer, self.weight_param, name=f"{layer.name}_{self.weight_param}"), train=train)
    for i, c in enumerate(self.channels):
      k = self.kernel_size
      conv = (layers.Conv2D(c, k, name=f"conv_{i}") if fast else
              nn.Conv(c, (k, k), strides=self.strides, padding=self.padding, name=f"conv_{i}"))
      conv = rp(conv)
      if fuse:
        x = conv(x, max_pool_relu=True)
        continue
      x = layers.Norm(self.norm, name=f"norm_{i}")(conv(x), train=train)
      x = layers.pool_2x2(act(x), self.pool)
    x = jnp.reshape(x, (x.shape[0], -1))
    if self.dense_width > 0:
      x = act(rp(nn.Dense(self.dense_width, name="dense"))(x))
    return rp(nn.Dense(self.num_outputs, name="head"))(x)
