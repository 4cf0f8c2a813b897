"""What every trainer gets from the one loop (leeml/loop.py), checked for each of them:

* resume after kill -9 is bit-identical: a subprocess is SIGKILLed mid-run (after its
  checkpoint at step 4 is on disk, before step 6's metrics are written), the run is
  started again in the same workdir, and its final state and metrics.jsonl equal those
  of an uninterrupted run;
* a NaN/inf stops the run with an error naming the step, and no checkpoint at or after
  that step is written (the latest one restores finite);
* 8 devices (batch sharded, state replicated) give the 1-device parameters.

The trainers are the entries of `CASES` (classification `train.train_and_evaluate`,
seq2seq `seq2seq.train_and_evaluate`, GAN `gan.train.train_gan`, and a population of two
classification members, `population.run_config`); a new trainer is one more `Case`.
A population does not stop at a NaN: the member that went non-finite is frozen at its
last finite state and reported with the step, the other member trains on, and no
checkpoint holds a NaN.
Also: the loop itself on a toy state (JSONL record shape, diagnostics on log steps only).
"""

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, binary_env, tiny_config
from leeml import checkpoint, loop, optim, parallel, population, seq2seq, steps, train
from leeml.gan.train import train_gan
from leeml.metric_writers import read_jsonl

import test_gan_train
import test_seq2seq_train

pytestmark = pytest.mark.usefixtures("quick_compiles")

STEPS = 8          # every run: 8 steps, a checkpoint every 2, a log step every 4
CHECKPOINT_EVERY = 2
LOG_EVERY = 4
NAN_AT = 4         # step index whose gradients are NaN: "at step 5"
KILL_AT = 6        # the killed run dies when it starts writing step 6's metrics


@contextlib.contextmanager
def _nan_gradients_at(step_index: int | None, min_learning_rate: float = 0.0):
  """The steps built on `steps.apply_gradients` (classification, seq2seq, population) get
  NaN gradients at `step_index` (so the parameters become NaN from there on), in the
  runs whose learning rate exceeds `min_learning_rate` (one member of a population)."""
  if step_index is None:
    yield
    return
  original = steps.apply_gradients

  def poisoned(state, tx, grads, loss, **kw):
    hit = (state.step == step_index) & (
        optim.learning_rate_of(state.opt_state) > min_learning_rate)
    grads = jax.tree.map(lambda g: jnp.where(hit, jnp.nan, g), grads)
    return original(state, tx, grads, loss, **kw)

  steps.apply_gradients = poisoned
  try:
    yield
  finally:
    steps.apply_gradients = original


def _loop_fields(config, num_train_steps: int) -> None:
  config.num_train_steps = num_train_steps
  config.checkpoint_every_steps, config.log_every_steps = CHECKPOINT_EVERY, LOG_EVERY
  config.keep_checkpoints, config.progress_bar = 10, False


def run_classification(workdir, *, num_train_steps=STEPS, mesh=None, nan_at=None):
  config = tiny_config()
  _loop_fields(config, num_train_steps)
  with _nan_gradients_at(nan_at):
    return train.train_and_evaluate(config, workdir, mesh=mesh)


def run_seq2seq(workdir, *, num_train_steps=STEPS, mesh=None, nan_at=None):
  # SGD: with Adam, float noise in the key bias's gradient (exactly 0 in exact arithmetic)
  # becomes +-lr steps, and 8 devices would not match 1 to a tolerance.
  config = test_seq2seq_train.tiny_config(**{"optimizer.name": "sgd",
                                             "optimizer.learning_rate": 0.3})
  _loop_fields(config, num_train_steps)
  with _nan_gradients_at(nan_at):
    return seq2seq.train_and_evaluate(config, workdir, mesh=mesh, final_beam=False).state


