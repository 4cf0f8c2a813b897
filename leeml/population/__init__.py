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
takes as arrays), warmup_steps (with the constant schedule, or warmup_* with
decay_steps > 0) and label_smoothing (also as 'schedule.warmup_steps',
'loss.label_smoothing'). Any other setting is a dotted config path (e.g. 'model.width',
'batch_size') and makes a separate group, compiled once per distinct value. An unknown
name is a one-line ValueError. A hand-written
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

from leeml.population.columns import own_column, seed_columns
from leeml.population.core import TRACED_HPARAMS, program_from_config, run_config
from leeml.population.engine import read_records, run
from leeml.population.members import (STRATEGIES, Member, Program, Result, default_strategy,
                                      grid, mean_by_setting, select_best)

__all__ = ["STRATEGIES", "TRACED_HPARAMS", "Member", "Program", "Result", "default_strategy",
           "grid", "mean_by_setting", "program_from_config", "read_records", "run",
           "run_config", "select_best", "seed_columns", "own_column"]
