"""leeml.surfaces: error surfaces against closed forms; the trajectory runner against GD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leeml import surfaces
from leeml.optim import lecture_momentum


def test_quadratic_gd_trajectory_is_the_closed_form():
  # GD on sum h_i w_i^2 / 2: w_t = (1 - eta h)^t w_0, loss and |grad| follow.
  h, eta, w0 = np.array([1.0, 10.0]), 0.05, np.array([2.0, -1.0])
  tr = surfaces.trajectory(surfaces.quadratic(tuple(h)), optax.sgd(eta), tuple(w0), 20)
  t = np.arange(21)[:, None]
  w = (1 - eta * h) ** t * w0
  np.testing.assert_allclose(tr.points, w, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(tr.loss, 0.5 * np.sum(h * w ** 2, axis=1), rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(tr.grad_norm, np.linalg.norm(h * w, axis=1), rtol=1e-5, atol=1e-8)


def test_trajectories_vmap_equals_single_runs():
  loss = surfaces.tilted_double_well(0.3)
  tx = lecture_momentum(0.02, 0.9)
  starts = np.array([[1.6, 0.5], [2.0, -1.0]], np.float32)
  many = surfaces.trajectories(loss, tx, starts, 50)
  for i, s in enumerate(starts):
    one = surfaces.trajectory(loss, tx, tuple(s), 50)
    np.testing.assert_allclose(many.points[i], one.points, rtol=1e-6, atol=1e-6)


def test_double_well_critical_points_match_gradient_and_hessian():
  tilt = 0.3
  loss = surfaces.tilted_double_well(tilt, valley_curvature=2.0)
  pts = surfaces.double_well_points(tilt)
  assert pts["global_min"] < pts["saddle"] < pts["local_min"]
  assert pts["global_min_loss"] < pts["local_min_loss"] < pts["saddle_loss"]
  for name, kind in (("global_min", "min"), ("saddle", "saddle"), ("local_min", "min")):
    w = jnp.array([pts[name], 0.0], jnp.float32)
    assert float(jnp.linalg.norm(jax.grad(loss)(w))) < 1e-5
    ev = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(w)))
    # d2L/dw1^2 = 12 w1^2 - 4; d2L/dw2^2 = valley_curvature.
    np.testing.assert_allclose(sorted(ev), sorted([12 * pts[name] ** 2 - 4, 2.0]), rtol=1e-4)
    assert (ev.min() > 0) == (kind == "min")
    assert float(loss(w)) == pytest.approx(pts[name + "_loss"], rel=1e-5, abs=1e-6)


def test_elongated_valley_formula_gradient_and_shear():
  a, s, b = 1e-3, 2.0, 0.1
  loss = surfaces.elongated_valley(a, s, shear=b, center=(1.0, -1.0))
  w = np.array([3.0, 0.5])
  d1, d2 = w - np.array([1.0, -1.0])
  u = d2 - b * d1
  assert float(loss(jnp.asarray(w, jnp.float32))) == pytest.approx(
      0.5 * a * d1 ** 2 + s * np.log(np.cosh(u)), rel=1e-5)
  g = np.asarray(jax.grad(loss)(jnp.asarray(w, jnp.float32)))
  np.testing.assert_allclose(g, [a * d1 - s * b * np.tanh(u), s * np.tanh(u)], rtol=1e-5)
  assert float(loss(jnp.array([1.0, -1.0]))) == 0.0
  # Large offsets do not overflow (log cosh computed stably).
  assert np.isfinite(float(loss(jnp.array([0.0, 200.0]))))
  assert surfaces.valley_offset([3.0, 0.5], b, (1.0, -1.0)) == pytest.approx(u)


def test_gd_with_large_eta_settles_on_the_analytic_two_cycle():
  # s eta = 3: GD across the log-cosh wall settles on u -> -u with 2u = s eta tanh(u).
  s, eta = 1.0, 3.0
  loss = surfaces.elongated_valley(0.0, s)
  tr = surfaces.trajectory(loss, optax.sgd(eta), (0.0, 0.3), 400)
  u = 1.0
  for _ in range(50):  # Newton on 2u - 3 tanh(u) = 0
    u -= (2 * u - s * eta * np.tanh(u)) / (2 - s * eta / np.cosh(u) ** 2)
  last = np.asarray(tr.points[-4:, 1])
  np.testing.assert_allclose(np.abs(last), u, rtol=1e-4)
  assert np.all(np.sign(last[1:]) == -np.sign(last[:-1]))  # alternating sides
  np.testing.assert_allclose(tr.grad_norm[-1], s * np.tanh(u), rtol=1e-4)  # not small


def test_inverse_sqrt_decay_and_first_step_below():
  sched = surfaces.inverse_sqrt_decay(0.3, time_scale=30.0)
  assert float(sched(0)) == pytest.approx(0.3)
  assert float(sched(90)) == pytest.approx(0.15)
  assert surfaces.first_step_below([3.0, 2.0, 0.4, 0.1], 0.5) == 2
  assert surfaces.first_step_below([3.0, np.nan], 0.5) == -1


def test_grid_matches_the_surface():
  loss = surfaces.quadratic((1.0, 4.0))
  xs, ys, z = surfaces.grid(loss, (-1, 1), (-2, 2), num=5)
  assert z.shape == (5, 5)
  assert z[0, -1] == pytest.approx(0.5 * (1.0 + 4.0 * 4.0))  # (x, y) = (1, -2)
