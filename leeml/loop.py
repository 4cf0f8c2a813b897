"""`run_loop(...)`: the one training loop under every trainer (classification, seq2seq, GAN).

A trainer builds its state, a step and a feed, and hands them to `run_loop`; the loop owns
everything around the steps, in this order:

1. restore: with a `workdir`, `config.json` is written (`write_config`) and the latest
   orbax checkpoint in `workdir/checkpoints` (`leeml.checkpoint`) is restored into the
   given state, so rerunning the same command resumes. Because a trainer's batches and
   step RNG are functions of (seed, step), a resumed run replays exactly the steps an
   uninterrupted one would have taken.
2. steps `start .. config.num_train_steps - 1`: `state, metrics = step_fn(state, step)`
   (`metrics`: a flat dict of scalar arrays, left on the device until a log step), under
   `leeml.timing.phase("train")`, which waits for the steps' device work before it closes.
3. periodic actions after step `done = step + 1`, each on its `Every(n)` trigger (every
   n steps and at the last step; n = 0: only at the last step), in this order:
   - log (`config.log_every_steps`): the pending per-step metrics are fetched and
     written (JSONL, TensorBoard via `leeml.metric_writers.MetricWriter`, the tqdm bar's
     loss and steps/s); then `check_finite`.
   - eval (`config.eval_every_steps`, only with an `evaluate`): `check_finite`, then
     `evaluate(state, done) -> {name: scalar}` under `timing.phase("eval")`, written at
     step `done`.
   - checkpoint (`config.checkpoint_every_steps`, only with a `workdir`): `check_finite`,
     the metrics file is flushed (so a run killed later loses no record up to the
     checkpoint it resumes from), then an orbax save of step `done`. A NaN/inf state
     never reaches the disk.
4. at the end (also when a resumed run had nothing left to train): `final_evaluate(state)`
   under `timing.phase("eval")`; its scalars are written at the last step when this call
   trained at least one step.
5. cleanup, in `finally` (also after an error, e.g. `NonFiniteError`): the pending metrics
   are written, the checkpoint manager finishes its saves, the writer is closed.

`workdir=None` touches no disk: no config.json, no checkpoints, no resume, no metrics files
(the records are still returned in `history` when asked for).

metrics.jsonl records (one JSON object per line; NaN/inf are written as strings):
* `per_step_records=True` (classification, seq2seq): one record per step,
  `{"step": done, **metrics}`; the keys of `steps.DIAGNOSTIC_METRICS` (grad/param/update
  norms, computed only on log steps) appear only in the records of log steps (done a
  multiple of `log_every_steps`, and the last step). TensorBoard gets, at each log step,
  the mean of every key over the interval's records that have it.
* `per_step_records=False` (GAN): one record per log step, `{"step": done, key: mean of
  the interval's steps, ..., **log_extra(state)}`, to JSONL and TensorBoard alike.
* evaluation records `{"step": done, **evaluate(state, done)}` and, at the last step,
  `{"step": last, **final_evaluate(state)}`.
A resumed run writes the replayed steps again; `metric_writers.read_jsonl` keeps the last.

The loop's config fields (`loop_config()`, the same names in every trainer's schema;
`leeml.config.validate_loop` checks their values):
  num_train_steps         steps to train in all (a resumed run continues up to it)
  log_every_steps         log interval (> 0)
  eval_every_steps        eval interval; 0: only at the last step
  checkpoint_every_steps  checkpoint interval (> 0); also at the last step
  keep_checkpoints        how many checkpoints the orbax manager keeps (> 0)
  progress_bar            the tqdm bar (process 0 only)
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging
from tqdm.auto import tqdm

from leeml import checkpoint, parallel, steps, timing
from leeml.metric_writers import MetricWriter, read_jsonl

def loop_config() -> ml_collections.ConfigDict:
  """The loop's fields with their defaults; every trainer's schema includes them."""
  c = ml_collections.ConfigDict()
  c.num_train_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 0      # 0: evaluate only at the end
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 3
  c.progress_bar = True
  return c


@dataclasses.dataclass(frozen=True)
class Every:
  """A periodic trigger: fires at steps that are multiples of `n` and at the last step
  (`n` = 0: only at the last step)."""
  n: int

  def __call__(self, done: int, last: int) -> bool:
    return done == last or (self.n > 0 and done % self.n == 0)


class NonFiniteError(FloatingPointError):
  """The loss or the gradients became NaN/inf; the message names the step."""


def check_finite(state, manager=None, *, what: str = "loss or gradients") -> None:
  """Raises `NonFiniteError` naming the first step (counted from 1, as in metrics.jsonl
  and checkpoint names) whose loss or gradients were NaN/inf, from `state.nonfinite_step`
  (-1: none; an array of them, e.g. one per population member: the earliest), and the
  last good checkpoint of `manager`."""
  bad = np.asarray(parallel.to_host(state.nonfinite_step)).ravel()
  bad = bad[bad >= 0]
  if bad.size:
    if manager is None:
      last = "none (no workdir)"
    elif manager.latest_step() is None:
      last = f"none in {manager.directory}"
    else:
      last = f"step {manager.latest_step()} in {manager.directory}"
    raise NonFiniteError(f"{what} became NaN/inf at step {int(bad.min()) + 1}; stopping. "
                         f"Last good checkpoint: {last}")


def write_config(config, workdir: str) -> None:
  """Writes `workdir/config.json` (process 0); warns when a resumed run's config changed."""
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    if old != new:
      changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
      logging.warning("resuming %s with a changed config (sections: %s)", workdir, changed)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(new, f, indent=2)


def _scalars(record: dict) -> dict:
  return {k: float(v) for k, v in record.items()}


