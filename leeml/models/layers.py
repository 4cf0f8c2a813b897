"""Building blocks shared by leeml's models: activations, normalization, pooling, conv.

Each choice is a name in a plain dict; `get_*` raises a one-line ValueError listing the
valid names (init2winit style), so a typo in a config fails before anything compiles.
"""

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def hard_sigmoid(x):
  """The lecture-1 "hard sigmoid": 0 below -1, linear in between, 1 above 1 (two ReLUs)."""
  return 0.5 * (nn.relu(x + 1.0) - nn.relu(x - 1.0))


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
    "identity": lambda x: x,
}

# Activation normalizers (lecture 7, "many variants of normalization"): which axes the
# mean and variance are taken over, for an activation of shape (B, [H, W,] C):
#   batch    over B (and H, W): running averages for eval mode (Ioffe & Szegedy, 2015)
#   layer    over all of C (and H, W), per example (Ba et al., 2016)
#   group    over C split into groups (and H, W), per example (Wu & He, 2018)
#   instance over H, W per example and channel (Ulyanov et al., 2016); needs spatial axes
NORMS = ("none", "batch", "layer", "group", "instance")
# Norms that are undefined without spatial axes (an MLP's (B, C) activations): instance
# norm would normalize a single number per (example, channel) and output only its bias.
SPATIAL_NORMS = ("instance",)
# Weight reparametrizations of every Dense/Conv kernel of a model (not activation norms):
#   weight_norm    w = g * v / ||v|| per output unit (Salimans & Kingma, 2016)
#   spectral_norm  W / sigma_max(W), sigma_max by power iteration (Miyato et al., 2018)
WEIGHT_PARAMS = ("standard", "weight_norm", "spectral_norm")
POOLS = ("none", "max", "avg")


def _one_of(field: str, name: str, valid) -> None:
  if name not in valid:
    raise ValueError(f"{field}={name!r} is not one of: {', '.join(sorted(valid))}")


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  _one_of("model.activation", name, ACTIVATIONS)
  return ACTIVATIONS[name]


def check_norm(name: str, *, spatial: bool = True) -> None:
  """Raises ValueError unless `name` is in NORMS (and, without spatial axes, is defined)."""
  _one_of("model.norm", name, NORMS)
  if not spatial and name in SPATIAL_NORMS:
    raise ValueError(f"model.norm={name!r} needs spatial axes (a CNN); an MLP's "
                     f"activations have one value per (example, channel)")


def check_weight_param(name: str) -> None:
  _one_of("model.weight_param", name, WEIGHT_PARAMS)


def check_pool(name: str) -> None:
  _one_of("model.pool", name, POOLS)


# Every norm in leeml takes the two-pass variance E[(x - E[x])^2]. Flax's default
# (use_fast_variance=True) is the one-pass E[x^2] - E[x]^2, which cancels catastrophically
# in float32 once |mean| >> std: at mean/std = 1000, E[x^2] ~ 1e6 var and its rounding
# error is of the order of var itself (normalized outputs off by O(1)).
# Same module names and parameters as flax's, so checkpoints and param trees are unchanged.


class BatchNorm(nn.BatchNorm):
  """`nn.BatchNorm` with the two-pass variance (batch statistics and running averages)."""
  use_fast_variance: bool = False


class LayerNorm(nn.LayerNorm):
  """`nn.LayerNorm` with the two-pass variance."""
  use_fast_variance: bool = False


class GroupNorm(nn.GroupNorm):
  """`nn.GroupNorm` with the two-pass variance."""
  use_fast_variance: bool = False


class InstanceNorm(nn.InstanceNorm):
  """`nn.InstanceNorm` with the two-pass variance."""
  use_fast_variance: bool = False


class Norm(nn.Module):
  """Normalization by name; 'batch' keeps running statistics in the `batch_stats` collection.

  For an activation x of shape (B, [H, W,] C), each kind computes
  y = (x - mean) / sqrt(var + eps) * gamma + beta with per-channel gamma, beta and
  mean/var over: 'batch' B (and H, W) -- in eval mode (`train=False`) the running
  averages r <- momentum * r + (1 - momentum) * (batch statistic) instead; 'layer' C
  (and H, W) per example; 'group' each of `num_groups` groups of C/num_groups channels
  (and H, W) per example (gcd(num_groups, C) groups, so the groups always divide C;
  32 is the GroupNorm paper's default); 'instance' H, W per example and channel. The
  variance is always the two-pass one (see `BatchNorm` etc. above).

  Under a data-sharded `jit` the batch statistics are those of the *global* batch: the
  mean is a reduction over a sharded axis, so XLA inserts the all-reduce (no axis_name
  bookkeeping, unlike pmap).
  """
  kind: str = "none"
  momentum: float = 0.9
  num_groups: int = 32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.kind == "none":
      return x
    if self.kind == "batch":
      return BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
    if self.kind == "layer":
      return LayerNorm()(x)
    if self.kind == "group":
      groups = math.gcd(self.num_groups, x.shape[-1])
      # Reduce over every non-batch axis: flax infers them only for the init-time rank.
      return GroupNorm(num_groups=groups, reduction_axes=tuple(range(1, x.ndim)))(x)
    if self.kind == "instance":
      check_norm(self.kind, spatial=x.ndim > 2)  # raises on (B, C)
      return InstanceNorm()(x)
    check_norm(self.kind)  # raises
    return x


