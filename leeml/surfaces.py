"""2-D error surfaces and a jitted trajectory runner for optimizers drawn on them.

Lectures 4-7 draw optimizers as paths on the contour lines of a two-parameter error
surface. Here a surface is a pure function `loss(w) -> scalar` of `w` with shape (2,),
and `trajectory(loss, tx, start, num_steps)` runs any optax `GradientTransformation` on
it inside one `jax.lax.scan`, recording every point, loss and gradient norm;
`trajectories` vmaps that over many starting points.

The lecture's own update rules are optax transformations too (so the same runner takes
them):
  * `lecture_adagrad`: sigma_t = sqrt(mean_{i<=t} g_i^2) (root mean square of all past
    gradients), w <- w - eta_t / sigma_t * g_t (lecture 6, "Root Mean Square").
  * `lecture_rmsprop`: sigma_0 = |g_0|, sigma_t = sqrt(alpha sigma_{t-1}^2 + (1 - alpha)
    g_t^2), w <- w - eta_t / sigma_t * g_t (lecture 6, "RMSProp").
  * gradient descent with momentum: `leeml.optim.lecture_momentum` (lecture 5).
They differ from `optax.adagrad` / `optax.rmsprop` (see the functions' docstrings and
tests/test_optimizer_equations.py).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Surface = Callable[[jax.Array], jax.Array]
LearningRate = float | Callable[[jax.Array], jax.Array]

# --------------------------------------------------------------------------------- surfaces


def quadratic(curvatures=(1.0, 100.0), center=(0.0, 0.0)) -> Surface:
  """L(w) = sum_i h_i (w_i - c_i)^2 / 2: a convex bowl, elongated when h_1 << h_2."""
  h, c = jnp.asarray(curvatures, jnp.float32), jnp.asarray(center, jnp.float32)
  return lambda w: 0.5 * jnp.sum(h * (w - c) ** 2)


def elongated_valley(flat_curvature: float = 1e-3, steep_scale: float = 1.0,
                     shear: float = 0.0, center=(0.0, 0.0)) -> Surface:
  """L(w) = a d1^2 / 2 + s log cosh(d2 - b d1), d = w - center: a convex, elongated valley.

  Flat along the floor d2 = b d1 (curvature ~a), steep across it (curvature s at the
  floor). A small shear b keeps the floor off the coordinate axes, so the gradient across
  the valley never becomes exactly zero (as on a real surface). Near the minimum it is a
  quadratic. The log-cosh wall has a bounded slope (< s), so gradient descent with
  s * eta > 2 does not diverge across the valley: it settles on a period-2 bounce
  (2 u = s eta tanh u for the offset u), stable for s eta in (2, ~3.8), where the gradient
  stays ~s tanh|u| while the loss stops decreasing — the lecture's "training stuck" picture.
  """
  a, s, b = float(flat_curvature), float(steep_scale), float(shear)
  c = jnp.asarray(center, jnp.float32)

  def loss(w):
    d = w - c
    # log cosh(u) = |u| + log1p(exp(-2|u|)) - log 2, stable for large |u|.
    u = jnp.abs(d[1] - b * d[0])
    return 0.5 * a * d[0] ** 2 + s * (u + jnp.log1p(jnp.exp(-2.0 * u)) - jnp.log(2.0))
  return loss


def valley_offset(points, shear: float = 0.0, center=(0.0, 0.0)) -> np.ndarray:
  """Signed distance across the floor of `elongated_valley`: d2 - b d1 for points [..., 2]."""
  d = np.asarray(points, np.float64) - np.asarray(center, np.float64)
  return d[..., 1] - shear * d[..., 0]


def tilted_double_well(tilt: float = 0.3, valley_curvature: float = 1.0) -> Surface:
  """L(w) = (w1^2 - 1)^2 + tilt * w1 + valley_curvature * w2^2 / 2.

  Along w1 a quartic double well tilted so that the well near w1 = +1 is a *local*
  minimum and the one near w1 = -1 the global minimum, separated by a barrier near
  w1 = 0 (a saddle point of the 2-D surface). Gradient descent started on the right
  stops in the local minimum; momentum can roll over the barrier (lecture 5).
  """
  t, k = float(tilt), float(valley_curvature)
  return lambda w: (w[0] ** 2 - 1.0) ** 2 + t * w[0] + 0.5 * k * w[1] ** 2


def critical_points_1d(coeffs) -> np.ndarray:
  """Real roots of a polynomial's derivative (coefficients highest first), sorted."""
  roots = np.roots(np.polyder(np.asarray(coeffs, np.float64)))
  return np.sort(roots[np.abs(roots.imag) < 1e-9].real)


