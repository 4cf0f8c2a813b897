"""A small Vision Transformer (lecture 10): image -> patches -> tokens -> encoder -> class.

Dosovitskiy et al., "An image is worth 16x16 words", ICLR 2021: the image is cut into
non-overlapping p x p patches, each flattened and linearly embedded (equivalently a p x p
convolution with stride p), position embeddings are added, and a pre-norm Transformer
encoder mixes the tokens; the class comes from global average pooling of the tokens
("gap", their appendix D.3) or from a learned [class] token ("token"). (The field is
`classifier`, as in the paper's code, not `pool`: leeml's config validator reads `pool` as
the CNN's pooling.)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from leeml.models import attention

CLASSIFIERS = ("gap", "token")
POSEMBS = ("learned", "sincos2d", "none")


def patchify(x: jax.Array, patch_size: int) -> jax.Array:
  """NHWC images -> [N, (H/p)*(W/p), p*p*C] row-major patches (each flattened HWC)."""
  n, h, w, c = x.shape
  p = patch_size
  if h % p or w % p:
    raise ValueError(f"image {h}x{w} is not divisible into {p}x{p} patches")
  x = x.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, (h // p) * (w // p), p * p * c)


def patch_centers(height: int, width: int, patch_size: int) -> np.ndarray:
  """[num_patches, 2] pixel coordinates (row, col) of the patch centres, row-major."""
  p = patch_size
  return attention.grid_positions(height // p, width // p) * p + (p - 1) / 2


class ViT(nn.Module):
  """Patch embedding -> (+ positions) -> Encoder -> pool -> Dense(num_outputs).

  Inputs are NHWC (a 3-D batch gets a channel axis). With `return_attention=True` the
  call returns (logits, [per-layer weights [N, heads, tokens, tokens]]); with
  classifier='token', token 0 is the class token.
  """
  num_outputs: int
  patch_size: int = 4
  width: int = 64
  depth: int = 2
  num_heads: int = 4
  mlp_dim: int = 128
  dropout: float = 0.0
  classifier: str = "gap"
  posemb: str = "learned"

  @nn.compact
  def __call__(self, x, *, train: bool = False, return_attention: bool = False):
    if self.classifier not in CLASSIFIERS:
      raise ValueError(f"model.classifier={self.classifier!r} is not one of: "
                       f"{', '.join(CLASSIFIERS)}")
    if self.posemb not in POSEMBS:
      raise ValueError(f"model.posemb={self.posemb!r} is not one of: {', '.join(POSEMBS)}")
    if x.ndim == 3:
      x = x[..., None]
    h, w = x.shape[1:3]
    tokens = nn.Dense(self.width, name="embedding")(patchify(x, self.patch_size))
    if self.posemb == "learned":
      tokens = attention.LearnedPositions(name="posemb")(tokens)
    elif self.posemb == "sincos2d":
      p = self.patch_size
      tokens = tokens + attention.sinusoidal_positions_2d(h // p, w // p, self.width)
    if self.classifier == "token":
      cls = self.param("cls", nn.initializers.zeros_init(), (1, 1, self.width), jnp.float32)
      tokens = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.width)),
                                tokens], axis=1)
    tokens = nn.Dropout(self.dropout, deterministic=not train)(tokens)
    tokens, weights = attention.Encoder(
        self.depth, self.num_heads, self.mlp_dim, dropout=self.dropout, name="encoder")(
            tokens, train=train, return_weights=True)
    pooled = tokens[:, 0] if self.classifier == "token" else tokens.mean(axis=1)
    logits = nn.Dense(self.num_outputs, name="head",
                      kernel_init=nn.initializers.zeros_init())(pooled)
    return (logits, weights) if return_attention else logits


def attention_distances(weights: list, height: int, width: int, patch_size: int,
                        has_cls: bool = False) -> np.ndarray:
  """[layers, heads] mean attention distance in pixels (Dosovitskiy et al. 2021, Fig. 7).

  With a class token, only patch-to-patch weights count, renormalized per query.
  """
  pos = patch_centers(height, width, patch_size)
  out = []
  for wl in weights:
    if has_cls:
      wl = wl[:, :, 1:, 1:]
      wl = wl / jnp.maximum(wl.sum(-1, keepdims=True), 1e-12)
    out.append(np.asarray(attention.mean_attention_distance(wl, pos)))
  return np.stack(out)
