"""Tests for leeml.optim: lecture momentum, optimizer/schedule factories."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from leeml import optim


def opt_cfg(**kw):
  cfg = ml_collections.ConfigDict(dict(
    name="momentum", learning_rate=0.1, momentum=0.9, nesterov=False,
    b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, rms_decay=0.9,
    initial_accumulator_value=0.1, grad_clip_norm=0.0))
  cfg.update(kw)
  return cfg


def sched_cfg(**kw):
  cfg = ml_collections.ConfigDict(dict(
    name="constant", warmup_steps=0, decay_steps=0, decay_rate=0.1,
    boundaries=(), end_learning_rate_factor=0.0))
  cfg.update(kw)
  return cfg


def _params():
  return {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]),
      "b": jnp.array([0.25, -0.75, 1.5])}


def _grads(step):
  """Deterministic, step-dependent gradients (not tied to any loss)."""
  rng = np.random.default_rng(step)
  return {"w": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),
      "b": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}


def _run(tx, params, steps):
  state = tx.init(params)
  for t in range(steps):
    updates, state = tx.update(_grads(t), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


# ---------------------------------------------------------------- lecture ---

def test_lecture_momentum_matches_hand_equation():
  # float32 reference with the same operation order, so it matches exactly.
  lr, lam = np.float32(0.05), np.float32(0.8)
  params, _ = _run(optim.lecture_momentum(0.05, 0.8), _params(), 5)

  theta = {k: np.asarray(v) for k, v in _params().items()}
  m = {k: np.zeros_like(v) for k, v in theta.items()}
  for t in range(5):
    g = {k: np.asarray(v) for k, v in _grads(t).items()}
    for k in theta:
      m[k] = lam * m[k] - lr * g[k]       # m_{t+1} = λ m_t − η g_t
      theta[k] = theta[k] + m[k]          # θ_{t+1} = θ_t + m_{t+1}
  for k in theta:
    np.testing.assert_allclose(params[k], theta[k], rtol=0, atol=1e-7)


def test_lecture_momentum_state_is_last_movement():
  tx = optim.lecture_momentum(0.1, 0.5)
  p = _params()
  s = tx.init(p)
  assert isinstance(s, optim.LectureMomentumState)
  assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(s.m))
  u, s = tx.update(_grads(0), s, p)
  np.testing.assert_allclose(u["b"], -0.1 * _grads(0)["b"], atol=1e-7)
  np.testing.assert_allclose(s.m["b"], u["b"], atol=0)


def test_lecture_momentum_equals_optax_sgd_constant_lr():
  lr, lam = 0.03, 0.9
  a, _ = _run(optim.lecture_momentum(lr, lam), _params(), 10)
  b, _ = _run(optax.sgd(lr, momentum=lam), _params(), 10)
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)
    # Sanity: the trajectory actually moved.
    assert float(jnp.abs(a[k] - _params()[k]).max()) > 0.05


def test_lecture_momentum_via_make_optimizer_equals_momentum():
  sc = sched_cfg()
  a, _ = _run(optim.make_optimizer(opt_cfg(name="lecture_momentum"), sc, 10),
        _params(), 10)
  b, _ = _run(optim.make_optimizer(opt_cfg(name="momentum"), sc, 10),
        _params(), 10)
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)


def test_lecture_momentum_differs_from_optax_when_lr_changes():
  # Step decay at step 3: optax rescales the old velocity by the new lr,
  # lecture momentum keeps the old (larger) movement.
  sc = sched_cfg(name="step", boundaries=(3,), decay_rate=0.1)
  a, _ = _run(optim.make_optimizer(opt_cfg(name="lecture_momentum"), sc, 6),
        _params(), 6)
  b, _ = _run(optim.make_optimizer(opt_cfg(name="momentum"), sc, 6),
        _params(), 6)
  assert float(jnp.abs(a["w"] - b["w"]).max()) > 1e-2


def test_lecture_momentum_under_inject_hyperparams():
  tx = optax.inject_hyperparams(optim.lecture_momentum)(
    learning_rate=lambda c: 0.1 / (1.0 + c), momentum=0.5)
  p = _params()
  s = tx.init(p)
  m = np.zeros(3)
  for t in range(3):
    u, s = tx.update(_grads(t), s, p)
    m = 0.5 * m - (0.1 / (1 + t)) * np.asarray(_grads(t)["b"])
    np.testing.assert_allclose(u["b"], m, atol=1e-7)


# ------------------------------------------------------------- optimizers ---

# Learning rates that converge in 50 steps on sum((w-3)^2) (grad = 2(w-3)).
_TOY_LR = {"sgd": 0.1, "momentum": 0.05, "lecture_momentum": 0.05,
       "adagrad": 1.0, "rmsprop": 0.1, "adam": 0.3, "adamw": 0.3,
       "radam": 0.3}


def test_every_optimizer_has_toy_lr():
  assert set(_TOY_LR) == set(optim.OPTIMIZERS)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_optimizer_decreases_quadratic_without_retracing(name):
  tx = optim.make_optimizer(opt_cfg(name=name, learning_rate=_TOY_LR[name]),
                sched_cfg(), 50)
  loss = lambda w: jnp.sum((w["a"] - 3.0) ** 2) + jnp.sum((w["b"] - 3.0) ** 2)
  params = {"a": jnp.zeros((2, 3)), "b": jnp.array([1.0, -1.0])}
  traces = []

  @jax.jit
  def step(params, state):
    traces.append(1)  # Runs only while tracing.
    g = jax.grad(loss)(params)
    updates, state = tx.update(g, state, params)
    shapes = jax.tree.map(jnp.shape, updates)
    assert shapes == jax.tree.map(jnp.shape, params)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  init_loss = float(loss(params))
  for _ in range(50):
    params, state = step(params, state)
  assert len(traces) == 1, f"{name} re-traced {len(traces)} times"
  assert step._cache_size() == 1
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
  assert float(loss(params)) < 0.1 * init_loss
  np.testing.assert_allclose(optim.learning_rate_of(state), _TOY_LR[name],
                 rtol=1e-6)


def test_grad_clipping_limits_sgd_update_norm():
  tx = optim.make_optimizer(opt_cfg(name="sgd", learning_rate=0.1,
                    grad_clip_norm=1.0), sched_cfg(), 10)
  p = _params()
  huge = jax.tree.map(lambda x: 1e6 * jnp.ones_like(x), p)
  u, s = tx.update(huge, tx.init(p), p)
  assert float(optax.tree.norm(u)) == pytest.approx(0.1, rel=1e-5)
  # Without clipping the same gradient is not limited.
  tx = optim.make_optimizer(opt_cfg(name="sgd", learning_rate=0.1),
                sched_cfg(), 10)
  u, _ = tx.update(huge, tx.init(p), p)
  assert float(optax.tree.norm(u)) == pytest.approx(0.1 * 1e6 * math.sqrt(7),
                            rel=1e-5)


def test_adamw_weight_decay_is_applied():
  p = {"w": jnp.array([2.0])}
  g = {"w": jnp.array([0.0])}
  tx = optim.make_optimizer(opt_cfg(name="adamw", learning_rate=0.1,
                    weight_decay=0.5), sched_cfg(), 10)
  u, _ = tx.update(g, tx.init(p), p)
  # Zero gradient: the update is pure decoupled decay -lr * wd * w.
  np.testing.assert_allclose(u["w"], [-0.1 * 0.5 * 2.0], rtol=1e-6)


# -------------------------------------------------------------- schedules ---

def test_constant_schedule_with_and_without_warmup():
  f = optim.make_schedule(sched_cfg(), 0.2, 100)
  assert float(f(0)) == pytest.approx(0.2) and float(f(99)) == pytest.approx(0.2)
  f = optim.make_schedule(sched_cfg(warmup_steps=10), 0.2, 100)
  assert float(f(0)) == pytest.approx(0.0)
  assert float(f(5)) == pytest.approx(0.1)
  assert float(f(10)) == pytest.approx(0.2)
  assert float(f(80)) == pytest.approx(0.2)


def test_step_schedule_multiplies_at_boundaries():
  f = optim.make_schedule(sched_cfg(name="step", boundaries=(30, 10),
                    decay_rate=0.5), 0.4, 100)
  expected = {0: 0.4, 9: 0.4, 10: 0.2, 29: 0.2, 30: 0.1, 99: 0.1}
  for s, v in expected.items():
    assert float(f(s)) == pytest.approx(v, rel=1e-6), s


def test_exponential_schedule_formula():
  f = optim.make_schedule(sched_cfg(name="exponential", decay_steps=20,
                    decay_rate=0.1), 1.0, 100)
  for s in (0, 7, 20, 50):
    assert float(f(s)) == pytest.approx(0.1 ** (s / 20), rel=1e-5), s


def test_cosine_schedule_endpoints_and_midpoint():
  f = optim.make_schedule(sched_cfg(name="cosine",
                    end_learning_rate_factor=0.1), 2.0, 100)
  assert float(f(0)) == pytest.approx(2.0)
  # Midpoint: halfway between lr and end lr.
  assert float(f(50)) == pytest.approx(0.5 * (2.0 + 0.2), rel=1e-5)
  assert float(f(100)) == pytest.approx(0.2, rel=1e-5)
  assert float(f(150)) == pytest.approx(0.2, rel=1e-5)


def test_warmup_cosine_schedule():
  f = optim.make_schedule(sched_cfg(name="warmup_cosine", warmup_steps=20,
                    end_learning_rate_factor=0.0), 1.0, 120)
  assert float(f(0)) == pytest.approx(0.0, abs=1e-7)
  assert float(f(10)) == pytest.approx(0.5)        # warmup midpoint
  assert float(f(20)) == pytest.approx(1.0)        # peak
  assert float(f(70)) == pytest.approx(0.5, rel=1e-5)  # cosine midpoint
  assert float(f(120)) == pytest.approx(0.0, abs=1e-7)


def test_warmup_linear_schedule():
  f = optim.make_schedule(sched_cfg(name="warmup_linear", warmup_steps=10,
                    decay_steps=40,
                    end_learning_rate_factor=0.25), 0.8, 1000)
  assert float(f(5)) == pytest.approx(0.4)
  assert float(f(10)) == pytest.approx(0.8)
  assert float(f(30)) == pytest.approx(0.8 - 0.5 * 0.6, rel=1e-5)
  assert float(f(50)) == pytest.approx(0.2, rel=1e-5)
  assert float(f(500)) == pytest.approx(0.2, rel=1e-5)


def test_warmup_rejected_by_schedules_without_warmup():
  with pytest.raises(ValueError, match="schedule.warmup_steps"):
    optim.make_schedule(sched_cfg(name="cosine", warmup_steps=5), 1.0, 100)


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_learning_rate_of_tracks_schedule(clip):
  sc = sched_cfg(name="warmup_cosine", warmup_steps=4,
           end_learning_rate_factor=0.1)
  n_steps = 12
  sched = optim.make_schedule(sc, 0.5, n_steps)
  tx = optim.make_optimizer(opt_cfg(name="adam", learning_rate=0.5,
                    grad_clip_norm=clip), sc, n_steps)
  p = _params()
  state = tx.init(p)
  lr_of = jax.jit(optim.learning_rate_of)
  assert float(lr_of(state)) == pytest.approx(float(sched(0)), abs=1e-7)

  @jax.jit
  def step(state, g):
    _, state = tx.update(g, state, p)
    return state, optim.learning_rate_of(state)

  for n in range(1, n_steps + 1):
    state, lr = step(state, _grads(n))
    # Documented: after n updates, the stored lr is schedule(n - 1).
    assert float(lr) == pytest.approx(float(sched(n - 1)), abs=1e-7), n
  # The schedule is not flat, so the check above can distinguish n vs n-1.
  assert abs(float(sched(5)) - float(sched(4))) > 1e-3


def test_learning_rate_of_without_injected_state_raises():
  with pytest.raises(ValueError):
    optim.learning_rate_of(optax.sgd(0.1).init(_params()))


# ----------------------------------------------------------------- errors ---

def test_unknown_optimizer_name():
  with pytest.raises(ValueError) as e:
    optim.make_optimizer(opt_cfg(name="adamm"), sched_cfg(), 10)
  msg = str(e.value)
  assert "\n" not in msg
  assert "optimizer.name" in msg and "'adamm'" in msg and "adam" in msg
  assert all(n in msg for n in optim.OPTIMIZERS)


def test_unknown_schedule_name():
  with pytest.raises(ValueError) as e:
    optim.make_schedule(sched_cfg(name="cosin"), 0.1, 10)
  msg = str(e.value)
  assert "\n" not in msg
  assert "schedule.name" in msg and "'cosin'" in msg and "cosine" in msg
  with pytest.raises(ValueError, match="schedule.name"):
    optim.make_optimizer(opt_cfg(), sched_cfg(name="cosin"), 10)


def test_momentum_nesterov_flag_matches_optax():
  sc = sched_cfg()
  a, _ = _run(optim.make_optimizer(opt_cfg(nesterov=True), sc, 5), _params(), 5)
  b, _ = _run(optax.sgd(0.1, momentum=0.9, nesterov=True), _params(), 5)
  c, _ = _run(optax.sgd(0.1, momentum=0.9), _params(), 5)
  np.testing.assert_allclose(a["w"], b["w"], atol=1e-6)
  assert float(jnp.abs(a["w"] - c["w"]).max()) > 1e-2
