"""Lecture 7 (batch normalization): changing the landscape, and BN paper Fig. 1 / Fig. 3.

A. Changing the landscape. y = w1 x1 + w2 x2 + b with x1 ~ O(1) and x2 ~ O(100): the
   exact Hessian of the MSE (dense, `curvature.hessian_spectrum`) and its condition
   number with raw vs standardized features; the error surface over (w1, w2) and
   gradient descent at lr = 1/lambda_max on each, with its steps to converge.
B. Ioffe & Szegedy (2015) on embedded data: the paper's Fig. 1 net (3 x 100 sigmoid MLP,
   batch 60) with and without BN, at the base learning rate and at 5x and 30x (the
   paper's BN-x5, BN-x30), trained with SGD + momentum as one `leeml.population` per
   architecture (all seeds x learning rates; the learning rate traced: one compile). Steps to a target test accuracy, as
   in the paper's table; the input distribution of one sigmoid over training (Fig. 1b,c).
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import claims, curvature, datasets, losses, plotting, population, steps, timing
from leeml import data as data_lib
from leeml.lectures import Experiment, Figure, Section, Table, register
from leeml.models import MLP

SOURCE = ("Lecture 7 (Batch normalization), slides 'Changing Landscape', 'Feature "
          "Normalization', 'Batch normalization - Original paper'; Ioffe & Szegedy 2015, "
          "Fig. 1-3")
# Ioffe & Szegedy (2015), Fig. 3 table: steps to reach Inception's 72.2%, max accuracy.
PAPER_TABLE = (("Inception", "31.0M", "72.2%"), ("BN-Baseline", "13.3M", "72.7%"),
               ("BN-x5", "2.1M", "73.0%"), ("BN-x30", "2.7M", "74.8%"),
               ("BN-x5-Sigmoid", "—", "69.8%"))

# ----------------------------------------------------------------------------- A. surface


def landscape_data(cfg, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Two features x_i = scale_i (1 + N(0, 1)) and y = w·x + b + noise (float32)."""
  rng = np.random.default_rng(seed)
  scales = np.asarray(cfg.feature_scales, np.float64)
  x = scales * (1.0 + rng.standard_normal((cfg.num_examples, 2)))
  y = x @ np.asarray(cfg.true_w) + cfg.true_b + cfg.noise * rng.standard_normal(len(x))
  return x.astype(np.float32), y.astype(np.float32)


def standardize(x: np.ndarray) -> np.ndarray:
  """Feature normalization: each column to mean 0, standard deviation 1."""
  return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def mse_loss(x, y):
  """L(w, b) = mean((w·x + b - y)^2) as a function of params {'w': (2,), 'b': ()}."""
  x, y = jnp.asarray(x), jnp.asarray(y)
  return lambda p: jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _gd_path(x, y, lr, p0, steps: int):
  loss = mse_loss(x, y)

  def step(p, _):
    p = jax.tree.map(lambda a, g: a - lr * g, p, jax.grad(loss)(p))
    return p, (loss(p), jnp.append(p["w"], p["b"]))

  _, (ls, ps) = jax.lax.scan(step, p0, None, length=steps)
  first = jnp.append(p0["w"], p0["b"])[None]
  return jnp.concatenate([loss(p0)[None], ls]), jnp.concatenate([first, ps])


_gd_path = jax.jit(_gd_path, static_argnums=4)


def surface(x, y, cfg) -> dict:
  """Hessian spectrum, condition number, optimum and a GD run at lr = 1/lambda_max.

  GD has converged when the distance to the optimum (w1, w2, b) has shrunk to
  `converge_tol` of its start value (the error along the flat direction decays as
  (1 - lambda_min/lambda_max)^t, so the steps grow like the condition number).
  """
  loss = mse_loss(x, y)
  zero = {"w": jnp.zeros(2, jnp.float32), "b": jnp.zeros((), jnp.float32)}
  eig = curvature.hessian_spectrum(loss, zero)  # a quadratic: the same H everywhere
  a = np.concatenate([x, np.ones((len(x), 1), np.float32)], 1).astype(np.float64)
  sol = np.linalg.lstsq(a, y.astype(np.float64), rcond=None)[0]
  best = float(np.mean((a @ sol - y) ** 2))
  p0 = {"w": jnp.asarray(sol[:2] + np.asarray(cfg.start_offset), jnp.float32),
        "b": jnp.asarray(sol[2], jnp.float32)}
  with timing.phase("train"):
    ls, ps = _gd_path(x, y, jnp.float32(1.0 / eig[-1]), p0, cfg.max_gd_steps)
    ps = np.asarray(ps, np.float64)
  dist = np.linalg.norm(ps - sol, axis=1)
  gap = dist / dist[0]
  done = np.nonzero(gap <= cfg.converge_tol)[0]
  return dict(eigenvalues=eig, condition=float(eig[-1] / eig[0]), w_star=sol[:2],
              b_star=sol[2], best_loss=best, distance=gap, path=ps[:, :2],
              loss=np.asarray(ls, np.float64),
              steps=int(done[0]) if len(done) else None, x=x, y=y)


