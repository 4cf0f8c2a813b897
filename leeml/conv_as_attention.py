"""A k x k convolution *is* a multi-head self-attention layer (lecture 10, "CNN v.s.
Self-attention": "CNN is simplified self-attention").

Cordonnier, Loukas & Jaggi, "On the relationship between self-attention and convolutional
layers", ICLR 2020, Theorem 1: a multi-head self-attention layer with N_h = k^2 heads of
dimension D_h >= D_out and a relative positional encoding of dimension >= 3 can express any
k x k convolution with D_out output channels. The construction (their Lemma 1 + Lemma 2):

* Head h is given one pixel offset Delta_h of the k x k window and attends (only) to the
  pixel at query + Delta_h; its query/key *content* projections are zero, so its scores
  depend on relative position alone.
* Value of head h: the identity (head_dim = C_in); output projection of head h: the
  conv's tap K[Delta_h] (C_in x C_out); output bias = the conv's bias. Summing the heads
  then gives sum_h x[q + Delta_h] K[Delta_h] + b = the convolution.

Two ways to make each head's attention one-hot, both exact up to float32 rounding:

* "quadratic" (the paper's Lemma 2): the relative encoding r_delta = (|delta|^2, d_row,
  d_col) for delta = key - query, and per-head vector v_h = -alpha (1, -2 Delta_h). The
  score v_h . r_delta = -alpha |delta - Delta_h|^2 + alpha |Delta_h|^2 peaks at delta =
  Delta_h, and the next-best key is >= alpha below it, so the softmax is one-hot up to
  e^-alpha (alpha = 50: 2e-22). The zero padding of a 'SAME' conv is made explicit: the
  keys are the zero-padded image's pixels (pad tokens have zero value, no value bias), the
  queries the image's own pixels.
* "mask": head h's boolean mask allows exactly the key at query + Delta_h. At the border
  that key may not exist; the row is then fully masked, and `leeml.models.attention`
  gives it zero weight, which is exactly zero padding.
"""

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from leeml.models import attention

METHODS = ("quadratic", "mask")


def conv_offsets(kernel_size: int) -> np.ndarray:
  """[k*k, 2] (d_row, d_col) offsets of a 'SAME' k x k window, in the kernel's HWIO tap
  order: tap (a, b) reads the input at (row + a - top, col + b - left), top = (k-1)//2."""
  top = (kernel_size - 1) // 2
  a, b = np.meshgrid(np.arange(kernel_size), np.arange(kernel_size), indexing="ij")
  return np.stack([a.ravel() - top, b.ravel() - top], axis=-1)


def same_padding(kernel_size: int) -> tuple[int, int]:
  """(before, after) zero padding of a stride-1 'SAME' convolution (lax's convention)."""
  top = (kernel_size - 1) // 2
  return top, kernel_size - 1 - top


def conv2d_same(x: jax.Array, kernel: jax.Array, bias: Optional[jax.Array] = None):
  """The reference: nn.Conv's stride-1 'SAME' convolution of NHWC x with an HWIO kernel."""
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   precision=jax.lax.Precision.HIGHEST)
  return y if bias is None else y + bias


def attention_params_from_conv(kernel: jax.Array, bias: Optional[jax.Array] = None) -> dict:
  """`MultiHeadAttention(num_heads=k*k, qkv_features=k*k*C_in, out_features=C_out)` params
  computing the convolution `kernel` [k, k, C_in, C_out] (+ `bias`) given one-hot heads.

  Query/key kernels and all q/k/v biases are zero; value of every head is the identity
  on the C_in input channels; the output kernel of head h = (a, b) is kernel[a, b].
  """
  k, _, cin, cout = kernel.shape
  heads = k * k
  eye = jnp.broadcast_to(jnp.eye(cin, dtype=kernel.dtype)[:, None, :], (cin, heads, cin))
  zeros_kernel = jnp.zeros((cin, heads, cin), kernel.dtype)
  zeros_bias = jnp.zeros((heads, cin), kernel.dtype)
  bias = jnp.zeros((cout,), kernel.dtype) if bias is None else bias
  return {"params": {
      "query": {"kernel": zeros_kernel, "bias": zeros_bias},
      "key": {"kernel": zeros_kernel, "bias": zeros_bias},
      "value": {"kernel": eye, "bias": zeros_bias},
      "out": {"kernel": kernel.reshape(heads, cin, cout), "bias": bias},
  }}


