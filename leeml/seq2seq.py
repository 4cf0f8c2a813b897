"""Training the encoder-decoder Transformer (lectures 12-13) through the foundation's pieces.

`train_and_evaluate(config, workdir)` runs sequence-to-sequence data through the loop of
every trainer (`leeml.loop.run_loop`): the same `TrainState`, optax chain
(`leeml.optim.make_optimizer`: warmup schedules, adam/adamw, clipping from the usual
`optimizer`/`schedule` sections), input pipeline
(batches a function of (seed, step), so a resumed run replays exactly), jitted step with
the state donated over the device mesh, JSONL/TensorBoard metrics, NaN stop and orbax
checkpoints with resume. What differs is the step and the evaluation:

* Teacher forcing (lecture 12, "Training"): the decoder reads BOS + the target shifted
  right and predicts every target token at once; the loss is the per-token cross-entropy
  averaged over the real (non-PAD) target tokens of the batch, with label smoothing
  `loss.label_smoothing` (Vaswani et al. 2017, section 5.4). Dropout keys are the run's
  key folded with the step.
* Evaluation decodes: token accuracy under teacher forcing, and exact match of the
  *generated* output (batched, jitted greedy search on the key/value cache, `leeml.decoding`);
  for text tasks also corpus BLEU (sacrebleu) of the decoded strings. The final test
  evaluation adds beam search (`decode.beam_size`, GNMT length penalty `decode.alpha`).

`program(config)` is the same training as a `leeml.population.Program`: many seeds (and
traced optimizer settings, `traced_defaults`) with one compile, member i equal to the
`train_and_evaluate` run of its seed; the engine's evaluation (`make_population_eval`)
decodes greedily on the device. Lectures 12 and 13 train this way.

Tasks (`task.name`): the generated algorithmic tasks of `leeml.datasets.seq2seq_tasks`
(copy, reverse, sort, addition), 'dates' (dates written out in one language translated
into another, `leeml.datasets.dates`), and 'translation' (a real tfds corpus,
`leeml.datasets.translation`; needs the data prepared online).
"""

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leeml import (config as config_lib, data, decoding, loop, optim, parallel, pipeline,
                   population, runtime, seq2seq_metrics, steps)
from leeml.datasets import dates, seq2seq_tasks
from leeml.models import transformer
from leeml.train_state import TrainState

PAD, BOS, EOS = seq2seq_tasks.PAD, seq2seq_tasks.BOS, seq2seq_tasks.EOS
TASKS = seq2seq_tasks.TASKS + ("dates", "translation")
# Seq2SeqTransformer fields a config does not set (they come from the data).
_MODEL_RESERVED = ("parent", "name", "vocab_size", "pad_id")


# ----------------------------------------------------------------------------- config


def base_config() -> ml_collections.ConfigDict:
  """Every key of a seq2seq run, with defaults (a small Transformer reversing sequences).

  The run-level keys, `optimizer` and `schedule` are those of `leeml.config.base_config`.
  """
  core = config_lib.base_config()
  c = ml_collections.ConfigDict()
  c.update(loop.loop_config())
  for key in ("seed", "batch_size", "eval_batch_size", "input_pipeline"):
    c[key] = core[key]
  c.batch_size = 64
  c.eval_batch_size = 256
  c.keep_checkpoints = 1
  c.task = ml_collections.ConfigDict(dict(
      name="reverse", num_train=4096, num_validation=256, num_test=512, seed=0,
      # algorithmic tasks: sequence lengths (digits, for addition) and alphabet size
      min_len=1, max_len=8, num_symbols=10,
      # dates: leeml.datasets.dates.load
      source_locale="en_US", target_locale="de_DE", target_format="full",
      source_formats=("",),   # ("",): every format of leeml.datasets.dates.SOURCE_FORMATS
      # translation: a tfds corpus (leeml.datasets.translation)
      tfds_name="ted_hrlr_translate/pt_to_en", data_dir="", max_chars=128))
  c.model = ml_collections.ConfigDict({
      f.name: f.default for f in dataclasses.fields(transformer.Seq2SeqTransformer)
      if f.name not in _MODEL_RESERVED and f.default is not dataclasses.MISSING})
  c.loss = ml_collections.ConfigDict(dict(label_smoothing=0.0))
  c.optimizer = core.optimizer
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.schedule = core.schedule
  c.decode = ml_collections.ConfigDict(dict(beam_size=4, alpha=0.6))
  return c


