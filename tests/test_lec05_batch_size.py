"""Lecture 5 (batch size): the population runs against hand-written GD / SGD on the core's
batch order, the sharpness against a dense Hessian, the selection rules, and the
experiment end to end."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import lec05_batch_size as lec05_config
from leeml import claims, curvature, data as data_lib, models
from leeml.lectures import lec05_batch_size as lec05


pytestmark = pytest.mark.usefixtures("quick_compiles")


TINY_MLP = ml_collections.ConfigDict(dict(name="mlp", depth=1, width=4, activation="tanh",
                                          residual=False, norm="none"))


def _tiny_data(n=12, d=3, classes=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, d)).astype(np.float32)
  y = rng.integers(0, classes, n).astype(np.int32)
  return dict(x=x, y=y, x_val=x[:5], y_val=y[:5], x_test=x[5:], y_test=y[5:],
              num_classes=classes)


def _ce(model, p, x, y):
  logits = model.apply({"params": p}, x)
  return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def test_full_batch_training_is_gradient_descent():
  """B = N: each epoch is one GD step θ ← θ - η ∇L(θ) on the whole set, whatever the
  shuffle; written out by hand from the same initialization (PRNGKey(seed) split)."""
  data = _tiny_data()
  model = models.get_model(TINY_MLP, num_outputs=3)
  lrs, seeds, epochs = (0.1, 0.5), (3, 7), 3
  r = lec05.train_batch_size(model, data, len(data["x"]), seeds, lrs, epochs)
  assert r["steps"] == epochs and r["train_acc"].shape == (2, 2, epochs)
  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])

  @jax.jit
  def gd_step(p, lr):
    g = jax.grad(lambda q: _ce(model, q, x, y))(p)
    p = jax.tree.map(lambda a, b: a - lr * b, p, g)
    return p, _ce(model, p, x, y)
  for i, seed in enumerate(seeds):
    for j, lr in enumerate(lrs):
      p = model.init(jax.random.split(jax.random.PRNGKey(seed))[0], x[:1])["params"]
      losses_ = []
      for _ in range(epochs):
        p, loss = gd_step(p, lr)
        losses_.append(float(loss))
      np.testing.assert_allclose(r["train_loss"][i, j], losses_, rtol=1e-4)
      got = jax.tree.map(lambda a: a[i * len(lrs) + j], r["params"])
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
      acc = np.mean(np.argmax(model.apply({"params": p}, data["x_test"]), -1)
                    == data["y_test"])
      assert r["test_acc"][i, j] == pytest.approx(acc)


def test_minibatch_runs_are_sgd_on_the_core_batch_order():
  """B < N: ⌊N/B⌋ updates per epoch on the batches `data.train_indices(step, B, N, seed)`
  (the core's (seed, step) epoch permutation), every lr of a seed from the same init."""
  data = _tiny_data(n=13)
  model = models.get_model(TINY_MLP, num_outputs=3)
  lrs, seed = (0.5, 0.2), 4
  small = lec05.train_batch_size(model, data, 4, (seed,), lrs, 2)
  full = lec05.train_batch_size(model, data, 13, (seed,), lrs[:1], 2)
  assert small["steps"] == 2 * 3 and full["steps"] == 2
  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
  grad = jax.jit(jax.value_and_grad(lambda q, xb, yb: _ce(model, q, xb, yb)))
  for j, lr in enumerate(lrs):
    p = model.init(jax.random.split(jax.random.PRNGKey(seed))[0], x[:1])["params"]
    for step in range(6):
      idx = data_lib.train_indices(step, 4, 13, seed)
      _, g = grad(p, x[idx], y[idx])
      p = jax.tree.map(lambda a, b, lr=lr: a - lr * b, p, g)
    got = jax.tree.map(lambda a, j=j: a[j], small["params"])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert small["train_loss"][0, j, -1] == pytest.approx(float(_ce(model, p, x, y)), rel=1e-4)
  # Same init (same seed), different trajectories: 6 noisy steps vs 2 full-batch steps.
  assert abs(small["train_loss"][0, 0, -1] - full["train_loss"][0, 0, -1]) > 1e-3


def test_sharpness_is_the_top_eigenvalue_of_the_dense_hessian():
  data = _tiny_data(n=20)
  model = models.get_model(TINY_MLP, num_outputs=3)
  params = [model.init(jax.random.PRNGKey(s), data["x"][:1])["params"] for s in (0, 1)]
  dim = sum(a.size for a in jax.tree.leaves(params[0]))  # 3*4+4 + 4*3+3 = 31
  cfg = ml_collections.ConfigDict(dict(batch_size=8, num_iters=dim))  # 3 padded batches
  # One operator for both points (as the experiment reuses it): the second is its own.
  got = lec05.sharpness(model, params, data["x"], data["y"], cfg)
  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
  # Jitted, one compile for both points (eager jax.hessian dispatches op by op).
  hessian = jax.jit(lambda q: curvature.dense_hessian(lambda r: _ce(model, r, x, y), q)[0])
  for p, lam in zip(params, got):
    h = hessian(p)
    assert lam == pytest.approx(float(np.linalg.eigvalsh(np.asarray(h, np.float64))[-1]),
                                rel=1e-3)
  assert abs(got[0] - got[1]) > 1e-3 * abs(got[0])


def test_selection_and_parallel_batch_rules():
  val = np.array([[0.5, 0.7, np.nan], [0.6, 0.7, 0.9]])  # [seed, lr]; NaN = diverged
  assert lec05.choose_learning_rate(val) == 1   # means 0.55, 0.70, 0.45 (NaN -> 0)
  assert lec05.choose_learning_rate(np.array([[0.5, 0.5]])) == 0  # tie: smaller lr
  timing = [dict(batch=b, ms_update=t) for b, t in
            ((1, 1.0), (2, 1.1), (4, 1.9), (8, 2.5), (16, 1.5), (32, 9.0))]
  # 8 breaks the ratio 2, so 16 (1.5) does not count: parallelism has saturated at 4.
  assert lec05.parallel_batch(timing, 2.0) == 4
  assert lec05.parallel_batch(timing, 3.0) == 16


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec05_runs_end_to_end_and_judges_its_claims(tmp_path):
  config = lec05_config.get_config("smoke")
  config.timing.batch_sizes = (1, 16, 128)
  config.timing.num_examples = 128
  config.timing.repeats = 2
  config.timing.min_seconds = 0.002
  config.thresholds.saturation_pair = (16, 128)
  config.epochs = 2
  config.lr_grid = (0.1, 1.0)
  config.hessian.num_iters = 5
  section = lec05.run(config, str(tmp_path), progress=False)
  assert [v.claim.id for v in section.verdicts] == [
      "lec05.timing.parallel_until_saturation", "lec05.timing.saturates",
      "lec05.timing.small_batch_slower_per_epoch",
      "lec05.noisy_update_better_for_training.digits_mlp",
      "lec05.small_batch_better_on_test.digits_mlp", "lec05.large_batch_sharper.digits_mlp"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) and v.numbers for v in section.verdicts)
  timing, net, select = section.tables[0], section.tables[1], section.tables[2]
  assert [r[0] for r in timing.rows] == ["1", "16", "128"]
  for row in timing.rows:  # s/epoch = ms/update × ⌈128 / B⌉; examples/s = B / (ms/1000)
    b, ms, upd, s_epoch, ex = (float(row[0]), float(row[1]), int(row[3]), float(row[4]),
                               float(row[5]))
    assert upd == -(-128 // b)
    assert s_epoch == pytest.approx(ms * upd / 1e3, rel=1e-3)
    assert ex == pytest.approx(b / (ms / 1e3), rel=1e-3)
  # digits: 1,497 train - 297 validation = 1,200; B=16: 75 updates/epoch, B=full: 1.
  assert [r[:2] for r in net.rows] == [("16", "150"), ("1200 (full)", "2")]
  sb = section.verdicts[3].numbers["SB (B=16) train accuracy"]
  assert sb.n == 2 and sb.mean > 0.5  # 150 SGD updates on digits: far above chance (0.1)
  assert [sum(c.endswith("*") for c in r[2:]) for r in select.rows] == [1, 1]
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
