"""Self-attention (lectures 10-11): scaled dot-product attention, masks, multi-head
attention, positional encodings and a Transformer encoder, all Flax Linen and pure.

Shapes follow flax: queries/keys/values are [batch, length, heads, head_dim]; attention
weights are [batch, heads, q_len, kv_len]; a boolean `mask` (True = attend) and an additive
`bias` broadcast to the weights' shape. `MultiHeadAttention` keeps flax's parameter layout
(`query`/`key`/`value`/`out` with DenseGeneral kernels), so a
`flax.linen.MultiHeadDotProductAttention` parameter tree loads into it unchanged.

Masked positions get exactly zero weight. One difference from flax: a query whose every
key is masked (e.g. a padding query) gets all-zero weights, so its output is the output
bias, where flax spreads it uniformly over the masked keys. (The exact conv-as-attention
construction relies on this: an off-image offset contributes zero, as zero padding does.)

Vaswani et al., "Attention is all you need", NeurIPS 2017 (scaled dot-product attention,
sinusoidal positions); Shaw et al., NAACL 2018 (relative positions).
"""

import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from leeml.models import layers

Array = jax.Array


# --------------------------------------------------------------------------------------
# Scaled dot-product attention and masks.
# --------------------------------------------------------------------------------------


def attention_weights(q: Array, k: Array, mask: Optional[Array] = None,
                      bias: Optional[Array] = None) -> Array:
  """softmax(q k^T / sqrt(d) + bias) over keys, with masked keys at exactly zero.

  Args:
    q: [batch, q_len, heads, head_dim] queries.
    k: [batch, kv_len, heads, head_dim] keys.
    mask: optional boolean, broadcastable to [batch, heads, q_len, kv_len]; True = attend.
    bias: optional additive scores, broadcastable to [batch, heads, q_len, kv_len].

  Returns:
    [batch, heads, q_len, kv_len] weights; each row sums to 1, or to 0 if fully masked.
  """
  scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
  if bias is not None:
    scores = scores + bias
  if mask is None:
    return jax.nn.softmax(scores, axis=-1)
  mask = jnp.broadcast_to(mask, scores.shape)
  scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
  weights = jax.nn.softmax(scores, axis=-1)
  # exp(min - max) is already 0 when a row has an unmasked key; the `where` makes masked
  # entries exactly 0 in every row, fully masked ones included.
  return jnp.where(mask, weights, 0.0)


def dot_product_attention(q: Array, k: Array, v: Array, mask: Optional[Array] = None,
                          bias: Optional[Array] = None) -> tuple[Array, Array]:
  """Scaled dot-product attention: out_q = sum_k softmax_k(q.k / sqrt(d)) v_k.

  Args:
    q: [batch, q_len, heads, head_dim].
    k: [batch, kv_len, heads, head_dim].
    v: [batch, kv_len, heads, v_dim].
    mask: optional boolean mask broadcastable to [batch, heads, q_len, kv_len].
    bias: optional additive score bias, same broadcasting.

  Returns:
    (out [batch, q_len, heads, v_dim], weights [batch, heads, q_len, kv_len]).
  """
  weights = attention_weights(q, k, mask, bias)
  return jnp.einsum("bhqk,bkhd->bqhd", weights, v), weights


def padding_mask(lengths_or_valid: Array, length: Optional[int] = None, *,
                 queries: bool = False) -> Array:
  """A key-padding mask [batch, 1, 1|q_len, kv_len] (True = a real token).

  Args:
    lengths_or_valid: [batch] integer lengths (tokens 0..len-1 are real), or a [batch,
      length] boolean array of valid positions.
    length: the padded length (required with integer lengths).
    queries: also mask padding *queries* (rows): the result is
      [batch, 1, length, length] with True only where query and key are both real.
  """
  x = jnp.asarray(lengths_or_valid)
  if x.dtype == jnp.bool_:
    valid = x
  else:
    if length is None:
      raise ValueError("padding_mask: `length` is required with integer lengths")
    valid = jnp.arange(length)[None, :] < x[:, None]
  if queries:
    return valid[:, None, :, None] & valid[:, None, None, :]
  return valid[:, None, None, :]