def reparametrized(layer: nn.Module, weight_param: str, *, name: str | None = None):
  """`layer` (a Dense or Conv2D) with its kernel reparametrized; returns `f(x, train, **kw)`.

  Call inside a compact method: `layer` keeps its own name and parameters (so 'standard'
  is exactly `layer`), and the wrapper `name` holds only what the reparametrization adds.
  'weight_norm' (nn.WeightNorm): kernel = scale * v / ||v||, the norm over all axes but the
  output one, a learned `scale` per output unit (init 1). 'spectral_norm'
  (nn.SpectralNorm): kernel = W / sigma, sigma the top singular value of W reshaped to
  (-1, out) estimated by one power-iteration step per call; the iteration's vector `u`
  and `sigma` live in `batch_stats` and are updated only when `train=True` (leeml.steps
  already treats `batch_stats` as mutable in training; eval mode reuses the stored `u`).
  """
  check_weight_param(weight_param)
  if weight_param == "weight_norm":
    wrapped = nn.WeightNorm(layer, name=name)
    return lambda x, train, **kw: wrapped(x, **kw)
  if weight_param == "spectral_norm":
    wrapped = nn.SpectralNorm(layer, name=name)
    return lambda x, train, **kw: wrapped(x, update_stats=train, **kw)
  return lambda x, train, **kw: layer(x, **kw)


def pool_2x2(x: jax.Array, kind: str) -> jax.Array:
  """2x2 pooling with stride 2 ('VALID': an odd last row/column is dropped, as nn.max_pool).

  'max' is `max_pool_2x2`: the same numbers as `nn.max_pool`, with a cheap hand-written
  gradient (see there); 'avg' is a reshape-and-mean, whose gradient is a broadcast.
  """
  if kind == "none":
    return x
  if kind == "max":
    return max_pool_2x2(x)
  if kind == "avg":
    return _windows(x).mean(axis=(2, 4))
  check_pool(kind)  # raises
  return x


# --------------------------------------------------------------------------------------
# 2x2 max pooling with an explicit gradient.
#
# On XLA:CPU the gradient of `nn.max_pool` (reduce_window) lowers to select-and-scatter,
# and the gradient of a reshape-and-max (ties split evenly) to several passes over the
# full-resolution activation (compare, convert, window sums, divide). Here the forward
# records, per output, which of the 4 window slots held the max (int8), and the backward
# is a single elementwise pass that routes each output gradient to that slot. Ties go to
# the first slot in row-major window order, as in `nn.max_pool`'s gradient, so values
# *and* gradients equal nn.max_pool's.
# --------------------------------------------------------------------------------------


