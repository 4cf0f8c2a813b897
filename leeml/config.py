"""The config schema of the training core and its validation, run before anything compiles.

`base_config()` lists every key the core reads, with its default and therefore its type.
`validate(config)` rejects unknown and missing keys (with a "did you mean"), wrong types,
impossible values and unknown names, each as one `ConfigError` line naming the field, e.g.

  config.optimizer.learning_rate must be > 0 (got -0.1)

The checks are public so that the other trainers' schemas (`leeml.seq2seq`, `leeml.gan.train`)
reuse them: `check_keys`, `positive`, `one_of`, `validate_loop` (the loop's fields,
`leeml.loop.loop_config()`, shared by every trainer).

The `model` section is `name` plus the fields of that model's Linen module, so its
schema comes from the module itself (`leeml.models.model_fields`); likewise the `dataset`
section from the dataset's registered spec (`leeml.datasets.dataset_fields`).
"""

import dataclasses
import difflib
import numbers
from typing import Any

import jax
import ml_collections

from leeml import datasets, loop, losses, models, optim, pipeline
from leeml.models import layers


class ConfigError(ValueError):
  """An invalid config; the message is one line that names the offending field."""


def base_config() -> ml_collections.ConfigDict:
  """Every key of the training core, with defaults (a small MLP on Gaussian blobs)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.update(loop.loop_config())  # num_train_steps, log/eval/checkpoint_every_steps, ...
  c.batch_size = 128          # global batch, split over all devices of all processes
  c.eval_batch_size = 512
  c.eval_on_train = False     # also log eval_train_loss/accuracy over the whole train split
  c.input_pipeline = "auto"   # 'device': data on device, batches gathered in the step

  c.dataset = ml_collections.ConfigDict(dict(
      name="gaussian_blobs", num_train=4096, num_test=1024, num_classes=10,
      input_shape=(16,), noise=0.3, seed=0))
  c.model = ml_collections.ConfigDict(dict(
      name="mlp", depth=2, width=128, activation="relu", residual=False, norm="none"))
  c.loss = ml_collections.ConfigDict(dict(name="softmax_cross_entropy", label_smoothing=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="momentum", learning_rate=0.1, momentum=0.9, nesterov=False, b1=0.9, b2=0.999,
      eps=1e-8, weight_decay=0.0, rms_decay=0.9, initial_accumulator_value=0.1,
      grad_clip_norm=0.0))
  c.schedule = ml_collections.ConfigDict(dict(
      name="constant", warmup_steps=0, decay_steps=0, decay_rate=0.1, boundaries=(),
      end_learning_rate_factor=0.0))
  return c


def _fail(msg: str):
  raise ConfigError(msg)


def _type_ok(default: Any, value: Any) -> bool:
  if isinstance(default, bool):
    return isinstance(value, bool)
  if isinstance(default, int):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
  if isinstance(default, float):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  if isinstance(default, str):
    return isinstance(value, str)
  if isinstance(default, (tuple, list)):
    if not isinstance(value, (tuple, list)):
      return False
    proto = default[0] if default else None
    return proto is None or all(_type_ok(proto, v) for v in value)
  return True


def _describe(default: Any) -> str:
  if isinstance(default, (tuple, list)):
    return f"a tuple of {type(default[0]).__name__}" if default else "a tuple"
  return type(default).__name__


def check_keys(section: str, cfg, schema: dict, what: str, *, required: bool = False) -> None:
  """Unknown keys of `cfg` (with a "did you mean"), values whose type differs from the
  schema's default and, with `required`, keys of the schema that `cfg` lacks are one
  `ConfigError` line naming `config.<section><key>`."""
  for key in cfg.keys():
    if key not in schema:
      close = difflib.get_close_matches(key, list(schema), n=1)
      hint = f"; did you mean {close[0]!r}?" if close else ""
      _fail(f"config.{section}{key} is not a known {what}{hint} (known: {', '.join(sorted(schema))})")
  for key, default in schema.items():
    if key not in cfg:
      if required:
        _fail(f"config.{section}{key} is missing (a required {what})")
      continue
    value = cfg[key]
    if isinstance(default, ml_collections.ConfigDict):
      continue
    if not _type_ok(default, value):
      _fail(f"config.{section}{key} must be {_describe(default)} (got {value!r} of type {type(value).__name__})")


def _model_schema(name: str) -> dict:
  schema = {"name": "mlp"}
  for fname, f in models.model_fields(name).items():
    if f.default is not dataclasses.MISSING:
      schema[fname] = f.default
  return schema


def positive(cfg, path: str, *, allow_zero: bool = False) -> None:
  """`config.<path>` (dotted) must be > 0 (>= 0 with `allow_zero`)."""
  value = cfg
  for part in path.split("."):
    value = value[part]
  if value < 0 or (value == 0 and not allow_zero):
    _fail(f"config.{path} must be {'>= 0' if allow_zero else '> 0'} (got {value!r})")


def one_of(path: str, value: str, valid) -> None:
  """`config.<path>` must be one of `valid` (a name of a registry)."""
  if value not in valid:
    _fail(f"config.{path}={value!r} is not one of: {', '.join(sorted(valid))}")


def validate_loop(config) -> None:
  """The values of the loop's fields (`leeml.loop.loop_config()`): steps and intervals
  > 0, `eval_every_steps` >= 0 (0: only at the end). Keys and types: `check_keys`."""
  for path in ("num_train_steps", "log_every_steps", "checkpoint_every_steps",
               "keep_checkpoints"):
    positive(config, path)
  positive(config, "eval_every_steps", allow_zero=True)


def validate(config, *, device_count: int | None = None, process_count: int | None = None) -> None:
  """Raises ConfigError (one line, naming the field) if `config` cannot be trained."""
  device_count = jax.device_count() if device_count is None else device_count
  process_count = jax.process_count() if process_count is None else process_count
  base = base_config()
  check_keys("", config, {k: base[k] for k in base.keys()}, "top-level key", required=True)
  for section in ("loss", "optimizer", "schedule"):
    check_keys(f"{section}.", config[section], base[section].to_dict(), f"{section} field",
               required=True)
  validate_loop(config)
  if not isinstance(config.model.get("name"), str):
    _fail("config.model.name must be a str naming a model")
  one_of("model.name", config.model.name, models.MODELS)
  check_keys("model.", config.model, _model_schema(config.model.name),
             f"field of model {config.model.name!r}")

  if not isinstance(config.dataset.get("name"), str):
    _fail("config.dataset.name must be a str naming a dataset")
  one_of("dataset.name", config.dataset.name, datasets.DATASETS)
  dataset_defaults = datasets.dataset_fields(config.dataset.name)
  check_keys("dataset.", config.dataset, {"name": "", **dataset_defaults},
             f"field of dataset {config.dataset.name!r}")
  one_of("loss.name", config.loss.name, losses.LOSSES)
  one_of("input_pipeline", config.input_pipeline, pipeline.PIPELINES)
  one_of("optimizer.name", config.optimizer.name, optim.OPTIMIZERS)
  one_of("schedule.name", config.schedule.name, optim.SCHEDULES)
  for field, valid in (("activation", layers.ACTIVATIONS), ("norm", layers.NORMS),
                       ("pool", layers.POOLS), ("weight_param", layers.WEIGHT_PARAMS)):
    if field in config.model:
      one_of(f"model.{field}", config.model[field], valid)

  for path in ("batch_size", "eval_batch_size", "optimizer.learning_rate",
               *(f"dataset.{f}" for f in ("num_train", "num_test")
                 if f in config.dataset and dataset_defaults[f] != 0)):
    positive(config, path)
  for path in ("optimizer.weight_decay",
               # where 0 means "all examples" (the real tfds datasets)
               *(f"dataset.{f}" for f in ("num_train", "num_test")
                 if f in config.dataset and dataset_defaults[f] == 0), "optimizer.grad_clip_norm",
               "schedule.warmup_steps", "schedule.decay_steps"):
    positive(config, path, allow_zero=True)
  for field in ("depth", "width", "kernel_size", "dense_width"):
    if field in config.model:
      positive(config, f"model.{field}", allow_zero=field in ("depth", "dense_width"))
  if not 0.0 <= config.loss.label_smoothing < 1.0:
    _fail(f"config.loss.label_smoothing must be in [0, 1) (got {config.loss.label_smoothing!r})")
  if config.schedule.warmup_steps > config.num_train_steps:
    _fail(f"config.schedule.warmup_steps={config.schedule.warmup_steps} exceeds "
          f"config.num_train_steps={config.num_train_steps}")
  try:  # schedule/optimizer combinations the optax chain rejects (e.g. warmup on 'step')
    optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps)
  except ValueError as e:
    _fail(f"config.{e}" if str(e).startswith(("optimizer.", "schedule.")) else f"config: {e}")
  validate_batch_sizes(config, device_count=device_count, process_count=process_count)


def validate_batch_sizes(config, *, device_count: int | None = None,
                         process_count: int | None = None) -> None:
  """`batch_size` and `eval_batch_size` split evenly over the devices and the processes."""
  device_count = jax.device_count() if device_count is None else device_count
  process_count = jax.process_count() if process_count is None else process_count
  for path in ("batch_size", "eval_batch_size"):
    if config[path] % device_count:
      _fail(f"config.{path}={config[path]} is not divisible by the device count {device_count}")
    if config[path] % process_count:
      _fail(f"config.{path}={config[path]} is not divisible by the process count {process_count}")