def quadratic_encoding(offsets: np.ndarray) -> np.ndarray:
  """r_delta = (|delta|^2, d_row, d_col) for relative offsets delta [..., 2] (Lemma 2)."""
  offsets = np.asarray(offsets, np.float64)
  return np.concatenate([np.sum(offsets ** 2, -1, keepdims=True), offsets], axis=-1)


def quadratic_head_vectors(shifts: np.ndarray, alpha: float) -> np.ndarray:
  """v_h = -alpha (1, -2 Delta_h): head h's score v_h . r_delta peaks at delta = Delta_h."""
  shifts = np.asarray(shifts, np.float64)
  return -alpha * np.concatenate([np.ones((len(shifts), 1)), -2.0 * shifts], axis=-1)


def quadratic_bias(q_positions: np.ndarray, k_positions: np.ndarray, shifts: np.ndarray,
                   alpha: float) -> jax.Array:
  """Relative positional scores [1, heads, q_len, kv_len] = v_h . r_(key - query)."""
  delta = np.asarray(k_positions)[None, :, :] - np.asarray(q_positions)[:, None, :]
  scores = np.einsum("qkr,hr->hqk", quadratic_encoding(delta),
                     quadratic_head_vectors(shifts, alpha))
  # Subtract each head's maximum, alpha |Delta_h|^2 (softmax is shift invariant), so the
  # float32 scores are exact integers times alpha near the peak.
  scores = scores - scores.max(axis=(1, 2), keepdims=True)
  return jnp.asarray(scores[None], jnp.float32)


def shift_mask(height: int, width: int, shifts: np.ndarray) -> jax.Array:
  """[1, heads, hw, hw] boolean: head h's query p may attend only to key p + Delta_h."""
  rel = attention.relative_offsets_2d(height, width)            # key - query
  hit = np.all(rel[None] == np.asarray(shifts)[:, None, None, :], axis=-1)
  return jnp.asarray(hit[None])


def conv_as_attention(x: jax.Array, kernel: jax.Array, bias: Optional[jax.Array] = None, *,
                      method: str = "quadratic", alpha: float = 50.0):
  """The convolution of NHWC `x` with HWIO `kernel` computed as k^2-head self-attention.

  Returns (y [N, H, W, C_out], weights [N, k^2, H*W, kv_len]); kv_len is the padded
  image's pixel count for 'quadratic', H*W for 'mask'.
  """
  if method not in METHODS:
    raise ValueError(f"method={method!r} is not one of: {', '.join(METHODS)}")
  n, h, w, cin = x.shape
  k, _, _, cout = kernel.shape
  shifts = conv_offsets(k)
  layer = attention.MultiHeadAttention(num_heads=k * k, qkv_features=k * k * cin,
                                       out_features=cout)
  params = attention_params_from_conv(kernel, bias)
  tokens = x.reshape(n, h * w, cin)
  if method == "mask":
    y, weights = layer.apply(params, tokens, mask=shift_mask(h, w, shifts),
                             return_weights=True)
    return y.reshape(n, h, w, cout), weights
  before, after = same_padding(k)
  padded = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
  hp, wp = padded.shape[1:3]
  q_pos = attention.grid_positions(h, w) + before               # in padded coordinates
  k_pos = attention.grid_positions(hp, wp)
  bias_scores = quadratic_bias(q_pos, k_pos, shifts, alpha)
  y, weights = layer.apply(params, tokens, context=padded.reshape(n, hp * wp, cin),
                           bias=bias_scores, return_weights=True)
  return y.reshape(n, h, w, cout), weights


def max_abs_difference(key: jax.Array, *, kernel_size: int, height: int, width: int,
                       in_channels: int, out_channels: int, batch: int = 2,
                       method: str = "quadratic", alpha: float = 50.0) -> float:
  """max |conv(x) - attention(x)| for random x, kernel and bias drawn from `key`."""
  kx, kk, kb = jax.random.split(key, 3)
  x = jax.random.normal(kx, (batch, height, width, in_channels))
  kernel = jax.random.normal(kk, (kernel_size, kernel_size, in_channels, out_channels))
  bias = jax.random.normal(kb, (out_channels,))
  y_att, _ = conv_as_attention(x, kernel, bias, method=method, alpha=alpha)
  return float(jnp.max(jnp.abs(conv2d_same(x, kernel, bias) - y_att)))
