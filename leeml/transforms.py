"""Differentiable affine warps of image batches (lecture 9: spatial transformer).

The affine grid generator and bilinear sampler of Jaderberg et al. 2015, "Spatial
Transformer Networks" (arXiv:1506.02025), eqs. (1)-(5), in plain jax.numpy: batched,
differentiable w.r.t. both the images and the transform, jit- and vmap-able.

Conventions (one place, used everywhere):
- Images are NHWC. A point is (x, y) with x along the width (column) and y along the
  height (row, pointing down, as an image is displayed).
- Normalized coordinates lie in [-1, 1] with *aligned corners*: pixel column j of a W-wide
  image sits at x = -1 + 2 j / (W - 1), so x = -1 and x = 1 are the centres of the first
  and last pixels (rows likewise with H). A shift of k pixels is 2 k / (W - 1) in
  normalized units (`pixels_to_normalized`).
- `theta` [..., 2, 3] maps *output* to *input*: the output pixel at normalized p = (x, y)
  takes the input's value at theta @ [x, y, 1] (the paper's "inverse" sampling grid).
  Points outside the input read as zero.
- `affine_matrix(angle, scale, tx, ty)` = [[s cos a, -s sin a, tx], [s sin a, s cos a, ty]].
  Because theta maps output to input, the warped image shows the content rotated by
  `angle` degrees counterclockwise as displayed (angle=90 equals `np.rot90`), magnified by
  1 / scale (scale > 1 zooms out), and moved by (-tx, -ty): tx = 2 / (W - 1) moves the
  content one pixel to the left.
"""

import jax
import jax.numpy as jnp

# Sample positions this close to a pixel centre (in pixels) read that pixel exactly; the
# snap passes gradients straight through, so d(output)/d(theta) is unchanged (see below).
_SNAP_PIXELS = 1e-4


def pixels_to_normalized(pixels, size: int):
  """A shift of `pixels` along an axis of `size` pixels, in normalized units."""
  return 2.0 * jnp.asarray(pixels, float) / (size - 1)


def identity_theta(n: int | None = None):
  """The identity transform [2, 3], or [n, 2, 3] stacked."""
  eye = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], float)
  return eye if n is None else jnp.tile(eye, (n, 1, 1))


def affine_matrix(angle_deg, scale=1.0, tx=0.0, ty=0.0):
  """theta [..., 2, 3] rotating by `angle_deg`, sampling at `scale`, translating by (tx, ty).

  Arguments broadcast against each other; see the module docstring for what each does to
  the displayed image.
  """
  a = jnp.deg2rad(jnp.asarray(angle_deg, float))
  s, tx, ty = (jnp.asarray(v, float) for v in (scale, tx, ty))
  a, s, tx, ty = jnp.broadcast_arrays(a, s, tx, ty)
  cos, sin = s * jnp.cos(a), s * jnp.sin(a)
  row0 = jnp.stack([cos, -sin, tx], axis=-1)
  row1 = jnp.stack([sin, cos, ty], axis=-1)
  return jnp.stack([row0, row1], axis=-2)


def affine_grid(theta, height: int, width: int):
  """Sampling grid [N, H, W, 2] of normalized input points (x, y) for theta [N, 2, 3]."""
  dtype = jnp.promote_types(theta.dtype, jnp.float32)  # float64 only under jax x64
  ys = jnp.linspace(-1.0, 1.0, height, dtype=dtype)
  xs = jnp.linspace(-1.0, 1.0, width, dtype=dtype)
  gx, gy = jnp.meshgrid(xs, ys)  # [H, W] each, 'xy' indexing
  points = jnp.stack([gx, gy, jnp.ones_like(gx)], axis=-1)  # [H, W, 3]
  return jnp.einsum("hwk,nck->nhwc", points, theta.astype(dtype))


def _to_pixels(coord, size: int):
  pix = (coord + 1.0) * (0.5 * (size - 1))
  # Round-off in the grid (e.g. cos 90 deg = -4e-8) would otherwise turn "pixel 5" into
  # 4.9999 and blend in a neighbour; snapping keeps identity and exact shifts exact. The
  # straight-through form keeps the gradient of the sample position equal to 1.
  near = jnp.round(pix)
  snapped = pix + jax.lax.stop_gradient(near - pix)
  return jnp.where(jnp.abs(near - pix) < _SNAP_PIXELS, snapped, pix)


def bilinear_sample(images, grid):
  """Bilinear interpolation of images [N, H, W, C] at grid [N, Ho, Wo, 2] -> [N, Ho, Wo, C].

  The grid holds normalized input points (x, y); samples outside the image are zero
  (each of the four neighbours outside the image contributes zero), as in the paper's
  eq. (5). Differentiable in the images and, almost everywhere, in the grid.
  """
  _, h, w, _ = images.shape
  x = _to_pixels(grid[..., 0], w)
  y = _to_pixels(grid[..., 1], h)
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  wx = x - x0
  wy = y - y0
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)

  def corner(img, yi, xi):
    inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
    vals = img[jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)]  # [Ho, Wo, C]
    return vals * inside[..., None].astype(img.dtype)

  def one(img, x0, y0, wx, wy):
    wx, wy = wx[..., None], wy[..., None]
    top = (1 - wx) * corner(img, y0, x0) + wx * corner(img, y0, x0 + 1)
    bottom = (1 - wx) * corner(img, y0 + 1, x0) + wx * corner(img, y0 + 1, x0 + 1)
    return (1 - wy) * top + wy * bottom

  return jax.vmap(one)(images, x0, y0, wx, wy)


def warp(images, theta, out_size: tuple[int, int] | None = None):
  """images [N, H, W, C] (or [N, H, W]) warped by theta [N, 2, 3] (or [2, 3] for all)."""
  squeeze = images.ndim == 3
  if squeeze:
    images = images[..., None]
  n, h, w, _ = images.shape
  if theta.ndim == 2:
    theta = jnp.broadcast_to(theta, (n, 2, 3))
  ho, wo = out_size if out_size is not None else (h, w)
  out = bilinear_sample(images, affine_grid(theta, ho, wo))
  return out[..., 0] if squeeze else out


def random_affine(key, n: int, max_angle: float = 0.0, scale_range=(1.0, 1.0),
                  max_translation: float = 0.0):
  """n random thetas [n, 2, 3]: angle ~ U(+-max_angle) degrees, scale ~ U(scale_range),
  tx, ty ~ U(+-max_translation) in normalized units (all as in `affine_matrix`)."""
  k_a, k_s, k_t = jax.random.split(key, 3)
  angle = jax.random.uniform(k_a, (n,), minval=-max_angle, maxval=max_angle)
  scale = jax.random.uniform(k_s, (n,), minval=scale_range[0], maxval=scale_range[1])
  t = jax.random.uniform(k_t, (n, 2), minval=-max_translation, maxval=max_translation)
  return affine_matrix(angle, scale, t[:, 0], t[:, 1])
