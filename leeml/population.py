"""Populations: many members (seeds x hyperparameter settings) trained at the cost of few.

A *member* is a seed plus a setting of hyperparameters (`Member`, `grid`). Members whose
settings only change values, not shapes, share ONE compiled step: their hyperparameters
enter the step as traced arrays. Two layers:

(a) `Program`: what a lecture builds itself. `init(key[, hparams]) -> state`,
    `train_step(state, batch, rng, hparams) -> (state, metrics)`, the training split
    (in memory) and batch size, `hparams` (the traced names and their defaults), and
    optionally `evaluate(state, batch) -> sums` (with a `count`) over named `splits`
    (e.g. 'validation', 'test'). `run(program, members, num_steps=...)` trains them.
(b) `run_config(config, members)`: the core classification config (`leeml.config`
    schema, single-run reference `leeml.train.train_and_evaluate`) built into a Program
    by `program_from_config` from the core's pieces (`steps`, `TrainState`,
    `optim.make_optimizer`, `losses`, `models`, `datasets`).

Member i computes what a single core run with its seed and settings computes: the state
is `init(k_init)` with `k_init, k_train = split(PRNGKey(seed))`; step t trains on the
core's batch `data.device_train_indices(t, ...)` of the (seed, epoch) permutations
(`data.epoch_permutation`) and gets `rng = k_train` (the step folds in its step number).

Hyperparameters of `run_config` members: traced (one compile for all values):
`TRACED_HPARAMS` = learning_rate, momentum, b1, b2, eps, weight_decay, rms_decay,
initial_accumulator_value (the optimizer fields `optim.make_optimizer(hyperparams=...)`
takes as arrays). Any other setting is a dotted config path (e.g. 'model.width',
'batch_size', 'schedule.warmup_steps', 'loss.label_smoothing') and makes a separate
group, compiled once per distinct value. (warmup_steps and label_smoothing are static
because the optax schedules take the warmup as a Python int and `losses` tests the
smoothing with a Python `if`.) An unknown name is a one-line ValueError. A hand-written
Program traces whatever names its `hparams` lists (loss weights, dropout rates, ...).

Strategies (`STRATEGIES`, same numbers under each; `default_strategy` picks by backend):
* sequential: one member at a time (one per device of the mesh), one jitted step per
  dispatch.
* vmap: all members in one jitted step (`jax.vmap`), the member axis sharded over the
  mesh's `data` axis (8 devices run 8 members at once).
* scan / vmap_scan: as sequential / vmap, with the steps between two evaluations or
  checkpoints fused into `lax.scan` chunks of at most `scan_steps`.

Non-finite members: a member whose step reports a nonzero `nonfinite` (the core's steps:
loss or gradients NaN/inf), or, for a step without one, a NaN/inf metric, keeps its last finite state
(frozen) and is reported with the 1-based step (`Result.nonfinite_steps`, a
`{"member", "nonfinite_step"}` record); the others go on.

Chunks: the steps run in chunks that end at every evaluation (`eval_every`), checkpoint
(`checkpoint_every`) and the last step; metrics come to the host once per chunk.

workdir: `metrics.jsonl` (a record per member per step `{"member", "arm", "seed",
"hparams": {...}, "step", **metrics}`; the `steps.DIAGNOSTIC_METRICS` norms only on the
steps that compute them (NaN placeholders are left out); evaluations as `eval_<split>_<name>`; read it with
`read_records`, not `metric_writers.read_jsonl`, which keys by step), `population.json`
(the members; a different population in the same workdir is refused) and orbax
checkpoints (`leeml.checkpoint`) of all members at the chunk ends that are checkpoint
steps. Rerunning resumes at the latest one, drops records written after it, and is
bit-identical to an uninterrupted run (also after a kill -9). Checkpoints hold no
padding, so a run may resume under another strategy. One process only (the states are
fetched with `jax.device_get`).

Selection: `select_best` (best member per arm by a validation metric, never the test
split), `mean_by_setting`, and `Result.curves` (metric vs step arrays for plots).

    members = population.grid(range(10), learning_rate=[1e-3, 3e-3, 1e-2], arm="adam")
    result = population.run_config(config, members, workdir, splits={"validation": val})
    best = population.select_best(result, "validation", "accuracy")  # {arm: member id}
    steps, acc = result.curves("eval_validation_accuracy")           # (T,), (members, T)

`run` keeps the compiled pieces of the last 8 (Program, strategy, mesh) combinations, so
running the same Program object again does not recompile.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import math
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from leeml import (checkpoint, config as config_lib, data, datasets, losses, models, optim,
                   parallel, runtime, steps)
from leeml.train_state import TrainState

STRATEGIES = ("sequential", "vmap", "scan", "vmap_scan")
TRACED_HPARAMS = optim.TRACED_FIELDS
_MAX_CHUNK = 1000
# Measured by benchmarks/population.py (XLA:CPU, 2 cores; see BENCHMARKS.md).
_CPU_DEFAULTS = {"mlp": "scan"}


@dataclasses.dataclass(frozen=True)
class Member:
  """One member: its seed, hyperparameter settings and the arm it belongs to."""
  seed: int
  hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  arm: str = ""

  def settings(self) -> dict:
    """What every record of this member carries (besides its id)."""
    return {"arm": self.arm, "seed": int(self.seed), "hparams": dict(self.hparams)}


def grid(seeds: Sequence[int], *, arm: str = "", **values: Sequence[Any]) -> list[Member]:
  """Every seed x every combination of `values`, e.g. grid(range(3), learning_rate=[.1, .01])."""
  names = list(values)
  return [Member(int(s), dict(zip(names, combo)), arm)
          for combo in itertools.product(*(values[n] for n in names)) for s in seeds]


@dataclasses.dataclass(frozen=True)
class Program:
  """A training program in the population engine's terms (see the module docstring).

  init: `init(key)` or `init(key, hparams) -> state` (hparams when the initial state
    depends on them, e.g. optimizer state built with them).
  train_step: `(state, batch, rng, hparams) -> (state, metrics)`; pure, un-batched (the
    engine vmaps/scans it). `rng` is the member's training key, the same every step.
    `metrics`: flat dict of scalars. The member is frozen at a step whose
    `metrics["nonfinite"]` is nonzero when the step reports one (then other metrics may
    be NaN placeholders, e.g. diagnostics computed on log steps only), otherwise at a
    step whose metrics are not all finite.
  train, batch_size: the in-memory training split and the batch size.
  hparams: the traced hyperparameters and their defaults (float32 scalars).
  evaluate: `(state, batch) -> sums` with a `count` key (batches are padded, with
    `weights`); reported as `eval_<split>_<key>` = sum / count over the split.
  splits: {name: ArraySplit} to evaluate on.
  family: a model family hint ('mlp', 'cnn', ...) for `default_strategy`.
  """
  init: Callable
  train_step: Callable
  train: data.ArraySplit
  batch_size: int
  hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
  evaluate: Callable | None = None
  splits: Mapping[str, data.ArraySplit] = dataclasses.field(default_factory=dict)
  eval_batch_size: int = 512
  family: str = ""


def default_strategy(family: str = "", backend: str | None = None) -> str:
  """'vmap' on accelerators; on XLA:CPU one-step dispatch ('sequential'), except model
  families measured faster scanned (`_CPU_DEFAULTS`)."""
  backend = jax.default_backend() if backend is None else backend
  if backend != "cpu":
    return "vmap"
  return _CPU_DEFAULTS.get(family, "sequential")


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass
class Result:
  """Final states (numpy), records and non-finite steps of a population (member ids =
  positions in `members`)."""
  members: list[Member]
  states: list[Any]
  records: list[dict]
  nonfinite_steps: dict[int, int]
  strategy: str

  def curves(self, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps (T,), values (members, T)) of metric `key`; NaN where a member has none."""
    rows = [r for r in self.records if key in r]
    all_steps = np.array(sorted({r["step"] for r in rows}), np.int64)
    pos = {s: i for i, s in enumerate(all_steps)}
    out = np.full((len(self.members), len(all_steps)), np.nan)
    for r in rows:
      out[r["member"], pos[r["step"]]] = float(r[key])
    return all_steps, out

  def final(self, key: str) -> np.ndarray:
    """Each member's last value of `key` (NaN for a member without one)."""
    _, values = self.curves(key)
    out = np.full(len(self.members), np.nan)
    for i, row in enumerate(values):
      seen = row[~np.isnan(row)]
      if seen.size:
        out[i] = seen[-1]
    return out

  def params(self, member: int):
    """The final params of `member` (numpy; `states` are on the host)."""
    return jax.tree.map(np.asarray, _params_of(self.states[member]))


