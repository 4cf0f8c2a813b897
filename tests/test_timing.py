"""leeml.timing: compile / train / eval / other add up to the wall time, no double count."""

import time

import jax
import jax.numpy as jnp
import pytest

from leeml import timing

# Slack for the few statements between a test's clock reads and the record's own (they may
# be preempted on a loaded machine); every sleep below is >= 2x this, so a part counted
# twice, or in the wrong place, is caught.
SLACK = 0.05


def nap(seconds: float) -> float:
  """Sleeps; returns the time actually slept (a loaded machine oversleeps)."""
  t = time.perf_counter()
  time.sleep(seconds)
  return time.perf_counter() - t


def test_parts_add_up_and_compile_is_taken_out_of_the_phase():
  def chain(x):  # 24 ops: tracing, lowering and compiling them take well over SLACK
    for k in range(8):
      x = jnp.tanh(x @ x.T)[:, :11] * (1.0 + k) + jnp.cos(x)
    return x.sum(axis=0)

  fn = jax.jit(chain)  # a fresh function: its compilation happens in the phase below
  x = jnp.ones((37, 11), jnp.float32)
  t0 = time.perf_counter()
  with timing.record() as rec:
    with timing.phase("train"):
      start = time.perf_counter()
      fn(x).block_until_ready()
      train_wall = time.perf_counter() - start
    slept = nap(0.1)
  wall = time.perf_counter() - t0
  s = rec.seconds
  assert set(s) == {"compile", "train", "eval", "other"}
  assert rec.total == pytest.approx(sum(s.values()))
  assert 0 <= wall - rec.total < SLACK, (rec.total, wall)
  assert s["compile"] > SLACK and s["eval"] == 0.0
  # The phase kept only what was not compilation: its own wall time less the compile.
  assert train_wall - s["compile"] <= s["train"] + 1e-6
  assert s["train"] < train_wall - s["compile"] + SLACK
  assert slept <= s["other"] < slept + SLACK
  # A second call is cached: no compile, all of it is train.
  with timing.record() as again:
    with timing.phase("train"):
      fn(x).block_until_ready()
  assert again.seconds["compile"] == 0.0 and again.seconds["train"] > 0.0


def test_nested_phases_do_not_double_count():
  t0 = time.perf_counter()
  with timing.record() as rec:
    with timing.phase("train"):
      train = nap(0.1)
      with timing.phase("eval"):
        ev = nap(0.15)
        with timing.phase("eval"):  # the same phase nested: counted once
          ev += nap(0.1)
      train += nap(0.1)
  wall = time.perf_counter() - t0
  s = rec.seconds
  assert ev <= s["eval"] < ev + SLACK
  assert train <= s["train"] < train + SLACK
  assert s["compile"] == 0.0 and s["other"] < SLACK
  assert 0 <= wall - rec.total < SLACK


def test_records_nest_and_phases_outside_records_are_free():
  with timing.phase("train"):  # nothing open: nothing to charge, no error
    nap(0.01)
  with timing.record() as outer:
    before = nap(0.1)
    with timing.record() as inner:
      with timing.phase("eval"):
        ev = nap(0.1)
  assert ev <= inner.seconds["eval"] < ev + SLACK and inner.seconds["other"] < SLACK
  assert outer.seconds["eval"] == pytest.approx(inner.seconds["eval"], abs=1e-6)
  assert before <= outer.seconds["other"] < before + SLACK
  assert outer.seconds["train"] == 0.0
  # Closed records stop listening: a later compile changes neither.
  frozen = dict(outer.seconds)
  jax.jit(lambda v: v * 7 - 2)(jnp.ones(5)).block_until_ready()
  assert outer.seconds == frozen


def test_a_phase_that_raises_still_closes_and_unknown_names_are_one_line():
  with timing.record() as rec:
    with pytest.raises(KeyError):
      with timing.phase("eval"):
        ev = nap(0.1)
        raise KeyError("x")
    other = nap(0.1)
  assert ev <= rec.seconds["eval"] < ev + SLACK
  assert other <= rec.seconds["other"] < other + SLACK
  with pytest.raises(ValueError, match=r"^unknown timing phase 'checkpoint'; one of: train, "
                     r"eval$"):
    with timing.phase("checkpoint"):
      pass