def _windows(x):
  """(B, H, W, C) -> (B, H//2, 2, W//2, 2, C), dropping an odd last row/column."""
  b, h, w, c = x.shape
  return x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(b, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2/stride-2 'VALID' max pooling of an NHWC array (= nn.max_pool(x, (2, 2), (2, 2)))."""
  return _windows(x).max(axis=(2, 4))


def _max_pool_fwd(x):
  x6 = _windows(x)
  # The max as a reduction (not a chain of elementwise maximums): XLA materializes a
  # reduction's result, so consumers of the pooled array do not re-fuse (recompute) the
  # producer of x -- e.g. the elementwise first-layer convolution -- into themselves.
  m = x6.max(axis=(2, 4))
  s = [x6[:, :, p, :, q, :] for p in (0, 1) for q in (0, 1)]
  slot = jnp.where(s[0] == m, 0, jnp.where(s[1] == m, 1, jnp.where(s[2] == m, 2, 3)))
  return m, (slot.astype(jnp.int8), x.shape)


def _max_pool_bwd(res, g):
  slot, (b, h, w, c) = res
  window = jnp.arange(4, dtype=jnp.int8).reshape(1, 1, 2, 1, 2, 1)
  hit = slot[:, :, None, :, None, :] == window
  gx = jnp.where(hit, g[:, :, None, :, None, :], jnp.zeros((), g.dtype))
  gx = gx.reshape(b, h // 2 * 2, w // 2 * 2, c)
  if h % 2 or w % 2:
    gx = jnp.pad(gx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
  return (gx,)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


# --------------------------------------------------------------------------------------
# Stride-1 'SAME' convolution.
# --------------------------------------------------------------------------------------

# A convolution with at most this many taps (k * k * input channels) is computed as a sum
# of shifted, broadcast multiplies instead of a library convolution (see `conv2d_same`).
SMALL_CONV_TAPS = 27


def _same_pads(k: int) -> tuple[int, int]:
  """'SAME' padding of a stride-1 convolution, as lax/nn.Conv compute it."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


def _conv_lax(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _patches(x, kh, kw):
  """(B, H, W, C) -> (B*H*W, kh*kw*C) 'SAME' patches, feature order (i, j, c) as HWIO."""
  b, h, w, c = x.shape
  (th, bh), (tw, bw) = _same_pads(kh), _same_pads(kw)
  xp = jnp.pad(x, ((0, 0), (th, bh), (tw, bw), (0, 0)))
  cols = [xp[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)]
  return jnp.concatenate(cols, axis=-1).reshape(b * h * w, kh * kw * c)


@jax.custom_vjp
def _conv_few_taps(x, kernel):
  kh, kw, cin, _ = kernel.shape
  b, h, w, _ = x.shape
  (th, bh), (tw, bw) = _same_pads(kh), _same_pads(kw)
  xp = jnp.pad(x, ((0, 0), (th, bh), (tw, bw), (0, 0)))
  y = None
  for i in range(kh):
    for j in range(kw):
      for c in range(cin):
        term = xp[:, i:i + h, j:j + w, c:c + 1] * kernel[i, j, c]
        y = term if y is None else y + term
  return y


def _conv_few_taps_fwd(x, kernel):
  return _conv_few_taps(x, kernel), (x, kernel)


def _conv_few_taps_bwd(res, g):
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  # Kernel gradient as one GEMM over the (small) patch matrix: (taps, N) @ (N, cout).
  gk = jax.lax.dot_general(_patches(x, kh, kw), g.reshape(-1, cout),
                           (((0,), (0,)), ((), ())))
  # Input gradient (dead code, removed by XLA, when x is the network input).
  gx = jax.vjp(lambda x_: _conv_lax(x_, kernel), x)[1](g)[0]
  return gx, gk.reshape(kh, kw, cin, cout).astype(kernel.dtype)


_conv_few_taps.defvjp(_conv_few_taps_fwd, _conv_few_taps_bwd)


def conv2d_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 'SAME' convolution of NHWC `x` with an HWIO `kernel` (= nn.Conv's, no bias).

  Layers with many taps use `lax.conv_general_dilated`, exactly as nn.Conv. A layer with
  at most SMALL_CONV_TAPS taps (k*k*C_in, e.g. a 3x3 conv on 1- or 3-channel images) is
  a sum of k*k*C_in shifted broadcast-multiplies, which XLA fuses into one elementwise
  pass (on XLA:CPU 2-3x faster than its library convolution for C_in = 1..3); its kernel
  gradient is a single GEMM over the small patch matrix instead of a backward-filter
  convolution (faster than XLA:CPU's default YNNPACK one; see BENCHMARKS.md). The results equal nn.Conv's up to float32 summation order (~1e-7).
  """
  kh, kw, cin, _ = kernel.shape
  if kh * kw * cin <= SMALL_CONV_TAPS:
    return _conv_few_taps(x, kernel)
  return _conv_lax(x, kernel)


class Conv2D(nn.Module):
  """nn.Conv(features, (k, k), padding='SAME') with the same parameters and numbers.

  Params: `kernel` (k, k, C_in, features), lecun-normal; `bias` (features,), zeros --
  the names, shapes, initializers and init RNG of nn.Conv, so checkpoints and
  initializations are interchangeable. Computed with `conv2d_same`.

  `max_pool_relu=True` returns `pool_2x2(relu(conv(x) + bias), 'max')` computed as
  `relu(max_pool_2x2(conv(x)) + bias)`: the same values (adding a per-channel bias and
  relu are monotone, so they commute with the max exactly in floating point), with the
  bias add, relu and their gradients (incl. the bias gradient's reduction) done on the
  4x smaller pooled array. Gradients are also the same, except that when two window
  entries differ before but tie after adding the bias (a difference below float32
  resolution), the gradient goes to the larger one rather than to the first.
  """
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x, *, max_pool_relu: bool = False):
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                        jnp.float32)
    bias = (self.param("bias", self.bias_init, (self.features,), jnp.float32)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
    y = conv2d_same(x, kernel)
    if max_pool_relu:
      y = max_pool_2x2(y)
    if bias is not None:
      y = y + bias
    return nn.relu(y) if max_pool_relu else y