def run_gan(workdir, *, num_train_steps=STEPS, mesh=None, nan_at=None):
  config = test_gan_train.tiny_gan_config(loss="wgan_gp", eval_every_steps=2)
  _loop_fields(config, num_train_steps)
  # spectral norm: the critic's power-iteration statistics are state that must resume too
  parts = test_gan_train.gan_parts(config, nan_from_step=nan_at,
                                   weight_param="spectral_norm")
  return train_gan(config, workdir, mesh=mesh, **parts)[0]


POPULATION = [population.Member(0, {"learning_rate": 0.1}, "a"),
              population.Member(1, {"learning_rate": 0.2}, "b")]


def run_population(workdir, *, num_train_steps=STEPS, mesh=None, nan_at=None):
  """Two members of the classification config; the NaN (if any) hits member 1 only.
  Returns the members' final states stacked on a leading axis (numpy)."""
  config = tiny_config()
  _loop_fields(config, num_train_steps)
  with _nan_gradients_at(nan_at, min_learning_rate=0.15):
    result = population.run_config(config, POPULATION, workdir, mesh=mesh)
  stacked = jax.tree.map(lambda *x: np.stack(x), *result.states)
  return dataclasses.replace(result, states=stacked) if nan_at is not None else stacked


def _sharded_over(state) -> int:
  return len(jax.tree.leaves(state)[-1].sharding.device_set)


@dataclasses.dataclass(frozen=True)
class Case:
  """A trainer under test: `run(workdir, *, num_train_steps, mesh, nan_at) -> state`
  (a NaN/inf from step index `nan_at` on), the arrays to compare of a state, its step,
  its records, and the number of devices its arrays live on (None: fetched to the host)."""
  run: Callable[..., Any]
  arrays: Callable[[Any], Any] = lambda state: state
  step: Callable[[Any], int] = lambda state: int(state.step)
  records: Callable[[str], Any] = lambda w: read_jsonl(os.path.join(w, "metrics.jsonl"))
  devices: Callable[[Any], int | None] = _sharded_over


CASES = {
    "classification": Case(run_classification, lambda s: (s.params, s.opt_state)),
    "seq2seq": Case(run_seq2seq, lambda s: (s.params, s.opt_state)),
    "gan": Case(run_gan),
    "population": Case(run_population, lambda s: (s.params, s.opt_state),
                       step=lambda s: int(np.unique(s.step).item()),
                       records=population.read_records, devices=lambda s: None),
}

# Subprocess tests: the classification case runs in the default run; the seq2seq, GAN and
# population cases (20-36 s each on 2 cores) in the slow run (.ci/run-slow).
SUBPROCESS_CASES = [name if name == "classification" else
                    pytest.param(name, marks=pytest.mark.slow) for name in CASES]


def _host(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(parallel.to_host(tree))]


def _ckpt_steps(workdir) -> list[int]:
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


_KILLED_RUN = r"""
import os, signal, sys, time
import jax
jax.config.update("jax_disable_most_optimizations", True)  # as the quick_compiles fixture
sys.path.insert(0, "tests")
import test_trainers
from leeml import checkpoint, metric_writers
name, workdir = sys.argv[1], sys.argv[2]
write = metric_writers.MetricWriter.write

def write_or_die(self, step, scalars, **kw):
  if step >= test_trainers.KILL_AT:
    deadline = time.time() + 60  # let the async save of step 4 land first
    while time.time() < deadline and max(test_trainers._ckpt_steps(workdir) or [0]) < 4:
      time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)
  return write(self, step, scalars, **kw)

def save_or_die(manager, step, state):  # the population writes its records itself
  if step >= test_trainers.KILL_AT:
    write_or_die(None, step, {})
  return save(manager, step, state)

metric_writers.MetricWriter.write = write_or_die
save = checkpoint.save
checkpoint.save = save_or_die
test_trainers.CASES[name].run(workdir)
"""


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_resume_after_kill_9_is_bit_identical(name, tmp_path):
  case = CASES[name]
  whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
  proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, name, killed], cwd=REPO,
                        env=binary_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  at_kill = _ckpt_steps(killed)
  assert at_kill and 4 <= max(at_kill) < KILL_AT, at_kill
  resumed = case.run(killed)
  assert _ckpt_steps(killed)[-1] == STEPS
  uninterrupted = case.run(whole)
  assert case.step(resumed) == case.step(uninterrupted) == STEPS
  a, b = _host(case.arrays(uninterrupted)), _host(case.arrays(resumed))
  assert len(a) == len(b) > 2
  for x, y in zip(a, b, strict=True):
    assert x.dtype == y.dtype and np.array_equal(x, y)
  # The replayed steps were logged again; read back, the metrics are the uninterrupted ones.
  assert case.records(killed) == case.records(whole)