def _params_of(state):
  return state.params if hasattr(state, "params") else state["params"]


def _check_selection_split(split: str) -> None:
  if split == "test" or split.startswith("test"):
    raise ValueError(f"population: selecting on split {split!r} is not allowed (select on a "
                     "validation split; the test split only reports)")


def select_best(result: Result, split: str = "validation", metric: str = "accuracy", *,
                mode: str = "max") -> dict[str, int]:
  """{arm: member id} with the best final `eval_<split>_<metric>` in each arm; members
  that went non-finite are never chosen."""
  _check_selection_split(split)
  values = result.final(f"eval_{split}_{metric}")
  if np.all(np.isnan(values)):
    raise ValueError(f"population: no member has metric eval_{split}_{metric}")
  best: dict[str, int] = {}
  sign = 1.0 if mode == "max" else -1.0
  for i, m in enumerate(result.members):
    v = values[i]
    if i in result.nonfinite_steps or np.isnan(v):
      continue
    if m.arm not in best or sign * v > sign * values[best[m.arm]]:
      best[m.arm] = i
  return best


def mean_by_setting(result: Result, split: str = "validation", metric: str = "accuracy"
                    ) -> dict[tuple, tuple[float, int]]:
  """{(arm, sorted settings): (mean over seeds, n)} of the final eval metric; a member
  that went non-finite counts as NaN (so a setting that diverges once never wins)."""
  _check_selection_split(split)
  values = result.final(f"eval_{split}_{metric}")
  groups: dict[tuple, list[float]] = {}
  for i, m in enumerate(result.members):
    v = np.nan if i in result.nonfinite_steps else values[i]
    groups.setdefault((m.arm, tuple(sorted(m.hparams.items()))), []).append(v)
  return {k: (float(np.mean(v)), len(v)) for k, v in groups.items()}


