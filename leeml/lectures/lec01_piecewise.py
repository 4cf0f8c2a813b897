"""Lectures 1-2: a network of k ReLUs / sigmoids is a sum of k pieces that can fit a curve.

Three measurements against the lecture's statements:
1. The hard-sigmoid picture, computed: a piecewise-linear interpolant of the curve is
   exactly constant + sum of hard sigmoids (one per segment); replacing each by a sigmoid
   approximates it better as the segments get more numerous.
2. Trained fits: 1 hidden layer of k ReLUs or k sigmoids, several k, several seeds; the
   final training MSE falls as k grows.
3. Exact regions: every trained ReLU net's linear regions computed from its parameters
   (leeml.piecewise) — at most k + 1 — and counted again on a dense grid.
"""

import os
import time

import numpy as np

from leeml import claims, curve_fit, datasets, piecewise, plotting
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 1 (Introduction of ML/DL), slides 'Piecewise Linear Curves' / 'Beyond "
          "Piecewise Linear?'; Lecture 2 'Sigmoid -> ReLU'")


def hard_sigmoid_picture(cfg) -> dict:
  """Max |error| vs the interpolant: hard sigmoids (exact) and sigmoids, per segment count."""
  spec = cfg.dataset
  x = np.linspace(spec.low, spec.high, 2001)
  out = {"segments": list(cfg.segments), "hard": [], "sigmoid": [], "curves": {}}
  for n in cfg.segments:
    xs = np.linspace(spec.low, spec.high, n + 1)
    ys = datasets.synthetic.sum_of_sines_target(xs, spec.frequencies, spec.amplitudes)
    hard = piecewise.hard_sigmoid_params(xs, ys)
    target = np.interp(x, xs, ys)
    h = piecewise.forward(hard, x, activation="hard_sigmoid")[:, 0]
    s = piecewise.sigmoid_forward(piecewise.sigmoid_params(hard), x)[:, 0]
    out["hard"].append(float(np.abs(h - target).max()))
    out["sigmoid"].append(float(np.abs(s - target).max()))
    out["curves"][n] = (x, target, s, xs, ys, hard)
  return out


def fit_all(cfg) -> dict:
  """{activation: {k: fit dict}} plus the data; every seed and activation of one k is a
  member of one population (one compile per k)."""
  data = datasets.get_dataset(cfg.dataset)
  x, y = data.train.inputs, data.train.targets
  fits: dict = {act: {} for act in cfg.activations}
  for k in cfg.widths:
    mcfg = curve_fit.model_config(1, k, cfg.activations[0])
    by_act = curve_fit.fit_activations(
        mcfg, x, y, list(cfg.seeds), tuple(cfg.activations),
        optimizer_cfg=curve_fit.optimizer_config(**cfg.optimizer), num_steps=cfg.num_steps,
        record_every=cfg.record_every)
    for act, r in by_act.items():
      r["model_cfg"] = curve_fit.model_config(1, k, act)
      fits[act][k] = r
  return {"x": x, "y": y, "fits": fits}


