"""Locally connected layers (lecture 9): receptive fields without parameter sharing.

A locally connected layer is a convolution whose filter is *not* shared: every output
position (h, w) has its own (k·k·C_in, features) weights and its own bias. It keeps the
lecture's first simplification (each neuron looks at a small receptive field) and drops
the second (neurons on different fields share parameters), so it sits between a fully
connected layer and a convolution; with all positions' weights equal it is the
convolution.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from leeml import receptive_field
from leeml.models import layers


def extract_patches(x: jax.Array, kernel_size: int, strides: int = 1,
                    padding: str = "SAME") -> jax.Array:
  """(B, H, W, C) -> (B, H', W', k·k·C) patches, feature order (i, j, c) as an HWIO kernel.

  H', W' and the padding are those of a convolution with the same kernel, stride and
  padding (lax's 'SAME' rule), so `patches @ kernel.reshape(-1, features)` is that conv.
  """
  _, h, w, _ = x.shape
  layer = receptive_field.Layer("conv", kernel_size, strides, padding)
  (th, bh), (tw, bw) = receptive_field.pads(h, layer), receptive_field.pads(w, layer)
  ho, wo = receptive_field.output_size(h, layer), receptive_field.output_size(w, layer)
  xp = jnp.pad(x, ((0, 0), (th, bh), (tw, bw), (0, 0)))
  s = strides
  cols = [xp[:, i:i + (ho - 1) * s + 1:s, j:j + (wo - 1) * s + 1:s, :]
          for i in range(kernel_size) for j in range(kernel_size)]
  return jnp.concatenate(cols, axis=-1)


class LocallyConnected2D(nn.Module):
  """Conv-shaped layer with unshared weights: y[b,h,w] = patch[b,h,w] @ kernel[h,w] + bias[h,w].

  Params: `kernel` (H', W', k·k·C_in, features), lecun-normal with fan-in k·k·C_in (as
  each position's filter would be in nn.Conv); `bias` (H', W', features), zeros.
  """
  features: int
  kernel_size: int = 3
  strides: int = 1
  padding: str = "SAME"
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal(in_axis=-2, out_axis=-1,
                                                       batch_axis=(0, 1))

  @nn.compact
  def __call__(self, x):
    patches = extract_patches(x, self.kernel_size, self.strides, self.padding)
    _, ho, wo, taps = patches.shape
    kernel = self.param("kernel", self.kernel_init, (ho, wo, taps, self.features),
                        jnp.float32)
    y = jnp.einsum("bhwp,hwpf->bhwf", patches, kernel)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (ho, wo, self.features),
                         jnp.float32)
    return y


class LocallyConnectedNet(nn.Module):
  """The CNN's architecture with every conv replaced by a locally connected layer.

  For each entry of `channels`: LocallyConnected2D(k x k) -> activation -> 2x2 pool; then
  flatten -> Dense(dense_width) -> activation -> Dense(num_outputs). Same receptive
  fields and shapes as `CNN` with the same fields; only the sharing is gone.
  """
  num_outputs: int
  channels: Sequence[int] = (32, 64)
  kernel_size: int = 3
  pool: str = "max"
  dense_width: int = 256
  activation: str = "relu"
  strides: int = 1
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train  # no dropout / batch statistics
    act = layers.get_activation(self.activation)
    layers.check_pool(self.pool)
    if x.ndim == 3:
      x = x[..., None]
    for i, c in enumerate(self.channels):
      x = LocallyConnected2D(c, self.kernel_size, self.strides, self.padding,
                             name=f"local_{i}")(x)
      x = layers.pool_2x2(act(x), self.pool)
    x = jnp.reshape(x, (x.shape[0], -1))
    if self.dense_width > 0:
      x = act(nn.Dense(self.dense_width, name="dense")(x))
    return nn.Dense(self.num_outputs, name="head")(x)
