"""The train step's diagnostics and NaN guard (`leeml.steps`), tested on the step itself:
norms only on diagnostic steps and then equal to the every-step version's, NaN elsewhere;
the per-step finiteness check catches a NaN gradient under a finite loss; one compiled
step serves both kinds of step; the donated state is updated without copies."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leeml import config as leeml_config
from leeml import losses, optim, steps
from leeml.models import MLP
from leeml.train_state import TrainState

BATCH, FEATURES, CLASSES = 8, 5, 4


def _setup(optimizer="momentum"):
  model = MLP(num_outputs=CLASSES, depth=2, width=16, activation="relu")
  cfg = leeml_config.base_config()
  cfg.optimizer.name = optimizer
  cfg.optimizer.learning_rate = 0.1
  tx = optim.make_optimizer(cfg.optimizer, cfg.schedule, num_train_steps=100)
  rng = np.random.default_rng(0)
  batches = [{"inputs": jnp.asarray(rng.standard_normal((BATCH, FEATURES), np.float32)),
              "targets": jnp.asarray(rng.integers(0, CLASSES - 1, BATCH), jnp.int32)}
             for _ in range(5)]

  def new_state():  # a fresh copy each time: the jitted steps donate it
    return TrainState.create(model.init(jax.random.key(0), batches[0]["inputs"]), tx)

  return model, tx, batches, new_state


def _run(step, state, batches):
  history = []
  for batch in batches:
    state, metrics = step(state, batch, jax.random.key(1))
    history.append({k: np.asarray(v) for k, v in metrics.items()})
  return state, history


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_norms_only_on_diagnostic_steps_and_equal_to_every_step(optimizer, optimized_compiles):
  # Fully optimized compiles: fusion decisions are what could make the two differ.
  model, tx, batches, new_state = _setup(optimizer)
  loss_fn = losses.get_loss("softmax_cross_entropy")
  every = jax.jit(steps.make_train_step(model, tx, loss_fn), donate_argnums=0)
  sparse = jax.jit(steps.make_train_step(model, tx, loss_fn, diagnostics_every=2,
                                         num_train_steps=len(batches)), donate_argnums=0)
  state_a, every_steps = _run(every, new_state(), batches)
  state_b, sparse_steps = _run(sparse, new_state(), batches)
  # Skipping the norms changes nothing else: the same parameters, bit for bit.
  for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
    np.testing.assert_array_equal(a, b)
  for done, (a, b) in enumerate(zip(every_steps, sparse_steps), start=1):
    due = done % 2 == 0 or done == len(batches)  # steps 2, 4 and the last, 5
    for k in a:
      if k in steps.DIAGNOSTIC_METRICS and not due:
        assert np.isnan(b[k]), (done, k)
      else:  # identical on diagnostic steps, and the other metrics on every step
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"step {done} {k}")
    assert all(a[k] > 0 for k in steps.DIAGNOSTIC_METRICS)
    assert a["nonfinite"] == b["nonfinite"] == 0.0


def test_every_step_norms_are_the_norms(quick_compiles):
  model, tx, batches, new_state = _setup()
  loss_fn = losses.get_loss("softmax_cross_entropy")
  state, batch = new_state(), batches[0]

  def loss_of(params):
    return jnp.mean(loss_fn(model.apply({"params": params}, batch["inputs"]), batch["targets"]))

  grads = jax.grad(loss_of)(state.params)
  updates, _ = tx.update(grads, state.opt_state, state.params)
  step = jax.jit(steps.make_train_step(model, tx, loss_fn))
  _, metrics = step(state, batch, jax.random.key(1))
  want = {"grad_norm": optax.tree.norm(grads), "param_norm": optax.tree.norm(state.params),
          "update_norm": optax.tree.norm(updates)}
  for k, v in want.items():
    np.testing.assert_allclose(metrics[k], v, rtol=1e-5, err_msg=k)
  # momentum from zero: the first update is -lr * grads
  np.testing.assert_allclose(metrics["update_norm"], 0.1 * metrics["grad_norm"], rtol=1e-5)


def _poisoned_loss(outputs, targets, label_smoothing=0.0):
  """Cross-entropy plus sqrt(scale * mean(outputs^2)), scale = share of targets that are
  not CLASSES - 1. A batch whose targets are all CLASSES - 1 has scale 0: the loss stays
  finite, but d sqrt(u)/du at u = 0 is inf, and inf * 0 makes every gradient NaN."""
  scale = jnp.mean(targets != CLASSES - 1)
  ce = losses.get_loss("softmax_cross_entropy")(outputs, targets, label_smoothing=label_smoothing)
  return ce + jnp.sqrt(scale * jnp.mean(outputs ** 2))


@pytest.mark.parametrize("diagnostics_every", [1, 50])
def test_nan_gradient_with_finite_loss_sets_nonfinite_step(quick_compiles, diagnostics_every):
  model, tx, batches, new_state = _setup()
  poison = dict(batches[2], targets=jnp.full((BATCH,), CLASSES - 1, jnp.int32))
  feed = [batches[0], batches[1], poison, batches[3]]
  step = jax.jit(steps.make_train_step(model, tx, _poisoned_loss,
                                       diagnostics_every=diagnostics_every), donate_argnums=0)
  state, nonfinite_steps = new_state(), []
  history = []
  for batch in feed:
    state, metrics = step(state, batch, jax.random.key(1))
    history.append(metrics)
    nonfinite_steps.append(int(state.nonfinite_step))
  assert np.isfinite(float(history[2]["train_loss"]))  # the loss was finite ...
  assert not np.all(np.isfinite(np.asarray(jax.tree.leaves(state.params)[0])))  # ... the update NaN
  assert [float(m["nonfinite"]) for m in history] == [0.0, 0.0, 1.0, 1.0]
  # state.step of the first bad step (2), kept afterwards: the loop stops before saving.
  assert nonfinite_steps == [-1, -1, 2, 2]


def test_tree_finite_is_exact():
  big = {"a": jnp.full((1000,), 1e30, jnp.float32), "b": jnp.ones((3, 3), jnp.bfloat16)}
  assert bool(steps.tree_finite(big))
  assert not bool(jnp.isfinite(optax.tree.norm(big)))  # the squared norm overflows
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    tree = dict(big, b=big["b"].at[1, 2].set(bad))
    assert not bool(steps.tree_finite(tree)), bad
  both = {"a": jnp.array([jnp.inf, -jnp.inf, 1.0])}  # inf - inf: NaN, still caught
  assert not bool(steps.tree_finite(both))
  assert bool(steps.tree_finite({"i": jnp.arange(3), "f": jnp.zeros(2)}))


def test_one_compile_serves_both_kinds_of_step(quick_compiles):
  model, tx, batches, new_state = _setup()
  traces = []

  def loss_fn(outputs, targets, label_smoothing=0.0):
    traces.append(1)
    return losses.get_loss("softmax_cross_entropy")(outputs, targets,
                                                     label_smoothing=label_smoothing)

  step = jax.jit(steps.make_train_step(model, tx, loss_fn, diagnostics_every=3),
                 donate_argnums=0)
  _, history = _run(step, new_state(), batches)
  assert [bool(np.isnan(m["grad_norm"])) for m in history] == [True, True, False, True, True]
  assert step._cache_size() == 1  # pylint: disable=protected-access
  assert len(traces) == 1


def test_donated_state_is_updated_without_copies(optimized_compiles):
  """XLA:CPU copies donated buffers read off the update's data path; the norms of the
  old state are sequenced before the update, so no parameter or optimizer buffer is."""
  model, tx, batches, new_state = _setup()
  loss_fn = losses.get_loss("softmax_cross_entropy")
  for every in (1, 2):
    step = jax.jit(steps.make_train_step(model, tx, loss_fn, diagnostics_every=every),
                   donate_argnums=0)
    hlo = step.lower(new_state(), batches[0], jax.random.key(1)).compile().as_text()
    entry = hlo[hlo.index("\nENTRY"):]
    copied = re.findall(r"= f32\[(\d+),(\d+)\]\{1,0\} copy\(", entry)
    assert not copied, (every, copied)


def test_bad_arguments_are_one_line_errors():
  model, tx, _, _ = _setup()
  loss_fn = losses.get_loss("softmax_cross_entropy")
  for kw, text in [({"diagnostics_every": 0}, "diagnostics_every=0 must be an integer >= 1"),
                   ({"diagnostics_every": 2.5}, "diagnostics_every=2.5"),
                   ({"num_train_steps": 0}, "num_train_steps=0 must be None or an integer")]:
    with pytest.raises(ValueError, match=re.escape(text)) as e:
      steps.make_train_step(model, tx, loss_fn, **kw)
    assert "\n" not in str(e.value)