def count_regions(cfg, fits) -> dict:
  """{k: [(exact on R, exact on data range, grid on data range, grid predicted from the
  exact edges)] per seed} for the ReLU fits."""
  lo, hi = cfg.dataset.low, cfg.dataset.high
  out = {}
  for k, r in fits.get("relu", {}).items():
    rows = []
    for i in range(len(cfg.seeds)):
      p = curve_fit.seed_params(r["params"], i)
      on_domain = piecewise.linear_regions(p, (lo, hi))
      rows.append((piecewise.linear_regions(p).num_regions, on_domain.num_regions,
                   piecewise.grid_regions(p, (lo, hi), num_points=cfg.grid_points),
                   piecewise.grid_visible_regions(on_domain, (lo, hi), cfg.grid_points)))
    out[k] = rows
  return out


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  out = []
  for act in config.activations:
    def falls(r, act=act):
      ks = sorted(r["fits"][act])
      means = [float(np.mean(r["fits"][act][k]["final_loss"])) for k in ks]
      steps_ok = all(b <= th.consecutive_factor * a for a, b in zip(means, means[1:]))
      overall_ok = means[-1] <= th.overall_factor * means[0]
      numbers = {f"MSE k={k}": claims.Stat.of(r["fits"][act][k]["final_loss"]) for k in ks}
      return claims.Evidence(steps_ok and overall_ok, numbers,
                             f"means {[f'{m:.3g}' for m in means]}; consecutive ok: "
                             f"{steps_ok}; last/first = {means[-1] / means[0]:.3g}")
    out.append(claims.Claim(
        id=f"lec01.error_falls_with_units.{act}",
        statement=(f"More {act} units (more pieces) fit the curve better: the fitting error "
                   "falls as k grows"),
        source=SOURCE,
        threshold=(f"mean final train MSE over seeds at each k <= {th.consecutive_factor} x "
                   f"that at the previous k, and MSE(k={max(config.widths)}) <= "
                   f"{th.overall_factor} x MSE(k={min(config.widths)})"),
        check=falls))

  def regions(r):
    bad, exact_ok, grid_ok = [], True, True
    numbers = {}
    for k, rows in r["regions"].items():
      numbers[f"exact regions k={k} (on R)"] = claims.Stat.of([row[0] for row in rows])
      for seed, (on_r, on_d, grid, visible) in zip(config.seeds, rows):
        exact_ok &= on_r <= k + 1
        grid_ok &= grid == visible
        if on_r > k + 1 or grid != visible:
          bad.append(f"k={k} seed={seed}: exact {on_r} (R), {on_d} (data range), grid "
                     f"{grid}, predicted for the grid {visible}")
    merged = [f"k={k} seed={s}: {row[1]} exact, {row[2]} on the grid"
              for k, rows in r["regions"].items() for s, row in zip(config.seeds, rows)
              if row[1] != row[2]]
    detail = "; ".join(bad) if bad else "every run: exact <= k+1 and grid == predicted"
    if merged:
      detail += ("; kinks closer than the grid spacing (one change on the grid): "
                 + "; ".join(merged))
    return claims.Evidence(exact_ok and grid_ok, numbers, detail)
  out.append(claims.Claim(
      id="lec01.relu_regions_at_most_k_plus_1",
      statement=("A 1-hidden-layer network of k ReLUs is piecewise linear with at most k + 1 "
                 "pieces (exact count from the parameters, checked on a dense grid)"),
      source=SOURCE,
      threshold=(f"every trained ReLU net (every k, every seed): exact activation regions on "
                 f"the real line <= k + 1, and on [{config.dataset.low}, "
                 f"{config.dataset.high}] a {config.grid_points}-point grid sees exactly the "
                 "regions the exact edges predict for it (1 + grid cells holding an edge)"),
      check=regions))
  return out


