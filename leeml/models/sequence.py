"""Sequence classifiers for lectures 10-11 (self-attention vs RNN): tokens -> one label.

Both read tokens [batch, length] (int), embed them, run a sequence layer and classify from
the output at the *last* position (where the recall task asks its question):

* `RNNClassifier`: `nn.RNN` over a flax cell (`SimpleCell`, `LSTMCell`, `GRUCell`): the
  hidden state at step t depends on step t-1, so a length-L sequence takes L sequential
  steps;
* `AttentionClassifier`: token + position embeddings, then `leeml.models.attention.Encoder`
  (self-attention: every position sees every other in one parallel step). With
  `last_query=True` the last encoder layer is computed for the last position only (the
  one the readout reads): the same parameters and the same logits, in O(L) rather than
  O(L²) time and memory for that layer (`LastQueryEncoder`).

`sized_to(kind, target, ...)` picks each model's width so its parameter count is as close
to `target` as the width grid allows, and returns the actual count.
"""

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from leeml.models import attention, layers

CELLS: dict[str, Callable[..., nn.RNNCellBase]] = {
    "simple": nn.SimpleCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
KINDS = ("simple", "lstm", "gru", "attention")
POSITIONS = ("sinusoidal", "learned")


class RNNClassifier(nn.Module):
  """Embedding (width `hidden`) -> nn.RNN(cell(hidden)) -> Dense at the last step.

  Attributes:
    num_outputs: classes.
    vocab_size: token ids are 0 … vocab_size-1.
    cell: 'simple' | 'lstm' | 'gru' (flax's SimpleCell / LSTMCell / GRUCell).
    hidden: the state width (and the embedding width).
    unroll: `nn.RNN`'s scan unroll (how many steps one loop iteration runs).
  """
  num_outputs: int
  vocab_size: int
  cell: str = "lstm"
  hidden: int = 64
  unroll: int = 1

  @nn.compact
  def __call__(self, tokens, *, train: bool = False):
    del train
    if self.cell not in CELLS:
      raise ValueError(f"cell={self.cell!r} is not one of: {', '.join(CELLS)}")
    x = nn.Embed(self.vocab_size, self.hidden, name="embed")(tokens)
    h = nn.RNN(CELLS[self.cell](self.hidden, name="cell"), unroll=self.unroll)(x)
    return nn.Dense(self.num_outputs, name="readout")(h[:, -1])


class AttentionClassifier(nn.Module):
  """Embedding + positions (width `model_dim`) -> Encoder -> Dense at the last position.

  Attributes:
    num_outputs: classes.
    vocab_size: token ids are 0 … vocab_size-1.
    model_dim: token width (heads × head_dim).
    num_layers, num_heads, mlp_dim: the encoder's (`leeml.models.attention.Encoder`).
    positions: 'sinusoidal' (Vaswani et al. 2017, no parameters) or 'learned' (one vector
      per position: adds length × model_dim parameters).
    last_query: compute the last layer for the last position only (`LastQueryEncoder`:
      the same parameters and logits; the readout never reads the other positions).
  """
  num_outputs: int
  vocab_size: int
  model_dim: int = 64
  num_layers: int = 1
  num_heads: int = 2
  mlp_dim: int = 128
  positions: str = "sinusoidal"
  last_query: bool = False

  @nn.compact
  def __call__(self, tokens, *, train: bool = False):
    x = nn.Embed(self.vocab_size, self.model_dim, name="embed")(tokens)
    if self.positions == "sinusoidal":
      x = x + attention.sinusoidal_positions(tokens.shape[-1], self.model_dim)
    elif self.positions == "learned":
      x = attention.LearnedPositions(name="positions")(x)
    else:
      raise ValueError(f"positions={self.positions!r} is not one of: {', '.join(POSITIONS)}")
    if self.last_query:
      x = LastQueryEncoder(self.num_layers, self.num_heads, self.mlp_dim, name="encoder")(x)
    else:
      x = attention.Encoder(self.num_layers, self.num_heads, self.mlp_dim, name="encoder")(
          x, train=train)
    return nn.Dense(self.num_outputs, name="readout")(x[:, -1])


class LastQueryEncoder(nn.Module):
  """`attention.Encoder` (pre-LN, no dropout) whose output is read at the last position
  only: layers 1 … n-1 as in the Encoder, the last layer for the last query alone (its
  keys and values still come from every position). Parameters are named as the Encoder's
  (`block_<i>/{norm_attention, attention, norm_mlp, mlp}`, `norm_out`), so both modules
  share one init and compute the same output at the last position. Returns [batch, 1,
  width]."""
  num_layers: int
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_layers - 1):
      x = attention.EncoderBlock(self.num_heads, self.mlp_dim, name=f"block_{i}")(x)
    x = _LastQueryBlock(self.num_heads, self.mlp_dim, name=f"block_{self.num_layers - 1}")(x)
    return layers.LayerNorm(name="norm_out")(x)