def validate(config) -> None:
  """Raises `leeml.config.ConfigError` (one line naming the field) for a bad config."""
  base = base_config()
  config_lib.check_keys("", config, {k: base[k] for k in base.keys()}, "top-level key",
                        required=True)
  for section in ("task", "model", "loss", "optimizer", "schedule", "decode"):
    config_lib.check_keys(f"{section}.", config[section], base[section].to_dict(),
                          f"{section} field", required=True)
  config_lib.validate_loop(config)
  fail = config_lib.ConfigError
  config_lib.one_of("task.name", config.task.name, TASKS)
  config_lib.one_of("model.norm_position", config.model.norm_position, ("pre", "post"))
  config_lib.one_of("model.positions", config.model.positions, transformer.POSITIONS)
  if config.model.width % config.model.num_heads:
    raise fail(f"config.model.width={config.model.width} is not divisible by "
               f"config.model.num_heads={config.model.num_heads}")
  for path in ("batch_size", "eval_batch_size", "optimizer.learning_rate",
               "model.num_layers", "model.num_heads", "model.width", "model.mlp_dim",
               "model.max_len", "decode.beam_size"):
    config_lib.positive(config, path)
  for split in ("num_train", "num_validation", "num_test"):  # translation: 0 = all
    config_lib.positive(config, f"task.{split}", allow_zero=config.task.name == "translation")
  if not 0.0 <= config.loss.label_smoothing < 1.0:
    raise fail(f"config.loss.label_smoothing must be in [0, 1) (got "
               f"{config.loss.label_smoothing!r})")
  if not 0.0 <= config.model.dropout < 1.0:
    raise fail(f"config.model.dropout must be in [0, 1) (got {config.model.dropout!r})")
  if config.schedule.warmup_steps > config.num_train_steps:
    raise fail(f"config.schedule.warmup_steps={config.schedule.warmup_steps} exceeds "
               f"config.num_train_steps={config.num_train_steps}")
  try:
    optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps)
  except ValueError as e:
    raise fail(f"config.{e}") from None
  config_lib.validate_batch_sizes(config)


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Corpus:
  """train/validation/test `Seq2SeqData`-like splits (sources, targets, vocab_size);
  `to_text(ids) -> str` turns one id sequence into text (up to EOS); `is_text`: BLEU
  is meaningful (natural-language targets), with sacrebleu tokenizer `bleu_tokenize`."""
  train: Any
  validation: Any
  test: Any
  vocab_size: int
  to_text: Callable[[np.ndarray], str]
  is_text: bool
  bleu_tokenize: str = "13a"


def load_task(task) -> Corpus:
  """The corpus a `task` config section names."""
  if task.name in seq2seq_tasks.TASKS:
    make = lambda n, offset: seq2seq_tasks.generate(  # noqa: E731
        task.name, n, task.min_len, task.max_len, 3 * task.seed + offset, task.num_symbols)
    splits = make(task.num_train, 0), make(task.num_validation, 1), make(task.num_test, 2)
    return Corpus(*splits, splits[0].vocab_size,
                  lambda ids: seq2seq_tasks.to_text(ids, task.name), False)
  if task.name == "dates":
    formats = tuple(f for f in task.source_formats if f) or dates.SOURCE_FORMATS
    corpus = dates.load(task.num_train, task.num_validation, task.num_test, seed=task.seed,
                        source_locale=task.source_locale, target_locale=task.target_locale,
                        target_format=task.target_format, source_formats=formats)
    locale = task.target_locale
  elif task.name == "translation":
    from leeml.datasets import translation  # pylint: disable=g-import-not-at-top
    corpus = translation.load(task)
    locale = corpus.target_language
  else:
    raise ValueError(f"task.name={task.name!r} is not one of: {', '.join(TASKS)}")
  vocab = corpus.vocab
  return Corpus(corpus.train, corpus.validation, corpus.test, corpus.train.vocab_size,
                lambda ids: seq2seq_metrics.ids_to_text(ids, vocab), True,
                seq2seq_metrics.bleu_tokenizer(locale))


