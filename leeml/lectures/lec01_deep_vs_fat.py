"""Lectures 1-2, deep vs fat: depth multiplies linear pieces, width only adds them.

(a) Exact (no training): Telgarsky's sawtooth, a depth-L width-2 ReLU net, has 2^L
    linear pieces on [0, 1] (counted from its parameters by leeml.piecewise); a 1-hidden-
    layer net of k units has at most k + 1 pieces, so matching needs k >= 2^L - 1 units;
    an explicit 1-hidden-layer net with 2^L units equals it.
(b) Trained: the lecture's "layers x size" table at one parameter budget — deep-narrow vs
    shallow-wide MLPs fit a high-frequency sum of sines, several seeds.
"""

import os
import time

import numpy as np

from leeml import claims, curve_fit, datasets, piecewise, plotting
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 2 / 'Why Deep?' slides 'Fat + Short v.s. Thin + Tall' (Seide et al. 2011 "
          "table); Telgarsky 2016, 'Benefits of depth in neural networks'")


def mlp_params(depth: int, width: int, inputs: int = 1, outputs: int = 1) -> int:
  """Parameter count of leeml.models.MLP(depth, width) on `inputs` -> `outputs`."""
  return (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * outputs


def width_for_budget(depth: int, budget: int, tolerance: float) -> int:
  """The width whose parameter count is closest to `budget`; raises if off by > tolerance."""
  width = min(range(1, 4 * budget), key=lambda w: abs(mlp_params(depth, w) - budget))
  if abs(mlp_params(depth, width) - budget) > tolerance * budget:
    raise ValueError(f"no width gives depth {depth} {budget} ± {tolerance:.0%} parameters "
                     f"(closest: {width} -> {mlp_params(depth, width)})")
  return width


def sawtooth_counts(cfg) -> list[dict]:
  """Per depth L: exact pieces of the sawtooth, of its shallow twin, and the largest
  region count among random 1-hidden-layer nets of 2^L - 2 units (the bound's check)."""
  rng = np.random.default_rng(0)
  x = np.linspace(0.0, 1.0, 4097)
  rows = []
  for depth in cfg.sawtooth_depths:
    deep = piecewise.sawtooth_params(depth)
    shallow = piecewise.shallow_sawtooth_params(depth)
    k = 2 ** depth - 2
    worst = 0
    for _ in range(cfg.random_shallow_nets if k > 0 else 0):
      p = {"dense_0": {"kernel": rng.normal(size=(1, k)), "bias": rng.normal(size=k)},
           "head": {"kernel": rng.normal(size=(k, 1)), "bias": rng.normal(size=1)}}
      worst = max(worst, piecewise.linear_regions(p).num_pieces)
    rows.append({
        "depth": depth,
        "deep_pieces": piecewise.linear_regions(deep, (0.0, 1.0)).num_pieces,
        "deep_params": piecewise.num_params(deep),
        "shallow_units": shallow["dense_0"]["kernel"].shape[1],
        "shallow_pieces": piecewise.linear_regions(shallow, (0.0, 1.0)).num_pieces,
        "shallow_params": piecewise.num_params(shallow),
        "max_difference": float(np.abs(piecewise.forward(deep, x)
                                       - piecewise.forward(shallow, x)).max()),
        "random_k": k, "random_max_pieces": worst,
    })
  return rows


def train_table(cfg) -> dict:
  data = datasets.get_dataset(cfg.dataset)
  x, y = data.train.inputs, data.train.targets
  out = {}
  for depth in cfg.depths:
    width = width_for_budget(depth, cfg.budget, cfg.budget_tolerance)
    mcfg = curve_fit.model_config(depth, width)
    r = curve_fit.fit(mcfg, x, y, list(cfg.seeds), optimizer_cfg=curve_fit.optimizer_config(
        **cfg.optimizer), num_steps=cfg.num_steps, record_every=cfg.record_every)
    r.update(model_cfg=mcfg, width=width, params_count=mlp_params(depth, width))
    r["pieces"] = [piecewise.linear_regions(curve_fit.seed_params(r["params"], i),
                                            (cfg.dataset.low, cfg.dataset.high)).num_pieces
                   for i in range(len(cfg.seeds))]
    out[depth] = r
  return {"x": x, "y": y, "rows": out}


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  deep, fat = max(config.depths), min(config.depths)

  def exact(r):
    rows = r["sawtooth"]
    bad = [row["depth"] for row in rows
           if row["deep_pieces"] != 2 ** row["depth"] or row["shallow_pieces"] != 2 ** row["depth"]
           or row["max_difference"] > th.construction_tolerance
           or row["random_max_pieces"] > row["random_k"] + 1]
    return claims.Evidence(not bad, {
        "sawtooth pieces / 2^L": claims.Stat.of([row["deep_pieces"] / 2 ** row["depth"] for row in rows]),
        "max |deep - shallow|": claims.Stat.of([row["max_difference"] for row in rows]),
    }, f"failing depths: {bad}" if bad else
       f"L = {rows[0]['depth']}..{rows[-1]['depth']}: 2^L pieces with 6L+1 parameters; "
       f"1 hidden layer needs >= 2^L - 1 units (2^L used, 3*2^L+1 parameters)")
  out = [claims.Claim(
      id="lec01.sawtooth_2_to_the_L_pieces",
      statement=("Deep is exponentially more efficient: a depth-L network of 2 ReLUs per layer "
                 "makes 2^L linear pieces; one hidden layer needs >= 2^L - 1 units for the same"),
      source=SOURCE,
      threshold=(f"for every L in {tuple(config.sawtooth_depths)}: exact pieces of the sawtooth "
                 "on [0, 1] = 2^L; the 1-hidden-layer construction (2^L units) has 2^L pieces "
                 f"and max |difference| <= {th.construction_tolerance}; "
                 f"{config.random_shallow_nets} random 1-hidden-layer nets of 2^L - 2 units all "
                 "have <= 2^L - 1 pieces"),
      check=exact)]

  def deep_beats_fat(r):
    rows = r["trained"]["rows"]
    return claims.less_than(
        f"{deep} x {rows[deep]['width']} final train MSE", rows[deep]["final_loss"],
        f"{fat} x {rows[fat]['width']} final train MSE", rows[fat]["final_loss"],
        margin=th.deep_beats_fat_margin, paired=True)
  out.append(claims.Claim(
      id="lec01.deep_beats_fat_at_equal_parameters",
      statement=("With the same number of parameters, the thin + tall network fits better than "
                 "the fat + short one (lower training loss)"),
      source=SOURCE,
      threshold=(f"depth {deep} vs depth {fat} at {config.budget} ± "
                 f"{config.budget_tolerance:.0%} parameters: mean final train MSE lower by > "
                 f"{th.deep_beats_fat_margin}, and lower on every seed"),
      check=deep_beats_fat))
  return out


def _plot(config, r, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(4.6, 3.6))
  ax = axes[0][0]
  x = np.linspace(0, 1, 2049)
  for depth in (1, 2, 3, 4):
    ax.plot(x, piecewise.forward(piecewise.sawtooth_params(depth), x)[:, 0] + 1.2 * (depth - 1),
            lw=1, label=f"L={depth}: {2 ** depth} pieces")
  ax.set_title("Sawtooth: the triangle map composed L times")
  ax.set_xlabel("x")
  ax.set_yticks([])
  ax.legend(fontsize=7)
  ax = axes[0][1]
  rows = r["sawtooth"]
  ls = [row["depth"] for row in rows]
  ax.semilogy(ls, [row["deep_params"] for row in rows], "o-", label="deep (width 2): 6L+1")
  ax.semilogy(ls, [row["shallow_params"] for row in rows], "s-",
              label="1 hidden layer: 3*2^L+1")
  ax.set_xlabel("L (pieces = 2^L)")
  ax.set_ylabel("parameters for the same function")
  ax.set_title("Exact: parameters needed for 2^L pieces")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  ax = axes[0][2]
  tr = r["trained"]
  xs = np.linspace(config.dataset.low, config.dataset.high, 1501)[:, None]
  target = datasets.synthetic.sum_of_sines_target(xs[:, 0], config.dataset.frequencies,
                                                  config.dataset.amplitudes)
  ax.plot(xs[:, 0], target, "k-", lw=2.5, alpha=0.3, label="target")
  for depth in (min(config.depths), max(config.depths)):
    row = tr["rows"][depth]
    pred = curve_fit.predict(row["model_cfg"], row["params"], xs)[0, :, 0]
    ax.plot(xs[:, 0], pred, lw=1, label=f"{depth} x {row['width']} (MSE "
            f"{float(row['final_loss'][0]):.3g})")
  ax.set_title(f"Trained, {config.budget} ± {config.budget_tolerance:.0%} params (seed "
               f"{config.seeds[0]})")
  ax.set_xlabel("x")
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


def _plot_curves(config, r, path: str) -> str:
  fig, axes = plotting.figure(size=(5.4, 3.8))
  ax = axes[0][0]
  for depth, row in r["trained"]["rows"].items():
    steps = np.arange(row["loss"].shape[1]) * config.record_every
    plotting.mean_band(ax, steps, row["loss"], f"{depth} x {row['width']}")
  ax.set_yscale("log")
  ax.set_xlabel("full-batch Adam step")
  ax.set_ylabel("training MSE")
  ax.set_title("Deep vs fat at equal parameters (mean ± std)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  results = {"sawtooth": sawtooth_counts(config), "trained": train_table(config)}
  section = Section(name="lec01_deep_vs_fat", title="Lectures 1-2: deep vs fat", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot(config, results, os.path.join(workdir, "deep_vs_fat.png")),
             "Left: the sawtooth for L = 1..4 (offset). Middle: parameters for 2^L pieces, "
             "deep vs one hidden layer (exact constructions). Right: trained fits at equal "
             "parameters, deepest vs 1 hidden layer."),
      Figure(_plot_curves(config, results, os.path.join(workdir, "training_curves.png")),
             "Training MSE during training for each layers x width row (mean ± std over seeds)."),
  ]
  section.tables = [
      Table("Exact (leeml.piecewise): the sawtooth and its 1-hidden-layer twin",
            ("L", "deep: pieces", "deep: params", "1 layer: units (>= 2^L - 1 needed)",
             "1 layer: pieces", "1 layer: params", "max |difference|",
             f"max pieces of {config.random_shallow_nets} random 1-layer nets of 2^L-2 units"),
            tuple((str(row["depth"]), str(row["deep_pieces"]), str(row["deep_params"]),
                   str(row["shallow_units"]), str(row["shallow_pieces"]),
                   str(row["shallow_params"]), f"{row['max_difference']:.1e}",
                   str(row["random_max_pieces"]) if row["random_k"] else "-")
                  for row in results["sawtooth"])),
      Table(f"Trained (lecture's layers x size table): {config.num_steps} full-batch Adam "
            f"steps, lr {config.optimizer.learning_rate}, seeds {tuple(config.seeds)}",
            ("layers x width", "params", "final train MSE", "exact pieces on data range"),
            tuple((f"{d} x {row['width']}", str(row["params_count"]),
                   str(claims.Stat.of(row["final_loss"])), str(claims.Stat.of(row["pieces"])))
                  for d, row in results["trained"]["rows"].items())),
  ]
  section.notes = [
      f"Target: sum of sines, frequencies {tuple(config.dataset.frequencies)} on "
      f"[{config.dataset.low}, {config.dataset.high}], {config.dataset.num_train} points, "
      "full batch.",
      "Exact geometry is computed in numpy float64 (the L=8 sawtooth has breakpoints at "
      "multiples of 1/256 and slopes of 256).",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec01_deep_vs_fat", title="Lectures 1-2: deep vs fat",
                    config_file="configs/lec01_deep_vs_fat.py", run=run))
