"""Spatial transformer networks (lecture 9; Jaderberg et al. 2015, arXiv:1506.02025).

A spatial transformer is three parts (paper Fig. 2): a *localization network* that
regresses the 6 parameters theta of an affine transform from the input image, a *grid
generator* (`leeml.transforms.affine_grid`) and a *sampler* (`bilinear_sample`) that
resample the input at theta @ [x, y, 1] for every output pixel. Everything is
differentiable, so the localization network learns from the classification loss alone,
with no supervision of theta. ST-CNN (paper Sec. 4.1) puts one transformer in front of an
ordinary CNN.

The localization network's last layer starts at the identity transform (zero weights,
bias = [1, 0, 0, 0, 1, 0], as the paper's Sec. 4 and its released models do), so at
initialization an ST-CNN computes exactly what its CNN computes on the raw input.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from leeml import transforms
from leeml.models import layers
from leeml.models.cnn import CNN


def _identity_bias(key, shape, dtype=jnp.float32):
  del key
  assert shape == (6,), shape
  return transforms.identity_theta().reshape(6).astype(dtype)


class LocalizationNetwork(nn.Module):
  """Image [N, H, W, C] -> theta [N, 2, 3]: `downsample` 2x2 average-poolings, then
  (Conv 3x3 -> ReLU -> 2x2 max-pool) per entry of `channels`, then Dense(dense_width) ->
  ReLU -> Dense(6) initialized to the identity. (Where the digit is and how it is turned
  shows at low resolution; the sampler still reads the full-resolution input.)"""
  channels: Sequence[int] = (8, 16)
  dense_width: int = 32
  downsample: int = 0

  @nn.compact
  def __call__(self, x):
    for _ in range(self.downsample):
      x = layers.pool_2x2(x, "avg")
    for i, c in enumerate(self.channels):
      x = layers.Conv2D(c, 3, name=f"conv_{i}")(x, max_pool_relu=True)
    x = jnp.reshape(x, (x.shape[0], -1))
    if self.dense_width > 0:
      x = nn.relu(nn.Dense(self.dense_width, name="dense")(x))
    theta = nn.Dense(6, kernel_init=nn.initializers.zeros_init(), bias_init=_identity_bias,
                     name="theta")(x)
    return theta.reshape(-1, 2, 3)


class SpatialTransformer(nn.Module):
  """x [N, H, W, C] -> (x warped by its own theta [N, out_h, out_w, C], theta [N, 2, 3]).

  `out_size` (h, w) of the sampled output; (0, 0) keeps the input size. `loc_*` configure
  the LocalizationNetwork. theta follows
  `leeml.transforms` (output point p reads the input at theta @ [p, 1]).
  """
  loc_channels: Sequence[int] = (8, 16)
  loc_dense_width: int = 32
  loc_downsample: int = 0
  out_size: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    theta = LocalizationNetwork(self.loc_channels, self.loc_dense_width, self.loc_downsample,
                                name="localization")(x)
    h, w = tuple(self.out_size) if tuple(self.out_size) != (0, 0) else x.shape[1:3]
    return transforms.bilinear_sample(x, transforms.affine_grid(theta, h, w)), theta


class STCNN(nn.Module):
  """ST-CNN: a SpatialTransformer in front of `leeml.models.cnn.CNN` (same CNN fields).

  `return_transformed=True` returns (logits, {'rectified': the transformer's output,
  'theta': [N, 2, 3]}) for plotting; otherwise the logits, like every model.
  """
  num_outputs: int
  channels: Sequence[int] = (32, 64)
  kernel_size: int = 3
  pool: str = "max"
  dense_width: int = 256
  activation: str = "relu"
  norm: str = "none"
  loc_channels: Sequence[int] = (8, 16)
  loc_dense_width: int = 32
  loc_downsample: int = 0
  out_size: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x, *, train: bool = False, return_transformed: bool = False):
    if x.ndim == 3:
      x = x[..., None]
    rectified, theta = SpatialTransformer(self.loc_channels, self.loc_dense_width,
                                          self.loc_downsample, self.out_size,
                                          name="transformer")(x)
    logits = CNN(num_outputs=self.num_outputs, channels=self.channels,
                 kernel_size=self.kernel_size, pool=self.pool, dense_width=self.dense_width,
                 activation=self.activation, norm=self.norm, name="classifier")(
                     rectified, train=train)
    if return_transformed:
      return logits, {"rectified": rectified, "theta": theta}
    return logits
