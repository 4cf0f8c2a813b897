"""Residual MLP with Transformer-style blocks (lecture 6 warmup, lectures 12-13 layout).

Each block is x + FFN(x), FFN = Dense(width * expansion) -> activation -> Dense(width),
with LayerNorm placed as in the Transformer variants of Xiong et al. 2020, "On Layer
Normalization in the Transformer Architecture" (Fig. 1):
  post-norm (Vaswani et al. 2017):  x <- LN(x + FFN(x))
  pre-norm:                         x <- x + FFN(LN(x)),  and one LN before the head.
Post-norm puts a LayerNorm on the residual path itself, so gradients near the output are
large at initialization, which is what makes its early Adam updates unstable without a
learning-rate warmup (Xiong et al. 2020; Liu et al. 2020, RAdam).
"""

import flax.linen as nn
import jax.numpy as jnp

from leeml.models import layers

NORM_POSITIONS = ("pre", "post")


class ResidualMLP(nn.Module):
  """Dense(width) embedding, `depth` residual FFN blocks, (LN), Dense head.

  The input is flattened, so the model takes vectors or images.
  """
  num_outputs: int
  depth: int = 4
  width: int = 64
  expansion: int = 4
  activation: str = "relu"
  norm_position: str = "pre"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train  # no dropout or batch statistics
    if self.norm_position not in NORM_POSITIONS:
      raise ValueError(f"model.norm_position={self.norm_position!r} is not one of: "
                       f"{', '.join(NORM_POSITIONS)}")
    act = layers.get_activation(self.activation)
    h = nn.Dense(self.width, name="embed")(jnp.reshape(x, (x.shape[0], -1)))
    for i in range(self.depth):
      inner = layers.LayerNorm(name=f"norm_{i}")(h) if self.norm_position == "pre" else h
      f = nn.Dense(self.width * self.expansion, name=f"ffn_in_{i}")(inner)
      f = nn.Dense(self.width, name=f"ffn_out_{i}")(act(f))
      h = h + f
      if self.norm_position == "post":
        h = layers.LayerNorm(name=f"norm_{i}")(h)
    if self.norm_position == "pre":
      h = layers.LayerNorm(name="final_norm")(h)
    return nn.Dense(self.num_outputs, name="head")(h)
