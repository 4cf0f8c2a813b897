"""Lecture 7 normalizations against their equations: BatchNorm (train/eval, running
averages), Layer/Group/Instance norm statistics, WeightNorm and SpectralNorm kernels."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config
from leeml import config as config_lib
from leeml import losses, models, steps
from leeml.models import layers
from leeml.train_state import TrainState

EPS_BN = 1e-5  # flax BatchNorm's epsilon (Ioffe & Szegedy's ε)


def _x(shape, seed=0):
  # Features with different means and scales, so normalizing does something.
  x = np.random.default_rng(seed).standard_normal(shape)
  return jnp.asarray(3.0 * x * np.linspace(0.5, 2.0, shape[-1]) + np.arange(shape[-1]),
                     jnp.float32)


def _batch_norm(momentum=0.9):
  norm = layers.Norm("batch", momentum=momentum)
  x = _x((16, 5))
  v = norm.init(jax.random.PRNGKey(0), x, train=False)
  rng = np.random.default_rng(1)
  gamma, beta = rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)
  params = {"BatchNorm_0": {"scale": jnp.asarray(gamma, jnp.float32),
                            "bias": jnp.asarray(beta, jnp.float32)}}
  return norm, x, {"params": params, "batch_stats": v["batch_stats"]}, gamma, beta


def test_batch_norm_train_mode_uses_batch_statistics_and_updates_running_averages():
  norm, x, v, gamma, beta = _batch_norm(momentum=0.9)
  y, new = norm.apply(v, x, train=True, mutable=["batch_stats"])
  xn = np.asarray(x, np.float64)
  mu, var = xn.mean(0), xn.var(0)  # biased batch variance (1/B), as in the paper's BN
  np.testing.assert_allclose(y, (xn - mu) / np.sqrt(var + EPS_BN) * gamma + beta,
                             rtol=1e-4, atol=1e-4)
  # Running averages: r <- momentum * r + (1 - momentum) * batch statistic, from (0, 1).
  stats = new["batch_stats"]["BatchNorm_0"]
  np.testing.assert_allclose(stats["mean"], 0.9 * 0.0 + 0.1 * mu, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 * 1.0 + 0.1 * var, rtol=1e-5)
  # A second step moves them again by the same equation.
  x2 = _x((16, 5), seed=7)
  _, new2 = norm.apply({"params": v["params"], **new}, x2, train=True, mutable=["batch_stats"])
  x2n = np.asarray(x2, np.float64)
  np.testing.assert_allclose(new2["batch_stats"]["BatchNorm_0"]["mean"],
                             0.9 * stats["mean"] + 0.1 * x2n.mean(0), rtol=1e-5, atol=1e-6)


def test_batch_norm_eval_mode_uses_running_averages_not_the_batch():
  norm, x, v, gamma, beta = _batch_norm()
  r_mean, r_var = np.array([1.0, -2.0, 0.5, 3.0, 0.0]), np.array([4.0, 0.25, 1.0, 9.0, 2.0])
  v["batch_stats"] = {"BatchNorm_0": {"mean": jnp.asarray(r_mean, jnp.float32),
                                      "var": jnp.asarray(r_var, jnp.float32)}}
  y = norm.apply(v, x, train=False)
  want = (np.asarray(x, np.float64) - r_mean) / np.sqrt(r_var + EPS_BN) * gamma + beta
  np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
  # Each example is normalized on its own: the output of one row does not depend on the
  # rest of the batch (it does in train mode).
  np.testing.assert_allclose(norm.apply(v, x[:1], train=False), y[:1], rtol=1e-6)
  y_train, _ = norm.apply(v, x[:4], train=True, mutable=["batch_stats"])
  assert not np.allclose(y_train[0], y[0], atol=1e-2)


def _stats(y, axes):
  y = np.asarray(y, np.float64)
  return y.mean(axis=axes), y.var(axis=axes)


@pytest.mark.parametrize("kind,shape,groups,axes", [
    ("layer", (6, 12), None, (1,)),                  # per example over features
    ("group", (6, 12), 3, (2,)),                     # per example, per group of 4
    ("group", (4, 5, 5, 8), 4, (1, 2, 4)),           # per example, per group, over H, W
    ("instance", (4, 5, 5, 8), None, (1, 2)),        # per example and channel over H, W
])
def test_per_example_norms_give_zero_mean_unit_variance(kind, shape, groups, axes):
  x = _x(shape)
  norm = layers.Norm(kind, num_groups=groups or 32)
  v = norm.init(jax.random.PRNGKey(0), x, train=False)
  assert "batch_stats" not in v  # no running statistics: train and eval are the same
  y = norm.apply(v, x, train=True)
  np.testing.assert_array_equal(y, norm.apply(v, x, train=False))
  if kind == "group":  # split the channel axis into (groups, channels per group)
    y = np.asarray(y).reshape(*y.shape[:-1], groups, -1)
  mean, var = _stats(y, axes)
  np.testing.assert_allclose(mean, 0.0, atol=1e-5)
  np.testing.assert_allclose(var, 1.0, atol=2e-3)  # var/(var + eps), eps = 1e-6
  # And not over the wrong axes: e.g. the batch mean of a per-example norm is not 0.
  if kind != "layer":
    assert np.abs(np.asarray(norm.apply(v, x, train=True)).mean(axis=(0,))).max() > 1e-3


def test_group_norm_uses_a_divisor_of_the_channels():
  x = _x((3, 12))  # 32 groups do not divide 12: gcd(32, 12) = 4 groups of 3
  norm = layers.Norm("group")
  y = norm.apply(norm.init(jax.random.PRNGKey(0), x, train=False), x, train=True)
  mean, _ = _stats(np.asarray(y).reshape(3, 4, 3), (2,))
  np.testing.assert_allclose(mean, 0.0, atol=1e-5)


def test_instance_norm_is_rejected_without_spatial_axes():
  model = models.MLP(num_outputs=2, width=4, norm="instance")
  with pytest.raises(ValueError, match="spatial"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((2, 3)))
  cnn = models.CNN(num_outputs=2, channels=(4,), dense_width=0, norm="instance")
  assert cnn.apply(cnn.init(jax.random.PRNGKey(0), jnp.ones((2, 6, 6, 1))),
                   jnp.ones((2, 6, 6, 1))).shape == (2, 2)


class _OneDense(nn.Module):
  weight_param: str

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    dense = nn.Dense(4, use_bias=False, name="dense")
    return layers.reparametrized(dense, self.weight_param, name="reparam")(x, train)


def _effective_kernel(module, variables, dim, train=False):
  """The kernel the layer multiplies by: its output on the identity matrix."""
  out = module.apply(variables, jnp.eye(dim), train=train,
                     mutable=["batch_stats"] if train else False)
  return np.asarray(out[0] if train else out, np.float64)


def test_weight_norm_kernel_columns_have_norm_scale():
  module = _OneDense("weight_norm")
  v = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
  scale = jnp.asarray([0.5, 1.0, 2.0, 3.0], jnp.float32)
  v = {"params": {**v["params"], "reparam": {"dense/kernel/scale": scale}}}
  k = _effective_kernel(module, v, 6)
  raw = np.asarray(v["params"]["dense"]["kernel"], np.float64)
  np.testing.assert_allclose(np.linalg.norm(k, axis=0), scale, rtol=1e-5)
  np.testing.assert_allclose(k, raw / np.linalg.norm(raw, axis=0) * np.asarray(scale),
                             rtol=1e-5, atol=1e-6)


def test_spectral_norm_top_singular_value_is_one_after_power_iterations():
  module = _OneDense("spectral_norm")
  v = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
  raw = np.asarray(v["params"]["dense"]["kernel"], np.float64)
  v = {"params": {"dense": {"kernel": jnp.asarray(5.0 * raw, jnp.float32)}},
       "batch_stats": v["batch_stats"]}
  sigma_true = np.linalg.svd(5.0 * raw, compute_uv=False)[0]
  for _ in range(30):  # one power-iteration step per training call
    _, new = module.apply(v, jnp.ones((2, 6)), train=True, mutable=["batch_stats"])
    v = {"params": v["params"], **new}
  stored = v["batch_stats"]["reparam"]["dense/kernel/sigma"]
  np.testing.assert_allclose(stored, sigma_true, rtol=1e-3)
  k = _effective_kernel(module, v, 6)
  np.testing.assert_allclose(np.linalg.svd(k, compute_uv=False)[0], 1.0, rtol=1e-3)
  np.testing.assert_allclose(k, 5.0 * raw / sigma_true, rtol=2e-3, atol=1e-5)


def test_spectral_norm_state_is_updated_by_the_train_step():
  model = models.MLP(num_outputs=3, depth=1, width=8, weight_param="spectral_norm")
  x = _x((8, 5))
  variables = model.init(jax.random.PRNGKey(0), x[:1], train=False)
  tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
  state = TrainState.create(variables, tx)
  assert set(state.batch_stats) == {"dense_0_spectral_norm", "head_spectral_norm"}
  step = jax.jit(steps.make_train_step(model, tx, losses.get_loss("softmax_cross_entropy")))
  batch = {"inputs": x, "targets": jnp.arange(8) % 3}
  new, metrics = step(state, batch, jax.random.PRNGKey(1))
  u0 = state.batch_stats["dense_0_spectral_norm"]["dense_0/kernel/u"]
  u1 = new.batch_stats["dense_0_spectral_norm"]["dense_0/kernel/u"]
  assert np.isfinite(metrics["train_loss"]) and not np.allclose(u0, u1)
  # u after one step is the normalized power-iteration update of the initial u.
  k = np.asarray(state.params["dense_0"]["kernel"], np.float64)
  vv = np.asarray(u0, np.float64) @ k.T
  u = (vv / np.linalg.norm(vv)) @ k
  np.testing.assert_allclose(u1, u / np.linalg.norm(u), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("field,value", [("norm", "batchnorm"), ("weight_param", "spectral")])
def test_config_rejects_unknown_norm_names(field, value):
  with pytest.raises(config_lib.ConfigError, match=f"model.{field}"):
    config_lib.validate(tiny_config(**{f"model.{field}": value}))
  config_lib.validate(tiny_config(**{"model.norm": "group",
                                     "model.weight_param": "weight_norm"}))


# mean / std = 1000 (e.g. un-normalized inputs, or a layer with a large constant offset):
# the one-pass variance E[x^2] - E[x]^2 cancels catastrophically in float32 (E[x^2] is
# ~1e6 var, its rounding error is ~var itself), the two-pass E[(x - E[x])^2] does not.
OFFSET_OVER_STD = 1000.0


def _offset_x(shape, seed=0):
  rng = np.random.default_rng(seed)
  std = rng.uniform(0.5, 3.0, shape[-1])
  x = OFFSET_OVER_STD * std + std * rng.standard_normal(shape)
  return jnp.asarray(x, jnp.float32)


def _reference(x, axes, eps, gamma, beta):
  """float64 normalization of the float32 input over `axes` (biased variance)."""
  xn = np.asarray(x, np.float64)
  mu, var = xn.mean(axes, keepdims=True), xn.var(axes, keepdims=True)
  return (xn - mu) / np.sqrt(var + eps) * gamma + beta, mu, var


def test_batch_norm_is_accurate_when_the_mean_dwarfs_the_std():
  norm = layers.Norm("batch", momentum=0.9)
  x = _offset_x((64, 5))
  v = norm.init(jax.random.PRNGKey(0), x, train=False)
  rng = np.random.default_rng(1)
  gamma, beta = rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)
  v = {"params": {"BatchNorm_0": {"scale": jnp.asarray(gamma, jnp.float32),
                                  "bias": jnp.asarray(beta, jnp.float32)}},
       "batch_stats": v["batch_stats"]}
  y, new = norm.apply(v, x, train=True, mutable=["batch_stats"])
  want, mu, var = _reference(x, (0,), EPS_BN, gamma, beta)
  np.testing.assert_allclose(y, want, atol=2e-3 * gamma.max())
  stats = new["batch_stats"]["BatchNorm_0"]
  np.testing.assert_allclose(stats["mean"], 0.1 * mu[0], rtol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * var[0], rtol=1e-4)
  # Eval mode with those running statistics equals the float64 equation too.
  r_mean, r_var = np.asarray(stats["mean"], np.float64), np.asarray(stats["var"], np.float64)
  y_eval = norm.apply({"params": v["params"], **new}, x, train=False)
  np.testing.assert_allclose(
      y_eval, (np.asarray(x, np.float64) - r_mean) / np.sqrt(r_var + EPS_BN) * gamma + beta,
      rtol=1e-5, atol=1e-2)  # |x - r_mean| ~ 0.9 x: float32 relative accuracy


@pytest.mark.parametrize("kind,shape,axes", [
    ("layer", (6, 40), (1,)),
    ("group", (4, 3, 3, 8), (1, 2, 4)),      # 2 groups of 4 channels (num_groups=2)
    ("instance", (4, 6, 6, 3), (1, 2)),
])
def test_per_example_norms_are_accurate_when_the_mean_dwarfs_the_std(kind, shape, axes):
  rng = np.random.default_rng(3)
  # The same offset / std per example (per-example norms reduce over features).
  x = _offset_x(shape[:1] + (1,) * (len(shape) - 1), seed=2)
  x = x + jnp.asarray(rng.standard_normal(shape) * np.asarray(x) / OFFSET_OVER_STD,
                      jnp.float32)
  norm = layers.Norm(kind, num_groups=2)
  v = norm.init(jax.random.PRNGKey(0), x, train=False)
  y = np.asarray(norm.apply(v, x, train=True))
  xg = np.asarray(x)
  if kind == "group":
    xg, y = xg.reshape(*shape[:-1], 2, -1), y.reshape(*shape[:-1], 2, -1)
  want, _, _ = _reference(xg, axes, 1e-6, 1.0, 0.0)  # flax's eps; scale 1, bias 0 at init
  np.testing.assert_allclose(y, want, atol=2e-3)


def test_the_layer_norm_of_the_transformers_uses_the_two_pass_variance():
  x = _offset_x((1, 32))[0][None] + jnp.asarray(np.random.default_rng(5).standard_normal(
      (3, 32)), jnp.float32)
  ln = layers.LayerNorm()
  y = ln.apply(ln.init(jax.random.PRNGKey(0), x), x)
  want, _, _ = _reference(x, (1,), 1e-6, 1.0, 0.0)
  np.testing.assert_allclose(y, want, atol=2e-3)
