"""leeml.runtime: the compiler options of run-once programs give the step options' bits."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from leeml import data, models, runtime
from leeml.train_state import TrainState

MODELS = {
    "mlp_bn": (dict(name="mlp", depth=2, width=32, activation="relu", norm="batch"), (8, 8, 1)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_once_options_give_the_same_init_bits(name, optimized_compiles):
  """A population's init (vmapped over seeds, as the engine compiles it) under
  `once_compiler_options()` (CPU: LLVM -O1) equals the one under the step options bit for
  bit: run-once programs compile faster without changing any number."""
  fields, shape = MODELS[name]
  model = models.get_model(ml_collections.ConfigDict(fields), num_outputs=10)
  tx = optax.adam(1e-3)
  sample = jnp.zeros((1, *shape), jnp.float32)

  def init(seed):
    return TrainState.create(model.init(jax.random.PRNGKey(seed), sample, train=False), tx)

  seeds = jnp.arange(3)
  out = {}
  for kind, opts in (("step", runtime.step_compiler_options()),
                     ("once", runtime.once_compiler_options())):
    out[kind] = jax.jit(jax.vmap(init), compiler_options=opts)(seeds)
  leaves = jax.tree.leaves(out["step"])
  assert len(leaves) > 4
  for a, b in zip(leaves, jax.tree.leaves(out["once"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # ... and seeds differ, so equality is not vacuous
  kernel = next(l for l in leaves if l.ndim >= 3)
  assert not np.array_equal(kernel[0], kernel[1])


def test_once_options_give_the_same_epoch_orders(optimized_compiles):
  f = lambda s: jax.vmap(lambda e: data.epoch_permutation(s, e, 1000))(jnp.arange(4))
  a = jax.jit(f, compiler_options=runtime.step_compiler_options())(7)
  b = jax.jit(f, compiler_options=runtime.once_compiler_options())(7)
  np.testing.assert_array_equal(a, b)
  assert sorted(np.asarray(a[0]).tolist()) == list(range(1000))


def test_once_options_on_cpu_lower_llvm_optimization():
  opts = runtime.once_compiler_options()
  assert set(runtime.step_compiler_options().items()) <= set(opts.items())
  if jax.default_backend() == "cpu":
    assert opts["xla_backend_optimization_level"] == 1