def _population_freezes_the_member(workdir) -> None:
  result = run_population(workdir, nan_at=NAN_AT)
  assert result.nonfinite_steps == {1: NAN_AT + 1}
  # Member 1 keeps its last finite state (before the failing update); member 0 trains on.
  assert list(result.states.step) == [STEPS, NAN_AT]
  assert all(np.all(np.isfinite(x)) for x in _host(result.states) if x.dtype.kind == "f")
  assert _ckpt_steps(workdir) == [2, 4, 6, 8]
  manager = checkpoint.make_manager(workdir, keep=10)
  for step in (6, 8):  # saved after the NaN: finite, member 1 still at step 4
    restored = manager.restore(step, args=ocp.args.StandardRestore())
    assert list(restored["state"]["step"]) == [step, NAN_AT]
    assert all(np.all(np.isfinite(x)) for x in _host(restored) if x.dtype.kind == "f")
  records = population.read_records(workdir)
  flagged = [(r["member"], r["step"]) for r in records if r.get("nonfinite") == 1.0]
  assert flagged == [(1, NAN_AT + 1)]
  assert [r["step"] for r in records if "nonfinite_step" in r] == [NAN_AT + 1]
  assert max(r["step"] for r in records if r["member"] == 1 and "train_loss" in r) == NAN_AT + 1
  assert max(r["step"] for r in records if r["member"] == 0 and "train_loss" in r) == STEPS


@pytest.mark.parametrize("name", list(CASES))
def test_nan_stops_naming_the_step_and_never_reaches_a_checkpoint(name, tmp_path):
  case, workdir = CASES[name], str(tmp_path / "nan")
  if name == "population":
    _population_freezes_the_member(workdir)
    return
  with pytest.raises(loop.NonFiniteError) as err:
    case.run(workdir, nan_at=NAN_AT)
  message = str(err.value)
  assert "\n" not in message
  assert f"NaN/inf at step {NAN_AT + 1};" in message
  assert "Last good checkpoint: step 4 in" in message
  assert _ckpt_steps(workdir) == [2, 4]  # step 6's save was refused
  # The latest checkpoint, read back as saved (no template): step 4, finite, not flagged.
  manager = checkpoint.make_manager(workdir, keep=10)
  restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())
  assert int(restored["step"]) == 4 and int(restored["nonfinite_step"]) == -1
  leaves = _host(restored)
  assert len(leaves) > 4 and all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind == "f")
  # Steps 5 and 6 were flushed on the way out: per-step records flag step 5; the GAN's
  # interval means (steps 5-6) are written at step 6.
  metrics = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  flagged = [r["step"] for r in metrics if r.get("nonfinite", r.get("train_nonfinite")) == 1.0]
  assert flagged == ([6] if name == "gan" else [NAN_AT + 1, NAN_AT + 2])


