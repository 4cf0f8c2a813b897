"""Lecture 7: the landscape's Hessian and GD against closed forms; steps-to-target and
divergence rules; the experiment end to end at a reduced smoke config."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import lec07_batchnorm as lec07_config
from leeml import claims, data as data_lib, losses
from leeml.lectures import lec07_batchnorm as lec07
from leeml.models import MLP


def _design(x):
  return np.concatenate([x, np.ones((len(x), 1))], 1).astype(np.float64)


def test_hessian_and_condition_number_match_closed_forms():
  cfg = lec07_config.get_config("smoke").landscape
  x, y = lec07.landscape_data(cfg, seed=3)
  # MSE of a linear model: H = (2/n) AᵀA with A = [x1, x2, 1] (in hessian_spectrum's
  # ravel order b, w1, w2 -- the spectrum does not depend on the order).
  a = _design(x)
  want = np.linalg.eigvalsh(2.0 * a.T @ a / len(a))
  s = lec07.surface(x, y, cfg)
  np.testing.assert_allclose(s["eigenvalues"], want, rtol=2e-3)
  assert s["condition"] == pytest.approx(want[-1] / want[0], rel=2e-2)
  assert s["condition"] > 1e4  # scales 1 and 100: elongated
  # Standardized: H = 2 [[1, ρ, 0], [ρ, 1, 0], [0, 0, 1]], eigenvalues 2(1 ± ρ) and 2.
  xs = lec07.standardize(x)
  rho = float(np.corrcoef(x.T)[0, 1])
  st = lec07.surface(xs, y, cfg)
  np.testing.assert_allclose(st["eigenvalues"], sorted([2 * (1 - abs(rho)), 2.0,
                                                        2 * (1 + abs(rho))]), rtol=1e-4)
  assert st["condition"] == pytest.approx((1 + abs(rho)) / (1 - abs(rho)), rel=1e-4)


def test_gradient_descent_path_is_the_linear_iteration():
  cfg = lec07_config.get_config("smoke").landscape
  x, y = lec07.landscape_data(cfg, seed=0)
  for xx in (x, lec07.standardize(x)):
    s = lec07.surface(xx, y, cfg)
    a = _design(xx)
    h = 2.0 * a.T @ a / len(a)
    lr = 1.0 / np.linalg.eigvalsh(h)[-1]
    theta_star = np.append(s["w_star"], s["b_star"])
    e = np.append(s["w_star"] + np.asarray(cfg.start_offset), s["b_star"]) - theta_star
    for t in range(1, 6):  # θ_{t} - θ* = (I - lr H)^t (θ_0 - θ*)
      e = e - lr * h @ e
      np.testing.assert_allclose(s["path"][t], (theta_star + e)[:2], rtol=1e-3, atol=1e-4)
    # Along the flattest eigenvector the error shrinks by (1 - λmin/λmax) per step: the
    # raw surface (κ ~ 1e5) cannot converge within max_gd_steps, the round one at once.
  raw, std = lec07.surface(x, y, cfg), lec07.surface(lec07.standardize(x), y, cfg)
  assert raw["steps"] is None and std["steps"] is not None and std["steps"] <= 10


def test_steps_to_target_and_divergence_rules():
  th = lec07_config.get_config("smoke").thresholds
  steps = np.arange(6) * 10
  run = dict(eval_steps=steps, nonfinite=False,
             test_accuracy=np.array([0.1, 0.5, 0.89, 0.91, 0.95, 0.93]))
  assert lec07.summarize(run, th) == dict(steps=30, diverged=False, max_accuracy=0.95,
                                          final_accuracy=pytest.approx(0.93))
  stuck = dict(run, test_accuracy=np.full(6, 0.1))
  assert lec07.summarize(stuck, th)["diverged"] and lec07.summarize(stuck, th)["steps"] is None
  blown = dict(run, nonfinite=True, test_accuracy=np.array([0.1, 0.92, np.nan, 0.1, 0.1, 0.1]))
  s = lec07.summarize(blown, th)
  assert s["diverged"] and s["steps"] == 10  # reached it, then diverged
  assert [lec07.label(n, m) for n in ("none", "batch") for m in (1, 5, 30)] == [
      "plain", "plain-x5", "plain-x30", "BN-Baseline", "BN-x5", "BN-x30"]


def test_paper_population_member_is_sgd_momentum_with_bn_on_the_core_batch_order(
    quick_compiles):
  """Each (seed, lr) member of `train_grid` is optax.sgd(lr, momentum) on the core's
  (seed, step) batches from init(split(PRNGKey(seed))[0]); evaluations in eval mode."""
  rng = np.random.default_rng(0)
  x_tr, x_te = (rng.standard_normal((n, 6)).astype(np.float32) for n in (11, 7))
  y_tr, y_te = (rng.integers(0, 3, n).astype(np.int32) for n in (11, 7))
  data = (x_tr, y_tr, x_te, y_te, 3)
  cfg = ml_collections.ConfigDict(dict(
      model=dict(depth=2, width=5, activation="sigmoid"), base_learning_rate=0.1,
      momentum=0.9, batch_size=4, num_train_steps=6, eval_every_steps=3,
      percentiles=(15, 50, 85), tracked_unit=0, strategy=""))
  seeds, mults = (3, 8), (1, 5)
  got = lec07.train_grid(cfg, "batch", seeds, mults, data)
  model = MLP(num_outputs=3, norm="batch", **cfg.model)
  ce = losses.get_loss("softmax_cross_entropy")

  def loss_of(p, stats, xb, yb):
    out, new = model.apply({"params": p, "batch_stats": stats}, xb, train=True,
                           mutable=["batch_stats"])
    return jnp.mean(ce(out, yb)), new["batch_stats"]
  grad = jax.jit(jax.value_and_grad(loss_of, has_aux=True))
  test_loss = jax.jit(lambda v: jnp.mean(ce(model.apply(v, x_te, train=False), y_te)))
  for mult in mults:
    tx = optax.sgd(cfg.base_learning_rate * mult, momentum=cfg.momentum)
    for si, seed in enumerate(seeds):
      v = model.init(jax.random.split(jax.random.PRNGKey(seed))[0], x_tr[:1], train=False)
      p, stats = v["params"], v["batch_stats"]
      opt = tx.init(p)
      want = [float(test_loss(v))]
      for step in range(cfg.num_train_steps):
        idx = data_lib.train_indices(step, cfg.batch_size, len(x_tr), seed)
        (_, stats), g = grad(p, stats, x_tr[idx], y_tr[idx])
        u, opt = tx.update(g, opt)
        p = optax.apply_updates(p, u)
        if (step + 1) % cfg.eval_every_steps == 0:
          want.append(float(test_loss({"params": p, "batch_stats": stats})))
      run = got[mult][si]
      assert run["seed"] == seed and list(run["eval_steps"]) == [0, 3, 6]
      np.testing.assert_allclose(run["test_loss"], want, rtol=1e-4)
      assert run["percentiles"].shape == (3, 3) and np.all(np.diff(run["percentiles"], 1) > 0)
      assert not run["nonfinite"] and run["train_loss"].shape == (2,)


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec07_runs_end_to_end_and_judges_its_claims(tmp_path):
  config = lec07_config.get_config("smoke")
  config.seeds = (0, 1)
  config.landscape.max_gd_steps = 200
  config.landscape.grid = 31
  config.paper.model = dict(depth=3, width=32, activation="sigmoid")
  config.paper.num_train_steps = 60
  config.paper.eval_every_steps = 10
  section, results = lec07.run_with_results(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec07_batchnorm.normalizing_rounds_surface",
      "lec07_batchnorm.gd_converges_faster_when_normalized",
      "lec07_batchnorm.bn_reaches_target_faster", "lec07_batchnorm.bn_higher_lr_faster",
      "lec07_batchnorm.bn_trains_where_plain_diverges"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  assert all(v.numbers for v in section.verdicts)  # no check raised
  kappa = section.verdicts[0].numbers["κ raw / κ standardized"]
  assert kappa.n == 2 and kappa.mean > 1e3
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  table_a, table_b, _ = section.tables
  assert [r[0] for r in table_a.rows] == ["raw", "standardized"]
  assert [r[0] for r in table_b.rows] == ["plain", "plain-x5", "plain-x30", "BN-Baseline",
                                          "BN-x5", "BN-x30"]
  assert [r[1] for r in table_b.rows[:3]] == ["0.05", "0.25", "1.5"]
  # The same seed gives the same init at every learning rate (same step-0 test loss),
  # different seeds different ones; BN's step-0 eval uses the initial running averages.
  for norm in ("none", "batch"):
    loss0 = {m: [r["test_loss"][0] for r in runs] for m, runs in results["paper"][norm].items()}
    assert loss0[1] == loss0[5] == loss0[30] and loss0[1][0] != loss0[1][1]
  bn = results["paper"]["batch"][1][0]
  assert bn["percentiles"].shape == (7, 3) and np.all(np.diff(bn["percentiles"], axis=1) > 0)
  # 60 steps with BN on digits: well above chance (0.1) on every seed.
  assert min(r["max_accuracy"] for r in results["paper"]["batch"][1]) > 0.5
