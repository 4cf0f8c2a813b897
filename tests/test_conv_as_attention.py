"""A k x k convolution rebuilt as k²-head self-attention (Cordonnier et al. 2020, Thm 1)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import conv_as_attention as caa
from leeml.models import attention


@pytest.mark.parametrize("method", caa.METHODS)
@pytest.mark.parametrize("k", [3, 5])
def test_attention_equals_convolution(k, method):
  d = caa.max_abs_difference(jax.random.PRNGKey(k), kernel_size=k, height=9, width=7,
                             in_channels=3, out_channels=5, batch=3, method=method)
  assert d <= 1e-4


def test_reference_convolution_is_flax_conv():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
  conv = nn.Conv(4, (3, 3), padding="SAME")
  p = conv.init(jax.random.PRNGKey(1), x)
  np.testing.assert_allclose(caa.conv2d_same(x, p["params"]["kernel"], p["params"]["bias"]),
                             conv.apply(p, x), atol=1e-5)


def test_offsets_and_parameter_layout():
  np.testing.assert_array_equal(caa.conv_offsets(3)[[0, 4, 8]], [[-1, -1], [0, 0], [1, 1]])
  assert caa.same_padding(3) == (1, 1) and caa.same_padding(4) == (1, 2)
  kernel = jnp.arange(3 * 3 * 2 * 4, dtype=jnp.float32).reshape(3, 3, 2, 4)
  params = caa.attention_params_from_conv(kernel)
  layer = attention.MultiHeadAttention(num_heads=9, qkv_features=18, out_features=4)
  ref = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 2)))
  assert jax.tree.map(jnp.shape, ref) == jax.tree.map(jnp.shape, params)
  # Head 5 = tap (1, 2) = offset (0, +1); its output projection is that tap.
  np.testing.assert_array_equal(params["params"]["out"]["kernel"][5], kernel[1, 2])


@pytest.mark.parametrize("method", caa.METHODS)
def test_each_head_attends_to_exactly_one_offset(method):
  h, w, k = 5, 6, 3
  x = jax.random.normal(jax.random.PRNGKey(0), (2, h, w, 1))
  kernel = jnp.ones((k, k, 1, 1))
  _, weights = caa.conv_as_attention(x, kernel, method=method)
  weights = np.asarray(weights)
  # Positional only: the weights do not depend on the image.
  _, weights2 = caa.conv_as_attention(-3.0 * x, kernel, method=method)
  np.testing.assert_array_equal(weights, np.asarray(weights2))
  pad = 1 if method == "quadratic" else 0
  width_keys = w + 2 * pad
  for head, (dr, dc) in enumerate(caa.conv_offsets(k)):
    for r, c in [(0, 0), (2, 3), (4, 5)]:
      row = weights[0, head, r * w + c]
      rr, cc = r + dr + pad, c + dc + pad
      if method == "mask" and not (0 <= rr < h and 0 <= cc < w):
        assert (row == 0.0).all()                     # off-image: zero padding
        continue
      target = rr * width_keys + cc
      assert row[target] == pytest.approx(1.0, abs=1e-6)
      assert np.delete(row, target).max() < 1e-20


def test_small_scale_is_not_one_hot():
  # With alpha = 1 the softmax leaks to neighbours: the construction needs a large scale.
  d = caa.max_abs_difference(jax.random.PRNGKey(0), kernel_size=3, height=6, width=6,
                             in_channels=2, out_channels=2, alpha=1.0)
  assert d > 0.1


def test_quadratic_scores_peak_at_the_shift():
  q = np.array([[2, 2]])
  keys = attention.grid_positions(5, 5)
  shifts = np.array([[1, -1], [0, 0]])
  b = np.asarray(caa.quadratic_bias(q, keys, shifts, alpha=2.0))[0, :, 0]
  # v_h . r_δ = -α|δ - Δ_h|² + α|Δ_h|², shifted so that the peak is 0.
  d2 = ((keys - q - shifts[:, None]) ** 2).sum(-1)
  np.testing.assert_allclose(b, -2.0 * d2, atol=1e-5)
