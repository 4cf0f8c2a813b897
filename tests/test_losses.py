"""Losses against their closed forms; the registry names valid losses on a typo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import losses

LOGITS = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
LABELS = jnp.array([0, 1])


def _log_softmax(z):
  z = np.asarray(z, np.float64)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_softmax_cross_entropy_closed_form():
  want = -_log_softmax(LOGITS)[[0, 1], [0, 1]]
  np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, LABELS), want, rtol=1e-6)


def test_label_smoothing():
  eps, k = 0.1, 3
  y = np.full((2, k), eps / k)
  y[[0, 1], [0, 1]] += 1 - eps
  want = -(y * _log_softmax(LOGITS)).sum(-1)
  got = losses.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=eps)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_softmax_mse_and_mse():
  p = np.exp(_log_softmax(LOGITS))
  onehot = np.eye(3)[[0, 1]]
  np.testing.assert_allclose(losses.softmax_mse(LOGITS, LABELS), ((p - onehot) ** 2).sum(-1),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.mse(LOGITS, LABELS), ((LOGITS - onehot) ** 2).mean(-1),
                             rtol=1e-6)
  targets = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])  # regression targets
  np.testing.assert_allclose(losses.mse(LOGITS, targets), ((LOGITS - targets) ** 2).mean(-1),
                             rtol=1e-6)


def test_sigmoid_cross_entropy():
  z = np.asarray(LOGITS, np.float64)
  y = np.eye(3)[[0, 1]]
  want = -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(LOGITS, LABELS), want.sum(-1),
                             rtol=1e-5)


def test_cross_entropy_gradient_is_softmax_minus_onehot():
  g = jax.grad(lambda z: losses.softmax_cross_entropy(z, LABELS).sum())(LOGITS)
  np.testing.assert_allclose(g, np.exp(_log_softmax(LOGITS)) - np.eye(3)[[0, 1]], atol=1e-6)


def test_registry_lists_valid_names():
  assert losses.get_loss("mse") is losses.mse
  with pytest.raises(ValueError) as err:
    losses.get_loss("crossentropy")
  msg = str(err.value)
  assert "\n" not in msg and msg.startswith("loss.name='crossentropy' is not one of:")
  assert "softmax_cross_entropy" in msg
