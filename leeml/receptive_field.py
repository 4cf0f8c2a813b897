"""Receptive fields (lecture 9): analytic from a layer list, empirical from a gradient.

Analytic. Along one axis, a stack of conv/pool layers maps output unit u of the last layer
to the input pixels [u·J + o, u·J + o + R - 1] (before clipping to the image), where the
jump J, offset o and size R follow one recursion per layer (kernel k, stride s,
dilation d, left padding p; start J = 1, o = 0, R = 1):

    R ← R + d·(k - 1)·J        o ← o - p·J        J ← J·s

(unit u of a layer reads units u·s - p + d·t, t = 0..k-1, of the layer below). 'SAME'
padding depends on the input size (lax's rule: output ceil(n/s), the total padding split
with the smaller half first), so the calculator tracks the size through the layers.

Empirical. The receptive field of a unit is the set of input pixels its value depends
on: the support of ∂y_unit/∂x. With every weight positive (ones), zero biases and a
positive input, every path from an input pixel to the unit carries a positive product,
so no cancellation or dead ReLU hides a pixel. Max pooling routes the gradient through
one element per window, so the empirical network averages over the same windows instead
(the receptive field depends on the windows, not on how a window is reduced).
"""

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("conv", "pool")


@dataclasses.dataclass(frozen=True)
class Layer:
  """One spatial layer: 'conv' (features output channels) or 'pool' (channels kept).

  padding: 'SAME', 'VALID' or an int number of pixels on each side.
  """
  kind: str
  kernel: int
  stride: int = 1
  padding: str | int = "SAME"
  dilation: int = 1
  features: int = 1

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"layer kind {self.kind!r} is not one of: {', '.join(KINDS)}")
    if not (isinstance(self.padding, int) or self.padding in ("SAME", "VALID")):
      raise ValueError(f"padding {self.padding!r} is not 'SAME', 'VALID' or an int")
    if min(self.kernel, self.stride, self.dilation) < 1:
      raise ValueError(f"kernel, stride and dilation must be >= 1: {self}")


@dataclasses.dataclass(frozen=True)
class AxisField:
  """The receptive field along one axis: unit u sees input [u·jump + offset, + size - 1]."""
  size: int        # R: pixels spanned by one unit's field (holes included, if dilated)
  jump: int        # J: input pixels between the fields of neighbouring units
  offset: int      # o: first input pixel of unit 0's field (negative: in the padding)
  out_size: int    # units along this axis in the last layer
  in_size: int     # pixels along this axis in the input

  def span(self, unit: int) -> tuple[int, int]:
    """First and last input pixel of `unit`'s field, clipped to the image (inclusive)."""
    start = unit * self.jump + self.offset
    return max(start, 0), min(start + self.size - 1, self.in_size - 1)


def pads(n: int, layer: Layer) -> tuple[int, int]:
  """(before, after) padding of `layer` on an axis of n pixels (lax's 'SAME' rule)."""
  if isinstance(layer.padding, int):
    return layer.padding, layer.padding
  if layer.padding == "VALID":
    return 0, 0
  span = layer.dilation * (layer.kernel - 1) + 1
  total = max((math.ceil(n / layer.stride) - 1) * layer.stride + span - n, 0)
  return total // 2, total - total // 2


def output_size(n: int, layer: Layer) -> int:
  lo, hi = pads(n, layer)
  span = layer.dilation * (layer.kernel - 1) + 1
  out = (n + lo + hi - span) // layer.stride + 1
  if out < 1:
    raise ValueError(f"{layer} leaves no output on an axis of {n} pixels")
  return out


def receptive_field_1d(layers: Sequence[Layer], n: int) -> AxisField:
  """The analytic receptive field along one axis of n input pixels."""
  size, jump, offset, m = 1, 1, 0, n
  for layer in layers:
    lo, _ = pads(m, layer)
    size += layer.dilation * (layer.kernel - 1) * jump
    offset -= lo * jump
    jump *= layer.stride
    m = output_size(m, layer)
  return AxisField(size=size, jump=jump, offset=offset, out_size=m, in_size=n)


def receptive_field(layers: Sequence[Layer], input_hw: tuple[int, int]
                    ) -> tuple[AxisField, AxisField]:
  """(rows, columns) receptive fields of a 2-D stack with square kernels."""
  return receptive_field_1d(layers, input_hw[0]), receptive_field_1d(layers, input_hw[1])


def feature_shapes(layers: Sequence[Layer], input_shape: tuple[int, int, int]
                   ) -> list[tuple[int, int, int]]:
  """(H, W, C) after each layer, starting from input (H, W, C)."""
  h, w, c = input_shape
  out = []
  for layer in layers:
    h, w = output_size(h, layer), output_size(w, layer)
    c = layer.features if layer.kind == "conv" else c
    out.append((h, w, c))
  return out


# ----------------------------------------------------------------------------- CNN config


def layers_from_cnn(model_cfg) -> list[Layer]:
  """The spatial layers of a `leeml.models.CNN` config (each conv, then its 2x2 pool)."""
  cfg = dict(model_cfg)
  k, s, pad = cfg.get("kernel_size", 3), cfg.get("strides", 1), cfg.get("padding", "SAME")
  pool = cfg.get("pool", "max")
  out = []
  for c in cfg.get("channels", (32, 64)):
    out.append(Layer("conv", k, s, pad, features=c))
    if pool != "none":
      out.append(Layer("pool", 2, 2, "VALID"))
  return out