def make_model(model_cfg, corpus: Corpus) -> transformer.Seq2SeqTransformer:
  """The Transformer of `model_cfg` over the corpus' vocabulary; checks max_len."""
  longest = max(max(s.sources.shape[1], s.targets.shape[1])
                for s in (corpus.train, corpus.validation, corpus.test))
  if longest > model_cfg.max_len:
    raise config_lib.ConfigError(
        f"config.model.max_len={model_cfg.max_len} is shorter than the data's longest "
        f"sequence ({longest} tokens)")
  return transformer.Seq2SeqTransformer(vocab_size=corpus.vocab_size, pad_id=PAD,
                                        **model_cfg.to_dict())


# ----------------------------------------------------------------------------- steps


def token_loss(model, params, src, tgt, *, label_smoothing: float = 0.0, train: bool = False,
               rngs=None):
  """Teacher forcing: (mean cross-entropy per real target token, logits)."""
  logits = model.apply({"params": params}, src, transformer.shift_right(tgt, BOS),
                       train=train, rngs=rngs)
  loss, count = transformer.sequence_cross_entropy(logits, tgt, PAD, label_smoothing)
  return jnp.sum(loss) / jnp.maximum(jnp.sum(count), 1.0), logits


def make_train_step(model, tx, *, label_smoothing: float = 0.0, diagnostics_every: int = 1,
                    num_train_steps: int | None = None):
  """`train_step(state, batch, rng) -> (state, metrics)` for batch {'inputs': sources,
  'targets': targets}; the update and the common metrics are `steps.apply_gradients`,
  with the grad/param/update norms computed on the steps `steps.diagnostics_due` names
  (NaN on the others)."""
  steps.diagnostics_due(0, diagnostics_every, num_train_steps)  # validates the arguments

  def train_step(state: TrainState, batch, rng):
    rngs = {"dropout": jax.random.fold_in(rng, state.step)}
    src, tgt = batch["inputs"], batch["targets"]
    (loss, logits), grads = jax.value_and_grad(
        lambda p: token_loss(model, p, src, tgt, label_smoothing=label_smoothing,
                             train=True, rngs=rngs), has_aux=True)(state.params)
    state, metrics = steps.apply_gradients(
        state, tx, grads, loss,
        diagnostics=steps.diagnostics_due(state.step + 1, diagnostics_every, num_train_steps))
    real = tgt != PAD
    metrics["train_token_accuracy"] = (jnp.sum((jnp.argmax(logits, -1) == tgt) & real)
                                       / jnp.maximum(jnp.sum(real), 1))
    return state, metrics

  return train_step


def make_eval_step(model):
  """`eval_step(params, batch) -> sums` over real tokens of examples with weight 1:
  summed NLL, token count, correct tokens (teacher forcing, no smoothing)."""

  def eval_step(params, batch):
    src, tgt, w = batch["inputs"], batch["targets"], batch["weights"]
    logits = model.apply({"params": params}, src, transformer.shift_right(tgt, BOS))
    nll, count = transformer.sequence_cross_entropy(logits, tgt, PAD)
    real = (tgt != PAD) & (w[:, None] > 0)
    return {"nll": jnp.sum(w * nll), "tokens": jnp.sum(w * count),
            "correct": jnp.sum((jnp.argmax(logits, -1) == tgt) & real)}

  return eval_step


def exact_match_rows(tokens, targets):
  """bool [N] on the device: greedy output row i equals target row i. For greedy search's
  outputs (PAD after EOS, PAD never generated) this is `seq2seq_metrics.exact_match`'s
  "equal up to the first EOS"."""
  return jnp.all(tokens == targets, axis=1)


