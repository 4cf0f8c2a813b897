"""Building blocks shared by leeml's models: activations, normalization, pooling.

Each choice is a name in a plain dict; `get_*` raises a one-line ValueError listing the
valid names (init2winit style), so a typo in a config fails before anything compiles.
"""

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

NORMS = ("none", "batch", "layer")
POOLS = ("none", "max", "avg")


def _one_of(field: str, name: str, valid) -> None:
  if name not in valid:
    raise ValueError(f"{field}={name!r} is not one of: {', '.join(sorted(valid))}")


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  _one_of("model.activation", name, ACTIVATIONS)
  return ACTIVATIONS[name]


def check_norm(name: str) -> None:
  _one_of("model.norm", name, NORMS)


def check_pool(name: str) -> None:
  _one_of("model.pool", name, POOLS)


class Norm(nn.Module):
  """Normalization by name; 'batch' keeps running statistics in the `batch_stats` collection.

  Under a data-sharded `jit` the batch statistics are those of the *global* batch: the
  mean is a reduction over a sharded axis, so XLA inserts the all-reduce (no axis_name
  bookkeeping, unlike pmap).
  """
  kind: str = "none"
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.kind == "none":
      return x
    if self.kind == "batch":
      return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
    if self.kind == "layer":
      return nn.LayerNorm()(x)
    check_norm(self.kind)  # raises
    return x


def pool_2x2(x: jax.Array, kind: str) -> jax.Array:
  """2x2 pooling with stride 2 ('VALID': an odd last row/column is dropped, as nn.max_pool).

  Written as reshape-and-reduce rather than `nn.max_pool`: the same numbers, but the
  gradient of a reshape+max is a cheap elementwise mask, whereas the gradient of
  `reduce_window` lowers to select-and-scatter, which dominated the CNN train step on CPU
  (see BENCHMARKS.md).
  """
  if kind == "none":
    return x
  b, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(b, h // 2, 2, w // 2, 2, c)
  if kind == "max":
    return x.max(axis=(2, 4))
  if kind == "avg":
    return x.mean(axis=(2, 4))
  check_pool(kind)  # raises
  return x
