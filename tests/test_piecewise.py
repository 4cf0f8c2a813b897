"""Exact linear regions from parameters, against hand-built nets and Telgarsky's sawtooth."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import models, piecewise


def _one_layer(kernel, bias, head, head_bias=0.0):
  return {"dense_0": {"kernel": np.array([kernel], float), "bias": np.array(bias, float)},
          "head": {"kernel": np.array(head, float)[:, None], "bias": np.array([head_bias])}}


def test_hand_built_one_layer_breakpoints():
  # f(x) = relu(x - 1) - 2 relu(-x - 2) + 3 relu(2x - 1): kinks at 1, -2, 0.5.
  p = _one_layer([1.0, -1.0, 2.0], [-1.0, -2.0, -1.0], [1.0, -2.0, 3.0])
  r = piecewise.linear_regions(p)
  np.testing.assert_allclose(r.breakpoints, [-2.0, 0.5, 1.0])
  assert r.num_regions == 4 and r.num_pieces == 4
  # Slopes from the left: -2*(-1)*... f' = 2 (x<-2: -2 relu(-x-2) has slope +2), 0, 6, 7.
  np.testing.assert_allclose(r.slopes[:, 0], [2.0, 0.0, 6.0, 7.0])
  # On a domain only the breakpoints inside count.
  r = piecewise.linear_regions(p, (0.0, 0.9))
  np.testing.assert_allclose(r.breakpoints, [0.5])
  x = np.linspace(-5, 5, 101)
  np.testing.assert_allclose(piecewise.linear_regions(p)(x), piecewise.forward(p, x), atol=1e-12)


def test_coinciding_kinks_and_dead_slope_change():
  # Two units with the same kink (x = 1) make one breakpoint; a unit whose output weight
  # is 0 splits the activation regions but not the function's pieces.
  p = _one_layer([1.0, 2.0, 1.0], [-1.0, -2.0, 3.0], [1.0, 1.0, 0.0])
  r = piecewise.linear_regions(p)
  np.testing.assert_allclose(r.edges[1:-1], [-3.0, 1.0])
  assert r.num_regions == 3 and r.num_pieces == 2
  np.testing.assert_allclose(r.breakpoints, [1.0])


def test_two_layer_hand_built():
  # h1 = relu(x), h2 = relu(-x); layer 2: g = relu(h1 + h2 - 1) = relu(|x| - 1).
  p = {"dense_0": {"kernel": np.array([[1.0, -1.0]]), "bias": np.zeros(2)},
       "dense_1": {"kernel": np.array([[1.0], [1.0]]), "bias": np.array([-1.0])},
       "head": {"kernel": np.array([[1.0]]), "bias": np.zeros(1)}}
  r = piecewise.linear_regions(p)
  np.testing.assert_allclose(r.edges[1:-1], [-1.0, 0.0, 1.0])
  np.testing.assert_allclose(r.breakpoints, [-1.0, 1.0])
  # Slope of relu(|x|-1) is 0 on (-1, 0) and (0, 1): x = 0 is an activation edge only.
  np.testing.assert_allclose(r.slopes[:, 0], [-1.0, 0.0, 0.0, 1.0])
  assert r.num_regions == 4 and r.num_pieces == 3
  assert piecewise.grid_regions(p, (-2.0, 2.0), num_points=4001) == 4


def test_hard_sigmoid_activation_has_two_kinks_per_unit():
  p = _one_layer([1.0], [0.0], [1.0])
  r = piecewise.linear_regions(p, activation="hard_sigmoid")
  np.testing.assert_allclose(r.breakpoints, [-1.0, 1.0])
  np.testing.assert_allclose(r.slopes[:, 0], [0.0, 0.5, 0.0])


@pytest.mark.parametrize("depth", range(1, 9))
def test_sawtooth_has_exactly_2_to_the_L_regions(depth):
  p = piecewise.sawtooth_params(depth)
  r = piecewise.linear_regions(p, (0.0, 1.0))
  assert r.num_pieces == 2 ** depth and r.num_regions == 2 ** depth
  np.testing.assert_array_equal(r.breakpoints, np.arange(1, 2 ** depth) / 2 ** depth)
  np.testing.assert_allclose(np.abs(r.slopes[:, 0]), 2.0 ** depth)
  x = np.linspace(0, 1, 1025)
  np.testing.assert_allclose(piecewise.forward(p, x)[:, 0], piecewise.sawtooth(x, depth),
                             atol=1e-12)
  assert piecewise.num_params(p) == 6 * depth + 1
  # The dense grid (independent count) sees the same regions.
  assert piecewise.grid_regions(p, (0.0, 1.0), num_points=20_001) == 2 ** depth


@pytest.mark.parametrize("depth", [3, 6])
def test_shallow_sawtooth_matches_with_2_to_the_L_units(depth):
  p = piecewise.shallow_sawtooth_params(depth)
  assert p["dense_0"]["kernel"].shape == (1, 2 ** depth)
  r = piecewise.linear_regions(p, (0.0, 1.0))
  assert r.num_pieces == 2 ** depth
  x = np.linspace(0, 1, 999)
  np.testing.assert_allclose(piecewise.forward(p, x)[:, 0], piecewise.sawtooth(x, depth),
                             atol=1e-9)


def test_random_one_layer_nets_have_at_most_k_plus_1_regions():
  rng = np.random.default_rng(0)
  for k in (1, 3, 10, 40):
    p = _one_layer(rng.normal(size=k), rng.normal(size=k), rng.normal(size=k))
    r = piecewise.linear_regions(p)
    assert r.num_regions == k + 1  # distinct kinks almost surely, all on the real line
    lo, hi = r.edges[1] - 1, r.edges[-2] + 1
    assert piecewise.grid_regions(p, (lo, hi), num_points=400_001) == k + 1


def test_matches_flax_mlp_including_residual():
  for residual in (False, True):
    model = models.MLP(num_outputs=2, depth=4, width=6, residual=residual)
    variables = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 1)))
    params = jax.tree.map(np.asarray, variables["params"])
    r = piecewise.linear_regions(params, (-3.0, 3.0), residual=residual)
    x = np.linspace(-3, 3, 501)
    want = np.asarray(model.apply(variables, jnp.asarray(x[:, None], jnp.float32)))
    np.testing.assert_allclose(r(x), want, atol=1e-5)
    np.testing.assert_allclose(piecewise.forward(params, x, residual=residual), want, atol=1e-5)
    assert r.num_regions == piecewise.grid_regions(params, (-3.0, 3.0), residual=residual)


def test_hard_sigmoid_sum_is_the_interpolant_and_sigmoids_approach_it():
  xs = np.array([-1.0, -0.3, 0.2, 1.0])
  ys = np.array([0.5, -1.0, 2.0, 1.0])
  hard = piecewise.hard_sigmoid_params(xs, ys)
  x = np.linspace(-1, 1, 401)
  np.testing.assert_allclose(piecewise.forward(hard, x, activation="hard_sigmoid")[:, 0],
                             np.interp(x, xs, ys), atol=1e-12)
  model = models.MLP(num_outputs=1, depth=1, width=3, activation="hard_sigmoid")
  got = model.apply({"params": jax.tree.map(jnp.asarray, hard)}, jnp.asarray(x[:, None]))
  np.testing.assert_allclose(np.asarray(got)[:, 0], np.interp(x, xs, ys), atol=1e-5)
  # Sigmoids approach the curve as it is cut into more, smaller hard sigmoids (lecture 1:
  # more sigmoids, better approximation); sharpening one sigmoid would not (it becomes a step).
  errs = []
  for m in (1, 4, 16, 64):
    fine = np.interp(np.linspace(0, len(xs) - 1, m * (len(xs) - 1) + 1), np.arange(len(xs)), xs)
    soft = piecewise.sigmoid_params(piecewise.hard_sigmoid_params(fine, np.interp(fine, xs, ys)))
    errs.append(np.abs(piecewise.sigmoid_forward(soft, x)[:, 0] - np.interp(x, xs, ys)).max())
  assert all(b < a for a, b in zip(errs, errs[1:])) and errs[-1] < 0.05, errs


def test_grid_sees_what_the_exact_edges_predict_even_for_close_kinks():
  # Kinks at 0.30000 and 0.30001: a 1,001-point grid on [0, 1] sees them as one change.
  p = _one_layer([1.0, 1.0, -1.0], [-0.3, -0.30001, 0.8], [1.0, 2.0, 1.0])
  r = piecewise.linear_regions(p, (0.0, 1.0))
  assert r.num_regions == 4
  assert piecewise.grid_visible_regions(r, (0.0, 1.0), 1001) == 3
  assert piecewise.grid_regions(p, (0.0, 1.0), num_points=1001) == 3
  assert piecewise.grid_visible_regions(r, (0.0, 1.0), 1_000_001) == 4
  assert piecewise.grid_regions(p, (0.0, 1.0), num_points=1_000_001) == 4
