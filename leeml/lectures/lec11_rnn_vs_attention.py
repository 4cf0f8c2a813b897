"""Lectures 10-11 (self-attention): self-attention vs RNN — 'parallel' and 'distance'.

A. Parallel: forward+backward time per batch vs sequence length L for a simple RNN, an
   LSTM, a GRU (flax `nn.RNN` cells) and a one-layer self-attention encoder at matched
   parameter counts, jitted, after warm-up, on this device; and the number of sequential
   steps each needs, read from the jaxpr (an RNN's scan has L iterations; attention has no
   loop over positions).
B. Distance: recall the token at position 0 at the end of a length-L sequence
   (`leeml.datasets.sequence_tasks`), L = 16 … 256, all four models trained the same way
   (same steps, batch, Adam, the core's train step and batch order), every seed a member of
   one population (`leeml.population`: one compile per model and L).
C. Attention's cost vs L: compiled temporary memory (`memory_analysis()`) and time of one
   forward+backward, on a log-log plot (slope 2 = quadratic).
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from leeml import claims, config as config_lib, data, losses, optim, plotting, population, steps
from leeml import timing as timing_lib  # `timing` names this lecture's part A results
from leeml.datasets import sequence_tasks
from leeml.lectures import Experiment, Figure, Section, Table, register
from leeml.models import sequence
from leeml.train_state import TrainState

SOURCE = ("Lectures 10-11 (Self-attention), slide 'Self-attention v.s. RNN': "
          "parallel, distance")
LABEL = {"simple": "simple RNN", "lstm": "LSTM", "gru": "GRU", "attention": "self-attention"}

# ----------------------------------------------------------------------------- models


def build_models(cfg, length: int) -> dict[str, sequence.Sized]:
  """Every kind of `cfg.kinds` sized to `cfg.target_params` on the recall vocabulary."""
  vocab = sequence_tasks.recall_vocab_size(cfg.task.num_values, cfg.task.num_distractors)
  kw = dict(num_outputs=cfg.task.num_values, vocab_size=vocab,
            num_heads=cfg.attention.num_heads, num_layers=cfg.attention.num_layers,
            mlp_ratio=cfg.attention.mlp_ratio, positions=cfg.attention.positions)
  return {k: sequence.sized_to(k, cfg.target_params, length=length, **kw) for k in cfg.kinds}


def _loss_fn(model):
  def loss(params, tokens, labels):
    logits = model.apply({"params": params}, tokens)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return loss


# ----------------------------------------------------------------------------- B. distance


def recall_sets(task, length: int, seeds) -> tuple[data.ArraySplit, list[data.ArraySplit]]:
  """Each seed's own training and test sets (`sequence_tasks`, seeded 2s and 2s + 1): the
  training sets stacked by seed (`population.seed_columns`, one population for every seed),
  the test sets one per seed."""
  train, test = [], []
  for s in seeds:
    train.append(sequence_tasks.recall_first_token(task.num_train, length, task.num_values,
                                                   2 * s, task.num_distractors))
    test.append(data.ArraySplit(*sequence_tasks.recall_first_token(
        task.num_test, length, task.num_values, 2 * s + 1, task.num_distractors)))
  return population.seed_columns(train), test


def recall_program(model, tcfg, train: data.ArraySplit) -> population.Program:
  """The population program that trains `model` on recall-first-token: the core's train
  step (`steps.make_train_step`) on the member's own column of `train`, Adam with a
  global-norm clip (`optim.make_optimizer`), batches of `tcfg.batch_size`."""
  base = config_lib.base_config()
  opt = base.optimizer
  opt.update(dict(name="adam", learning_rate=tcfg.learning_rate,
                  grad_clip_norm=tcfg.grad_clip_norm))
  tx = optim.make_optimizer(opt, base.schedule, tcfg.num_steps)
  step = steps.make_train_step(model, tx, losses.get_loss("softmax_cross_entropy"),
                               diagnostics_every=tcfg.num_steps,
                               num_train_steps=tcfg.num_steps)
  sample = jnp.zeros((1, train.inputs.shape[-1]), train.inputs.dtype)

  def init(key):
    return TrainState.create(model.init(key, sample), tx)

  def train_step(state, batch, rng, hparams):
    return step(state, population.own_column(batch, hparams), rng)

  return population.Program(init=init, train_step=train_step, train=train,
                            batch_size=tcfg.batch_size, hparams={"data_column": 0.0},
                            family="sequence")


def recall_population(model, tcfg, task, length: int, seeds, *, strategy: str | None = "vmap",
                 progress: bool = False) -> dict:
  """Trains `model` on recall-first-token at `length`, one population member per seed.

  Each seed has its own data (`recall_sets`), its own init and its own batch order (the
  core's (seed, epoch) permutation); all seeds share one compiled step. Strategy 'vmap'
  (also on CPU): an RNN step is a loop of L tiny matmuls, so the seeds run as one loop of
  batched ones rather than one loop each (the old trainer vmapped the seeds too).

  Returns: {'accuracy': [S] test accuracy, 'loss': [S, steps] training loss}.
  """
  seeds = list(seeds)
  train, test = recall_sets(task, length, seeds)
  members = [population.Member(s, {"data_column": float(i)}) for i, s in enumerate(seeds)]
  with timing_lib.phase("train"):
    result = population.run(recall_program(model, tcfg, train), members,
                            num_steps=tcfg.num_steps, strategy=strategy, progress=progress,
                            desc=f"lec11 recall L={length}")
  predict = jax.jit(lambda p, x: jnp.argmax(model.apply({"params": p}, x), -1))
  with timing_lib.phase("eval"):
    acc = []
    for i, split in enumerate(test):
      params, correct = result.params(i), 0.0
      for batch in data.eval_batches(split, tcfg.eval_batch_size):
        hit = np.asarray(predict(params, batch["inputs"])) == batch["targets"]
        correct += float(np.sum(batch["weights"] * hit))
      acc.append(correct / len(split))
  return {"accuracy": np.asarray(acc), "loss": result.curves("train_loss")[1]}


# ----------------------------------------------------------------------------- A. parallel


def _jaxprs_in(params):
  for value in params.values():
    for v in value if isinstance(value, (tuple, list)) else (value,):
      if hasattr(v, "eqns"):                        # a Jaxpr
        yield v
      elif hasattr(getattr(v, "jaxpr", None), "eqns"):  # a ClosedJaxpr
        yield v.jaxpr


def loop_iterations(jaxpr) -> int:
  """Iterations of the sequential loops (`scan`, `while`) in a jaxpr: loops one after the
  other add, nested loops multiply (a `while`'s unknown trip count counts as 1)."""
  total = 0
  for eqn in jaxpr.eqns:
    inner = max([loop_iterations(j) for j in _jaxprs_in(eqn.params)], default=0)
    if eqn.primitive.name == "scan":
      total += int(eqn.params["length"]) * max(inner, 1)
    elif eqn.primitive.name == "while":
      total += max(inner, 1)
    else:
      total += inner
  return total


def sequential_steps(model, length: int, batch: int = 2) -> int:
  """Sequential steps of one forward pass over a length-`length` sequence, read from its
  jaxpr: the loop iterations, or 1 when there is no loop (one parallel step)."""
  tokens = jnp.zeros((batch, length), jnp.int32)
  params = jax.eval_shape(lambda t: model.init(jax.random.PRNGKey(0), t), tokens)
  jaxpr = jax.make_jaxpr(lambda p, t: model.apply(p, t))(params, tokens)
  return max(1, loop_iterations(jaxpr.jaxpr))


def init_params(model, length: int, seed: int = 0):
  """The model's parameters for token sequences of `length`."""
  return model.init(jax.random.PRNGKey(seed), jnp.zeros((1, length), jnp.int32))["params"]


def _fwd_bwd(model, batch: int, length: int, task, seed: int = 0, params=None):
  """The jitted gradient of the recall loss, compiled, with its (params, tokens, labels)."""
  x, y = sequence_tasks.recall_first_token(batch, length, task.num_values, seed,
                                           task.num_distractors)
  x, y = jnp.asarray(x), jnp.asarray(y)
  params = init_params(model, length, seed) if params is None else params
  grad = jax.jit(jax.grad(_loss_fn(model)))
  return grad.lower(params, x, y).compile(), (params, x, y)


def time_fwd_bwd(model, batch: int, length: int, task, *, warmup: int = 2,
                 repeats: int = 5, params=None) -> dict:
  """Forward+backward (gradient) time per batch: compile, `warmup` calls, then the median
  of `repeats` blocked calls. Also the compiled temporary memory (bytes) from XLA's
  `memory_analysis()` (None where the backend gives none). `params`: the model's (None:
  `init_params` at this length); the time and memory depend on their shapes only."""
  t0 = time.perf_counter()
  compiled, args = _fwd_bwd(model, batch, length, task, params=params)
  compile_s = time.perf_counter() - t0
  with timing_lib.phase("train"):  # forward + backward passes, as in a train step
    for _ in range(warmup):
      jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      times.append(time.perf_counter() - t)
  mem = compiled.memory_analysis()
  return {"ms": 1e3 * float(np.median(times)), "ms_all": [1e3 * t for t in times],
          "temp_bytes": None if mem is None else int(mem.temp_size_in_bytes),
          "compile_s": compile_s}


def model_length(cfg, length: int) -> int:
  """The length a model is built (and its parameters initialized) for: `length` with
  learned positions, else one fixed length (the models and parameter shapes do not depend
  on L, so one build and one init serve every L)."""
  return length if cfg.attention.positions == "learned" else max(cfg.distance.lengths)


def parallel_table(cfg, models_at, params_at=None) -> dict:
  """{kind: {L: timing}} for every kind and L of cfg.timing.lengths, in one process;
  the kinds alternate at each L so contention hits them alike. `params_at(kind, L)`: the
  parameters to time with (None: a fresh init per kind and L)."""
  out = {k: {} for k in cfg.kinds}
  jobs = [(L, k) for L in cfg.timing.lengths for k in cfg.kinds]
  for L, k in tqdm(jobs, desc="lec11 timing", unit="model"):
    m = models_at(L)[k].model
    out[k][L] = time_fwd_bwd(m, cfg.timing.batch_size, L, cfg.task,
                             warmup=cfg.timing.warmup, repeats=cfg.timing.repeats,
                             params=params_at(k, L) if params_at else None)
    out[k][L]["sequential_steps"] = sequential_steps(m, L)
  return out


def crossover(times: dict, rnn: str, lengths) -> str:
  """Where attention's fwd+bwd time crosses the RNN's, in words (either direction)."""
  faster = [times["attention"][L]["ms"] < times[rnn][L]["ms"] for L in lengths]
  if all(faster):
    return f"attention is faster than the {LABEL[rnn]} at every L ({lengths[0]}-{lengths[-1]})"
  if not any(faster):
    return f"the {LABEL[rnn]} is faster than attention at every L ({lengths[0]}-{lengths[-1]})"
  changes = [f"{'attention' if faster[i] else LABEL[rnn]} overtakes at L={lengths[i]}"
             for i in range(1, len(lengths)) if faster[i] != faster[i - 1]]
  first = "attention" if faster[0] else LABEL[rnn]
  return f"{first} is faster at L={lengths[0]}; " + "; ".join(changes)


def loglog_slope(lengths, values, min_length: int) -> float:
  """Least-squares slope of log(value) vs log(L) over L ≥ min_length."""
  pts = [(np.log(L), np.log(v)) for L, v in zip(lengths, values) if L >= min_length]
  x, y = np.array(pts).T
  return float(np.polyfit(x, y, 1)[0])


# ----------------------------------------------------------------------------- run all


def distance_model(cfg, model):
  """The model part B trains and tests: `model`, with attention's last layer computed at
  the last position only when `cfg.distance.last_query` (`sequence.AttentionClassifier`:
  the same parameters, logits and gradients, in O(L) instead of O(L²) for that layer;
  parts A and C time the whole layer)."""
  if isinstance(model, sequence.AttentionClassifier) and cfg.distance.get("last_query"):
    return model.clone(last_query=True)
  return model


def distance_grid(cfg, models_at) -> dict:
  """{kind: {L: recall_population(...)}} over cfg.kinds × cfg.distance.lengths, seeds vmapped."""
  out = {k: {} for k in cfg.kinds}
  jobs = [(L, k) for L in cfg.distance.lengths for k in cfg.kinds]
  for L, k in tqdm(jobs, desc="lec11 recall runs", unit="model"):
    t0 = time.perf_counter()
    out[k][L] = recall_population(distance_model(cfg, models_at(L)[k].model), cfg.train,
                                  cfg.task, L, cfg.seeds)
    out[k][L]["seconds"] = time.perf_counter() - t0
  return out


def attention_cost(cfg, models_at, timing: dict | None = None, params_at=None) -> dict:
  """Attention's fwd+bwd time and compiled temporary memory at cfg.cost.lengths (reusing
  the parallel table's measurement where it timed the same L at the same batch)."""
  out = {}
  for L in tqdm(cfg.cost.lengths, desc="lec11 attention cost", unit="L"):
    if (timing and L in timing.get("attention", {})
        and cfg.cost.batch_size == cfg.timing.batch_size):
      out[L] = timing["attention"][L]
      continue
    out[L] = time_fwd_bwd(models_at(L)["attention"].model, cfg.cost.batch_size, L,
                          cfg.task, warmup=cfg.timing.warmup, repeats=cfg.timing.repeats,
                          params=params_at("attention", L) if params_at else None)
  return out


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, chance = config.thresholds, 1.0 / config.task.num_values
  lengths = tuple(config.distance.lengths)
  longest, shortest = lengths[-1], lengths[0]

  def attention_far(r):
    acc = {L: r["distance"]["attention"][L]["accuracy"] for L in lengths}
    worst = min(lengths, key=lambda L: acc[L].mean())
    passed = all(acc[L].mean() >= th.attention_min_accuracy for L in lengths)
    return claims.Evidence(passed, {
        f"attention accuracy at L={L}": claims.Stat.of(acc[L]) for L in lengths},
        f"lowest mean accuracy {acc[worst].mean():.3f} at L={worst} "
        f"({'≥' if passed else '<'} {th.attention_min_accuracy})")

  def simple_falls(r):
    acc = {L: r["distance"]["simple"][L]["accuracy"] for L in lengths}
    drop = acc[shortest].mean() - acc[longest].mean()
    near = acc[longest].mean() <= chance + th.rnn_chance_margin
    passed = near and drop >= th.rnn_min_drop
    return claims.Evidence(passed, {
        f"simple RNN accuracy at L={shortest}": claims.Stat.of(acc[shortest]),
        f"simple RNN accuracy at L={longest}": claims.Stat.of(acc[longest]),
        "drop (mean)": claims.Stat.of([drop])},
        f"chance = {chance:.3f}; at L={longest}: {acc[longest].mean():.3f} "
        f"({'≤' if near else '>'} chance + {th.rnn_chance_margin}); drop {drop:.3f} "
        f"({'≥' if drop >= th.rnn_min_drop else '<'} {th.rnn_min_drop})")

  def sequential(r):
    t = r["timing"]
    rnn_ok = all(t[k][L]["sequential_steps"] == L for k in t if k != "attention" for L in t[k])
    att = [t["attention"][L]["sequential_steps"] for L in t["attention"]]
    rnn = {k: [t[k][L]["sequential_steps"] for L in t[k]] for k in t if k != "attention"}
    return claims.Evidence(rnn_ok and all(a == 1 for a in att), {
        **{f"{LABEL[k]} steps / L": claims.Stat.of(np.array(v) / np.array(list(t[k])))
           for k, v in rnn.items()},
        "attention steps": claims.Stat.of(att)},
        "steps read from the forward jaxpr (scan iterations) at L = "
        + ", ".join(str(L) for L in t["attention"]))

  def quadratic(r):
    c = r["cost"]
    ls = sorted(c)
    mem = loglog_slope(ls, [c[L]["temp_bytes"] for L in ls], th.slope_min_length)
    ms = loglog_slope(ls, [c[L]["ms"] for L in ls], th.slope_min_length)
    lo, hi = th.memory_slope_range
    passed = lo <= mem <= hi and ms >= th.time_min_slope
    return claims.Evidence(passed, {
        "log-log slope of compiled temp memory": claims.Stat.of([mem]),
        "log-log slope of fwd+bwd time": claims.Stat.of([ms])},
        f"fit over L ≥ {th.slope_min_length}: memory slope {mem:.2f} (in [{lo}, {hi}]?), "
        f"time slope {ms:.2f} (≥ {th.time_min_slope}?)")

  return [
      claims.Claim(
          id="lec11.parallel.sequential_steps",
          statement=("Self-attention v.s. RNN — parallel: an RNN needs L sequential steps "
                     "for a length-L sequence, self-attention computes all positions at once"),
          source=SOURCE,
          threshold=("forward jaxpr: every RNN (simple, LSTM, GRU) has exactly L scan "
                     "iterations at every timed L; attention has none (1 step)"),
          check=sequential),
      claims.Claim(
          id="lec11.distance.attention_recalls_far",
          statement=("Self-attention v.s. RNN — distance: attention relates any two "
                     "positions directly, so recalling the first token stays easy as L grows"),
          source=SOURCE,
          threshold=(f"attention's mean test accuracy (over {len(config.seeds)} seeds) "
                     f"≥ {th.attention_min_accuracy} at every L in {lengths}"),
          check=attention_far),
      claims.Claim(
          id="lec11.distance.simple_rnn_falls_to_chance",
          statement=("Self-attention v.s. RNN — distance: a simple RNN must carry the first "
                     "token through L steps and falls toward chance as L grows"),
          source=SOURCE,
          threshold=(f"simple RNN mean accuracy at L={longest} ≤ chance (1/"
                     f"{config.task.num_values}) + {th.rnn_chance_margin}, and ≥ "
                     f"{th.rnn_min_drop} below its mean at L={shortest}"),
          check=simple_falls),
      claims.Claim(
          id="lec11.cost.attention_quadratic",
          statement=("Self-attention compares every pair of positions: its memory and time "
                     "grow quadratically with L"),
          source=SOURCE + "; Vaswani et al. 2017, Table 1 (O(n²·d) per layer)",
          threshold=(f"log-log slope vs L (fit over L ≥ {th.slope_min_length}) of the "
                     f"compiled temp memory in {list(th.memory_slope_range)} and of the "
                     f"fwd+bwd time ≥ {th.time_min_slope}"),
          check=quadratic),
  ]


# ----------------------------------------------------------------------------- plots


def _plot_distance(dist, config, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(5.0, 3.8))
  lengths = list(config.distance.lengths)
  ax = axes[0][0]
  for k in config.kinds:
    runs = np.stack([dist[k][L]["accuracy"] for L in lengths], axis=1)   # [seeds, L]
    plotting.mean_band(ax, lengths, runs, LABEL[k])
  ax.axhline(1.0 / config.task.num_values, color="k", ls=":", lw=1, label="chance")
  ax.axhline(config.thresholds.attention_min_accuracy, color="r", ls="--", lw=0.8,
             label=f"{config.thresholds.attention_min_accuracy} (claim)")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("sequence length L (answer is L-1 steps back)")
  ax.set_ylabel("test accuracy")
  ax.set_ylim(0, 1.05)
  ax.set_title("Recall the first token")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  longest = lengths[-1]
  steps = np.arange(1, config.train.num_steps + 1)
  for k in config.kinds:
    plotting.mean_band(ax, steps, dist[k][longest]["loss"], LABEL[k])
  ax.axhline(np.log(config.task.num_values), color="k", ls=":", lw=1, label="log(#values)")
  ax.set_xlabel("Adam step")
  ax.set_ylabel("training loss (cross-entropy)")
  ax.set_title(f"Training at L={longest}")
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


def _plot_timing(timing, cost, config, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(5.0, 3.8))
  ax = axes[0][0]
  for k in config.kinds:
    ls = sorted(timing[k])
    ax.plot(ls, [timing[k][L]["ms"] for L in ls], "o-", ms=3,
            label=f"{LABEL[k]} ({'1 step' if k == 'attention' else 'L steps'})")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("sequence length L")
  ax.set_ylabel("forward+backward ms per batch (median)")
  ax.set_title(f"Parallel: batch {config.timing.batch_size}, {jax.default_backend()}")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  ls = np.array(sorted(cost), float)
  mem = np.array([cost[L]["temp_bytes"] for L in sorted(cost)], float) / 2**20
  ms = np.array([cost[L]["ms"] for L in sorted(cost)])
  ax.plot(ls, mem, "o-", label="compiled temp memory (MiB)")
  ax.plot(ls, ms, "s-", label="fwd+bwd time (ms)")
  for ref, slope, style in ((mem, 2, "k--"), (ms, 1, "k:")):
    ax.plot(ls, ref[-1] * (ls / ls[-1]) ** slope, style, lw=0.8, label=f"∝ L^{slope}")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("sequence length L")
  ax.set_title(f"Self-attention cost vs L (batch {config.cost.batch_size})")
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- run


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  built = functools.lru_cache(maxsize=None)(lambda n: build_models(config, n))
  models_at = lambda L: built(model_length(config, L))  # noqa: E731
  inits = functools.lru_cache(maxsize=None)(
      lambda k, n: init_params(built(n)[k].model, n))
  params_at = lambda k, L: inits(k, model_length(config, L))  # noqa: E731
  timing = parallel_table(config, models_at, params_at)
  results = {"timing": timing, "cost": attention_cost(config, models_at, timing, params_at),
             "distance": distance_grid(config, models_at)}
  section = Section(name="lec11_rnn_vs_attention",
                    title="Lectures 10-11: self-attention vs RNN (parallel, distance)",
                    command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot_distance(results["distance"], config, os.path.join(workdir, "distance.png")),
             f"Left: test accuracy of recalling the first token at the end of a length-L "
             f"sequence (mean ± std over {len(config.seeds)} seeds; chance = "
             f"1/{config.task.num_values}). Right: training loss at the longest L."),
      Figure(_plot_timing(results["timing"], results["cost"], config,
                          os.path.join(workdir, "parallel_and_cost.png")),
             "Left: forward+backward time per batch vs L at matched parameter counts "
             "(log-log). Right: self-attention's compiled temporary memory and time vs L, "
             "with L² and L references."),
  ]
  models = models_at(config.distance.lengths[-1])
  lengths = list(config.distance.lengths)
  section.tables = [
      Table(f"B. Recall-first-token test accuracy (mean ± std, {len(config.seeds)} seeds, "
            f"{config.train.num_steps} Adam steps, batch {config.train.batch_size})",
            ("model", "width", "params", *(f"L={L}" for L in lengths)),
            tuple((LABEL[k], str(models[k].width), f"{models[k].num_params:,}",
                   *(str(claims.Stat.of(results["distance"][k][L]["accuracy"]))
                     for L in lengths)) for k in config.kinds)),
      Table(f"A. Forward+backward ms per batch (median of {config.timing.repeats}; "
            f"batch {config.timing.batch_size}; {jax.default_backend()})",
            ("L", *(f"{LABEL[k]} ms" for k in config.kinds),
             *(f"{LABEL[k]} sequential steps" for k in config.kinds)),
            tuple((str(L), *(f"{results['timing'][k][L]['ms']:.2f}" for k in config.kinds),
                   *(str(results["timing"][k][L]["sequential_steps"]) for k in config.kinds))
                  for L in config.timing.lengths)),
      Table(f"C. Self-attention cost vs L (batch {config.cost.batch_size})",
            ("L", "fwd+bwd ms", "compiled temp MiB"),
            tuple((str(L), f"{c['ms']:.2f}", f"{c['temp_bytes'] / 2**20:.2f}")
                  for L, c in sorted(results["cost"].items()))),
  ]
  tl = list(config.timing.lengths)
  section.notes = [
      "Parallel (on this device, batch "
      f"{config.timing.batch_size}): " + "; ".join(
          crossover(results["timing"], k, tl) for k in config.kinds if k != "attention") + ".",
      "Matched parameter counts (target "
      f"{config.target_params:,}): " + ", ".join(
          f"{LABEL[k]} width {s.width} = {s.num_params:,}" for k, s in models.items()) + ".",
      f"Task: x_0 uniform over {config.task.num_values} value ids, x_1 … x_{{L-2}} uniform "
      f"over {config.task.num_distractors} distractor ids (0: over the value ids), "
      "x_{L-1} a query token, target x_0; each seed has "
      f"its own {config.task.num_train} training and {config.task.num_test} test sequences. "
      f"Every model: Adam lr {config.train.learning_rate}, global-norm clip "
      f"{config.train.grad_clip_norm}, the same steps and batch.",
      "Timings are wall-clock on a shared machine; other processes running at the same time "
      "inflate them (the models alternate at each L so they share the contention).",
      *(["B trains and tests self-attention with its last layer computed at the last "
         "position only, the one the readout reads (sequence.AttentionClassifier "
         "last_query): the same parameters, logits and gradients up to float rounding, "
         "O(L) instead of O(L²) for that layer; A and C time the whole layer."]
        if config.distance.get("last_query") else []),
      "Cells use flax's default init: zero biases, so an LSTM's forget gate and a GRU's "
      "update gate start near σ(0) = 0.5 and about halve the carried state each step, while the "
      "simple RNN's orthogonal recurrent matrix keeps its norm near 1; the usual forget-gate "
      "bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015) is not used here.",
  ] + list(config.get("notes", ()))
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec11_rnn_vs_attention",
                    title="Lectures 10-11: self-attention vs RNN (parallel, distance)",
                    config_file="configs/lec11_rnn_vs_attention.py", run=run))