def make_population_eval(model):
  """`evaluate(state, batch) -> sums` for `population.Program` (the engine reports each
  key / `count`): `count` examples (weight 1), `exact_match` of greedy decoding on the
  device (`decoding.greedy_search` up to the target width, `exact_match_rows`), and the teacher-forced sums of
  `make_eval_step` per example (`nll`, `tokens`, `correct`): loss = nll / tokens and
  token accuracy = correct / tokens (`population_eval_metrics`)."""
  eval_step = make_eval_step(model)

  def evaluate(state, batch):
    sums = eval_step(state.params, batch)
    src, tgt, w = batch["inputs"], batch["targets"], batch["weights"]
    tokens, _ = decoding.greedy_search(model, state.params, src, max_len=tgt.shape[1],
                                       bos_id=BOS, eos_id=EOS, pad_id=PAD)
    match = exact_match_rows(tokens, tgt)
    return {**sums, "exact_match": jnp.sum(w * match), "count": jnp.sum(w)}

  return evaluate


def evaluate_states(model, states, split, batch_size: int) -> list[dict]:
  """loss, token_accuracy and exact_match (greedy) on `split` of each TrainState in
  `states` (e.g. `population.Result.states`): `make_population_eval` jitted once for all
  of them. One process (as the population engine)."""
  evaluate = jax.jit(make_population_eval(model))
  batches = [jax.device_put(b) for b in
             data.eval_batches(data.ArraySplit(split.sources, split.targets), batch_size)]
  sums = jax.device_get([[evaluate(s, b) for b in batches] for s in states])
  out = []
  for per_batch in sums:
    tot = {k: float(sum(b[k] for b in per_batch)) for k in per_batch[0]}
    out.append(population_eval_metrics(
        {f"eval_{k}": v / tot["count"] for k, v in tot.items()}, ""))
  return out


def population_eval_metrics(record: dict, split: str) -> dict:
  """loss, token_accuracy and exact_match of split `split` from a population record of
  `make_population_eval`'s sums."""
  p = f"eval_{split}_" if split else "eval_"
  return {"loss": record[p + "nll"] / record[p + "tokens"],
          "token_accuracy": record[p + "correct"] / record[p + "tokens"],
          "exact_match": record[p + "exact_match"]}


def traced_defaults(config) -> dict[str, float]:
  """The hyperparameters `program` traces, with `config`'s values: the optimizer fields
  of `optim.TRACED_FIELDS`, and the schedule's warmup_steps where `optim.make_schedule`
  takes a traced one (the constant schedule, or warmup_* with decay_steps > 0)."""
  out = {k: float(config.optimizer[k]) for k in optim.TRACED_FIELDS
         if k not in optim.SCHEDULE_FIELDS}
  s = config.schedule
  if s.name == "constant" or (s.name.startswith("warmup_") and int(s.decay_steps) > 0):
    out["warmup_steps"] = float(s.warmup_steps)
  return out


def program(config, corpus: Corpus | None = None, model=None, *,
            splits: tuple[str, ...] = ()) -> population.Program:
  """`config` as a `population.Program`: members (seeds x traced optimizer settings) train
  with one compile, and member i computes what `train_and_evaluate` with its seed does
  (the same init/train keys, (seed, epoch) batch order and step). Traced:
  `traced_defaults(config)` (optimizer fields, warmup_steps). `splits`: corpus
  splits ('validation', 'test') the engine evaluates with `make_population_eval`.
  `corpus`/`model`: built from the config when not given."""
  validate(config)
  corpus = load_task(config.task) if corpus is None else corpus
  model = make_model(config.model, corpus) if model is None else model
  src0 = jnp.asarray(corpus.train.sources[:1])
  tgt0 = jnp.asarray(corpus.train.targets[:1])

  def tx_of(hparams):
    return optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps,
                                hyperparams=hparams)

  def init(key, hparams):
    return TrainState.create(model.init(key, src0, tgt0), tx_of(hparams))

  def train_step(state, batch, rng, hparams):
    step = make_train_step(model, tx_of(hparams), label_smoothing=config.loss.label_smoothing,
                           diagnostics_every=config.log_every_steps,
                           num_train_steps=config.num_train_steps)
    return step(state, batch, rng)

  return population.Program(
      init=init, train_step=train_step,
      train=data.ArraySplit(corpus.train.sources, corpus.train.targets),
      batch_size=config.batch_size,
      hparams=traced_defaults(config),
      evaluate=make_population_eval(model) if splits else None,
      splits={s: data.ArraySplit(getattr(corpus, s).sources, getattr(corpus, s).targets)
              for s in splits},
      eval_batch_size=config.eval_batch_size, family="transformer")