def causal_mask(length: int) -> Array:
  """[1, 1, length, length] lower-triangular mask: query i attends to keys j <= i."""
  return jnp.tril(jnp.ones((length, length), jnp.bool_))[None, None]


# --------------------------------------------------------------------------------------
# Multi-head attention.
# --------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
  """Multi-head attention with flax's parameter layout (no dropout on the weights).

  q/k/v_h = x W_{q,k,v}^h + b (kernels [in, heads, head_dim]); head outputs are
  concatenated and projected by `out` (kernel [heads, head_dim, out_features]).

  Attributes:
    num_heads: number of heads.
    qkv_features: total q/k/v width (heads * head_dim); default the input width.
    out_features: output width; default the input width.
    use_bias: biases on the four projections.
  """
  num_heads: int
  qkv_features: Optional[int] = None
  out_features: Optional[int] = None
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: Array, context: Optional[Array] = None, mask: Optional[Array] = None,
               bias: Optional[Array] = None, return_weights: bool = False):
    """Self-attention over `x` [batch, len, features], or cross-attention to `context`.

    Returns the output [batch, len, out_features], and with `return_weights` also the
    attention weights [batch, heads, q_len, kv_len].
    """
    context = x if context is None else context
    qkv = self.qkv_features or x.shape[-1]
    if qkv % self.num_heads:
      raise ValueError(f"qkv_features={qkv} is not divisible by num_heads={self.num_heads}")
    head_dim = qkv // self.num_heads
    dense = lambda name: nn.DenseGeneral(  # noqa: E731
        (self.num_heads, head_dim), axis=-1, use_bias=self.use_bias,
        kernel_init=self.kernel_init, bias_init=self.bias_init, name=name)
    q, k, v = dense("query")(x), dense("key")(context), dense("value")(context)
    out, weights = dot_product_attention(q, k, v, mask, bias)
    out = nn.DenseGeneral(self.out_features or x.shape[-1], axis=(-2, -1),
                          use_bias=self.use_bias, kernel_init=self.kernel_init,
                          bias_init=self.bias_init, name="out")(out)
    return (out, weights) if return_weights else out


# --------------------------------------------------------------------------------------
# Positional encodings.
# --------------------------------------------------------------------------------------


def sinusoidal_positions(length: int, dim: int, max_period: float = 10_000.0) -> Array:
  """[length, dim] sinusoidal encodings (Vaswani et al. 2017, section 3.5).

  PE[p, 2i] = sin(p / T^(2i/dim)), PE[p, 2i+1] = cos(p / T^(2i/dim)), T = max_period; an
  odd `dim` drops the last cosine.
  """
  pos = np.arange(length, dtype=np.float64)[:, None]
  freq = max_period ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
  pe = np.zeros((length, dim + dim % 2))
  pe[:, 0::2] = np.sin(pos * freq)
  pe[:, 1::2] = np.cos(pos * freq)
  return jnp.asarray(pe[:, :dim], jnp.float32)


