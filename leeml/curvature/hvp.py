"""Hessian-vector products of a loss over parameter pytrees (lecture 4: H of L(θ) at θ').

The Hessian is never formed: H v = d/dε ∇L(θ + εv) |_{ε=0}, i.e. forward-mode (`jax.jvp`)
over reverse-mode (`jax.grad`), at the cost of about two gradients (Pearlmutter 1994).

Two levels:
  hvp(loss, params, v)              loss: params -> scalar (any closure)
  dataset_hvp(batch_loss, params, batches, v)
                                    the mean loss over a whole dataset, summed batch by
                                    batch inside `lax.scan` (memory of one batch).

`model_batch_loss` builds `batch_loss` for a Flax model: the model is applied in eval mode
(`train=False`), so models with `batch_stats` (BatchNorm) use their running statistics and
the loss is a fixed function of `params` alone; the non-`params` collections are constants.
"""

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

PyTree = Any


def hvp(loss: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
  """H(params) @ v for a scalar `loss(params)`; `v` has the structure of `params`."""
  return jax.jvp(jax.grad(loss), (params,), (v,))[1]


def model_batch_loss(model, variables, loss_fn) -> Callable[[PyTree, dict], jax.Array]:
  """(params, batch) -> weighted *sum* of per-example losses (eval mode; see module doc).

  `batch` holds 'inputs', 'targets' and 'weights' (0 for padding); `loss_fn` maps
  (outputs, targets) to per-example losses (`leeml.losses`).
  """
  rest = {k: v for k, v in variables.items() if k != "params"}

  def batch_loss(params, batch):
    out = model.apply({"params": params, **rest}, batch["inputs"], train=False)
    return jnp.sum(batch["weights"] * loss_fn(out, batch["targets"]))
  return batch_loss


def stack_batches(inputs, targets, batch_size: int) -> dict[str, np.ndarray]:
  """A dataset as [num_batches, batch_size, ...] arrays; the last batch is zero-padded
  with weight 0, so sums over batches count every example exactly once."""
  n = len(inputs)
  nb = -(-n // batch_size)
  pad = nb * batch_size - n

  def padded(a):
    a = np.asarray(a)
    a = np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
    return a.reshape((nb, batch_size) + a.shape[1:])
  weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  return {"inputs": padded(inputs), "targets": padded(targets),
          "weights": weights.reshape(nb, batch_size)}


def _scan_sum(fn, batches):
  """Σ_b fn(batch_b) over the leading axis of `batches` (fn returns a pytree)."""
  first = jax.tree.map(lambda a: a[0], batches)
  zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(fn, first))
  total, _ = jax.lax.scan(lambda acc, b: (jax.tree.map(jnp.add, acc, fn(b)), None), zero,
                          batches)
  return total


def dataset_loss(batch_loss, params, batches) -> jax.Array:
  """Mean loss over every (weight-1) example of `batches`."""
  return _scan_sum(lambda b: batch_loss(params, b), batches) / jnp.sum(batches["weights"])


def dataset_grad(batch_loss, params, batches) -> PyTree:
  """Gradient of `dataset_loss` (accumulated batch by batch)."""
  g = _scan_sum(lambda b: jax.grad(batch_loss)(params, b), batches)
  return jax.tree.map(lambda x: x / jnp.sum(batches["weights"]), g)


def dataset_hvp(batch_loss, params, batches, v) -> PyTree:
  """H @ v of `dataset_loss` at `params` (accumulated batch by batch)."""
  hv = _scan_sum(lambda b: hvp(lambda p: batch_loss(p, b), params, v), batches)
  return jax.tree.map(lambda x: x / jnp.sum(batches["weights"]), hv)


def _flat_dataset_hvp(batch_loss, unravel, operand, x):
  params, batches = operand
  return ravel_pytree(dataset_hvp(batch_loss, params, batches, unravel(x)))[0]


def _flat_loss_hvp(loss, unravel, params, x):
  return ravel_pytree(hvp(loss, params, unravel(x)))[0]


class FlatOperator(NamedTuple):
  """The Hessian as an operator on flat vectors (`ravel_pytree(params)` order), in the
  form `leeml.curvature.lanczos` takes: x -> matvec(operand, x)."""
  matvec: Callable[[Any, jax.Array], jax.Array]
  operand: Any
  dim: int
  unravel: Callable[[jax.Array], PyTree]


def dataset_operator(batch_loss, params, batches) -> FlatOperator:
  """The Hessian of `dataset_loss(batch_loss, ., batches)` at `params`."""
  flat, unravel = ravel_pytree(params)
  return FlatOperator(functools.partial(_flat_dataset_hvp, batch_loss, unravel),
                      (params, batches), flat.size, unravel)


def loss_operator(loss, params) -> FlatOperator:
  """The Hessian of a closure `loss(params)` at `params` (its data baked in: small only)."""
  flat, unravel = ravel_pytree(params)
  return FlatOperator(functools.partial(_flat_loss_hvp, loss, unravel), params, flat.size,
                      unravel)