def run_loop(*, state, step_fn: Callable[[Any, int], tuple[Any, dict]], config,
             workdir: str | None, evaluate: Callable[[Any, int], dict] | None = None,
             final_evaluate: Callable[[Any], dict] | None = None,
             per_step_records: bool = True, log_extra: Callable[[Any], dict] | None = None,
             keep_history: bool = False, desc: str = "train",
             postfix: Sequence[str] = ("train_loss",)) -> tuple[Any, list[dict] | None]:
  """Trains `state` with `step_fn` up to `config.num_train_steps`; returns (state, history).

  state             the initial state (sharded as the step expects); replaced by the
                    latest checkpoint of `workdir` when there is one. Must have
                    `step` (updates done) and `nonfinite_step` (see `check_finite`).
  step_fn           `(state, step) -> (state, metrics)` for step = 0, 1, ...: the trainer's
                    jitted step on the batch of `step` (the feed lives in this closure).
  config            any config with the `loop_config()` fields; with a workdir, the whole
                    config is written to config.json.
  workdir           checkpoints, metrics.jsonl, tensorboard/, config.json; None: no disk.
  evaluate          `(state, done) -> scalars` at eval steps (and the last step).
  final_evaluate    `state -> scalars` once after the last step (see the module docstring).
  per_step_records  JSONL record shape (module docstring): per step, or interval means.
  log_extra         `state -> scalars` added to the interval-mean records of log steps.
  keep_history      return every record written (also those of the invocations this one
                    resumed from, read back from metrics.jsonl); else history is None.
  desc, postfix     the tqdm bar's label, and the metric keys it shows (last value).
  """
  last = int(config.num_train_steps)
  log_at, eval_at = Every(config.log_every_steps), Every(config.eval_every_steps)
  checkpoint_at = Every(config.checkpoint_every_steps)
  diagnostics = tuple(getattr(steps, "DIAGNOSTIC_METRICS", ()))
  manager, writer = None, None
  if workdir is not None:
    os.makedirs(workdir, exist_ok=True)
    write_config(config, workdir)
    manager = checkpoint.make_manager(workdir, keep=config.keep_checkpoints)
    if manager.latest_step() is not None:
      state = checkpoint.restore(manager, state)
      logging.info("resumed from step %d in %s", manager.latest_step(), workdir)
  start = int(parallel.to_host(state.step))
  history = [] if keep_history else None
  if keep_history and workdir is not None:
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):  # what earlier invocations logged up to the checkpoint
      history = [r for r in read_jsonl(path) if r["step"] <= start]
  if workdir is not None:
    writer = MetricWriter(workdir)

  pending: list[tuple[int, dict]] = []
  bar = tqdm(total=last, initial=start, desc=desc, unit="step",
             disable=not config.progress_bar or jax.process_index() != 0, dynamic_ncols=True)
  timer = [time.perf_counter(), start]

  def write(step: int, scalars: dict, *, jsonl: bool = True, tensorboard: bool = True):
    if jsonl and history is not None:
      history.append({"step": step, **_scalars(scalars)})
    if writer is not None:
      writer.write(step, scalars, jsonl=jsonl, tensorboard=tensorboard)

  def flush(step: int, *, extra: bool = True) -> None:
    """Writes the pending step metrics; `extra`: also `log_extra(state)`."""
    if pending:
      host = parallel.to_host(pending)
      if per_step_records:
        records = [(s, {k: v for k, v in m.items()  # the norms exist on log steps only
                        if log_at(s, last) or k not in diagnostics}) for s, m in host]
        for s, m in records:
          write(s, m, tensorboard=False)
      else:
        records = host
      keys = dict.fromkeys(k for _, m in records for k in m)
      means = {k: np.mean([m[k] for _, m in records if k in m]) for k in keys}
      if not per_step_records and extra and log_extra is not None:
        means.update(log_extra(state))
      write(step, means, jsonl=not per_step_records)
      now = time.perf_counter()
      shown = {k: f"{float(host[-1][1][k]):.4g}" for k in postfix if k in host[-1][1]}
      rate = (step - timer[1]) / max(now - timer[0], 1e-9)
      bar.set_postfix(**shown, steps_per_s=f"{rate:.1f}")
      timer[:] = [now, step]
      pending.clear()
    if writer is not None:
      writer.flush()

  try:
    step = start
    while step < last:
      with timing.phase("train"):
        while step < last:
          state, metrics = step_fn(state, step)
          step += 1
          pending.append((step, metrics))
          bar.update(1)
          if (log_at(step, last) or (evaluate is not None and eval_at(step, last))
              or (manager is not None and checkpoint_at(step, last))):
            break
        jax.block_until_ready(state)  # the steps' device time counts as training
      done = step
      if log_at(done, last):
        flush(done)
        check_finite(state, manager)
      if evaluate is not None and eval_at(done, last):
        check_finite(state, manager)
        with timing.phase("eval"):
          write(done, evaluate(state, done))
      if manager is not None and checkpoint_at(done, last):
        check_finite(state, manager)  # never put a NaN on disk
        writer.flush()  # what was logged up to a checkpoint is on disk before it
        checkpoint.save(manager, done, state)
    if final_evaluate is not None:
      with timing.phase("eval"):
        scalars = final_evaluate(state)
      if start < last:
        write(last, scalars)
  finally:
    if pending:  # e.g. the metrics of the steps before an error (the state may be gone)
      flush(pending[-1][0], extra=False)
    bar.close()
    if manager is not None:
      manager.wait_until_finished()
    if writer is not None:
      writer.close()
  return state, history


__all__ = ("loop_config", "Every", "NonFiniteError",
           "check_finite", "write_config", "run_loop")