# ----------------------------------------------------------------------------- engine


def _first_epoch(step, batch_size: int, num_examples: int):
  """step * B // N in int32 without forming step * B (`data.first_epoch` on device)."""
  q, r = step // num_examples, step % num_examples
  return q * batch_size + (r * batch_size) // num_examples


class _Engine:
  """The jitted pieces for one program, one strategy and one member-slice width."""

  def __init__(self, program: Program, width: int, scan: bool, mesh, num_epochs: int):
    self.p, self.width, self.scan, self.num_epochs = program, width, scan, num_epochs
    b, n = program.batch_size, len(program.train)
    opts = runtime.step_compiler_options()
    sig = inspect.signature(program.init).parameters
    takes_hparams = len(sig) >= 2

    def init(seed, hparams):
      k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
      state = program.init(k_init, hparams) if takes_hparams else program.init(k_init)
      return {"state": state, "nonfinite": jnp.asarray(-1, jnp.int32)}, k_train

    def step(member, t, arrays, perms, epoch0, rng, hparams):
      e = _first_epoch(t, b, n) - epoch0
      idx = data.device_train_indices(t, b, perms[e], perms[e + 1])
      batch = {k: v[idx] for k, v in arrays.items()}
      new, metrics = program.train_step(member["state"], batch, rng, hparams)
      if "nonfinite" in metrics:  # the step's own verdict (the core's steps report one)
        finite = metrics["nonfinite"] == 0
      else:
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics)]))
      alive = member["nonfinite"] < 0
      keep = finite & alive
      state = jax.tree.map(lambda a, o: jnp.where(keep, a, o), new, member["state"])
      nonfinite = jnp.where(alive & ~finite, t, member["nonfinite"])
      return {"state": state, "nonfinite": nonfinite}, metrics

    def perms_of(seed, epoch0):
      epochs = epoch0 + jnp.arange(num_epochs)
      return jax.vmap(lambda e: data.epoch_permutation(seed, e, n))(epochs)

    def evaluate(member, batch):
      return program.evaluate(member["state"], batch)

    if width > 1:
      init = jax.vmap(init)
      step = jax.vmap(step, in_axes=(0, None, None, 0, None, 0, 0))
      perms_of = jax.vmap(perms_of, in_axes=(0, None))
      evaluate = jax.vmap(evaluate, in_axes=(0, None))

    def chunk(member, t0, arrays, perms, epoch0, rng, hparams, length: int):
      def body(carry, i):
        return step(carry, t0 + i, arrays, perms, epoch0, rng, hparams)
      return jax.lax.scan(body, member, jnp.arange(length, dtype=jnp.int32))

    if width > 1:
      self.sharding = NamedSharding(mesh, PartitionSpec(parallel.DATA_AXIS))
    else:
      self.sharding = NamedSharding(mesh, PartitionSpec())
    self.replicated = parallel.replicated(mesh)
    self.init = jax.jit(init, out_shardings=self.sharding, compiler_options=opts)
    self.step = jax.jit(step, donate_argnums=0, compiler_options=opts)
    self.chunk = jax.jit(chunk, donate_argnums=0, static_argnames="length",
                         compiler_options=opts)
    self.perms = jax.jit(perms_of, out_shardings=self.sharding)
    self.evaluate = jax.jit(evaluate, compiler_options=opts) if program.evaluate else None


