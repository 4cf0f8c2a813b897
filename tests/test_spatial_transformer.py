"""The spatial transformer and ST-CNN: identity start, gradients, registry, 1 vs 8 devices."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import REPO, binary_env
from leeml import config as config_lib, models, transforms
from leeml.models.cnn import CNN
from leeml.models.spatial_transformer import LocalizationNetwork, STCNN

_CNN = dict(channels=(4, 8), dense_width=16)


def _inputs(n=3, size=12, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, size, size, 1)), jnp.float32)


def test_localization_net_starts_at_the_identity_and_counts_its_parameters():
  net = LocalizationNetwork(channels=(4,), dense_width=8, downsample=1)
  x = _inputs()
  params = net.init(jax.random.PRNGKey(0), x)["params"]
  np.testing.assert_array_equal(np.asarray(net.apply({"params": params}, x)),
                                np.asarray(transforms.identity_theta(3)))
  # 12x12 -> avg-pool 6x6 -> conv(4) + max-pool 3x3x4 = 36 -> Dense 8 -> Dense 6.
  counts = {k: sum(np.size(a) for a in jax.tree.leaves(v)) for k, v in params.items()}
  assert counts == {"conv_0": 3 * 3 * 1 * 4 + 4, "dense": 36 * 8 + 8, "theta": 8 * 6 + 6}


def test_st_cnn_at_init_computes_its_cnn_on_the_raw_input():
  x = _inputs()
  st = STCNN(num_outputs=10, loc_channels=(4,), loc_dense_width=8, **_CNN)
  variables = st.init(jax.random.PRNGKey(1), x)
  logits, extra = st.apply(variables, x, return_transformed=True)
  np.testing.assert_array_equal(np.asarray(extra["rectified"]), np.asarray(x))
  cnn_logits = CNN(num_outputs=10, **_CNN).apply(
      {"params": variables["params"]["classifier"]}, x)
  np.testing.assert_array_equal(np.asarray(logits), np.asarray(cnn_logits))
  assert extra["theta"].shape == (3, 2, 3)
  # out_size resamples at another resolution; 3-D input gets a channel axis.
  small = STCNN(num_outputs=10, loc_channels=(4,), loc_dense_width=8, out_size=(6, 6), **_CNN)
  v = small.init(jax.random.PRNGKey(1), x[..., 0])
  assert small.apply(v, x[..., 0], return_transformed=True)[1]["rectified"].shape == (3, 6, 6, 1)


def test_the_loss_reaches_the_localization_network(optimized_compiles):
  # Zero-initialized theta weights: their gradient is dL/dtheta outer the features, so it is
  # non-zero exactly when the sampler passes gradient to theta (also at the identity).
  # With XLA's optimizations: with most of them disabled (the test session's default) the
  # jitted gradient of tx below came out -0.364 where eager autodiff, the optimized jit
  # and the finite difference agree on -0.879 (jaxlib 0.10.2, XLA:CPU; not yet isolated).
  x, y = _inputs(n=4), jnp.array([0, 1, 2, 3])
  st = STCNN(num_outputs=10, loc_channels=(4,), loc_dense_width=8, **_CNN)
  params = st.init(jax.random.PRNGKey(2), x)["params"]

  def loss(p):
    logits = st.apply({"params": p}, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

  def with_tx(p, d):  # theta's bias index 2 (tx, normalized units) moved by d
    p = jax.tree.map(lambda a: a, p)
    p["transformer"]["localization"]["theta"]["bias"] = (
        p["transformer"]["localization"]["theta"]["bias"].at[2].add(d))
    return p

  # At the identity every sample sits on a pixel centre, a kink of the bilinear sampler
  # (where a last-ulp difference in the grid decides which one-sided slope autodiff takes),
  # so move tx 0.013 (~8% of the 2/11 pixel spacing) off it: samples fall strictly between
  # pixel centres, and the loss is smooth there.
  params = with_tx(params, 0.013)
  grads = jax.jit(jax.grad(loss))(params)
  g_theta = grads["transformer"]["localization"]["theta"]
  assert float(jnp.abs(g_theta["bias"]).max()) > 1e-4
  assert float(jnp.abs(g_theta["kernel"]).max()) > 1e-4
  # The bias gradient is dL/dtheta summed through the batch mean: compare with a central
  # finite difference of the loss along tx (bias index 2).
  eps = 1e-3
  fd = (float(loss(with_tx(params, eps))) - float(loss(with_tx(params, -eps)))) / (2 * eps)
  np.testing.assert_allclose(float(g_theta["bias"][2]), fd, rtol=0.05, atol=1e-4)


def test_st_cnn_is_registered_and_its_config_validates():
  cfg = ml_collections.ConfigDict(dict(name="st_cnn", loc_channels=(4,), loc_downsample=1,
                                       **_CNN))
  model = models.get_model(cfg, num_outputs=10)
  assert isinstance(model, STCNN) and model.loc_channels == (4,)
  config = config_lib.base_config()
  config.model = cfg
  config.dataset = ml_collections.ConfigDict(dict(name="distorted_digits", variant="R"))
  config_lib.validate(config)


# Runs in a fresh interpreter: the forced host device count must be set before jax starts.
# On 8 devices the batch mean is summed in another order, so the numbers differ in the last
# float bits; the bilinear sampler's gradient is piecewise constant in the sample position
# (it jumps where a sample crosses a pixel centre), so those bits can flip a few sample
# gradients after some steps and the curves drift apart slowly. So: the first steps agree
# to float noise (a wrong split or mixing of examples across devices would show at step
# 1 by ~0.1), the rest to 1e-3. (Even the plain CNN drifts at lr 0.1; lr 0.01 here.)
_EIGHT_VS_ONE = r"""
import json, sys
import jax, ml_collections
sys.path.insert(0, "tests")
from conftest import tiny_config
from leeml import parallel, train
from leeml.metric_writers import read_jsonl
assert jax.device_count() == 8, jax.devices()
curves = {}
for n in (8, 1):
  config = tiny_config(num_train_steps=8, log_every_steps=4, checkpoint_every_steps=8,
                       batch_size=32)
  config.optimizer.learning_rate = 0.01
  config.dataset = ml_collections.ConfigDict(dict(
      name="distorted_digits", variant="RTS", canvas_size=14, digit_size=8, train_copies=1,
      test_copies=1))
  config.model = ml_collections.ConfigDict(dict(
      name="st_cnn", channels=(4, 8), dense_width=16, loc_channels=(4,), loc_dense_width=8))
  workdir = f"{sys.argv[1]}/st_cnn_{n}"
  train.train_and_evaluate(config, workdir, mesh=parallel.make_mesh(jax.devices()[:n]))
  records = read_jsonl(workdir + "/metrics.jsonl")
  curves[n] = {"train": [r["train_loss"] for r in records if "train_loss" in r],
               "eval": [r["eval_loss"] for r in records if "eval_loss" in r]}
print("RESULT" + json.dumps(curves))
"""


# A subprocess on 8 host devices (jax start-up and compiles): run with `pytest -m slow`.
@pytest.mark.slow
def test_st_cnn_trains_under_jit_on_eight_devices_as_on_one(tmp_path):
  proc = subprocess.run([sys.executable, "-c", _EIGHT_VS_ONE, str(tmp_path)], cwd=REPO,
                        env=binary_env(device_count=8), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  curves = json.loads(proc.stdout.split("RESULT")[-1])
  eight, one = np.array(curves["8"]["train"]), np.array(curves["1"]["train"])
  assert len(eight) == len(one) == 8
  np.testing.assert_allclose(eight[:5], one[:5], atol=1e-5, rtol=0)
  np.testing.assert_allclose(eight, one, atol=1e-3, rtol=0)
  np.testing.assert_allclose(curves["8"]["eval"], curves["1"]["eval"], atol=1e-3, rtol=0)
  assert np.ptp(one) > 1e-3  # the batches and the parameters changed from step to step
