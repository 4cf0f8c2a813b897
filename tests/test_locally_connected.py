"""Locally connected layers: a conv with unshared weights (lecture 9, parameter sharing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml.models import CNN, MODELS, get_model
from leeml.models.locally_connected import (LocallyConnected2D, LocallyConnectedNet,
                                            extract_patches)
import ml_collections


def _conv(x, kernel, stride, padding):
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("k,s,padding", [(3, 1, "SAME"), (4, 2, "SAME"), (3, 2, "VALID")])
def test_tied_weights_equal_the_convolution(k, s, padding):
  """With every position's filter set to one conv kernel, the layer *is* that conv."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 8, 3))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, 3, 5))
  ref = _conv(x, kernel, s, padding)
  layer = LocallyConnected2D(5, k, s, padding)
  params = jax.eval_shape(layer.init, jax.random.PRNGKey(2), x)["params"]
  ho, wo = ref.shape[1:3]
  assert params["kernel"].shape == (ho, wo, k * k * 3, 5)
  assert params["bias"].shape == (ho, wo, 5)
  tied = {"kernel": jnp.broadcast_to(kernel.reshape(-1, 5), (ho, wo, k * k * 3, 5)),
          "bias": jnp.zeros((ho, wo, 5))}
  np.testing.assert_allclose(jax.jit(layer.apply)({"params": tied}, x), ref, rtol=1e-5,
                             atol=1e-5)
  assert extract_patches(x, k, s, padding).shape == (2, ho, wo, k * k * 3)


def test_untied_weights_are_local_and_per_position():
  """Changing the weights of one position changes only that output position."""
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 6, 6, 1))
  layer = LocallyConnected2D(2, 3)
  params = jax.jit(layer.init)(jax.random.PRNGKey(1), x)["params"]
  apply = jax.jit(lambda p, v: layer.apply({"params": p}, v))
  y0 = apply(params, x)
  bumped = dict(params, kernel=params["kernel"].at[2, 3].add(1.0))
  diff = np.abs(np.asarray(apply(bumped, x) - y0)).sum(-1)[0]
  assert diff[2, 3] > 0 and np.count_nonzero(diff) == 1
  # And each output depends only on its 3x3 patch: the gradient of y[0, 2, 3, 0].
  g = jax.jit(jax.grad(lambda v: apply(params, v)[0, 2, 3, 0]))(x)[0, ..., 0]
  assert set(zip(*np.nonzero(np.asarray(g)))) <= {(i, j) for i in (1, 2, 3) for j in (2, 3, 4)}


def test_parameter_counts_vs_cnn():
  """Same shapes as the CNN; the conv weights are multiplied by the number of positions."""
  x = jnp.zeros((1, 16, 16, 1))
  kw = dict(channels=(16, 32), kernel_size=3, pool="max", dense_width=0)
  count = lambda m: sum(p.size for p in jax.tree.leaves(
      jax.eval_shape(m.init, jax.random.PRNGKey(0), x)))
  head = 4 * 4 * 32 * 10 + 10
  assert count(CNN(num_outputs=10, **kw)) == (9 * 16 + 16) + (9 * 16 * 32 + 32) + head
  lc = 16 * 16 * (9 * 16 + 16) + 8 * 8 * (9 * 16 * 32 + 32) + head
  assert count(LocallyConnectedNet(num_outputs=10, **kw)) == lc
  net = LocallyConnectedNet(num_outputs=10, **kw)
  out = jax.eval_shape(lambda v: net.apply(net.init(jax.random.PRNGKey(0), v), v), x)
  assert out.shape == (1, 10)


def test_registered_and_built_from_a_config():
  assert MODELS["locally_connected"] is LocallyConnectedNet
  cfg = ml_collections.ConfigDict(dict(name="locally_connected", channels=[4], pool="avg",
                                       dense_width=8))
  model = get_model(cfg, num_outputs=3)
  assert model.channels == (4,)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8)))["params"]
  assert params["local_0"]["kernel"].shape == (8, 8, 9, 4)