def sinusoidal_positions_2d(height: int, width: int, dim: int) -> Array:
  """[height * width, dim] 2-D sinusoidal encodings, tokens in row-major order.

  The first dim/2 features encode the row, the other dim/2 the column (as in MAE/ViT
  "sincos2d"); `dim` must be even.
  """
  if dim % 2:
    raise ValueError(f"sinusoidal_positions_2d needs an even dim, got {dim}")
  rows = sinusoidal_positions(height, dim // 2)
  cols = sinusoidal_positions(width, dim // 2)
  grid_r = jnp.repeat(rows, width, axis=0)
  grid_c = jnp.tile(cols, (height, 1))
  return jnp.concatenate([grid_r, grid_c], axis=-1)


class LearnedPositions(nn.Module):
  """Adds a learned [length, features] embedding to x [batch, length, features]."""
  init_std: float = 0.02

  @nn.compact
  def __call__(self, x: Array) -> Array:
    pos = self.param("embedding", nn.initializers.normal(self.init_std), x.shape[-2:],
                     jnp.float32)
    return x + pos.astype(x.dtype)


def grid_positions(height: int, width: int) -> np.ndarray:
  """[height * width, 2] (row, col) coordinates of a row-major image grid."""
  r, c = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  return np.stack([r.ravel(), c.ravel()], axis=-1)


def relative_offsets_2d(height: int, width: int) -> np.ndarray:
  """[hw, hw, 2] integer offsets key - query (d_row, d_col) between grid tokens."""
  p = grid_positions(height, width)
  return p[None, :, :] - p[:, None, :]


def relative_offsets_1d(q_len: int, kv_len: Optional[int] = None) -> np.ndarray:
  """[q_len, kv_len] integer offsets key - query."""
  kv_len = q_len if kv_len is None else kv_len
  return np.arange(kv_len)[None, :] - np.arange(q_len)[:, None]


class RelativePositionBias(nn.Module):
  """A learned scalar per head and relative offset, as an attention bias (Shaw et al. 2018;
  T5 without bucketing). Offsets beyond +-max_distance share the edge value.

  Returns a bias [1, heads, q_len, kv_len] for `MultiHeadAttention(..., bias=...)`.
  """
  num_heads: int
  max_distance: int

  @nn.compact
  def __call__(self, q_len: int, kv_len: Optional[int] = None) -> Array:
    table = self.param("table", nn.initializers.zeros_init(),
                       (2 * self.max_distance + 1, self.num_heads), jnp.float32)
    rel = np.clip(relative_offsets_1d(q_len, kv_len), -self.max_distance, self.max_distance)
    return jnp.transpose(table[rel + self.max_distance], (2, 0, 1))[None]


class RelativePositionBias2D(nn.Module):
  """A learned scalar per head and 2-D offset (d_row, d_col) between image tokens.

  Table [(2h-1)(2w-1), heads]; returns a bias [1, heads, hw, hw] (Swin-style relative
  position bias; the general form of the Cordonnier et al. 2020 relative attention).
  """
  num_heads: int
  height: int
  width: int

  @nn.compact
  def __call__(self) -> Array:
    h, w = self.height, self.width
    table = self.param("table", nn.initializers.zeros_init(),
                       ((2 * h - 1) * (2 * w - 1), self.num_heads), jnp.float32)
    rel = relative_offsets_2d(h, w)
    index = (rel[..., 0] + h - 1) * (2 * w - 1) + (rel[..., 1] + w - 1)
    return jnp.transpose(table[index], (2, 0, 1))[None]


# --------------------------------------------------------------------------------------
# Transformer encoder.
# --------------------------------------------------------------------------------------

NORM_POSITIONS = ("pre", "post")


class EncoderBlock(nn.Module):
  """One Transformer encoder block: self-attention and an MLP, each with a residual.

  "pre" (ViT, Xiong et al. 2020): x + Attn(LN(x)), then x + MLP(LN(x)).
  "post" (Vaswani et al. 2017): LN(x + Attn(x)), then LN(x + MLP(x)).
  Dropout (rate `dropout`, only with train=True and a 'dropout' rng) on each branch output.
  `residual=False` drops the skip connections (x + f(x) becomes f(x)), for ablations.
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  norm_position: str = "pre"
  qkv_features: Optional[int] = None
  residual: bool = True

  @nn.compact
  def __call__(self, x: Array, mask: Optional[Array] = None, bias: Optional[Array] = None,
               *, train: bool = False, return_weights: bool = False):
    if self.norm_position not in NORM_POSITIONS:
      raise ValueError(f"norm_position={self.norm_position!r} is not one of: "
                       f"{', '.join(NORM_POSITIONS)}")
    pre = self.norm_position == "pre"
    drop = nn.Dropout(self.dropout, deterministic=not train)
    attn = MultiHeadAttention(self.num_heads, self.qkv_features, name="attention")
    mlp = Mlp(self.mlp_dim, self.dropout, name="mlp")
    branch = functools.partial(_branch, pre=pre, residual=self.residual, drop=drop)
    x, weights = branch(x, "attention",
                        lambda h: attn(h, mask=mask, bias=bias, return_weights=True))
    x, _ = branch(x, "mlp", lambda h: (mlp(h, train=train), None))
    return (x, weights) if return_weights else x


def _skip(x: Array, h: Array, residual: bool) -> Array:
  """x + h with a residual connection, else h."""
  return x + h if residual else h


def _branch(x: Array, name: str, f, *, pre: bool, residual: bool, drop):
  """One residual sub-layer of a block (called inside the block's compact method):
  pre-LN x + drop(f(LN(x))) or post-LN LN(x + drop(f(x))); the LayerNorm is named
  `norm_<name>`. `f` returns (output, aux); returns (new x, aux)."""
  h = layers.LayerNorm(name=f"norm_{name}")(x) if pre else x
  h, aux = f(h)
  x = _skip(x, drop(h), residual)
  return (x if pre else layers.LayerNorm(name=f"norm_{name}")(x)), aux


class Mlp(nn.Module):
  """A block's MLP: Dense(hidden) -> GELU -> dropout -> Dense(input width)."""
  hidden: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    h = nn.gelu(nn.Dense(self.hidden, name="hidden")(x))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(x.shape[-1], name="output")(h)


class Encoder(nn.Module):
  """`num_layers` EncoderBlocks (plus a final LayerNorm when norm_position='pre').

  Called as (x, mask=None, bias=None, train=False, return_weights=False); with
  `return_weights` returns (outputs, [per-layer weights [batch, heads, len, len]]).
  """
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  norm_position: str = "pre"
  qkv_features: Optional[int] = None
  residual: bool = True

  @nn.compact
  def __call__(self, x: Array, mask: Optional[Array] = None, bias: Optional[Array] = None,
               *, train: bool = False, return_weights: bool = False):
    all_weights = []
    for i in range(self.num_layers):
      x, w = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.norm_position,
                          self.qkv_features, self.residual, name=f"block_{i}")(
                              x, mask, bias, train=train, return_weights=True)
      all_weights.append(w)
    if self.norm_position == "pre":
      x = layers.LayerNorm(name="norm_out")(x)
    return (x, all_weights) if return_weights else x


# --------------------------------------------------------------------------------------
# Transformer decoder: causal self-attention with a key/value cache, cross-attention.
# --------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
  """Causal multi-head self-attention with an incremental key/value cache.

  Same parameter layout as `MultiHeadAttention` (`query`/`key`/`value`/`out`). Query i
  attends keys j <= i (and `mask`, if given).

  With `decode=True` it keeps a 'cache' collection (apply with mutable=['cache']):
  `cached_key`/`cached_value` [batch, max_len, heads, head_dim] and `cache_index`. When
  the cache does not exist yet, the call creates it zero-filled with x's shape (so call it
  once on a [batch, max_len, features] input to size it) and otherwise runs as
  decode=False. Once it exists, x [batch, n, features] is the next n tokens: their keys
  and values are written at cache_index..cache_index+n-1 and their queries attend every
  cached key at or before their own position (Vaswani et al. 2017, section 3.2.3).
  """
  num_heads: int
  qkv_features: Optional[int] = None
  out_features: Optional[int] = None
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: Array, mask: Optional[Array] = None, *, decode: bool = False,
               return_weights: bool = False):
    """x [batch, len, features] -> [batch, len, out_features] (and weights)."""
    qkv = self.qkv_features or x.shape[-1]
    if qkv % self.num_heads:
      raise ValueError(f"qkv_features={qkv} is not divisible by num_heads={self.num_heads}")
    head_dim = qkv // self.num_heads
    dense = lambda name: nn.DenseGeneral(  # noqa: E731
        (self.num_heads, head_dim), axis=-1, use_bias=self.use_bias,
        kernel_init=self.kernel_init, bias_init=self.bias_init, name=name)
    q, k, v = dense("query")(x), dense("key")(x), dense("value")(x)
    length = x.shape[1]
    causal = causal_mask(length)
    if decode:
      ready = self.has_variable("cache", "cached_key")
      cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
      cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
      index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
      if ready:
        start = index.value
        # _in_dim makes the other start indices in start's own dtype: a literal 0 would be
        # int64 under jax_enable_x64 and dynamic_update_slice rejects mixed index types.
        k = jax.lax.dynamic_update_slice_in_dim(cached_k.value, k, start, axis=1)
        v = jax.lax.dynamic_update_slice_in_dim(cached_v.value, v, start, axis=1)
        cached_k.value, cached_v.value = k, v
        index.value = start + length
        q_pos = start + jnp.arange(length)
        causal = (jnp.arange(k.shape[1])[None, :] <= q_pos[:, None])[None, None]
    mask = causal if mask is None else causal & mask
    out, weights = dot_product_attention(q, k, v, mask)
    out = nn.DenseGeneral(self.out_features or x.shape[-1], axis=(-2, -1),
                          use_bias=self.use_bias, kernel_init=self.kernel_init,
                          bias_init=self.bias_init, name="out")(out)
    return (out, weights) if return_weights else out


class DecoderBlock(nn.Module):
  """One Transformer decoder block: causal self-attention, cross-attention to the encoder
  output `context`, and an MLP, each a residual branch normalised as in `EncoderBlock`
  ("pre": x + f(LN(x)); "post": LN(x + f(x)); `residual=False` drops the x +).

  Called as (x, context, context_mask=None, *, train=False, decode=False,
  return_weights=False); `context_mask` masks encoder keys (e.g. `padding_mask` of the
  source, [batch, 1, 1, src_len]); `decode` is passed to `CausalSelfAttention`. With
  `return_weights` also returns (self weights, cross weights).
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  norm_position: str = "pre"
  qkv_features: Optional[int] = None
  residual: bool = True

  @nn.compact
  def __call__(self, x: Array, context: Array, context_mask: Optional[Array] = None, *,
               train: bool = False, decode: bool = False, return_weights: bool = False):
    if self.norm_position not in NORM_POSITIONS:
      raise ValueError(f"norm_position={self.norm_position!r} is not one of: "
                       f"{', '.join(NORM_POSITIONS)}")
    pre = self.norm_position == "pre"
    drop = nn.Dropout(self.dropout, deterministic=not train)
    branch = functools.partial(_branch, pre=pre, residual=self.residual, drop=drop)
    x, w_self = branch(x, "self_attention", lambda h: CausalSelfAttention(
        self.num_heads, self.qkv_features, name="self_attention")(
            h, decode=decode, return_weights=True))
    x, w_cross = branch(x, "cross_attention", lambda h: MultiHeadAttention(
        self.num_heads, self.qkv_features, name="cross_attention")(
            h, context, mask=context_mask, return_weights=True))
    x, _ = branch(x, "mlp", lambda h: (
        Mlp(self.mlp_dim, self.dropout, name="mlp")(h, train=train), None))
    return (x, (w_self, w_cross)) if return_weights else x


def mean_attention_distance(weights: Array, positions: Array) -> Array:
  """Mean distance attended, per head: sum_k w_qk |p_q - p_k|, averaged over queries.

  The ViT paper's "attention distance" (Dosovitskiy et al. 2021, Fig. 7), here averaged
  over the batch too.

  Args:
    weights: [batch, heads, len, len] attention weights (rows sum to 1).
    positions: [len, d] token coordinates (e.g. pixel centres of patches).

  Returns:
    [heads] mean distances, in the units of `positions`.
  """
  p = jnp.asarray(positions, jnp.float32)
  dist = jnp.sqrt(jnp.sum((p[:, None, :] - p[None, :, :]) ** 2, axis=-1))
  return jnp.einsum("bhqk,qk->h", weights, dist) / (weights.shape[0] * weights.shape[2])


__all__: Sequence[str] = (
    "attention_weights", "dot_product_attention", "padding_mask", "causal_mask",
    "MultiHeadAttention", "sinusoidal_positions", "sinusoidal_positions_2d",
    "LearnedPositions", "grid_positions", "relative_offsets_1d", "relative_offsets_2d",
    "RelativePositionBias", "RelativePositionBias2D", "EncoderBlock", "Encoder",
    "CausalSelfAttention", "DecoderBlock", "mean_attention_distance",
)