def double_well_points(tilt: float) -> dict:
  """Closed-form critical points of `tilted_double_well` along w2 = 0.

  dL/dw1 = 4 w1^3 - 4 w1 + tilt; for |tilt| < 8 / (3 sqrt 3) it has three real roots:
  the global minimum (left), the barrier top (a saddle of the 2-D surface), the local
  minimum (right).
  """
  left, barrier, right = critical_points_1d([1.0, 0.0, -2.0, tilt, 1.0])
  f = lambda x: (x * x - 1.0) ** 2 + tilt * x
  return {"global_min": left, "saddle": barrier, "local_min": right,
          "global_min_loss": f(left), "saddle_loss": f(barrier), "local_min_loss": f(right)}


def grid(loss: Surface, xlim, ylim, num: int = 121):
  """(xs, ys, L[y, x]) on a regular grid, for contour plots."""
  xs = np.linspace(*xlim, num, dtype=np.float32)
  ys = np.linspace(*ylim, num, dtype=np.float32)
  pts = jnp.stack(jnp.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(-1, 2)
  return xs, ys, np.asarray(jax.vmap(loss)(pts)).reshape(num, num)


# ----------------------------------------------------------------- the lecture's rules


def _rate(learning_rate: LearningRate, count):
  return learning_rate(count) if callable(learning_rate) else jnp.asarray(learning_rate)


def inverse_sqrt_decay(learning_rate: float, time_scale: float = 1.0
                       ) -> Callable[[jax.Array], jax.Array]:
  """eta_t = eta / sqrt(1 + t / tau): learning-rate decay (lecture 6, "Learning Rate Decay").

  With tau = 1 the lecture's Adagrad becomes the root-of-the-sum Adagrad (see
  `lecture_adagrad`); a larger tau decays later.
  """
  tau = float(time_scale)
  return lambda t: learning_rate / jnp.sqrt(1.0 + jnp.asarray(t, jnp.float32) / tau)


class LectureAdagradState(NamedTuple):
  count: jax.Array        # t: updates done so far
  mean_sq: optax.Updates  # (1 / t) sum_{i<t} g_i^2, zero before the first update


def lecture_adagrad(learning_rate: LearningRate, eps: float = 1e-8
                    ) -> optax.GradientTransformation:
  r"""Lecture 6's Adagrad: sigma_t is the root *mean* square of g_0 .. g_t.

  .. math:: \sigma^t = \sqrt{\tfrac{1}{t+1}\sum_{i=0}^{t} (g^i)^2}, \qquad
            \theta^{t+1} = \theta^t - \frac{\eta^t}{\sigma^t + \epsilon} g^t.

  ``eps`` (not in the lecture) only guards sigma = 0. ``optax.adagrad`` instead divides
  by sqrt(initial + sum g^2 + eps) — the root of the *sum* (no 1/(t+1)) with a non-zero
  start (0.1 by default): lecture Adagrad with eta_t = eta / sqrt(t + 1) is optax's with
  initial accumulator 0. ``learning_rate`` is a float or a function of t (0-based).
  """

  def init_fn(params):
    return LectureAdagradState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    t = state.count
    tf = t.astype(jnp.float32)
    mean_sq = jax.tree.map(lambda m, g: (tf * m + g * g) / (tf + 1.0), state.mean_sq, updates)
    lr = _rate(learning_rate, t)
    step = jax.tree.map(lambda m, g: -lr * g / (jnp.sqrt(m) + eps), mean_sq, updates)
    return step, LectureAdagradState(t + 1, mean_sq)

  return optax.GradientTransformation(init_fn, update_fn)


class LectureRMSPropState(NamedTuple):
  count: jax.Array
  sigma_sq: optax.Updates  # sigma_{t-1}^2


def lecture_rmsprop(learning_rate: LearningRate, alpha: float = 0.9, eps: float = 1e-8
                    ) -> optax.GradientTransformation:
  r"""Lecture 6's RMSProp: sigma_0 = |g_0|, then an exponential average of g^2.

  .. math:: \sigma^t = \sqrt{\alpha(\sigma^{t-1})^2 + (1-\alpha)(g^t)^2}, \qquad
            \theta^{t+1} = \theta^t - \frac{\eta^t}{\sigma^t + \epsilon} g^t.

  ``optax.rmsprop(decay=alpha)`` starts its average at 0 (sigma_0^2 = (1 - alpha) g_0^2,
  so its first step is 1/sqrt(1 - alpha) ~ 3.2x larger for alpha = 0.9) and puts eps
  inside the root: g / sqrt(nu + eps). From the second step on the recursions agree.
  """

  def init_fn(params):
    return LectureRMSPropState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    t = state.count
    first = t == 0
    sigma_sq = jax.tree.map(
        lambda s, g: jnp.where(first, g * g, alpha * s + (1.0 - alpha) * g * g),
        state.sigma_sq, updates)
    lr = _rate(learning_rate, t)
    step = jax.tree.map(lambda s, g: -lr * g / (jnp.sqrt(s) + eps), sigma_sq, updates)
    return step, LectureRMSPropState(t + 1, sigma_sq)

  return optax.GradientTransformation(init_fn, update_fn)


# ------------------------------------------------------------------------------ runner


class Trajectory(NamedTuple):
  """A run of `num_steps` updates: arrays with num_steps + 1 rows (row 0 = the start)."""
  points: jax.Array     # (T + 1, 2)
  loss: jax.Array       # (T + 1,)
  grad_norm: jax.Array  # (T + 1,)


@functools.partial(jax.jit, static_argnames=("loss", "tx", "num_steps"))
def trajectory(loss: Surface, tx: optax.GradientTransformation, start,
               num_steps: int) -> Trajectory:
  """Runs `num_steps` updates of `tx` on `loss` from `start`; jitted, one scan.

  `loss` and `tx` are static (hashed by identity): reuse the same objects to reuse the
  compiled function.
  """
  value_grad = jax.value_and_grad(loss)
  w0 = jnp.asarray(start, jnp.float32)

  def step(carry, _):
    w, state = carry
    value, g = value_grad(w)
    upd, state = tx.update(g, state, w)
    return (optax.apply_updates(w, upd), state), (w, value, jnp.linalg.norm(g))

  (w_end, _), (ws, values, norms) = jax.lax.scan(step, (w0, tx.init(w0)), None,
                                                 length=num_steps)
  v_end, g_end = value_grad(w_end)
  return Trajectory(jnp.concatenate([ws, w_end[None]]),
                    jnp.concatenate([values, v_end[None]]),
                    jnp.concatenate([norms, jnp.linalg.norm(g_end)[None]]))


def trajectories(loss: Surface, tx: optax.GradientTransformation, starts,
                 num_steps: int) -> Trajectory:
  """`trajectory` from each row of `starts` (N, 2) at once (vmapped): arrays lead with N."""
  run = jax.vmap(lambda s: trajectory(loss, tx, s, num_steps))
  return run(jnp.asarray(starts, jnp.float32))


def first_step_below(values, threshold: float) -> int:
  """First index t with values[t] < threshold, or -1 if never."""
  hit = np.flatnonzero(np.asarray(values) < threshold)
  return int(hit[0]) if hit.size else -1
