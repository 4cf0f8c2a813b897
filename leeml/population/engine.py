"""The population engine: `run` trains every member of a Program under a strategy, with
chunks, evaluation, records, checkpoints and resume (see `leeml.population`)."""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from leeml import checkpoint, data, parallel, runtime, steps, timing
from leeml.population.members import STRATEGIES, Member, Program, Result, default_strategy

_MAX_CHUNK = 1000



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


    def evaluate(member, batch):
      return program.evaluate(member["state"], batch)

    if width > 1:
      init = jax.vmap(init)
      step = jax.vmap(step, in_axes=(0, None, None, 0, None, 0, 0))
      evaluate = jax.vmap(evaluate, in_axes=(0, None))

    def chunk(member, t0, arrays, perms, epoch0, rng, hparams, length: int,
              member_step=step):
      def body(carry, i):
        return member_step(carry, t0 + i, arrays, perms, epoch0, rng, hparams)
      return jax.lax.scan(body, member, jnp.arange(length, dtype=jnp.int32))

    if width > 1 and mesh.devices.size > 1:
      # Members are independent: each device runs its own block of the member axis
      # (shard_map), so a step has no collectives. Left to sharding propagation, a vmapped
      # convolution is not split along the member axis: the CNN step had 6 all-gathers on
      # 8 devices, and on XLA:CPU's simulated devices one of them deadlocked.
      m, r = PartitionSpec(parallel.DATA_AXIS), PartitionSpec()
      local = functools.partial(jax.shard_map, mesh=mesh, check_vma=False)
      init = local(init, in_specs=(m, m), out_specs=(m, m))
      step = local(step, in_specs=(m, r, r, m, r, m, m), out_specs=(m, m))
      evaluate = local(evaluate, in_specs=(m, r), out_specs=m)
      unsharded_chunk = chunk

      def chunk(member, t0, arrays, perms, epoch0, rng, hparams, length: int):
        f = functools.partial(unsharded_chunk, length=length)
        per_step = PartitionSpec(None, parallel.DATA_AXIS)  # metrics: (steps, members)
        return local(f, in_specs=(m, r, r, m, r, m, m), out_specs=(m, per_step))(
            member, t0, arrays, perms, epoch0, rng, hparams)

    if width > 1:
      self.sharding = NamedSharding(mesh, PartitionSpec(parallel.DATA_AXIS))
    else:
      self.sharding = NamedSharding(mesh, PartitionSpec())
    self.replicated = parallel.replicated(mesh)
    self.init = jax.jit(init, out_shardings=self.sharding,
                        compiler_options=runtime.once_compiler_options())
    self.step = jax.jit(step, donate_argnums=0, compiler_options=opts)
    self.chunk = jax.jit(chunk, donate_argnums=0, static_argnames="length",
                         compiler_options=opts)
    self.perms = _perms_fn(n, num_epochs, width > 1, self.sharding)
    self.evaluate = jax.jit(evaluate, compiler_options=opts) if program.evaluate else None


@functools.lru_cache(maxsize=16)
def _perms_fn(n: int, num_epochs: int, batched: bool, sharding):
  """jit of (seed(s), first epoch) -> the `num_epochs` epoch orders from it: shared by
  every Program with the same training-set size (it does not depend on the model)."""
  def perms_of(seed, epoch0):
    return data.epoch_orders(seed, epoch0, num_epochs, n)
  if batched:
    perms_of = jax.vmap(perms_of, in_axes=(0, None))
  return jax.jit(perms_of, out_shardings=sharding,
                 compiler_options=runtime.once_compiler_options())


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
  at most `scan_steps` apart.

  A scanned chunk's length is static (one compile per distinct length), so the intervals
  between those ends are cut into chunks of one common length where one exists that is
  at least a quarter of `scan_steps` (eval every 150 steps with scan_steps 100: chunks of
  75, one compile, rather than 100 + 50, two); otherwise into `scan_steps` and a
  remainder."""
  ends = {num_steps}
  for n in every:
    if n:
      ends.update(range(n, num_steps, n))
  ends = sorted(e for e in ends if e > start)
  if scan_steps:
    lengths = np.diff([start] + ends)
    common = int(np.gcd.reduce(lengths)) if len(lengths) else 0
    size = max((d for d in range(1, min(common, scan_steps) + 1) if common % d == 0),
               default=0)
    if size * 4 >= scan_steps or size == common:
      scan_steps = size
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
        record_settings: Sequence[dict] | None = None, desc: str = "population",
        eval_at_start: bool = False, final_only: Sequence[str] = ()) -> Result:
  """Trains every member of `members` for `num_steps` steps; see the module docstring.

  eval_every: evaluate every n steps (0: only at the end); eval_at_start: also at step 0
  (the initial states); final_only: names of splits evaluated at the last step only
  (e.g. 'test'); checkpoint_every: with a workdir, save all members every n steps (0: only
  at the end). member_ids and
  record_settings: what the records carry (default: 0..P-1 and `Member.settings()`).
  """
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  strategy = strategy or default_strategy(program.family)
  if strategy not in STRATEGIES:
    raise ValueError(f"population: strategy={strategy!r} is not one of: {', '.join(STRATEGIES)}")
  hparams = _resolve_hparams(program, members)
  unknown = sorted(set(final_only) - set(program.splits))
  if unknown:
    raise ValueError(f"population: final_only names an unknown split {unknown[0]!r} "
                     f"(splits: {', '.join(program.splits) or 'none'})")
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
    with timing.phase("eval"):  # charged as evaluation even inside a caller's "train"
      _evaluate(step)

  def _evaluate(step):
    for name, split in program.splits.items():
      if name in final_only and step != num_steps:
        continue
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
    if eval_at_start and start == 0:
      evaluate(0)
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
