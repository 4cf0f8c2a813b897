"""Metrics to `workdir/metrics.jsonl` (one JSON object per step) and TensorBoard events.

JSONL gets every record; TensorBoard gets what `write(..., tensorboard=True)` is given
(the train loop sends it interval means at log steps: one event per scalar per step cost
more than the step itself for small models).

Only process 0 writes; other processes get a writer that does nothing. TensorBoard event
files are written with tensorboardX, so TensorFlow is not a dependency.
"""

import json
import math
import os

import jax


class MetricWriter:
  def __init__(self, workdir: str, *, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._jsonl = None
    self._tb = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: dict, *, jsonl: bool = True, tensorboard: bool = True) -> None:
    if not self.enabled:
      return
    record = {"step": int(step)}
    for k, v in scalars.items():
      v = float(v)
      record[k] = v if math.isfinite(v) else str(v)  # JSON has no NaN/inf
      if tensorboard:
        self._tb.add_scalar(k, v, int(step))
    if jsonl:
      self._jsonl.write(json.dumps(record) + "\n")

  def flush(self) -> None:
    if self.enabled:
      self._jsonl.flush()
      self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()
      self.enabled = False


def read_jsonl(path: str) -> list[dict]:
  """All records of a metrics.jsonl; a resumed run's replayed steps keep the last record."""
  by_step: dict[tuple, dict] = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      rec = json.loads(line)
      by_step[(rec["step"], tuple(sorted(rec)))] = rec
  return sorted(by_step.values(), key=lambda r: r["step"])