# ----------------------------------------------------------------------------- evaluation


def _eval_batches(split, batch_size: int):
  """This process's part of every global eval batch of `split` (sources, targets)."""
  return data.eval_batches(data.ArraySplit(split.sources, split.targets), batch_size,
                           jax.process_index(), jax.process_count())


def decode_split(model, params, split, batch_size: int, mesh, *, beam_size: int = 0,
                 alpha: float = 0.0) -> np.ndarray:
  """Generated tokens [N, target width] for every source of `split`: greedy search, or
  the best hypothesis of beam search with `beam_size` > 0. Every process gets them all."""
  max_len = split.targets.shape[1]
  out = []
  n = len(split.sources)
  for local in _eval_batches(split, batch_size):
    src = parallel.global_batch({"src": local["inputs"]}, mesh)["src"]
    if beam_size:
      tokens = decoding.beam_search(model, params, src, beam_size=beam_size, max_len=max_len,
                                    bos_id=BOS, eos_id=EOS, pad_id=PAD, alpha=alpha)[0][:, 0]
    else:
      tokens = decoding.greedy_search(model, params, src, max_len=max_len, bos_id=BOS,
                                      eos_id=EOS, pad_id=PAD)[0]
    out.append(parallel.all_rows(tokens))
  return np.concatenate(out)[:n]


def evaluate(model, params, split, corpus: Corpus, batch_size: int, mesh, eval_step,
             *, beam_size: int = 0, alpha: float = 0.0) -> dict:
  """loss (NLL per real token), token_accuracy (teacher forcing), exact_match and, for
  text tasks, bleu of greedy decoding; with beam_size > 0 also beam_exact_match and
  beam_bleu. Also returns the decoded tokens under 'greedy_tokens' (/'beam_tokens')."""
  totals: dict = {}
  for local in _eval_batches(split, batch_size):
    sums = parallel.to_host(eval_step(params, parallel.global_batch(local, mesh)))
    for k, v in sums.items():
      totals[k] = totals.get(k, 0.0) + float(v)
  out = {"loss": totals["nll"] / totals["tokens"],
         "token_accuracy": totals["correct"] / totals["tokens"]}
  runs = [("", 0)] + ([("beam_", beam_size)] if beam_size else [])
  for prefix, k in runs:
    tokens = decode_split(model, params, split, batch_size, mesh, beam_size=k, alpha=alpha)
    out[f"{prefix or 'greedy_'}tokens"] = tokens
    out[f"{prefix}exact_match"] = seq2seq_metrics.exact_match(tokens, split.targets, EOS, PAD)
    if corpus.is_text:
      out[f"{prefix}bleu"] = seq2seq_metrics.bleu([corpus.to_text(t) for t in tokens],
                                                  [corpus.to_text(t) for t in split.targets],
                                                  tokenize=corpus.bleu_tokenize)
  return out


@functools.partial(jax.jit, static_argnums=0)
def _cross_attention(model, params, src, tgt):
  _, inter = model.apply({"params": params}, src, transformer.shift_right(tgt, BOS),
                         mutable=["intermediates"])
  return inter["intermediates"]


def cross_attention(model, params, src, tgt) -> list[np.ndarray]:
  """Per decoder layer, the cross-attention weights [batch, heads, tgt_len, src_len] of
  teacher-forced decoding of `tgt` (e.g. the model's own greedy output) from `src`."""
  found = _cross_attention(model, params, jnp.asarray(src), jnp.asarray(tgt))
  return [np.asarray(found[f"cross_attention_{i}"][0]) for i in range(len(found))]


# ----------------------------------------------------------------------------- loop


