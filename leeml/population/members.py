"""Members, Programs, results and selection: the population engine's data types (see
`leeml.population`)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from leeml import data

STRATEGIES = ("sequential", "vmap", "scan", "vmap_scan")
# Measured by benchmarks/population.py (XLA:CPU, 2 cores; see BENCHMARKS.md).
_CPU_DEFAULTS = {"mlp": "scan", "transformer": "vmap_scan"}


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
