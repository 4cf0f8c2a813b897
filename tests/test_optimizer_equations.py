"""Single steps of leeml's optimizers against the equations they implement.

Two families are checked:
* `leeml.optim.make_optimizer` (optax-based, used for network training): adagrad, rmsprop,
  adam, radam, lecture_momentum, against the equations optax documents.
* the lecture's own rules (`leeml.surfaces.lecture_adagrad`, `lecture_rmsprop`, used for
  the 2-D demos), against the course notes (000_8d9fdeac5af6715a.txt, lecture 6):
    Adagrad  sigma_t = sqrt( 1/(t+1) sum_{i=0..t} g_i^2 )
    RMSProp  sigma_t = sqrt( alpha sigma_{t-1}^2 + (1 - alpha) g_t^2 ),  sigma_0 = |g_0|
    theta_{t+1} = theta_t - eta / sigma_t * g_t.
Where optax's formula differs from the lecture's, a test pins the difference down.
"""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from leeml import optim, surfaces

ETA = 0.1


def opt_cfg(**kw):
  cfg = ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=ETA, momentum=0.9, nesterov=False, b1=0.9, b2=0.999,
      eps=1e-8, weight_decay=0.0, rms_decay=0.9, initial_accumulator_value=0.1,
      grad_clip_norm=0.0))
  cfg.update(kw)
  return cfg


def sched_cfg():
  return ml_collections.ConfigDict(dict(
      name="constant", warmup_steps=0, decay_steps=0, decay_rate=0.1, boundaries=(),
      end_learning_rate_factor=0.0))


def grads(num_steps: int, dim: int = 3) -> np.ndarray:
  """Gradients of mixed signs and magnitudes (1e-2 .. 1e1), one row per step."""
  rng = np.random.default_rng(0)
  return (rng.normal(size=(num_steps, dim)) * np.logspace(-2, 1, dim)).astype(np.float32)


def updates_of(tx, gs) -> np.ndarray:
  """The update tx returns at each step for the gradient sequence gs (params unused)."""
  params = jnp.zeros(gs.shape[1], jnp.float32)
  state = tx.init(params)
  out = []
  for g in gs:
    upd, state = tx.update(jnp.asarray(g), state, params)
    out.append(np.asarray(upd, np.float64))
  return np.stack(out)


def make(name, **kw):
  return optim.make_optimizer(opt_cfg(name=name, **kw), sched_cfg(), 100)


# ------------------------------------------------------------------- make_optimizer (optax)


def test_adagrad_is_root_of_sum_with_initial_accumulator():
  # optax.adagrad: acc_t = a0 + sum_{i<=t} g_i^2 (a0 = initial_accumulator_value = 0.1),
  # update = -eta g_t / sqrt(acc_t + eps)  (eps *inside* the root).
  gs = grads(6).astype(np.float64)
  acc = 0.1 + np.cumsum(gs ** 2, axis=0)
  expected = -ETA * gs / np.sqrt(acc + 1e-8)
  np.testing.assert_allclose(updates_of(make("adagrad"), grads(6)), expected, rtol=1e-5)


def test_optax_adagrad_differs_from_the_lecture_formula():
  # Lecture: sigma_0 = |g_0| so the first step is -eta sign(g_0) whatever |g_0|; optax's is
  # -eta g_0 / sqrt(0.1 + g_0^2), which shrinks with |g_0| (here |g| = 1e-2 .. 1e1).
  gs = grads(1)
  lecture = updates_of(surfaces.lecture_adagrad(ETA), gs)[0]
  np.testing.assert_allclose(lecture, -ETA * gs[0] / (np.abs(gs[0]) + 1e-8), rtol=1e-6)
  optax_first = updates_of(make("adagrad"), gs)[0]
  np.testing.assert_allclose(optax_first, -ETA * gs[0] / np.sqrt(0.1 + gs[0] ** 2 + 1e-8),
                             rtol=1e-5)
  assert abs(optax_first[0]) < 0.1 * abs(lecture[0])  # |g| = 0.01: a 30x smaller step


def test_rmsprop_average_starts_at_zero_with_eps_inside_root():
  # optax.rmsprop: nu_t = alpha nu_{t-1} + (1 - alpha) g_t^2, nu_{-1} = 0,
  # update = -eta g_t / sqrt(nu_t + eps).
  gs = grads(6).astype(np.float64)
  nu, expected = np.zeros(3), []
  for g in gs:
    nu = 0.9 * nu + 0.1 * g * g
    expected.append(-ETA * g / np.sqrt(nu + 1e-8))
  np.testing.assert_allclose(updates_of(make("rmsprop"), grads(6)), np.stack(expected),
                             rtol=1e-5)


def test_adam_matches_kingma_ba_with_bias_correction():
  # Kingma & Ba 2015, Algorithm 1: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  # update = -eta m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - b1^t), v_hat likewise.
  gs = grads(6).astype(np.float64)
  m, v, expected = np.zeros(3), np.zeros(3), []
  for t, g in enumerate(gs, start=1):
    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
    expected.append(-ETA * m_hat / (np.sqrt(v_hat) + 1e-8))
  got = updates_of(make("adam"), grads(6))
  np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4)
  # The first Adam step is eta sign(g) for every parameter: the "unstable early update"
  # that warmup tempers (lecture 6).
  np.testing.assert_allclose(got[0], -ETA * np.sign(gs[0]), rtol=1e-5)