@dataclasses.dataclass
class Result:
  """What a run returns: the final state, its model and corpus, the test evaluation, and
  `seconds`: the wall time of this run's training and evaluation, summed over the calls
  that trained steps (a rerun that resumes a finished run reports the original time)."""
  state: TrainState
  model: transformer.Seq2SeqTransformer
  corpus: Corpus
  test: dict
  seconds: float


def _run_seconds(workdir: str, add: float = 0.0) -> float:
  """Wall seconds recorded in workdir/run_seconds.json, plus `add` (written back)."""
  path = os.path.join(workdir, "run_seconds.json")
  total = 0.0
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      total = float(json.load(f)["seconds"])
  if add and jax.process_index() == 0:
    total += add
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"seconds": total}, f)
  return total


def _scalars(prefix: str, metrics: dict) -> dict:
  return {f"{prefix}{k}": v for k, v in metrics.items() if not k.endswith("tokens")}


def train_and_evaluate(config, workdir: str, *, mesh=None,
                       final_beam: bool = True) -> Result:
  """Trains `config` in `workdir` (resuming from its checkpoints), evaluates on the test
  split (greedy, and beam search when `final_beam`), and returns a `Result`.

  metrics.jsonl gets train_* every step, eval_* (validation) every `eval_every_steps` and
  at the end, and test_* at the last step.
  """
  t_start = time.perf_counter()
  validate(config)
  mesh = parallel.make_mesh() if mesh is None else mesh
  replicated = parallel.replicated(mesh)

  corpus = load_task(config.task)
  model = make_model(config.model, corpus)
  tx = optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  src0 = jnp.asarray(corpus.train.sources[:1])
  tgt0 = jnp.asarray(corpus.train.targets[:1])
  init = jax.jit(lambda r: TrainState.create(model.init(r, src0, tgt0), tx),
                 out_shardings=replicated)
  state = init(init_rng)
  train_rng = jax.device_put(train_rng, replicated)

  split = data.ArraySplit(corpus.train.sources, corpus.train.targets)
  feeder = pipeline.choose(config.input_pipeline, split, config.batch_size, config.seed, mesh)
  train_step = jax.jit(
      feeder.wrap(make_train_step(model, tx, label_smoothing=config.loss.label_smoothing,
                                  diagnostics_every=config.log_every_steps,
                                  num_train_steps=config.num_train_steps)),
      donate_argnums=0, compiler_options=runtime.step_compiler_options())
  eval_step = jax.jit(make_eval_step(model))

  def validation(state, step):  # pylint: disable=unused-argument
    return _scalars("eval_", evaluate(model, state.params, corpus.validation, corpus,
                                      config.eval_batch_size, mesh, eval_step))

  test: dict = {}

  def final_test(state):
    test.update(evaluate(model, state.params, corpus.test, corpus, config.eval_batch_size,
                         mesh, eval_step, beam_size=config.decode.beam_size if final_beam else 0,
                         alpha=config.decode.alpha))
    return _scalars("test_", test)

  trained = False  # whether this call ran a step (not when it resumed a finished run)

  def step_fn(state, step):
    nonlocal trained
    trained = True
    return train_step(state, feeder.feed(step), train_rng)

  state, _ = loop.run_loop(state=state, step_fn=step_fn, config=config, workdir=workdir,
                           evaluate=validation, final_evaluate=final_test, desc="seq2seq")
  seconds = _run_seconds(workdir, time.perf_counter() - t_start if trained else 0.0)
  return Result(state, model, corpus, test, seconds)


def run_config(base, **overrides) -> ml_collections.ConfigDict:
  """A copy of `base` with dotted-key overrides, e.g. run_config(c, **{'model.residual':
  False}) (the lectures build their variants this way)."""
  c = ml_collections.ConfigDict(base.to_dict())
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


__all__ = ("TASKS", "base_config", "validate", "Corpus", "load_task", "make_model",
           "token_loss", "make_train_step", "make_eval_step", "exact_match_rows",
           "make_population_eval", "evaluate_states", "population_eval_metrics", "traced_defaults", "program",
           "decode_split", "evaluate", "cross_attention", "Result",
           "train_and_evaluate",
           "run_config")