def _plot_fits(config, r, path: str) -> str:
  acts = list(config.activations)
  fig, axes = plotting.figure(ncols=len(acts) + 1, size=(4.6, 3.6))
  x = np.linspace(config.dataset.low, config.dataset.high, 801)[:, None]
  target = datasets.synthetic.sum_of_sines_target(x[:, 0], config.dataset.frequencies,
                                                  config.dataset.amplitudes)
  for ax, act in zip(axes[0], acts):
    ax.plot(x[:, 0], target, "k-", lw=2.5, alpha=0.35, label="target curve")
    for k, fr in r["fits"][act].items():
      pred = curve_fit.predict(fr["model_cfg"], fr["params"], x)[0, :, 0]
      ax.plot(x[:, 0], pred, lw=1, label=f"k={k}")
    if act == "relu":  # the exact breakpoints of the largest net (seed 0)
      k = max(r["fits"]["relu"])
      reg = piecewise.linear_regions(curve_fit.seed_params(r["fits"]["relu"][k]["params"], 0),
                                     (config.dataset.low, config.dataset.high))
      ax.plot(reg.breakpoints, reg(reg.breakpoints)[:, 0], "k|", ms=8,
              label=f"exact breakpoints (k={k})")
    ax.set_title(f"1 hidden layer of k {act} units (seed {config.seeds[0]})")
    ax.set_xlabel("x")
    ax.legend(fontsize=6, ncol=2)
  ax = axes[0][-1]
  for act in acts:
    ks = sorted(r["fits"][act])
    losses = np.array([r["fits"][act][k]["final_loss"] for k in ks])
    mean, std = losses.mean(1), losses.std(1, ddof=1) if losses.shape[1] > 1 else 0 * losses[:, 0]
    ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=f"{act} (n={losses.shape[1]})")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("k (hidden units)")
  ax.set_ylabel("final training MSE")
  ax.set_title("Fitting error vs k (mean ± std)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


def _plot_hard_sigmoids(pic, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(4.8, 3.6))
  n = pic["segments"][1]
  x, target, s, xs, ys, hard = pic["curves"][n]
  ax = axes[0][0]
  ax.plot(x, target, "r-", lw=2.5, label=f"red curve: {n} linear pieces")
  (w, b), (c, c0) = piecewise.dense_layers(hard)
  ax.axhline(c0[0], color="gray", lw=0.8, ls=":", label="constant")
  for i in range(len(b)):
    part = c[i, 0] * 0.5 * (np.maximum(w[0, i] * x + b[i] + 1, 0) - np.maximum(w[0, i] * x + b[i] - 1, 0))
    ax.plot(x, part, lw=0.8, alpha=0.8)
  ax.plot(x, s, "k--", lw=1, label="sum of sigmoids")
  ax.set_title("constant + sum of hard sigmoids")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  ax.plot(pic["segments"], pic["sigmoid"], "o-", label="sigmoids")
  ax.plot(pic["segments"], np.maximum(pic["hard"], 1e-16), "s-", label="hard sigmoids (exact)")
  ax.set_yscale("log")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("number of segments (= units)")
  ax.set_ylabel("max |error| vs the piecewise-linear curve")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  pic = hard_sigmoid_picture(config)
  results = fit_all(config)
  results["regions"] = count_regions(config, results["fits"])
  section = Section(name="lec01_piecewise",
                    title="Lectures 1-2: piecewise-linear curves from ReLUs and sigmoids",
                    command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot_hard_sigmoids(pic, os.path.join(workdir, "hard_sigmoids.png")),
             "Left: a piecewise-linear interpolant of the curve is exactly a constant plus "
             "one hard sigmoid per segment (thin lines); dashed: each replaced by a "
             "sigmoid. Right: the sigmoid sum's max error falls as segments multiply."),
      Figure(_plot_fits(config, results, os.path.join(workdir, "fits.png")),
             "Fits of 1 hidden layer with k units (seed 0), exact breakpoints of the largest "
             "ReLU net, and final training MSE vs k (mean ± std over seeds)."),
  ]
  rows = []
  for k in config.widths:
    row = [str(k)]
    for act in config.activations:
      row.append(str(claims.Stat.of(results["fits"][act][k]["final_loss"])))
    reg = results["regions"].get(k)
    if reg:
      row += [str(k + 1), ", ".join(str(row_[0]) for row_ in reg),
              ", ".join(f"{row_[1]}/{row_[2]}" for row_ in reg)]
    rows.append(tuple(row))
  section.tables = [Table(
      f"1 hidden layer, k units, {config.num_steps} full-batch Adam steps (lr "
      f"{config.optimizer.learning_rate}); seeds {tuple(config.seeds)}",
      ("k", *(f"{a} train MSE" for a in config.activations), "bound k+1",
       "exact ReLU regions on R (per seed)", "exact / grid regions on data range (per seed)"),
      tuple(rows))]
  section.notes = [
      f"Hard-sigmoid picture: segments {pic['segments']}, max |error| of the sigmoid sum "
      f"{[f'{e:.3g}' for e in pic['sigmoid']]}; the hard-sigmoid sum is exact "
      f"(max error {max(pic['hard']):.1e}).",
      "Exact regions come from leeml.piecewise.linear_regions (interval propagation in numpy "
      "float64, no sampling); the grid count is an independent forward pass comparing "
      "activation patterns of neighbouring grid points.",
      "First-layer biases start with each kink inside the data range (see the config "
      "docstring for the pilot with flax's zero bias init, where every kink starts at x=0).",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec01_piecewise",
                    title="Lectures 1-2: piecewise-linear curves (ReLU / sigmoid sums)",
                    config_file="configs/lec01_piecewise.py", run=run))