def landscape(cfg, seeds) -> list[dict]:
  out = []
  for seed in seeds:
    x, y = landscape_data(cfg, seed)
    out.append({"seed": seed, "raw": surface(x, y, cfg), "std": surface(standardize(x), y, cfg)})
  return out


def _plot_landscape(runs, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(4.6, 4.2))
  r = runs[0]
  axis = np.linspace(-cfg.extent, cfg.extent, cfg.grid)
  d1, d2 = np.meshgrid(axis, axis, indexing="xy")
  for ax, key, title in ((axes[0][0], "raw", "raw features (x2 ~ 100 x1)"),
                         (axes[0][1], "std", "standardized features")):
    s = r[key]
    w = s["w_star"][None] + np.stack([d1.ravel(), d2.ravel()], 1)
    res = s["x"].astype(np.float64) @ w.T + s["b_star"] - s["y"][:, None]
    gap = np.mean(res ** 2, 0).reshape(d1.shape) - s["best_loss"]
    cs = ax.contourf(d1, d2, np.log10(np.maximum(gap, 1e-6)), levels=25, cmap="viridis")
    fig.colorbar(cs, ax=ax, fraction=0.046, label="log10(L - L*)  (b = b*)")
    p = s["path"] - s["w_star"]
    ax.plot(p[:, 0], p[:, 1], "r.-", ms=2, lw=0.8, label="GD, lr = 1/λmax")
    ax.plot(*p[0], "r*", ms=10)
    ax.plot(0, 0, "w+", ms=10, mew=2)
    ax.set_xlim(-cfg.extent, cfg.extent)
    ax.set_ylim(-cfg.extent, cfg.extent)
    ax.set_aspect("equal")
    ax.set_xlabel("w1 - w1*")
    ax.set_ylabel("w2 - w2*")
    steps = s["steps"] if s["steps"] is not None else f"> {cfg.max_gd_steps}"
    ax.set_title(f"{title}\nκ(H) = {s['condition']:.3g}, GD steps = {steps}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
  ax = axes[0][2]
  for key, label in (("raw", "raw"), ("std", "standardized")):
    curves = [np.maximum(q[key]["distance"], 1e-12) for q in runs]
    plotting.mean_band(ax, np.arange(len(curves[0])), np.log10(curves), label)
  ax.axhline(np.log10(cfg.converge_tol), color="k", ls=":", lw=0.8, label="converged")
  ax.set_xscale("symlog", linthresh=10)
  ax.set_xlim(0, len(curves[0]))
  ax.set_xlabel("gradient-descent step (linear to 10, then log)")
  ax.set_ylabel("log10 |θ - θ*| / |θ0 - θ*|")
  ax.set_title("GD at lr = 1/λmax (mean ± std over seeds)", fontsize=9)
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- B. paper


def _data(cfg):
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": cfg.dataset}))
  flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)
  return (flat(ds.train.inputs), np.asarray(ds.train.targets, np.int32),
          flat(ds.test.inputs), np.asarray(ds.test.targets, np.int32), ds.num_classes)


