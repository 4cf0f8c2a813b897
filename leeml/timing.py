"""Where an experiment's wall time goes: XLA compile, training, evaluation, the rest.

  with timing.record() as rec:            # reproduce.py, once per experiment
    ...
    with timing.phase("train"):           # a trainer, around its training calls
      state = train(...)
    with timing.phase("eval"):
      metrics = evaluate(...)
  rec.seconds  # {'compile': 3.1, 'train': 20.4, 'eval': 1.2, 'other': 0.9}

The clock is charged to the innermost open phase ('other' outside any phase), so nested
phases never double count: `phase("eval")` inside `phase("train")` takes its time out of
train. Compilation is read from JAX's monitoring events (jax/_src/dispatch.py, jax 0.10.2):
tracing to a jaxpr, lowering to an MLIR module and the backend compile (persistent cache
reads included); time spent in them is charged to 'compile', not to the phase they
happened in. So the four parts add up to the record's wall time.

Dispatch is asynchronous: device work still running when a phase closes is charged to
whatever waits for it next. Phases are meant for one thread (the one that trains); a
phase entered while no record is open costs nothing.
"""

import contextlib
import threading
import time
from typing import Iterator

from jax import monitoring

PHASES = ("train", "eval")
PARTS = ("compile",) + PHASES + ("other",)
# The monitoring events that are compilation (jax/_src/dispatch.py: JAXPR_TRACE_EVENT,
# JAXPR_TO_MLIR_MODULE_EVENT, BACKEND_COMPILE_EVENT). Tracing is recorded only at the top
# level (a clean trace state), so the three never nest.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)

_lock = threading.RLock()
_records: list["Record"] = []   # open records, outermost first
_phases: list[str] = []         # open phases, outermost first


class Record:
  """The wall time of one `with record():` block, split into PARTS (seconds)."""

  def __init__(self):
    self.seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
    self._last = 0.0
    self._compile_pending = 0.0

  @property
  def total(self) -> float:
    return sum(self.seconds.values())

  def _charge(self, label: str, now: float) -> None:
    """Charges the time since the last change: compile events that arrived in it to
    'compile' (at most the elapsed time: a span that began before the record opened is
    cut), the rest to `label`."""
    elapsed = now - self._last
    compiled = min(self._compile_pending, elapsed)
    self.seconds["compile"] += compiled
    self.seconds[label] += elapsed - compiled
    self._last, self._compile_pending = now, 0.0


def _current() -> str:
  return _phases[-1] if _phases else "other"


def _charge_all() -> float:
  """Charges every open record up to now (one clock reading for all); returns now."""
  label, now = _current(), time.perf_counter()
  for r in _records:
    r._charge(label, now)  # pylint: disable=protected-access
  return now


def _on_duration(event: str, duration_secs: float, **_) -> None:
  if event in COMPILE_EVENTS:
    with _lock:
      for r in _records:
        r._compile_pending += duration_secs  # pylint: disable=protected-access


@contextlib.contextmanager
def record() -> Iterator[Record]:
  """Accounts the block's wall time into the yielded Record (final when the block ends).
  Records may nest; each sees the whole of its own block."""
  rec = Record()
  with _lock:
    if not _records:  # listen only while a record is open
      monitoring.register_event_duration_secs_listener(_on_duration)
    rec._last = _charge_all()  # pylint: disable=protected-access
    _records.append(rec)
  try:
    yield rec
  finally:
    with _lock:
      _charge_all()
      _records.remove(rec)
      if not _records:
        try:
          monitoring.unregister_event_duration_listener(_on_duration)
        except (AssertionError, ValueError):
          pass  # someone cleared JAX's listeners meanwhile


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
  """Charges the block's time (less compilation and inner phases) to `name`."""
  if name not in PHASES:
    raise ValueError(f"unknown timing phase {name!r}; one of: {', '.join(PHASES)}")
  with _lock:
    _charge_all()
    _phases.append(name)
  try:
    yield
  finally:
    with _lock:
      _charge_all()
      _phases.pop()