_ENGINES: list = []  # [(key, program, engine)], most recent last


def _engine(program: Program, width: int, scan: bool, mesh, num_epochs: int) -> _Engine:
  """A cached _Engine, so running the same Program again does not recompile."""
  key = (width, scan, mesh, num_epochs)
  for i, (k, p, eng) in enumerate(_ENGINES):
    if p is program and k == key:
      _ENGINES.append(_ENGINES.pop(i))
      return eng
  eng = _Engine(program, width, scan, mesh, num_epochs)
  _ENGINES.append((key, program, eng))
  del _ENGINES[:-8]
  return eng


def _place(tree, sharding):
  return jax.device_put(tree, sharding)


def _stack(trees: list, width: int):
  """Slices (each with a leading member axis, or none when width == 1) -> one (P, ...) tree."""
  if width == 1:
    return jax.tree.map(lambda *x: jnp.stack(x), *trees)
  return jax.tree.map(lambda *x: jnp.concatenate(x), *trees)


def _head(tree, count: int):
  """The first `count` members (the checkpoint holds no padding, so any strategy resumes it)."""
  return jax.tree.map(lambda x: x[:count], tree)


def _slice(tree, lo: int, width: int):
  if width == 1:
    return jax.tree.map(lambda x: x[lo], tree)
  return jax.tree.map(lambda x: x[lo:lo + width], tree)


def _boundaries(start: int, num_steps: int, every: Sequence[int], scan_steps: int | None):
  """Chunk ends after `start`: multiples of each `every` (0 = never), the last step, and
  at most `scan_steps` apart."""
  ends = {num_steps}
  for n in every:
    if n:
      ends.update(range(n, num_steps, n))
  ends = sorted(e for e in ends if e > start)
  out, prev = [], start
  for e in ends:
    while scan_steps and e - prev > scan_steps:
      prev += scan_steps
      out.append(prev)
    out.append(e)
    prev = e
  return out


def _json_value(v):
  v = float(v)
  return v if math.isfinite(v) else str(v)


def _resolve_hparams(program: Program, members: Sequence[Member]) -> dict[str, np.ndarray]:
  names = set(program.hparams)
  for m in members:
    unknown = sorted(set(m.hparams) - names)
    if unknown:
      raise ValueError(f"population: hyperparameter {unknown[0]!r} is not traced by this "
                       f"program (traced: {', '.join(sorted(names)) or 'none'})")
  return {k: np.array([m.hparams.get(k, d) for m in members], np.float32)
          for k, d in program.hparams.items()}


