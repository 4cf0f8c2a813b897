"""DCGAN-style convolutional generator and critic for small images, optionally conditional.

Generator (Radford et al., 2016, DCGAN, scaled down): z (B, latent) -- with a label
embedding concatenated to z when conditional (Mirza & Osindero, 2014) -- -> Dense ->
reshape to (s, s, channels[0]) with s = image_size / 2^len(channels) -> per entry c of
`channels`: 2x nearest-neighbour upsampling, 3x3 conv with c channels, norm, ReLU -> a 3x3
conv to `out_channels` -> sigmoid (data in [0, 1], as `leeml.datasets` loads images) or
tanh (data in [-1, 1]). Upsample + conv instead of transposed convolutions avoids the
checkerboard artifacts of overlapping strides (Odena et al., 2016, Distill) and reuses
`layers.Conv2D`. Norm: DCGAN's batch norm would give G running statistics, a second
`batch_stats` collection the GAN state and step do not carry (G is applied with params
only), and it couples the examples of a batch; so G takes `layers.Norm` kinds that are
per-example ('none', 'layer', 'group', 'instance') and rejects 'batch' with that reason.

Critic: per entry c of `channels`, a 3x3 conv with stride 2 ('SAME') and c channels,
leaky ReLU (slope 0.2, DCGAN's) -> flatten = φ(x) -> f(x) = ψ(φ(x)), ψ a Dense to one
number. Conditional by projection (Miyato & Koyama, 2018): f(x, y) = ψ(φ(x)) +
<embed(y), φ(x)>, the inner product of a learned class embedding with the features.
Every kernel (convs, ψ and the class embedding) is reparametrized by `weight_param`
('standard' | 'weight_norm' | 'spectral_norm', `layers.reparametrized`); the embedding
can be given its own (`embed_weight_param`): with spectral norm its rows are bounded
together by 1, which makes the projection term small next to ψ early in training. Spectral norm
divides each kernel reshaped to (-1, out) by its top singular value (as flax's
SpectralNorm does for convolutions, and Miyato et al. 2018 sec. 3.2 in practice); that
matrix's norm bounds the conv's Lipschitz constant only up to a factor ≤ k (the kernel
size), as that paper notes. Without `batch_stats` the critic has none (its outputs are
(B,): a logit or a score, as `leeml.gan.losses` expects).
"""

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers

OUTPUTS = ("sigmoid", "tanh")
GENERATOR_NORMS = ("none", "layer", "group", "instance")


def _check_labels(num_classes: int, labels, module: str) -> None:
  if num_classes and labels is None:
    raise ValueError(f"{module} has num_classes={num_classes}: call it with labels")
  if not num_classes and labels is not None:
    raise ValueError(f"{module} is unconditional (num_classes=0) but got labels")


class ConvGenerator(nn.Module):
  """z (B, latent) [, labels (B,)] -> images (B, image_size, image_size, out_channels)."""
  image_size: int = 16
  out_channels: int = 1
  channels: tuple[int, ...] = (64, 32)
  norm: str = "none"
  output: str = "sigmoid"
  num_classes: int = 0          # > 0: conditional on integer labels in [0, num_classes)
  embed_dim: int = 16

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = False):
    del train  # no batch statistics in G (see the module docstring)
    _check_labels(self.num_classes, labels, "ConvGenerator")
    if self.norm not in GENERATOR_NORMS:
      raise ValueError(f"generator.norm={self.norm!r} is not one of: "
                       f"{', '.join(GENERATOR_NORMS)} (batch norm would need G's running "
                       "statistics in the GAN state)")
    if self.output not in OUTPUTS:
      raise ValueError(f"generator.output={self.output!r} is not one of: {', '.join(OUTPUTS)}")
    up = 2 ** len(self.channels)
    if self.image_size % up:
      raise ValueError(f"generator.image_size={self.image_size} is not divisible by "
                       f"2^len(channels) = {up}")
    s = self.image_size // up
    h = z
    if self.num_classes:
      h = jnp.concatenate([h, nn.Embed(self.num_classes, self.embed_dim, name="embed")(labels)
                           .astype(z.dtype)], axis=-1)
    h = nn.relu(nn.Dense(s * s * self.channels[0], name="dense")(h))
    h = jnp.reshape(h, (h.shape[0], s, s, self.channels[0]))
    for i, c in enumerate(self.channels):
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)   # nearest-neighbour 2x
      h = layers.Conv2D(c, 3, name=f"conv_{i}")(h)
      h = nn.relu(layers.Norm(self.norm, name=f"norm_{i}")(h, train=False))
    h = layers.Conv2D(self.out_channels, 3, name="to_image")(h)
    return nn.sigmoid(h) if self.output == "sigmoid" else jnp.tanh(h)


class ConvCritic(nn.Module):
  """images (B, H, W, C) [, labels (B,)] -> f(x[, y]) (B,): strided convs, projection."""
  channels: tuple[int, ...] = (32, 64)
  weight_param: str = "standard"
  negative_slope: float = 0.2
  num_classes: int = 0          # > 0: projection conditioning on integer labels
  # The class embedding's reparametrization; '' = the same as `weight_param`.
  embed_weight_param: str = ""

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = False):
    _check_labels(self.num_classes, labels, "ConvCritic")

    def rp(layer, wp=self.weight_param):
      return layers.reparametrized(layer, wp, name=f"{layer.name}_{wp}")

    h = x if x.ndim == 4 else x[..., None]
    for i, c in enumerate(self.channels):
      h = rp(nn.Conv(c, (3, 3), strides=2, padding="SAME", name=f"conv_{i}"))(h, train)
      h = nn.leaky_relu(h, self.negative_slope)
    phi = jnp.reshape(h, (h.shape[0], -1))
    out = rp(nn.Dense(1, name="head"))(phi, train)[:, 0]
    if self.num_classes:
      # Same scale as ψ's kernel at init (variance 1/features), not nn.Embed's N(0, 1).
      init = nn.initializers.variance_scaling(1.0, "fan_out", "normal")
      embed = rp(nn.Embed(self.num_classes, phi.shape[-1], embedding_init=init,
                          name="embed"), self.embed_weight_param or self.weight_param)(
                              labels, train)
      out = out + jnp.sum(embed * phi, axis=-1)
    return out