def paper_program(cfg, norm: str, data) -> population.Program:
  """The paper's Fig. 1 net (`cfg.model`, with `norm`) trained by SGD + momentum with a
  traced learning rate: one Program, one compile for every seed and multiplier.

  SGD with momentum is optax.sgd(1, momentum) with its update scaled by the member's
  learning rate (identical: optax.sgd is trace(momentum) then scale(-lr)). Batches are
  the core's (seed, step) epoch permutation, so a seed has the same initialization and
  batch order at every learning rate. Evaluation (eval mode: BN's running averages) on
  'test': accuracy, mean cross-entropy, and the `cfg.percentiles` of the input to sigmoid
  `cfg.tracked_unit` of the last hidden layer (paper Fig. 1b,c). A percentile is not a
  sum over batches, so the whole split is one batch (eval_batch_size = its size, no
  padding) and it is returned as value × count, which the engine divides by count.
  """
  x_tr, y_tr, x_te, y_te, num_classes = data
  model = MLP(num_outputs=num_classes, norm=norm, **dict(cfg.model))
  ce = losses.get_loss("softmax_cross_entropy")
  tx = optax.sgd(1.0, momentum=cfg.momentum)
  last_norm = f"norm_{cfg.model['depth'] - 1}"
  sample = jnp.zeros((1, x_tr.shape[1]), jnp.float32)

  def init(key):
    variables = model.init(key, sample, train=False)
    params = variables["params"]
    return {"params": params, "batch_stats": variables.get("batch_stats", {}),
            "opt": tx.init(params)}

  def train_step(state, batch, rng, hparams):
    del rng  # no dropout: the only randomness is the batch order

    def loss_of(p):
      out, new = model.apply({"params": p, "batch_stats": state["batch_stats"]},
                             batch["inputs"], train=True, mutable=["batch_stats"])
      return jnp.mean(ce(out, batch["targets"])), new.get("batch_stats", state["batch_stats"])

    (loss, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
    updates, opt = tx.update(grads, state["opt"])
    lr = hparams["learning_rate"]
    params = jax.tree.map(lambda p, u: p + lr * u, state["params"], updates)
    finite = jnp.isfinite(loss) & steps.tree_finite(grads)
    return ({"params": params, "batch_stats": stats, "opt": opt},
            {"train_loss": loss, "nonfinite": (~finite).astype(jnp.float32)})

  def evaluate(state, batch):
    out, inter = model.apply({"params": state["params"], "batch_stats": state["batch_stats"]},
                             batch["inputs"], train=False, capture_intermediates=True,
                             mutable=["intermediates"])
    z = inter["intermediates"][last_norm]["__call__"][0][:, cfg.tracked_unit]
    w = batch["weights"]
    count = jnp.sum(w)
    pct = jnp.percentile(z, jnp.asarray(cfg.percentiles, jnp.float32))
    return {"accuracy": jnp.sum(w * (jnp.argmax(out, -1) == batch["targets"])),
            "loss": jnp.sum(w * ce(out, batch["targets"])), "count": count,
            **{f"pct{q}": pct[k] * count for k, q in enumerate(cfg.percentiles)}}

  test = data_lib.ArraySplit(x_te, y_te)
  return population.Program(
      init=init, train_step=train_step, train=data_lib.ArraySplit(x_tr, y_tr),
      batch_size=cfg.batch_size, hparams={"learning_rate": cfg.base_learning_rate},
      evaluate=evaluate, splits={"test": test}, eval_batch_size=len(test), family="mlp")


def train_grid(cfg, norm: str, seeds, multipliers, data, *, strategy: str | None = None,
               progress: bool = False) -> dict:
  """Trains every (seed, lr multiplier) for one `norm` as one population; numpy results
  {multiplier: [per-seed run dicts]} (test evaluations at step 0 and every
  `cfg.eval_every_steps`; train_loss: the mean loss of the steps since the last one)."""
  if cfg.num_train_steps % cfg.eval_every_steps:
    raise ValueError(f"paper.num_train_steps={cfg.num_train_steps} must be a multiple of "
                     f"paper.eval_every_steps={cfg.eval_every_steps}")
  members = [population.Member(int(s), {"learning_rate": cfg.base_learning_rate * m},
                               arm=label(norm, m)) for s in seeds for m in multipliers]
  program = paper_program(cfg, norm, data)
  with timing.phase("train"):  # the periodic test evaluations run inside `population.run`
    res = population.run(program, members, num_steps=cfg.num_train_steps,
                         eval_every=cfg.eval_every_steps, strategy=strategy,
                         scan_steps=cfg.eval_every_steps,  # scanned: one chunk per evaluation
                         progress=progress, desc=f"lec07 {norm}")
  with timing.phase("eval"):
    first = initial_evaluation(program, [m.seed for m in members])
  every = cfg.eval_every_steps

  def curve(key):
    return np.concatenate([first[key.removeprefix("eval_test_")][:, None], _curve(res, key)], 1)

  acc, test_loss = curve("eval_test_accuracy"), curve("eval_test_loss")
  pct = np.stack([curve(f"eval_test_pct{q}") for q in cfg.percentiles], -1)
  _, losses_ = res.curves("train_loss")
  train_loss = losses_.reshape(len(members), -1, every).mean(-1)
  steps_ = np.arange(acc.shape[1]) * every
  out: dict = {}
  for i, m in enumerate(members):
    out.setdefault(multipliers[i % len(multipliers)], []).append(dict(
        seed=m.seed, eval_steps=steps_, test_accuracy=acc[i], test_loss=test_loss[i],
        train_loss=train_loss[i], nonfinite=i in res.nonfinite_steps,
        percentiles=pct[i]))
  return out


def initial_evaluation(program: population.Program, seeds) -> dict[str, np.ndarray]:
  """`program.evaluate` on its 'test' split (one batch) at each seed's initial state, the
  state a population member starts from (`init(k_init)`, k_init = split(PRNGKey(seed))[0],
  `leeml.population`); {name: (len(seeds),)} averages."""
  batch = next(data_lib.eval_batches(program.splits["test"], program.eval_batch_size))

  @jax.jit
  def at_init(seed_array):
    def one(seed):
      return program.evaluate(program.init(jax.random.split(jax.random.PRNGKey(seed))[0]),
                              batch)
    return jax.vmap(one)(seed_array)

  sums = jax.device_get(at_init(jnp.asarray(seeds, jnp.int32)))
  return {k: np.asarray(v, np.float64) / np.asarray(sums["count"], np.float64)
          for k, v in sums.items() if k != "count"}


def _curve(result: population.Result, key: str) -> np.ndarray:
  """(members, evaluations) of `key`; NaN from a member's first non-finite step on (its
  state is frozen there; the run it stands for has diverged)."""
  steps_, values = result.curves(key)
  for i, bad in result.nonfinite_steps.items():
    values[i, steps_ >= bad] = np.nan
  return values


def summarize(run: dict, th) -> dict:
  """Steps to the target accuracy (None: never), divergence, max/final accuracy."""
  acc = np.nan_to_num(run["test_accuracy"], nan=0.0)
  hit = np.nonzero(acc >= th.target_accuracy)[0]
  diverged = run["nonfinite"] or acc[-1] < th.diverged_accuracy
  return dict(steps=int(run["eval_steps"][hit[0]]) if len(hit) else None,
              diverged=bool(diverged), max_accuracy=float(acc.max()), final_accuracy=float(acc[-1]))


def paper_runs(cfg, seeds, th) -> dict:
  """{norm: {multiplier: [per-seed run dicts with their summary]}}."""
  data = _data(cfg)
  out = {}
  for norm in cfg.norms:
    grid = train_grid(cfg, norm, seeds, cfg.lr_multipliers, data,
                      strategy=cfg.get("strategy") or None)
    for runs in grid.values():
      for r in runs:
        r.update(summarize(r, th))
    out[norm] = grid
  return out


def label(norm: str, mult: int) -> str:
  """The paper's names: Inception -> 'plain', BN-Baseline, BN-x5, BN-x30."""
  base = "BN" if norm == "batch" else "plain"
  return (f"{base}-Baseline" if norm == "batch" else base) if mult == 1 else f"{base}-x{mult}"


def _plot_paper(results, cfg, th, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(5.2, 3.9))
  ax = axes[0][0]
  styles = {"none": "--", "batch": "-"}
  for norm, grid in results.items():
    for j, (mult, runs) in enumerate(grid.items()):
      line = plotting.mean_band(ax, runs[0]["eval_steps"],
                                [np.nan_to_num(r["test_accuracy"]) for r in runs],
                                f"{label(norm, mult)} (lr {cfg.base_learning_rate * mult:g})",
                                color=f"C{j}")
      line.set_linestyle(styles.get(norm, "-"))
  ax.axhline(th.target_accuracy, color="k", lw=0.8, ls=":", label="target")
  ax.set_xscale("symlog", linthresh=100)  # BN's first ~100 steps would be invisible
  ax.set_xlim(0, cfg.num_train_steps)
  ax.set_xlabel("training step (linear to 100, then log)")
  ax.set_ylabel(f"test accuracy ({cfg.dataset}, eval mode)")
  ax.set_title("3x100 sigmoid MLP, SGD+momentum: with BN (solid) / without (dashed)",
               fontsize=9)
  ax.legend(fontsize=6.5, loc="lower right")
  ax.grid(alpha=0.3)
  ax = axes[0][1]  # Fig. 1(b, c): one sigmoid's input distribution over training
  for norm, ls in styles.items():
    r = results[norm][1][0]
    for k, q in enumerate(cfg.percentiles):
      ax.plot(r["eval_steps"], r["percentiles"][:, k], ls, color=f"C{k}",
              label=f"{'BN' if norm == 'batch' else 'plain'}: {q}th percentile")
  ax.set_xlabel("training step")
  ax.set_ylabel(f"input to sigmoid unit {cfg.tracked_unit} of the last hidden layer")
  ax.set_title("Paper Fig. 1(b, c): its distribution over training (base lr, seed "
               f"{results['none'][1][0]['seed']})", fontsize=9)
  ax.legend(fontsize=6.5)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


def _steps_values(runs, cap: int) -> list[float]:
  return [float(cap if r["steps"] is None else r["steps"]) for r in runs]


def speedups(results, num_steps: int) -> list[float]:
  """Per seed: steps_plain / steps_BN at the base lr (plain never reached: num_steps)."""
  plain, bn = results["none"][1], results["batch"][1]
  return [(num_steps if p["steps"] is None else p["steps"]) / b["steps"]
          if b["steps"] else float("nan") for p, b in zip(plain, bn)]


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, paper = config.thresholds, config.paper
  n_steps = paper.num_train_steps

  def rounds(r):
    raw = [q["raw"]["condition"] for q in r["landscape"]]
    std = [q["std"]["condition"] for q in r["landscape"]]
    ratio = [a / b for a, b in zip(raw, std)]
    ok = (min(raw) >= th.raw_condition_min and max(std) <= th.standardized_condition_max
          and min(ratio) >= th.condition_ratio_min)
    return claims.Evidence(ok, {"κ(H) raw": claims.Stat.of(raw),
                                "κ(H) standardized": claims.Stat.of(std),
                                "κ raw / κ standardized": claims.Stat.of(ratio)},
                           f"min ratio {min(ratio):.3g} (every seed)")

  def gd(r):
    std = [q["std"]["steps"] for q in r["landscape"]]
    raw = [q["raw"]["steps"] for q in r["landscape"]]
    cap = config.landscape.max_gd_steps
    slow = [(cap if a is None else a) / b for a, b in zip(raw, std) if b]
    ok = (all(s is not None and s <= th.standardized_gd_steps_max for s in std)
          and len(slow) == len(std)
          and all(a is None or a / b >= th.gd_slowdown_min for a, b in zip(raw, std)))
    return claims.Evidence(ok, {
        "GD steps, standardized": claims.Stat.of([s if s is not None else np.nan for s in std]),
        "GD steps, raw (not converged = cap)": claims.Stat.of([cap if a is None else a
                                                               for a in raw]),
        "raw / standardized steps (lower bound)": claims.Stat.of(slow)},
        f"raw runs not converged within {cap} steps: {sum(a is None for a in raw)}/{len(raw)}")

  def faster(r):
    s = speedups(r["paper"], n_steps)
    bn = r["paper"]["batch"][1]
    ok = (all(b["steps"] is not None for b in bn) and all(v > 1 for v in s)
          and float(np.mean(s)) >= th.bn_speedup_min)
    return claims.Evidence(ok, {
        "steps to target, plain (unreached = cap)": claims.Stat.of(
            _steps_values(r["paper"]["none"][1], n_steps)),
        "steps to target, BN-Baseline": claims.Stat.of(_steps_values(bn, n_steps)),
        "speedup steps_plain / steps_BN": claims.Stat.of(s)},
        f"plain reached target on {sum(p['steps'] is not None for p in r['paper']['none'][1])}"
        f"/{len(bn)} seeds")

  def higher_lr(r):
    base, x5 = r["paper"]["batch"][1], r["paper"]["batch"][5]
    a, b = _steps_values(x5, n_steps), _steps_values(base, n_steps)
    ok = all(q["steps"] is not None for q in x5 + base) and np.mean(a) < np.mean(b)
    return claims.Evidence(ok, {"steps to target, BN-x5": claims.Stat.of(a),
                                "steps to target, BN-Baseline": claims.Stat.of(b)},
                           f"per seed BN-x5 {[int(v) for v in a]} vs BN-Baseline "
                           f"{[int(v) for v in b]} (evaluated every {paper.eval_every_steps})")

  def x30(r):
    bn, plain = r["paper"]["batch"][30], r["paper"]["none"][30]
    ok = (all(q["steps"] is not None and not q["diverged"] for q in bn)
          and all(q["diverged"] for q in plain))
    return claims.Evidence(ok, {
        "BN-x30 runs reaching target": claims.Stat.of([sum(q["steps"] is not None
                                                           for q in bn)]),
        "BN-x30 steps to target (unreached = cap)": claims.Stat.of(_steps_values(bn, n_steps)),
        "plain-x30 runs diverged": claims.Stat.of([sum(q["diverged"] for q in plain)]),
        "plain-x30 final test accuracy": claims.Stat.of([q["final_accuracy"] for q in plain])},
        f"plain-x30 non-finite on {sum(q['nonfinite'] for q in plain)}/{len(plain)} seeds")

  lr = paper.base_learning_rate
  return [
      claims.Claim(
          id="lec07_batchnorm.normalizing_rounds_surface",
          statement=("Features of very different scales give an elongated error surface; "
                     "feature normalization makes it round (changing the landscape)"),
          source=SOURCE,
          threshold=(f"every seed: κ(H) raw >= {th.raw_condition_min:g}, standardized <= "
                     f"{th.standardized_condition_max:g}, ratio >= {th.condition_ratio_min:g}"),
          check=rounds),
      claims.Claim(
          id="lec07_batchnorm.gd_converges_faster_when_normalized",
          statement="On the round surface gradient descent converges much faster",
          source=SOURCE,
          threshold=(f"every seed, GD at lr 1/λmax to |θ-θ*|/|θ0-θ*| <= "
                     f"{config.landscape.converge_tol:g}: standardized in <= "
                     f"{th.standardized_gd_steps_max} steps, raw >= {th.gd_slowdown_min:g}x "
                     f"as many or not within {config.landscape.max_gd_steps}"),
          check=gd),
      claims.Claim(
          id="lec07_batchnorm.bn_reaches_target_faster",
          statement=("With BN the network reaches the target accuracy in fewer steps "
                     "(paper: BN-Baseline 13.3M vs Inception 31.0M steps)"),
          source=SOURCE,
          threshold=(f"lr {lr:g}: BN reaches test acc {th.target_accuracy} on every seed, "
                     f"steps_plain/steps_BN > 1 on every seed and >= {th.bn_speedup_min} "
                     f"on average (plain unreached = {n_steps})"),
          check=faster),
      claims.Claim(
          id="lec07_batchnorm.bn_higher_lr_faster",
          statement="With BN a 5x learning rate reaches the target faster (paper: BN-x5 2.1M)",
          source=SOURCE,
          threshold=(f"BN-x5 (lr {5 * lr:g}) and BN-Baseline reach {th.target_accuracy} on "
                     "every seed; mean steps BN-x5 < BN-Baseline"),
          check=higher_lr),
      claims.Claim(
          id="lec07_batchnorm.bn_trains_where_plain_diverges",
          statement=("BN trains at a 30x learning rate at which the plain network diverges "
                     "(paper: BN-x30 2.7M steps; sigmoid Inception without BN did not train)"),
          source=SOURCE,
          threshold=(f"lr {30 * lr:g}: BN reaches {th.target_accuracy} without diverging on "
                     "every seed, and the plain net diverges on every seed (non-finite loss "
                     f"or final test acc < {th.diverged_accuracy})"),
          check=x30),
  ]


# ----------------------------------------------------------------------------- run


def _fmt_steps(runs) -> str:
  reached = [r["steps"] for r in runs if r["steps"] is not None]
  if not reached:
    return "—"
  s = str(claims.Stat.of(reached))
  return s if len(reached) == len(runs) else f"{s}, {len(reached)}/{len(runs)} reached"


def run(config, workdir: str) -> Section:
  return run_with_results(config, workdir)[0]


def run_with_results(config, workdir: str) -> tuple[Section, dict]:
  """`run`, also returning the measured results (for tests)."""
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  th, paper = config.thresholds, config.paper
  results = {"landscape": landscape(config.landscape, config.seeds),
             "paper": paper_runs(paper, config.seeds, th)}
  section = Section(name="lec07_batchnorm",
                    title="Lecture 7: batch normalization — changing the landscape", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot_landscape(results["landscape"], config.landscape,
                             os.path.join(workdir, "landscape.png")),
             "y = w1 x1 + w2 x2 + b, x2 ~ 100 x1: MSE over (w1, w2) at b = b* with raw "
             "(elongated) and standardized (round) features, GD at lr = 1/λmax from the red "
             "star (seed 0); right: relative distance to the optimum vs step, mean ± std over "
             f"{len(config.seeds)} seeds."),
      Figure(_plot_paper(results["paper"], paper, th, os.path.join(workdir, "bn_paper.png")),
             f"BN paper Fig. 1/2 shape on {paper.dataset}: test accuracy (eval mode) vs step, "
             f"mean ± std over {len(config.seeds)} seeds; right: 15/50/85th percentiles of "
             "the input to one sigmoid over training, with and without BN."),
  ]
  land = results["landscape"]
  rows = []
  for key, name in (("raw", "raw"), ("std", "standardized")):
    ev = np.asarray([q[key]["eigenvalues"] for q in land])
    rows.append((name, str(claims.Stat.of(ev[:, -1])), str(claims.Stat.of(ev[:, 0])),
                 str(claims.Stat.of([q[key]["condition"] for q in land])),
                 ", ".join(str(q[key]["steps"]) if q[key]["steps"] is not None
                           else f">{config.landscape.max_gd_steps}" for q in land)))
  table_a = Table("A. Exact Hessian of the MSE (w1, w2, b) and GD at lr = 1/λmax",
                  ("features", "λmax", "λmin", "condition number κ", "GD steps per seed"),
                  tuple(rows))
  rows = []
  plain_base = results["paper"]["none"][1]
  for norm, grid in results["paper"].items():
    for mult, runs in grid.items():
      sp = [(n_p / r["steps"]) if r["steps"] else np.nan for r, n_p in
            zip(runs, _steps_values(plain_base, paper.num_train_steps))]
      rows.append((label(norm, mult), f"{paper.base_learning_rate * mult:g}", _fmt_steps(runs),
                   str(claims.Stat.of([r["max_accuracy"] for r in runs])),
                   f"{sum(r['diverged'] for r in runs)}/{len(runs)}",
                   str(claims.Stat.of(sp)) if not np.all(np.isnan(sp)) else "—"))
  table_b = Table(f"B. Steps to {th.target_accuracy:.0%} test accuracy ({paper.dataset}, "
                  f"{paper.num_train_steps} steps, eval every {paper.eval_every_steps})",
                  ("model", "lr", "steps to target", "max test accuracy", "diverged",
                   "speedup vs plain (plain unreached = cap)"), tuple(rows))
  table_c = Table("Ioffe & Szegedy 2015, Fig. 3 (Inception on ImageNet), for comparison",
                  ("model", "steps to 72.2%", "max accuracy"), PAPER_TABLE)
  section.tables = [table_a, table_b, table_c]
  section.notes = [
      f"A: {config.landscape.num_examples} examples, x_i = scale_i (1 + N(0,1)) with scales "
      f"{tuple(config.landscape.feature_scales)}; H from curvature.hessian_spectrum (float32).",
      f"B: MLP {paper.model['depth']}x{paper.model['width']} {paper.model['activation']}, "
      f"SGD momentum {paper.momentum}, batch {paper.batch_size}, BN momentum 0.9 (running "
      f"averages used at eval); seeds {tuple(config.seeds)}; the same init and batch order "
      "for every learning rate of a seed.",
      "Changed after pilots, before the reported run, thresholds untouched: (A) GD "
      "convergence was first a relative-loss criterion, met after 1 step on the raw surface "
      "(the steep w2 error dominates L0), so it could not see the flat direction; now the "
      "relative distance to the optimum. (B) evaluations every 25 steps (a pilot at these "
      "cpu settings) put BN's first hit at step 50 at every lr, so BN-Baseline and BN-x5 "
      "could not be told apart; now every 5 steps.",
      "BN at the base lr already reaches the target in ~1.5 epochs, so 5x and 30x cannot "
      "gain much here (unlike the paper's 13.3M -> 2.1M steps); the BN-x5 vs BN-Baseline "
      "difference is within one evaluation interval and the seed spread: read that PASS "
      "as 'not slower', not as the paper's 6x.",
  ]
  section.seconds = time.perf_counter() - t0
  return section, results


register(Experiment(name="lec07_batchnorm",
                    title="Lecture 7: batch normalization (landscape, BN paper Fig. 1/3)",
                    config_file="configs/lec07_batchnorm.py", run=run))