def test_radam_matches_liu_et_al_rectification():
  # Liu et al. 2020, Algorithm 2: rho_inf = 2/(1-b2) - 1, rho_t = rho_inf - 2 t b2^t/(1-b2^t);
  # rho_t >= 5 (optax's threshold; the paper uses > 4): -eta r_t m_hat / (sqrt(v_hat)+eps),
  # r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t));
  # otherwise the un-adapted momentum step -eta m_hat.
  gs = grads(8).astype(np.float64)
  b1, b2 = 0.9, 0.999
  rho_inf = 2 / (1 - b2) - 1
  m, v, expected, adapted = np.zeros(3), np.zeros(3), [], []
  for t, g in enumerate(gs, start=1):
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    adapted.append(rho >= 5)
    if rho >= 5:
      r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
      expected.append(-ETA * r * m_hat / (np.sqrt(v_hat) + 1e-8))
    else:
      expected.append(-ETA * m_hat)
  assert not adapted[0] and adapted[-1]  # both branches are exercised
  got, expected = updates_of(make("radam"), grads(8)), np.stack(expected)
  adapted = np.array(adapted)
  # Un-adapted steps (rho_t < 5): exact. Adapted steps: optax computes rho_t in float32,
  # where rho_inf (1999) minus ~1993 loses ~3 digits and r_t amplifies it near the
  # threshold (rho_t ~ 6: 0.2-0.8% off the float64 equation), hence rtol 1e-2 there.
  np.testing.assert_allclose(got[~adapted], expected[~adapted], rtol=1e-5)
  np.testing.assert_allclose(got[adapted], expected[adapted], rtol=1e-2)


def test_lecture_momentum_single_steps():
  # m_{t+1} = lambda m_t - eta g_t; the update is m_{t+1} (theta += m).
  gs = grads(5).astype(np.float64)
  m, expected = np.zeros(3), []
  for g in gs:
    m = 0.9 * m - ETA * g
    expected.append(m)
  np.testing.assert_allclose(updates_of(make("lecture_momentum"), grads(5)),
                             np.stack(expected), rtol=1e-5)


# --------------------------------------------------------------- the lecture's own rules


def test_lecture_adagrad_is_root_mean_square():
  gs = grads(6).astype(np.float64)
  sigma = np.sqrt(np.cumsum(gs ** 2, axis=0) / np.arange(1, 7)[:, None])
  np.testing.assert_allclose(updates_of(surfaces.lecture_adagrad(ETA), grads(6)),
                             -ETA * gs / (sigma + 1e-8), rtol=1e-5)


def test_lecture_adagrad_with_inverse_sqrt_decay_is_optax_adagrad_without_initial_value():
  # eta/sqrt(t+1) / sqrt(sum/(t+1)) = eta / sqrt(sum): the root-of-the-sum Adagrad.
  gs = grads(6)
  ours = updates_of(surfaces.lecture_adagrad(surfaces.inverse_sqrt_decay(ETA, 1.0)), gs)
  theirs = updates_of(optax.adagrad(ETA, initial_accumulator_value=0.0, eps=0.0), gs)
  np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_lecture_rmsprop_recursion_and_first_step():
  gs = grads(6).astype(np.float64)
  alpha = 0.8
  sigma_sq, expected = gs[0] ** 2, []
  for t, g in enumerate(gs):
    if t:
      sigma_sq = alpha * sigma_sq + (1 - alpha) * g * g
    expected.append(-ETA * g / (np.sqrt(sigma_sq) + 1e-8))
  got = updates_of(surfaces.lecture_rmsprop(ETA, alpha=alpha), grads(6))
  np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5)
  # optax.rmsprop's first step is 1/sqrt(1 - alpha) larger (its average starts at 0).
  optax_first = updates_of(optax.rmsprop(ETA, decay=alpha, eps=0.0), grads(1))[0]
  np.testing.assert_allclose(optax_first / got[0], 1 / np.sqrt(1 - alpha), rtol=1e-5)


def test_lecture_rules_take_a_schedule():
  gs = grads(4)
  sched = lambda t: ETA * (t + 1.0)  # eta_t = eta (t + 1)
  steps = updates_of(surfaces.lecture_rmsprop(sched), gs)
  const = updates_of(surfaces.lecture_rmsprop(ETA), gs)
  np.testing.assert_allclose(steps, const * np.arange(1, 5)[:, None], rtol=1e-5)


@pytest.mark.parametrize("tx", [surfaces.lecture_adagrad(0.1), surfaces.lecture_rmsprop(0.1)])
def test_lecture_rules_keep_float32_state(tx):
  params = jnp.zeros(3, jnp.float32)
  _, state = tx.update(jnp.ones(3, jnp.float32), tx.init(params), params)
  leaves = [x for x in state if hasattr(x, "dtype") and x.dtype != jnp.int32]
  assert leaves and all(x.dtype == jnp.float32 for x in leaves)