_EIGHT_VS_ONE = r"""
import json, sys, tempfile
import jax, numpy as np
jax.config.update("jax_disable_most_optimizations", True)
sys.path.insert(0, "tests")
import test_trainers
from leeml import parallel
assert jax.device_count() == 8, jax.devices()
case, out = test_trainers.CASES[sys.argv[1]], {}
for n in (8, 1):
  workdir = None if sys.argv[1] == "gan" else tempfile.mkdtemp()
  state = case.run(workdir, num_train_steps=4, mesh=parallel.make_mesh(jax.devices()[:n]))
  out[str(n)] = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(case.arrays(state))
                 if np.asarray(x).dtype.kind == "f"]
  out[f"{n}_devices"] = case.devices(state)
print("RESULT" + json.dumps(out))
"""


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_eight_devices_give_the_one_device_params(name):
  proc = subprocess.run([sys.executable, "-c", _EIGHT_VS_ONE, name], cwd=REPO,
                        env=binary_env(device_count=8), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT")[-1])
  if name != "population":  # its states come back to the host
    assert out["8_devices"] == 8 and out["1_devices"] == 1
  assert len(out["8"]) == len(out["1"]) > 2
  moved = 0
  for a, b in zip(out["8"], out["1"], strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    moved += len(a)
  assert moved > 100


# ----------------------------------------------------------------------------- the loop


@flax.struct.dataclass
class _Toy:
  step: jax.Array
  nonfinite_step: jax.Array
  w: jax.Array


def _toy_step(state, step):
  w = state.w + 1.0
  metrics = {"train_loss": jnp.sum(w), "grad_norm": 10.0 * state.step.astype(jnp.float32)}
  return state.replace(step=state.step + 1, w=w), metrics


def _toy():
  return _Toy(jnp.asarray(0), jnp.asarray(-1), jnp.zeros(3))


def test_loop_records_per_step_with_diagnostics_on_log_steps_only(tmp_path, monkeypatch):
  monkeypatch.setattr(steps, "DIAGNOSTIC_METRICS", ("grad_norm",), raising=False)
  config = loop.loop_config()
  config.update(num_train_steps=7, log_every_steps=3, checkpoint_every_steps=5,
                eval_every_steps=0, progress_bar=False)
  evals = []
  state, history = loop.run_loop(
      state=_toy(), step_fn=_toy_step, config=config, workdir=str(tmp_path),
      evaluate=lambda s, i: evals.append(i) or {"eval_w": float(s.w[0])}, keep_history=True)
  assert int(state.step) == 7 and evals == [7]
  records = read_jsonl(str(tmp_path / "metrics.jsonl"))
  assert records == history
  train_recs = [r for r in records if "train_loss" in r]
  assert [r["step"] for r in train_recs] == list(range(1, 8))
  assert [r["train_loss"] for r in train_recs] == [3.0 * s for s in range(1, 8)]
  # grad_norm only at the log steps 3, 6 and the last step 7 (10 * steps done before).
  assert {r["step"]: r["grad_norm"] for r in train_recs if "grad_norm" in r} == {
      3: 20.0, 6: 50.0, 7: 60.0}
  assert records[-1] == {"step": 7, "eval_w": 7.0}
  assert _ckpt_steps(str(tmp_path)) == [5, 7]


def test_loop_interval_means_without_a_workdir_and_every():
  config = loop.loop_config()
  config.update(num_train_steps=5, log_every_steps=2, progress_bar=False)
  _, history = loop.run_loop(state=_toy(), step_fn=_toy_step, config=config, workdir=None,
                             per_step_records=False, keep_history=True,
                             log_extra=lambda s: {"w0": s.w[0]})
  # Interval means: steps 1-2, 3-4, 5 (the last); log_extra at each log step.
  assert history == [
      {"step": 2, "train_loss": 4.5, "grad_norm": 5.0, "w0": 2.0},
      {"step": 4, "train_loss": 10.5, "grad_norm": 25.0, "w0": 4.0},
      {"step": 5, "train_loss": 15.0, "grad_norm": 40.0, "w0": 5.0}]
  every = loop.Every(3)
  assert [d for d in range(1, 11) if every(d, 10)] == [3, 6, 9, 10]
  assert [d for d in range(1, 11) if loop.Every(0)(d, 10)] == [10]
