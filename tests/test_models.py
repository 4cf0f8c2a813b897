"""Models: output shapes, parameter counts, batch_stats, residuals, pooling, registries."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from leeml import models
from leeml.models import layers


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _init(model, x):
  """Jitted: one compile of the whole init, not one per eager op (about half the CPU)."""
  return jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x, train=False))(x)


def test_mlp_shape_and_parameter_count():
  model = models.MLP(num_outputs=10, depth=3, width=512)
  variables = _init(model, jnp.zeros((2, 28, 28, 1)))
  # 784*512+512 + 2*(512*512+512) + 512*10+10
  assert _count(variables["params"]) == 784 * 512 + 512 + 2 * (512 * 512 + 512) + 5130
  assert "batch_stats" not in variables
  assert model.apply(variables, jnp.ones((5, 28, 28, 1))).shape == (5, 10)


def test_cnn_shape_and_parameter_count():
  model = models.CNN(num_outputs=10, channels=(32, 64), kernel_size=3, dense_width=256)
  variables = _init(model, jnp.zeros((2, 28, 28, 1)))
  want = (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 256 + 256) + (256 * 10 + 10)
  assert _count(variables["params"]) == want
  assert model.apply(variables, jnp.ones((3, 28, 28))).shape == (3, 10)  # channel added


@pytest.mark.parametrize("cls,kwargs", [(models.MLP, dict(depth=2, width=16)),
                                        (models.CNN, dict(channels=(4, 8), dense_width=16))])
def test_batch_norm_uses_batch_stats(cls, kwargs):
  model = cls(num_outputs=3, norm="batch", **kwargs)
  x = jax.random.normal(jax.random.PRNGKey(1), (8, 8, 8, 1)) * 3.0 + 2.0
  variables = _init(model, x)
  assert "batch_stats" in variables
  out, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
  assert out.shape == (8, 3)
  before = jax.tree.leaves(variables["batch_stats"])
  after = jax.tree.leaves(updates["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(before, after))  # running stats moved
  # Eval mode reads the running averages and mutates nothing.
  assert model.apply(variables, x, train=False).shape == (8, 3)


def test_layer_norm_has_no_batch_stats():
  variables = _init(models.MLP(num_outputs=2, width=8, norm="layer"), jnp.zeros((2, 4)))
  assert "batch_stats" not in variables and "norm_0" in variables["params"]


def test_residual_mlp_adds_the_skip():
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 6))
  plain = models.MLP(num_outputs=2, depth=3, width=6, activation="identity")
  resid = plain.clone(residual=True)
  variables = _init(plain, x)
  # With identity activations, layer i>0 computes h + W h + b instead of W h + b.
  p = variables["params"]
  h = x @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]
  for i in (1, 2):
    h = h + h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"]
  want = h @ p["head"]["kernel"] + p["head"]["bias"]
  np.testing.assert_allclose(resid.apply(variables, x), want, rtol=1e-5, atol=1e-5)
  assert not np.allclose(plain.apply(variables, x), want, atol=1e-3)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 7, 9, 2)])
def test_pool_2x2_equals_flax_pooling(shape):
  x = jax.random.normal(jax.random.PRNGKey(3), shape)
  np.testing.assert_array_equal(layers.pool_2x2(x, "max"),
                                nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID"))
  np.testing.assert_allclose(layers.pool_2x2(x, "avg"),
                             nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID"), rtol=1e-6)
  assert layers.pool_2x2(x, "none") is x


def test_hard_sigmoid_and_activation_registry():
  x = jnp.array([-3.0, -1.0, 0.0, 0.5, 1.0, 4.0])
  np.testing.assert_allclose(layers.hard_sigmoid(x), [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])
  assert set(layers.ACTIVATIONS) >= {"relu", "sigmoid", "tanh", "identity"}
  with pytest.raises(ValueError, match=r"^model.activation='rleu' is not one of: elu,"):
    layers.get_activation("rleu")


def test_get_model_from_config_and_fields():
  cfg = ml_collections.ConfigDict(dict(name="cnn", channels=[4], kernel_size=5, pool="avg",
                                       dense_width=0, activation="tanh", norm="none"))
  model = models.get_model(cfg, num_outputs=7)
  assert isinstance(model, models.CNN) and model.channels == (4,) and model.num_outputs == 7
  assert set(models.model_fields("mlp")) == {"depth", "width", "activation", "residual", "norm",
                                             "weight_param"}
  with pytest.raises(ValueError, match=(r"^model.name='vgg' is not one of: cnn, "
                                        r"locally_connected, mlp, residual_mlp, st_cnn, vit$")):
    models.get_model_class("vgg")


@pytest.mark.parametrize("cin,k", [(1, 3), (3, 3), (8, 3), (2, 5)])  # few-taps and lax paths
def test_conv2d_same_equals_flax_conv_values_and_gradients(cin, k):
  x = jax.random.normal(jax.random.PRNGKey(4), (2, 9, 7, cin))
  ref = nn.Conv(6, (k, k), padding="SAME")
  variables = ref.init(jax.random.PRNGKey(5), x)
  ours = layers.Conv2D(6, k)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(5), x)) == jax.tree.map(
      jnp.shape, variables)
  np.testing.assert_allclose(ours.apply(variables, x), ref.apply(variables, x), atol=1e-5)
  loss = lambda m: lambda v, x: jnp.sum(jnp.sin(m.apply(v, x)))
  g_ours = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(variables, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 7, 9, 2)])
def test_max_pool_gradient_equals_flax_max_pool_gradient(shape):
  x = jax.random.normal(jax.random.PRNGKey(6), shape)
  x = x.at[0, 0, 0, 0].set(x[0, 0, 1, 0])  # a tie inside one window: goes to the first slot
  f = lambda pool: lambda x: jnp.sum(jnp.cos(pool(x)) * jnp.arange(pool(x).size).reshape(pool(x).shape))
  flax_pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
  np.testing.assert_array_equal(jax.grad(f(layers.max_pool_2x2))(x), jax.grad(f(flax_pool))(x))


def test_fused_conv_relu_pool_equals_the_unfused_cnn():
  x = jax.random.normal(jax.random.PRNGKey(7), (4, 12, 12, 1))
  fused = models.CNN(num_outputs=5, channels=(4, 8), dense_width=16)  # relu + max: fused
  unfused = fused.clone(activation="leaky_relu")  # same params, not fused
  variables = _init(fused, x)
  # Compare against a hand-built unfused forward with relu: conv -> +b -> relu -> pool.
  p = variables["params"]
  h = x
  for i in range(2):
    conv = nn.Conv(p[f"conv_{i}"]["kernel"].shape[-1], (3, 3), padding="SAME")
    h = conv.apply({"params": p[f"conv_{i}"]}, h)
    h = nn.max_pool(nn.relu(h), (2, 2), strides=(2, 2))
  h = nn.relu(h.reshape(4, -1) @ p["dense"]["kernel"] + p["dense"]["bias"])
  want = h @ p["head"]["kernel"] + p["head"]["bias"]
  np.testing.assert_allclose(fused.apply(variables, x), want, rtol=1e-5, atol=1e-5)
  assert unfused.apply(variables, x).shape == (4, 5)
