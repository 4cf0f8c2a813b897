"""The core classification config as a population (`program_from_config`, `run_config`):
the `leeml.config` schema, single-run reference `leeml.train.train_and_evaluate`."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np

from leeml import config as config_lib, data, datasets, losses, models, optim, steps
from leeml.population.engine import run
from leeml.population.members import Member, Program, Result
from leeml.train_state import TrainState

# Traced (one compile for every value): the optimizer's `optim.TRACED_FIELDS` (incl. the
# schedule's warmup_steps) and the loss's label_smoothing.
TRACED_HPARAMS = (*optim.TRACED_FIELDS, "label_smoothing")
_SECTION = {**{k: "optimizer" for k in optim.TRACED_FIELDS}, "warmup_steps": "schedule",
            "label_smoothing": "loss"}


def _traced_defaults(config) -> dict[str, float]:
  """The traced names of this config and their values; warmup_steps only where the
  schedule takes a traced warmup (`optim.make_schedule`)."""
  out = {k: float(config[_SECTION[k]][k]) for k in TRACED_HPARAMS if k != "warmup_steps"}
  schedule = config.schedule
  if schedule.name == "constant" or (schedule.name.startswith("warmup_") and
                                     int(schedule.decay_steps) > 0):
    out["warmup_steps"] = float(schedule.warmup_steps)
  return out



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
  defaults = _traced_defaults(config)

  def tx_of(hparams):
    return optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps,
                                hyperparams={k: v for k, v in hparams.items()
                                             if k in optim.TRACED_FIELDS})

  def init(key, hparams):
    return TrainState.create(model.init(key, sample, train=False), tx_of(hparams))

  def train_step(state, batch, rng, hparams):
    step = steps.make_train_step(model, tx_of(hparams), loss_fn,
                                 label_smoothing=hparams["label_smoothing"],
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
      if k in TRACED_HPARAMS or k in (f"{_SECTION[t]}.{t}" for t in TRACED_HPARAMS):
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