class _LastQueryBlock(nn.Module):
  """A pre-LN `attention.EncoderBlock` evaluated at the last query: x_L + Attn(LN(x_L);
  keys/values LN(x)), then + MLP(LN(.)); the EncoderBlock's parameter names."""
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x):
    h = layers.LayerNorm(name="norm_attention")(x)
    last = x[:, -1:]
    last = last + attention.MultiHeadAttention(self.num_heads, name="attention")(
        h[:, -1:], context=h)
    h = layers.LayerNorm(name="norm_mlp")(last)
    return last + attention.Mlp(self.mlp_dim, name="mlp")(h, train=False)


def make(kind: str, width: int, *, num_outputs: int, vocab_size: int, num_layers: int = 1,
         num_heads: int = 2, mlp_ratio: int = 2, positions: str = "sinusoidal",
         unroll: int = 1, last_query: bool = False) -> nn.Module:
  """The classifier of `kind` ('simple' | 'lstm' | 'gru' | 'attention') at `width`.

  For attention, width = model_dim and mlp_dim = mlp_ratio × width; `last_query`: see
  `AttentionClassifier`.
  """
  if kind in CELLS:
    return RNNClassifier(num_outputs, vocab_size, cell=kind, hidden=width, unroll=unroll)
  if kind == "attention":
    return AttentionClassifier(num_outputs, vocab_size, model_dim=width,
                               num_layers=num_layers, num_heads=num_heads,
                               mlp_dim=mlp_ratio * width, positions=positions,
                               last_query=last_query)
  raise ValueError(f"model kind {kind!r} is not one of: {', '.join(KINDS)}")


def count_params(model: nn.Module, length: int) -> int:
  """Parameters of `model` on token sequences of `length` (shapes only, nothing runs)."""
  tokens = jax.ShapeDtypeStruct((1, length), jnp.int32)
  shapes = jax.eval_shape(lambda t: model.init(jax.random.PRNGKey(0), t), tokens)
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes["params"])))


@dataclasses.dataclass(frozen=True)
class Sized:
  kind: str
  width: int
  num_params: int
  model: nn.Module


def sized_to(kind: str, target: int, *, length: int, max_width: int = 1024,
             **make_kwargs) -> Sized:
  """The `kind` classifier whose parameter count is closest to `target`.

  Widths are searched on a grid (attention: multiples of num_heads, so heads divide the
  width); the parameter count grows with width, so a bisection finds the two widths around
  `target` and the closer one wins. `length` matters only for learned positions.
  """
  step = make_kwargs.get("num_heads", 2) if kind == "attention" else 1

  def count(w):
    return count_params(make(kind, w, **make_kwargs), length)

  lo, hi = 1, max_width // step          # in units of `step`
  if count(hi * step) < target:
    raise ValueError(f"{kind}: width {hi * step} has only {count(hi * step)} parameters, "
                     f"fewer than target {target}")
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if count(mid * step) < target else (lo, mid)
  best = min((lo * step, hi * step), key=lambda w: abs(count(w) - target))
  return Sized(kind, best, count(best), make(kind, best, **make_kwargs))