def cnn_unit_fn(model_cfg, input_shape: tuple[int, int, int], unit: tuple[int, int]
                ) -> Callable[[jax.Array], jax.Array]:
  """x (H, W, C) -> channel 0 of the CNN's last feature map at `unit`, through the model.

  The model is `leeml.models.CNN` with the config's convolutions (kernel, strides,
  padding, channels), dense_width 0, max pooling replaced by average pooling over the
  same windows, all conv weights 1, biases 0, and a one-hot head that reads exactly the
  feature (unit, channel 0) of the flattened last feature map.
  """
  from leeml.models import CNN  # pylint: disable=g-import-not-at-top
  cfg = {k: v for k, v in dict(model_cfg).items() if k != "name"}
  cfg.update(dense_width=0, norm="none",
             pool="avg" if cfg.get("pool", "max") == "max" else cfg.get("pool"))
  cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
  model = CNN(num_outputs=1, **cfg)
  h, w, c = feature_shapes(layers_from_cnn(cfg), input_shape)[-1]
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *input_shape)))
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: jnp.full(p.shape, 1.0 if _is_conv_kernel(path) else 0.0, p.dtype),
      shapes["params"])
  rows = params["head"]["kernel"].shape[0]
  if rows != h * w * c:
    raise ValueError(f"CNN feature map has {rows} values, the layer list says {h}x{w}x{c}")
  index = (unit[0] * w + unit[1]) * c  # (h, w, c) flattened row-major, channel 0
  params["head"]["kernel"] = params["head"]["kernel"].at[index, 0].set(1.0)
  return lambda x: model.apply({"params": params}, x[None])[0, 0]


def _is_conv_kernel(path) -> bool:
  names = [getattr(k, "key", "") for k in path]
  return names[-1] == "kernel" and str(names[0]).startswith("conv_")


def layers_unit_fn(layers: Sequence[Layer], input_shape: tuple[int, int, int],
                   unit: tuple[int, int]) -> Callable[[jax.Array], jax.Array]:
  """x (H, W, C) -> channel 0 at `unit` of a lax implementation of `layers` (weights 1,
  average pooling), for layer lists the CNN model cannot express (e.g. dilation)."""
  def f(x):
    y = x[None]
    for layer in layers:
      lo_h, hi_h = pads(y.shape[1], layer)
      lo_w, hi_w = pads(y.shape[2], layer)
      padding = ((lo_h, hi_h), (lo_w, hi_w))
      if layer.kind == "conv":
        kernel = jnp.ones((layer.kernel, layer.kernel, y.shape[-1], layer.features), y.dtype)
        y = jax.lax.conv_general_dilated(
            y, kernel, (layer.stride,) * 2, padding, rhs_dilation=(layer.dilation,) * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
      else:
        window = (1, layer.kernel, layer.kernel, 1)
        y = jax.lax.reduce_window(
            y, 0.0, jax.lax.add, window, (1, layer.stride, layer.stride, 1),
            ((0, 0), *padding, (0, 0)), window_dilation=(1, layer.dilation, layer.dilation, 1)
        ) / layer.kernel ** 2
    return y[0, unit[0], unit[1], 0]
  return f


# ----------------------------------------------------------------------------- empirical


@dataclasses.dataclass(frozen=True)
class EmpiricalField:
  rows: tuple[int, int]       # first and last input row with a nonzero gradient
  cols: tuple[int, int]
  support: np.ndarray         # (H, W) bool: pixels with a nonzero gradient


def empirical_receptive_field(unit_fn: Callable[[jax.Array], jax.Array],
                              input_shape: tuple[int, int, int]) -> EmpiricalField:
  """The input pixels on which one output unit depends: the support of its gradient."""
  grad = jax.jit(jax.grad(unit_fn))(jnp.ones(input_shape, jnp.float32))
  support = np.asarray(jnp.any(grad != 0, axis=-1))
  if not support.any():
    raise ValueError("the unit's gradient is zero everywhere")
  rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
  return EmpiricalField((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])), support)


def centre_unit(fields: tuple[AxisField, AxisField]) -> tuple[int, int]:
  return fields[0].out_size // 2, fields[1].out_size // 2


def compare(layers: Sequence[Layer], input_shape: tuple[int, int, int],
            unit_fn_factory: Callable | None = None, unit: tuple[int, int] | None = None
            ) -> dict:
  """Analytic vs empirical field of one unit (default: the centre one) of `layers`.

  Returns spans (clipped to the image) of both, and whether the empirical support is
  exactly the analytic rectangle (only expected without holes: dilation <= jump).
  """
  fields = receptive_field(layers, input_shape[:2])
  unit = centre_unit(fields) if unit is None else unit
  factory = unit_fn_factory or (lambda shape, u: layers_unit_fn(layers, shape, u))
  emp = empirical_receptive_field(factory(input_shape, unit), input_shape)
  rows, cols = fields[0].span(unit[0]), fields[1].span(unit[1])
  rect = np.zeros(input_shape[:2], bool)
  rect[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = True
  return dict(unit=unit, size=(fields[0].size, fields[1].size),
              jump=(fields[0].jump, fields[1].jump), analytic=(rows, cols),
              empirical=(emp.rows, emp.cols), support=emp.support,
              agree=(rows, cols) == (emp.rows, emp.cols),
              rectangle=bool((emp.support == rect).all()))