def run(program: Program, members: Sequence[Member], *, num_steps: int,
        workdir: str | None = None, strategy: str | None = None, mesh=None,
        eval_every: int = 0, checkpoint_every: int = 0, keep_checkpoints: int = 2,
        scan_steps: int = 100, progress: bool = True, member_ids: Sequence[int] | None = None,
        record_settings: Sequence[dict] | None = None, desc: str = "population") -> Result:
  """Trains every member of `members` for `num_steps` steps; see the module docstring.

  eval_every: evaluate every n steps (0: only at the end); checkpoint_every: with a
  workdir, save all members every n steps (0: only at the end). member_ids and
  record_settings: what the records carry (default: 0..P-1 and `Member.settings()`).
  """
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  strategy = strategy or default_strategy(program.family)
  if strategy not in STRATEGIES:
    raise ValueError(f"population: strategy={strategy!r} is not one of: {', '.join(STRATEGIES)}")
  hparams = _resolve_hparams(program, members)
  if not isinstance(program.train, data.ArraySplit):
    raise ValueError("population: the training split must be in memory (data.ArraySplit)")
  if not members:
    raise ValueError("population: no members")
  mesh = parallel.make_mesh() if mesh is None else mesh
  ids = list(range(len(members))) if member_ids is None else list(member_ids)
  devices = mesh.devices.size
  count = len(members)
  batched = strategy in ("vmap", "vmap_scan")
  width = -(-count // devices) * devices if batched else devices
  padded = -(-count // width) * width
  pad = lambda a: np.concatenate([a, np.repeat(a[:1], padded - count, 0)])  # noqa: E731
  seeds = pad(np.array([m.seed for m in members], np.int32))
  hparams = {k: pad(v) for k, v in hparams.items()}

  scan = strategy in ("scan", "vmap_scan")
  # Chunks end at evaluations, checkpoints and the last step; scanned chunks are at most
  # `scan_steps` long, dispatched ones at most _MAX_CHUNK (it bounds the metrics held on device).
  ends = _boundaries(0, num_steps, (eval_every, checkpoint_every if workdir else 0),
                     scan_steps if scan else _MAX_CHUNK)
  n, b = len(program.train), program.batch_size
  # The epoch orders a step reads: a scanned chunk gets those of every epoch it touches
  # (a fixed number for a given scan_steps, so chunk lengths do not change the program);
  # a dispatched step gets its own epoch's and the next.
  num_epochs = (scan_steps * b - 1) // n + 3 if scan else 2
  eng = _engine(program, width, scan, mesh, num_epochs)
  arrays = _place({"inputs": program.train.inputs, "targets": program.train.targets},
                  eng.replicated)

  slices, rngs, hps, seed_slices = [], [], [], []
  for lo in range(0, padded, width):
    sl = slice(lo, lo + width)
    seed = seeds[sl] if width > 1 else seeds[lo]
    hp = {k: (v[sl] if width > 1 else v[lo]) for k, v in hparams.items()}
    member, k_train = eng.init(_place(seed, eng.sharding), _place(hp, eng.sharding))
    slices.append(member)
    rngs.append(k_train)
    hps.append(_place(hp, eng.sharding))
    seed_slices.append(_place(jnp.asarray(seed), eng.sharding))

  records: list[dict] = []
  start = 0
  manager = None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    _check_population_file(workdir, members, ids)
    manager = checkpoint.make_manager(workdir, keep=keep_checkpoints)
    if manager.latest_step() is not None:
      start = int(manager.latest_step())
      fresh = _stack(slices, width)
      restored = checkpoint.restore(manager, _head(fresh, count))
      full = jax.tree.map(lambda r, f: jnp.concatenate([r, f[count:]]), restored, fresh)
      slices = [_place(_slice(full, lo, width), eng.sharding)
                for lo in range(0, padded, width)]
    records = _truncate_records(os.path.join(workdir, "metrics.jsonl"), start)
  settings = [m.settings() for m in members] if record_settings is None else list(record_settings)
  nonfinite: dict[int, int] = {r["member"]: r["nonfinite_step"] for r in records
                               if "nonfinite_step" in r}
  local = {mid: i for i, mid in enumerate(ids)}
  nonfinite = {local[k]: v for k, v in nonfinite.items() if k in local}

  jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8") if workdir else None
  bar = tqdm(total=count * num_steps, initial=count * start, desc=desc, unit="member-step",
             disable=not progress, dynamic_ncols=True)

  def emit(record):
    records.append(record)
    if jsonl:
      jsonl.write(json.dumps(record) + "\n")

  def evaluate(step):
    if eng.evaluate is None:
      return
    for name, split in program.splits.items():
      batches = [_place(bt, eng.replicated)
                 for bt in data.eval_batches(split, program.eval_batch_size)]
      sums = jax.device_get([[eng.evaluate(s, bt) for bt in batches] for s in slices])
      for si, per_batch in enumerate(sums):
        for j in range(width):
          i = si * width + j
          if i >= count:
            break
          tot: dict = {}
          for bs in per_batch:
            for k, v in bs.items():
              tot[k] = tot.get(k, 0.0) + float(v if width == 1 else v[j])
          emit({"member": ids[i], **settings[i], "step": step,
                **{f"eval_{name}_{k}": _json_value(v / tot["count"])
                   for k, v in tot.items() if k != "count"}})

  try:
    for end in ([e for e in ends if e > start]):
      t0 = start
      chunk_metrics = []
      for si in range(len(slices)):
        epoch0 = data.first_epoch(t0, b, n)
        perms = eng.perms(seed_slices[si], np.int32(epoch0))
        if scan:
          slices[si], m = eng.chunk(slices[si], np.int32(t0), arrays, perms, np.int32(epoch0),
                                    rngs[si], hps[si], length=end - t0)
        else:
          ms = []
          for t in range(t0, end):
            if data.first_epoch(t, b, n) != epoch0:  # once per epoch
              epoch0 = data.first_epoch(t, b, n)
              perms = eng.perms(seed_slices[si], np.int32(epoch0))
            slices[si], mt = eng.step(slices[si], np.int32(t), arrays, perms, np.int32(epoch0),
                                      rngs[si], hps[si])
            ms.append(mt)
          m = ms  # stacked on the host below: no per-shape eager compiles
        chunk_metrics.append((m, slices[si]["nonfinite"]))
      host = [(m if scan else {k: np.stack([x[k] for x in m]) for k in m[0]}, bad)
              for m, bad in jax.device_get(chunk_metrics)]
      for si, (m, bad) in enumerate(host):
        for j in range(width):
          i = si * width + j
          if i >= count:
            break
          bad_j = int(bad if width == 1 else bad[j])
          for k in range(end - t0):
            t = t0 + k
            if 0 <= bad_j < t:
              break  # frozen: no more train records
            values = {key: (v[k] if width == 1 else v[k, j]) for key, v in m.items()}
            emit({"member": ids[i], **settings[i], "step": t + 1,
                  **{key: _json_value(x) for key, x in values.items()
                     if not (key in steps.DIAGNOSTIC_METRICS and np.isnan(x))}})
          if bad_j >= 0 and i not in nonfinite:
            nonfinite[i] = bad_j + 1
            emit({"member": ids[i], **settings[i], "step": bad_j + 1,
                  "nonfinite_step": bad_j + 1})
        bar.update(min(width, count - si * width) * (end - t0))
      if end == num_steps or (eval_every and end % eval_every == 0):
        evaluate(end)
      if jsonl:
        jsonl.flush()
        os.fsync(jsonl.fileno())
      if manager and (end == num_steps or (checkpoint_every and end % checkpoint_every == 0)):
        checkpoint.save(manager, end, _head(_stack(slices, width), count))
      start = end
  finally:
    bar.close()
    if manager:
      manager.wait_until_finished()
    if jsonl:
      jsonl.close()

  host = jax.device_get(slices)
  states = [jax.tree.map(lambda x, j=i % width: x if width == 1 else x[j], host[i // width])["state"]
            for i in range(count)]
  return Result(list(members), states, records, nonfinite, strategy)


def read_records(workdir: str) -> list[dict]:
  """The records of `workdir/metrics.jsonl`, in the order written."""
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _check_population_file(workdir: str, members: Sequence[Member], ids: Sequence[int]) -> None:
  path = os.path.join(workdir, "population.json")
  new = [{"member": i, **m.settings()} for i, m in zip(ids, members)]
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    if old != json.loads(json.dumps(new)):
      raise ValueError(f"population: {workdir} holds a different population "
                       "(population.json); use a new workdir")
    return
  with open(path, "w", encoding="utf-8") as f:
    json.dump(new, f, indent=1)


def _truncate_records(path: str, step: int) -> list[dict]:
  """Records up to `step` (what the restored checkpoint has seen); later ones, from a run
  killed after writing them but before its checkpoint, are dropped from the file."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    records = [json.loads(line) for line in f if line.strip()]
  kept = [r for r in records if r["step"] <= step]
  if len(kept) != len(records):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, path)
  return kept


# ----------------------------------------------------------------------------- core configs


def program_from_config(config, *, splits: Mapping[str, data.ArraySplit] | None = None,
                        ) -> Program:
  """The core classification config as a Program (what `train.train_and_evaluate` runs).

  Traced: `TRACED_HPARAMS` (defaults from `config.optimizer`). Splits: 'test' (the core's
  eval split), 'train' when `config.eval_on_train`, plus `splits` (e.g. a 'validation'
  split the caller held out).
  """
  config_lib.validate(config)
  dataset = datasets.get_dataset(config.dataset)
  classification = dataset.num_classes > 0
  model = models.get_model(config.model, num_outputs=dataset.num_classes or
                           int(np.prod(dataset.train.element_spec["targets"][0])))
  loss_fn = losses.get_loss(config.loss.name)
  sample = jnp.zeros((1, *dataset.input_shape), dataset.train.element_spec["inputs"][1])
  defaults = {k: float(config.optimizer[k]) for k in TRACED_HPARAMS}

  def tx_of(hparams):
    return optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps,
                                hyperparams=hparams)

  def init(key, hparams):
    return TrainState.create(model.init(key, sample, train=False), tx_of(hparams))

  def train_step(state, batch, rng, hparams):
    step = steps.make_train_step(model, tx_of(hparams), loss_fn,
                                 label_smoothing=config.loss.label_smoothing,
                                 classification=classification,
                                 diagnostics_every=config.log_every_steps,
                                 num_train_steps=config.num_train_steps)
    return step(state, batch, rng)

  eval_step = steps.make_eval_step(model, loss_fn, classification=classification)

  def evaluate(state, batch):
    sums = dict(eval_step(state, batch))
    if "correct" in sums:
      sums["accuracy"] = sums.pop("correct")
    return sums

  all_splits = {"test": dataset.test}
  if config.eval_on_train:
    all_splits["train"] = dataset.train
  all_splits.update(splits or {})
  return Program(init=init, train_step=train_step, train=dataset.train,
                 batch_size=config.batch_size, hparams=defaults, evaluate=evaluate,
                 splits=all_splits, eval_batch_size=config.eval_batch_size,
                 family=config.model.name)


def _static_groups(config, members: Sequence[Member]):
  """[(config with the group's static overrides, [(member id, member with traced hparams)])]."""
  groups: dict[tuple, list] = {}
  for i, m in enumerate(members):
    static, traced = {}, {}
    for k, v in m.hparams.items():
      if k in TRACED_HPARAMS or k in (f"optimizer.{t}" for t in TRACED_HPARAMS):
        traced[k.split(".")[-1]] = v
      elif "." in k or k in config:
        static[k] = v
      else:
        raise ValueError(f"population: unknown hyperparameter {k!r} (traced: "
                         f"{', '.join(TRACED_HPARAMS)}; other settings as config paths, "
                         "e.g. 'model.width')")
    key = tuple(sorted((k, json.dumps(v)) for k, v in static.items()))
    groups.setdefault(key, []).append((i, dataclasses.replace(m, hparams=traced), static))
  out = []
  for key, items in groups.items():
    cfg = ml_collections.ConfigDict(config.to_dict())
    for path, value in items[0][2].items():
      node = cfg
      *parents, leaf = path.split(".")
      for part in parents:
        if part not in node:
          raise ValueError(f"population: unknown config path {path!r}")
        node = node[part]
      if leaf not in node:
        raise ValueError(f"population: unknown config path {path!r}")
      node[leaf] = value
    out.append((cfg, [(i, m) for i, m, _ in items], key))
  return out


def run_config(config, members: Sequence[Member], workdir: str | None = None, *,
               splits: Mapping[str, data.ArraySplit] | None = None, **kwargs) -> Result:
  """Trains `members` of the core `config` (members' seeds replace `config.seed`).

  Members are grouped by their static settings (one compile per group); with several
  groups, group g writes to `workdir/group_<g>`. Steps, evaluation and checkpoint
  periods come from the config; `kwargs` go to `run` (strategy, mesh, scan_steps, ...).
  """
  groups = _static_groups(config, members)
  states: list = [None] * len(members)
  records: list[dict] = []
  nonfinite: dict[int, int] = {}
  strategy = ""
  for g, (cfg, items, _) in enumerate(groups):
    program = program_from_config(cfg, splits=splits)
    gdir = workdir if not workdir or len(groups) == 1 else os.path.join(workdir, f"group_{g}")
    options = dict(eval_every=cfg.eval_every_steps, checkpoint_every=cfg.checkpoint_every_steps,
                   keep_checkpoints=cfg.keep_checkpoints, progress=cfg.progress_bar,
                   desc=f"population {g + 1}/{len(groups)}")
    options.update(kwargs)
    res = run(program, [m for _, m in items], num_steps=cfg.num_train_steps, workdir=gdir,
              member_ids=[i for i, _ in items],
              record_settings=[members[i].settings() for i, _ in items], **options)
    for j, (i, _) in enumerate(items):
      states[i] = res.states[j]
      if j in res.nonfinite_steps:
        nonfinite[i] = res.nonfinite_steps[j]
    records.extend(res.records)
    strategy = res.strategy
  return Result(list(members), states, records, nonfinite, strategy)
