"""The affine grid generator and bilinear sampler against exact expectations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import transforms


def _images(n=2, h=7, w=7, c=3, seed=0):
  return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def test_identity_returns_the_input_exactly():
  img = _images(h=6, w=9)
  out = transforms.warp(img, transforms.identity_theta(2))
  np.testing.assert_array_equal(np.asarray(out), img)
  # A [2, 3] theta applies to the whole batch; 3-D input (no channel axis) stays 3-D.
  out = transforms.warp(img[..., 0], transforms.affine_matrix(0.0))
  np.testing.assert_array_equal(np.asarray(out), img[..., 0])


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, -3), (1, 2), (-4, -1)])
def test_integer_translation_shifts_pixels_exactly(dx, dy):
  h, w = 8, 7
  img = _images(h=h, w=w)
  # tx = 2 dx / (W - 1): output column j reads input column j + dx (aligned corners).
  theta = transforms.affine_matrix(0.0, 1.0, transforms.pixels_to_normalized(dx, w),
                                   transforms.pixels_to_normalized(dy, h))
  out = np.asarray(transforms.warp(img, theta))
  expected = np.zeros_like(img)
  src = img[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
  expected[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)] = src
  np.testing.assert_array_equal(out, expected)


def test_half_pixel_shift_averages_neighbours_and_outside_is_zero():
  img = _images(n=1, h=5, w=6, c=1)
  theta = transforms.affine_matrix(0.0, 1.0, transforms.pixels_to_normalized(0.5, 6), 0.0)
  out = np.asarray(transforms.warp(img, theta))
  np.testing.assert_allclose(out[:, :, :5], 0.5 * (img[:, :, :5] + img[:, :, 1:]), atol=1e-6)
  # The last column samples halfway between pixel 5 and the zero outside.
  np.testing.assert_allclose(out[:, :, 5], 0.5 * img[:, :, 5], atol=1e-6)
  far = transforms.affine_matrix(0.0, 1.0, 3.0, 0.0)  # 1.5 image widths away
  np.testing.assert_array_equal(np.asarray(transforms.warp(img, far)), 0.0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_by_multiples_of_90_degrees_is_rot90(k):
  img = _images(h=9, w=9)
  out = transforms.warp(img, transforms.affine_matrix(90.0 * k))
  np.testing.assert_array_equal(np.asarray(out), np.rot90(img, k=k, axes=(1, 2)))


def test_scale_samples_the_expected_pixels():
  # W = 5: output x in {-1, -.5, 0, .5, 1}; scale 2 reads x in {-2, -1, 0, 1, 2}, i.e.
  # columns (outside, 0, 2, 4, outside): the content is shown at half size.
  img = _images(n=1, h=5, w=5, c=2)
  out = np.asarray(transforms.warp(img, transforms.affine_matrix(0.0, 2.0)))
  np.testing.assert_array_equal(out[:, 2, :, :], np.stack(
      [np.zeros_like(img[:, 2, 0]), img[:, 2, 0], img[:, 2, 2], img[:, 2, 4],
       np.zeros_like(img[:, 2, 0])], axis=1))


def test_affine_grid_is_theta_times_homogeneous_output_coordinates():
  theta = np.array([[[0.3, -1.2, 0.1], [0.8, 0.5, -0.4]]], np.float32)
  grid = np.asarray(transforms.affine_grid(jnp.asarray(theta), 3, 4))
  assert grid.shape == (1, 3, 4, 2)
  x, y = -1 + 2 * 2 / 3, 1.0  # output column 2 of 4, row 2 of 3
  np.testing.assert_allclose(grid[0, 2, 2], theta[0] @ np.array([x, y, 1.0]), atol=1e-6)


def test_gradients_match_central_finite_differences():
  rng = np.random.default_rng(1)
  img = rng.normal(size=(2, 6, 5, 2))
  weights = rng.normal(size=(2, 6, 5, 2))
  theta = np.array(transforms.affine_matrix(np.array([17.0, -31.0]), np.array([0.9, 1.15]),
                                            np.array([0.13, -0.07]), np.array([-0.21, 0.05])),
                   np.float64)

  def loss(theta, img):
    return jnp.sum(transforms.warp(img, theta) * weights)

  with jax.enable_x64(True):
    g_theta, g_img = jax.jit(jax.grad(loss, argnums=(0, 1)))(theta, img)
    # Within a bilinear cell the loss is quadratic in theta and linear in the image, so
    # central differences are exact up to round-off (no sample crosses a pixel line for
    # this small eps at these generic points).
    eps = 1e-6
    loss = jax.jit(loss)
    fd_theta = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
      d = np.zeros_like(theta)
      d[idx] = eps
      fd_theta[idx] = (loss(theta + d, img) - loss(theta - d, img)) / (2 * eps)
    fd_img = np.zeros_like(img)
    for idx in [(0, 0, 0, 0), (0, 3, 2, 1), (1, 5, 4, 0), (1, 2, 1, 1)]:
      d = np.zeros_like(img)
      d[idx] = 1.0
      fd_img[idx] = (loss(theta, img + d) - loss(theta, img - d)) / 2.0
      np.testing.assert_allclose(g_img[idx], fd_img[idx], rtol=1e-9, atol=1e-12)
  assert g_theta.dtype == np.float64 and np.abs(np.asarray(g_theta)).max() > 0.1
  np.testing.assert_allclose(np.asarray(g_theta), fd_theta, rtol=1e-6, atol=1e-8)


def test_gradient_at_the_identity_is_not_zero():
  # The snap to exact pixels passes the gradient through: at the identity (where every
  # sample sits on a pixel centre, as at a fresh spatial transformer) d/dtx equals the
  # one-sided difference sum_ij weights[i, j] * (img[i, j + 1] - img[i, j]) * (W - 1) / 2.
  img = _images(n=1, h=4, w=5, c=1).astype(np.float64)[..., 0]
  weights = _images(n=1, h=4, w=5, c=1, seed=3)[..., 0]
  grad = jax.grad(lambda t: jnp.sum(transforms.warp(img, t) * weights))(
      transforms.identity_theta(1))
  diff = np.concatenate([img[:, :, 1:] - img[:, :, :-1], -img[:, :, -1:]], axis=2)
  np.testing.assert_allclose(float(grad[0, 0, 2]), np.sum(weights * diff) * 2.0, rtol=1e-5)


def test_random_affine_is_jittable_vmappable_and_in_range():
  key = jax.random.PRNGKey(0)
  theta = jax.jit(transforms.random_affine, static_argnums=(1, 2, 3, 4))(
      key, 256, 45.0, (0.7, 1.2), 0.3)
  assert theta.shape == (256, 2, 3)
  a, b = np.asarray(theta[:, 0, 0]), np.asarray(theta[:, 1, 0])
  angle, scale = np.degrees(np.arctan2(b, a)), np.hypot(a, b)
  assert np.abs(angle).max() <= 45.0 + 1e-4 and np.abs(angle).max() > 40.0
  assert scale.min() >= 0.7 - 1e-6 and scale.max() <= 1.2 + 1e-6
  assert np.abs(np.asarray(theta[:, :, 2])).max() <= 0.3
  # Same key, same thetas (eager vs jitted: equal up to a few ulps of the trigonometry's
  # rounding); vmap over single images equals the batched call.
  np.testing.assert_allclose(np.asarray(transforms.random_affine(key, 256, 45.0, (0.7, 1.2),
                                                                 0.3)), np.asarray(theta),
                             rtol=5e-7, atol=1.2e-7)
  img = _images(n=4)
  batched = transforms.warp(img, theta[:4])
  single = jax.vmap(lambda i, t: transforms.warp(i[None], t[None])[0])(img, theta[:4])
  np.testing.assert_allclose(np.asarray(batched), np.asarray(single), atol=1e-6)
