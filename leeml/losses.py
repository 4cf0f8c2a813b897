"""Losses by name (lecture 8: softmax + cross-entropy vs mean squared error).

Every loss maps `(outputs, targets)` to a per-example vector of shape (batch,); the train
step takes the weighted mean, so padding examples (weight 0) never count. Integer
`targets` are class labels; float targets are regression targets of `outputs`' shape.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[..., jax.Array]


def _one_hot(targets, num_classes, label_smoothing=0.0):
  """One-hot labels, smoothed by `label_smoothing` (a number, or an array that may be
  traced: one compiled step then serves every value; 0 is the plain one-hot)."""
  onehot = jax.nn.one_hot(targets, num_classes, dtype=jnp.float32)
  if isinstance(label_smoothing, jax.Array) or label_smoothing:
    onehot = optax.smooth_labels(onehot, label_smoothing)
  return onehot


def softmax_cross_entropy(logits, targets, *, label_smoothing: float = 0.0):
  """-sum_c y_c log softmax(logits)_c with (optionally smoothed) one-hot y."""
  return optax.softmax_cross_entropy(
      logits, _one_hot(targets, logits.shape[-1], label_smoothing))


def softmax_mse(logits, targets, *, label_smoothing: float = 0.0):
  """Lecture 8's alternative: squared error between softmax(logits) and the one-hot label."""
  y = _one_hot(targets, logits.shape[-1], label_smoothing)
  return jnp.sum((jax.nn.softmax(logits) - y) ** 2, axis=-1)


def mse(outputs, targets, *, label_smoothing: float = 0.0):
  """Mean over output dims of (outputs - targets)^2; integer targets become one-hot."""
  if jnp.issubdtype(targets.dtype, jnp.integer):
    targets = _one_hot(targets, outputs.shape[-1], label_smoothing)
  diff = (outputs - targets.reshape(outputs.shape)).reshape(outputs.shape[0], -1)
  return jnp.mean(diff ** 2, axis=-1)


def sigmoid_cross_entropy(logits, targets, *, label_smoothing: float = 0.0):
  """Independent binary cross-entropy per output, summed; integer targets become one-hot."""
  if jnp.issubdtype(targets.dtype, jnp.integer):
    targets = _one_hot(targets, logits.shape[-1], label_smoothing)
  return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)


LOSSES: dict[str, LossFn] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "softmax_mse": softmax_mse,
    "mse": mse,
    "sigmoid_cross_entropy": sigmoid_cross_entropy,
}

# Losses whose targets are class labels: the train/eval steps also report accuracy.
CLASSIFICATION_LOSSES = ("softmax_cross_entropy", "softmax_mse", "sigmoid_cross_entropy", "mse")


def get_loss(name: str) -> LossFn:
  if name not in LOSSES:
    raise ValueError(f"loss.name={name!r} is not one of: {', '.join(sorted(LOSSES))}")
  return LOSSES[name]
