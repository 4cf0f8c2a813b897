"""Lecture 6 (adaptive learning rate): GD, Adagrad, RMSProp, Adam; learning-rate warmup.

A. The lecture's convex but elongated error surface (`leeml.surfaces.elongated_valley`):
   GD with a large eta bounces between the valley walls (loss stuck, gradient not small),
   with a small eta it crawls; the lecture's Adagrad (sigma = root mean square of all
   past gradients) reaches the minimum region but is later thrown across the valley
   (sigma across it shrank); learning-rate decay fixes that; RMSProp and Adam
   trajectories. The lecture's Adagrad and RMSProp rules are `leeml.surfaces`'
   transformations (they differ from optax's, see there); Adam is `optax.adam`.
B. Warmup: a post-norm residual MLP trained by Adam with and without a linear warmup, and
   by RAdam (no warmup), over several seeds; a pre-norm run as a control. Each optimizer
   is a population of its seeds (`leeml.curve_fit.classifier_program`, one compile per
   optimizer / architecture, which are static in the core's `optim.make_optimizer` and
   `models`; the warmup length is traced, so Adam with and without warmup share one).
"""

import os
import time

import jax
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

from leeml import claims, curve_fit, plotting, population, surfaces, timing
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 6 (Adaptive learning rate), slides 'Training stuck ≠ small gradient', "
          "'Different parameters needs different learning rate' (Root Mean Square / "
          "Adagrad, RMSProp, Adam), 'Learning Rate Scheduling' (decay, warm up)")
SOURCE_WARMUP = (SOURCE + "; Liu et al. 2020, 'On the Variance of the Adaptive Learning "
                 "Rate and Beyond' (RAdam); Xiong et al. 2020, 'On Layer Normalization in "
                 "the Transformer Architecture' (post-LN needs warmup)")

# ----------------------------------------------------------------------------- A. valley


def valley(cfg) -> surfaces.Surface:
  return surfaces.elongated_valley(cfg.flat_curvature, cfg.steep_scale, cfg.shear)


def surface_tx(method) -> optax.GradientTransformation:
  """The optimizer of one `surface.methods` entry."""
  lr = float(method["learning_rate"])
  if method.get("decay_time", 0.0):
    lr = surfaces.inverse_sqrt_decay(lr, method["decay_time"])
  rule = method["rule"]
  if rule == "gd":
    return optax.sgd(lr)
  if rule == "lecture_adagrad":
    return surfaces.lecture_adagrad(lr)
  if rule == "lecture_rmsprop":
    return surfaces.lecture_rmsprop(lr, alpha=float(method.get("alpha", 0.9)))
  if rule == "adam":
    return optax.adam(lr)
  if rule == "optax_adagrad":
    return optax.adagrad(lr)
  raise ValueError(f"rule={rule!r} is not one of: gd, lecture_adagrad, lecture_rmsprop, "
                   "adam, optax_adagrad")


def valley_runs(cfg, th) -> list[dict]:
  """One trajectory per method, with the numbers the claims read."""
  loss = valley(cfg)
  out = []
  for method in cfg.methods:
    with timing.phase("train"):
      tr = jax.block_until_ready(surfaces.trajectory(loss, surface_tx(method),
                                                     tuple(cfg.start), cfg.num_steps))
    pts, values = np.asarray(tr.points, np.float64), np.asarray(tr.loss, np.float64)
    norms = np.asarray(tr.grad_norm, np.float64)
    dist = np.linalg.norm(pts, axis=1)
    offset = np.abs(surfaces.valley_offset(pts, cfg.shear))
    floor = surfaces.first_step_below(offset, th.floor_width)
    late = offset[floor + th.late_gap:] if floor >= 0 else np.zeros(0)
    half = cfg.num_steps // 2
    out.append(dict(
        label=method["label"], rule=method["rule"], decay=bool(method["decay_time"]),
        learning_rate=float(method["learning_rate"]),
        points=pts, loss=values, grad_norm=norms, dist=dist, offset=offset,
        reach=surfaces.first_step_below(dist, th.min_region), floor=floor,
        offset_after_floor=float(offset[floor:].max()) if floor >= 0 else float("nan"),
        late_offset=float(late.max()) if late.size else 0.0,
        late_offset_step=int(floor + th.late_gap + np.argmax(late)) if late.size else -1,
        rel_change_second_half=abs(values[-1] - values[half]) / max(abs(values[half]), 1e-30),
        min_grad_second_half=float(norms[half:].min())))
  return out


def _by(runs, rule, **kw):
  return [r for r in runs if r["rule"] == rule and all(r[k] == v for k, v in kw.items())]


def _plot_valley(runs, cfg, path: str) -> str:
  xs, ys, grid = surfaces.grid(valley(cfg), cfg.xlim, cfg.ylim, num=161)
  groups = [("Gradient descent", [r for r in runs if r["rule"] == "gd"]),
            ("Adagrad (lecture), with and without decay",
             [r for r in runs if "adagrad" in r["rule"]]),
            ("RMSProp (lecture) and Adam",
             [r for r in runs if r["rule"] in ("lecture_rmsprop", "adam")])]
  fig, axes = plotting.figure(ncols=1, nrows=3, size=(9.0, 3.4))
  for ax, (title, group) in zip(axes[:, 0], groups):
    ax.contour(xs, ys, np.log10(grid + 1e-4), levels=25, cmap="Greys", linewidths=0.6)
    for r in group:
      p = r["points"]
      ax.plot(p[:, 0], p[:, 1], ".-", ms=1.5, lw=0.7, label=r["label"])
    ax.plot(*cfg.start, "k*", ms=10, label="start")
    ax.plot(0, 0, "rx", ms=10, mew=2, label="minimum")
    ax.set_xlim(cfg.xlim)
    ax.set_ylim(cfg.ylim)
    ax.set_xlabel("w1 (flat direction)")
    ax.set_ylabel("w2 (steep)")
    ax.set_title(f"{title}: {cfg.num_steps} steps")
    ax.legend(fontsize=7, loc="upper right")
  return plotting.save(fig, path)


def _plot_valley_curves(runs, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(4.6, 3.6))
  steps = np.arange(cfg.num_steps + 1)
  ax = axes[0][0]
  for r in _by(runs, "gd"):
    (line,) = ax.plot(steps, r["loss"], label=f"{r['label']}: loss")
    ax.plot(steps, r["grad_norm"], "--", color=line.get_color(), label="  |gradient|")
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_title("Training stuck ≠ small gradient (GD)")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  for r in runs:
    ax.plot(steps, np.maximum(r["dist"], 1e-9), label=r["label"], lw=1)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("|w - w*|")
  ax.set_title("distance to the minimum")
  ax.legend(fontsize=6)
  ax = axes[0][2]
  for r in runs:
    if "adagrad" in r["rule"]:
      ax.plot(steps, np.maximum(r["offset"], 1e-12), label=r["label"], lw=1)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("|w2 - b w1| (across the valley)")
  ax.set_title("Adagrad: late blow-up across the valley")
  ax.legend(fontsize=6)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- B. warmup


def warmup_variants(cfg) -> list[dict]:
  """(label, optimizer fields, schedule fields, model overrides): no-warmup Adam, warmup
  Adam, RAdam, and the pre-norm control."""
  lr, w = cfg.learning_rate, cfg.warmup_steps
  return [
      dict(key="adam", label="Adam, no warmup", opt=dict(name="adam", learning_rate=lr),
           schedule={}, model={}),
      dict(key="adam_warmup", label=f"Adam, linear warmup {w} steps",
           opt=dict(name="adam", learning_rate=lr), schedule=dict(warmup_steps=w), model={}),
      dict(key="radam", label="RAdam, no warmup", opt=dict(name="radam", learning_rate=lr),
           schedule={}, model={}),
      dict(key="adam_prenorm", label="control: pre-norm, Adam, no warmup",
           opt=dict(name="adam", learning_rate=lr), schedule={},
           model=dict(norm_position="pre")),
  ]


def warmup_program(cfg, variant, arrays) -> population.Program:
  """One variant's Program (members: seeds; the warmup length is traced, so Adam with and
  without warmup are one Program); grad norms every step for the plot."""
  x, y, num_classes = arrays
  model_cfg = ml_collections.ConfigDict(dict(cfg.model))
  model_cfg.update(variant["model"])
  opt = curve_fit.optimizer_config(**variant["opt"])
  return curve_fit.classifier_program(
      model_cfg, x, y, num_classes, loss=cfg.loss, optimizer_cfg=opt,
      schedule_cfg=curve_fit.schedule_config(name="constant"),
      hparams={"learning_rate": float(opt.learning_rate), "warmup_steps": 0.0},
      num_steps=cfg.num_steps, batch_size=cfg.batch_size, diagnostics_every=1)


def warmup_runs(cfg, seeds) -> dict:
  """Every variant's curves over `seeds`. Variants that differ only in the warmup length
  (Adam with and without it) train as one population of one compiled Program."""
  arrays = curve_fit.load_arrays(cfg.dataset, cfg.num_examples)
  groups: dict[str, list[dict]] = {}
  for v in warmup_variants(cfg):
    shared = dict(v, key="", label="", schedule={})
    groups.setdefault(repr(sorted(shared.items())), []).append(v)
  out = {}
  for variants in tqdm(list(groups.values()), desc="lec06 warmup", unit="program"):
    members = [m for v in variants for m in population.grid(
        seeds, arm=v["key"], warmup_steps=[float(v["schedule"].get("warmup_steps", 0))])]
    curves = curve_fit.train_curves(warmup_program(cfg, variants[0], arrays), members,
                                    num_steps=cfg.num_steps, eval_every=cfg.eval_every,
                                    desc="lec06 " + "+".join(v["key"] for v in variants))
    curves.pop("result")
    for i, v in enumerate(variants):
      rows = slice(i * len(seeds), (i + 1) * len(seeds))
      out[v["key"]] = dict(v, **{k: (a if k == "eval_steps" else a[rows])
                                 for k, a in curves.items()})
  return out


def _plot_warmup(runs, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(5.0, 3.7))
  for r in runs.values():
    style = ":" if r["key"] == "adam_prenorm" else "-"
    line = plotting.mean_band(axes[0][0], r["eval_steps"], r["train_loss"], r["label"])
    line.set_linestyle(style)
    window = 20
    sm = np.stack([np.convolve(g, np.ones(window) / window, mode="valid")
                   for g in r["grad_norm"]])
    plotting.mean_band(axes[0][1], np.arange(sm.shape[1]) + window, sm,
                       r["label"]).set_linestyle(style)
  axes[0][0].set_ylabel("full-train loss (cross-entropy)")
  axes[0][0].set_title(f"post-norm residual MLP, depth {cfg.model.depth}, lr {cfg.learning_rate}")
  axes[0][1].set_ylabel(f"mini-batch |gradient| ({window}-step mean)")
  axes[0][1].set_yscale("log")
  axes[0][1].set_title("gradient norm")
  for ax in axes[0]:
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, s = config.thresholds, config.surface
  stat = lambda v: claims.Stat.of([v])

  def stuck(r):
    big = max(_by(r["valley"], "gd"), key=lambda g: g["learning_rate"])
    ok = (big["rel_change_second_half"] < th.stuck_rel_change
          and big["min_grad_second_half"] > th.stuck_min_grad_norm
          and big["loss"][-1] > th.stuck_min_loss)
    return claims.Evidence(ok, {
        "relative loss change over the 2nd half": stat(big["rel_change_second_half"]),
        "min |gradient| over the 2nd half": stat(big["min_grad_second_half"]),
        "final loss": stat(big["loss"][-1])}, big["label"])

  def crawl(r):
    gds = _by(r["valley"], "gd")
    ok = all(g["dist"][-1] >= th.min_region for g in gds)
    return claims.Evidence(ok, {f"{g['label']}: final |w - w*|": stat(g["dist"][-1])
                                for g in gds}, "")

  def adagrad_reach(r):
    (a,) = _by(r["valley"], "lecture_adagrad", decay=False)
    return claims.Evidence(a["reach"] >= 0, {
        "first step with |w - w*| < min_region": stat(a["reach"]),
        "final |w - w*|": stat(a["dist"][-1])}, "-1 = never")

  def blowup(r):
    (a,) = _by(r["valley"], "lecture_adagrad", decay=False)
    return claims.Evidence(a["floor"] >= 0 and a["late_offset"] >= th.blowup_offset, {
        "first step on the floor": stat(a["floor"]),
        "max |w2 - b w1| >= late_gap steps later": stat(a["late_offset"]),
        "at step": stat(a["late_offset_step"])}, "")

  def decay(r):
    (a,) = _by(r["valley"], "lecture_adagrad", decay=True)
    ok = (a["floor"] >= 0 and a["offset_after_floor"] < th.no_blowup_offset
          and a["reach"] >= 0 and a["loss"][-1] < th.decay_final_loss)
    return claims.Evidence(ok, {
        "max |w2 - b w1| after reaching the floor": stat(a["offset_after_floor"]),
        "first step with |w - w*| < min_region": stat(a["reach"]),
        "final loss": stat(a["loss"][-1])}, "")

  def adaptive_reach(r):
    runs = _by(r["valley"], "lecture_rmsprop") + _by(r["valley"], "adam")
    return claims.Evidence(len(runs) == 2 and all(x["reach"] >= 0 for x in runs), {
        f"{x['label']}: first step with |w - w*| < min_region": stat(x["reach"])
        for x in runs}, "-1 = never")

  def finals(r, key):
    return r["warmup"][key]["train_loss"][:, -1]

  def no_warmup_worse(r):
    return claims.less_than("Adam + warmup final loss", finals(r, "adam_warmup"),
                            "Adam (no warmup) final loss", finals(r, "adam"),
                            margin=th.warmup_margin, paired=True)

  def radam(r):
    return claims.less_than("RAdam final loss", finals(r, "radam"),
                            "Adam (no warmup) final loss", finals(r, "adam"),
                            margin=th.warmup_margin, paired=True)

  n, w = s.num_steps, config.warmup
  adagrad = [m for m in s.methods if m["rule"] == "lecture_adagrad"]
  plain = next((m for m in adagrad if not m["decay_time"]), {"learning_rate": "?"})
  decayed = next((m for m in adagrad if m["decay_time"]), {"decay_time": float("nan")})
  region = f"|w - w*| < {th.min_region}"
  return [
      claims.Claim(
          "lec06.gd_large_lr_stuck",
          "Training stuck ≠ small gradient: with a large eta, GD bounces between the valley "
          "walls; the loss stops decreasing while the gradient stays large", SOURCE,
          f"GD with the largest eta ({max(m['learning_rate'] for m in s.methods if m['rule'] == 'gd')}): |L(T)-L(T/2)|/L(T/2) < "
          f"{th.stuck_rel_change}, min |grad| over steps T/2..T > {th.stuck_min_grad_norm}, "
          f"L(T) > {th.stuck_min_loss} (T = {n})", stuck),
      claims.Claim(
          "lec06.gd_small_lr_crawls",
          "On the convex elongated surface, GD does not reach the minimum with either a "
          "large or a small (stable) learning rate", SOURCE,
          f"both GD runs end with |w - w*| >= {th.min_region} after {n} steps", crawl),
      claims.Claim(
          "lec06.adagrad_reaches_min_region",
          "Adagrad (sigma = root mean square of past gradients) reaches the minimum region",
          SOURCE, f"lecture Adagrad eta={plain['learning_rate']} reaches {region} "
          f"within {n} steps", adagrad_reach),
      claims.Claim(
          "lec06.adagrad_blows_up_late",
          "... but late in training it blows up across the valley: sigma there accumulated "
          "small gradients, so eta/sigma became too large", SOURCE,
          f"after first |w2 - b w1| < {th.floor_width}, a step >= {th.late_gap} steps later "
          f"has |w2 - b w1| >= {th.blowup_offset}", blowup),
      claims.Claim(
          "lec06.decay_fixes_blowup",
          "Learning-rate decay fixes the blow-up", SOURCE,
          f"Adagrad with eta/sqrt(1 + t/{decayed['decay_time']:g}): |w2 - b w1| < "
          f"{th.no_blowup_offset} after first reaching the floor, reaches {region}, final "
          f"loss < {th.decay_final_loss}", decay),
      claims.Claim(
          "lec06.rmsprop_adam_reach_min_region",
          "RMSProp and Adam (momentum + RMSProp) reach the minimum of the elongated surface",
          SOURCE, f"both reach {region} within {n} steps", adaptive_reach),
      claims.Claim(
          "lec06.warmup.no_warmup_adam_worse",
          "Warm up: without warmup, Adam's early updates (sigma estimated from few "
          "gradients) derail training of a post-norm residual network; with warmup it "
          "trains", SOURCE_WARMUP,
          f"final full-train loss after {w.num_steps} steps: Adam + {w.warmup_steps}-step "
          f"warmup < no-warmup Adam - {th.warmup_margin} on every seed "
          f"({len(config.seeds)} seeds, lr {w.learning_rate})", no_warmup_worse),
      claims.Claim(
          "lec06.warmup.radam_without_warmup",
          "RAdam (rectified variance of the adaptive rate) trains without warmup",
          SOURCE_WARMUP,
          f"final full-train loss: RAdam < no-warmup Adam - {th.warmup_margin} on every "
          "seed", radam),
  ]


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  th = config.thresholds
  results = {"valley": valley_runs(config.surface, th),
             "warmup": warmup_runs(config.warmup, config.seeds)}
  section = Section(name="lec06_adaptive_lr", title="Lecture 6: adaptive learning rate — "
                    "Adagrad, RMSProp, Adam, decay, warmup", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  s, w = config.surface, config.warmup
  section.figures = [
      Figure(_plot_valley(results["valley"], s, os.path.join(workdir, "valley_paths.png")),
             f"Trajectories on L = {s.flat_curvature:g} w1²/2 + log cosh(w2 - {s.shear:g} "
             "w1) (contours of log10 L). The lecture's Adagrad and RMSProp rules "
             "(leeml/surfaces.py), optax Adam."),
      Figure(_plot_valley_curves(results["valley"], s,
                                 os.path.join(workdir, "valley_curves.png")),
             "Left: GD loss (solid) and gradient norm (dashed) per step; middle: distance to "
             "the minimum; right: offset across the valley for the Adagrad runs."),
      Figure(_plot_warmup(results["warmup"], w, os.path.join(workdir, "warmup.png")),
             f"Full-train loss and mini-batch gradient norm, mean ± std over "
             f"{len(config.seeds)} seeds (same inits and batches for every optimizer)."),
  ]
  section.tables = [
      Table(f"A. Elongated valley, {s.num_steps} steps from {tuple(s.start)}",
            ("method", f"first step |w-w*| < {th.min_region}", "final |w-w*|", "final loss",
             "final |grad|", "max |w2-b w1| after floor"),
            tuple((r["label"], str(r["reach"]), f"{r['dist'][-1]:.3g}", f"{r['loss'][-1]:.3g}",
                   f"{r['grad_norm'][-1]:.3g}", f"{r['offset_after_floor']:.3g}")
                  for r in results["valley"])),
      Table(f"B. Warmup: {w.model.depth}-block residual MLP (width {w.model.width}), "
            f"{w.dataset.name}, {w.num_steps} steps, batch {w.batch_size}, lr "
            f"{w.learning_rate}", ("optimizer", "final full-train loss",
                                   f"loss at step {w.eval_every}", "max early |grad|"),
            tuple((r["label"], str(claims.Stat.of(r["train_loss"][:, -1])),
                   str(claims.Stat.of(r["train_loss"][:, 0])),
                   str(claims.Stat.of(np.nanmax(r["grad_norm"][:, :w.eval_every], axis=1))))
                  for r in results["warmup"].values())),
  ]
  section.notes = [
      "Adagrad and RMSProp here are the lecture's rules: sigma_t = sqrt(mean of g_0..g_t "
      "squared) and sigma_0 = |g_0|, sigma_t = sqrt(a sigma_{t-1}^2 + (1-a) g_t^2); optax's "
      "adagrad divides by sqrt(0.1 + sum g^2) and optax's rmsprop starts its average at 0 "
      "(see tests/test_optimizer_equations.py). The optax.adagrad row shows the "
      "root-of-the-sum form: it is the lecture's Adagrad with eta/sqrt(t+1) decay.",
      "The valley, start and learning rates of A were chosen in a design pilot on the toy "
      "surface (the blow-up needs eta large enough that Adagrad reaches the floor before "
      "sigma across the valley decays: at eta = 0.2 it converged without a blow-up); the "
      "values are in configs/lec06_adaptive_lr.py.",
      "Pilot for B (before fixing the config; mnist1d, 1000 steps, 3 seeds, lr 1e-2, depth 8, "
      "width 64): post-norm no-warmup Adam stayed at chance (final loss 2.25-2.31), warmup "
      "Adam 0.57-0.77, RAdam 0.33-0.41; pre-norm no-warmup Adam 0.21 (so the failure is the "
      "post-norm + no-warmup combination, not the lr alone).",
      "Since 2026-12-01 Adam with and without warmup share one compiled Program (the warmup "
      "length traced): inside the compiled step the warmup learning rate differs from the "
      "static schedule's by up to 1 ulp on some steps, and the chaotic warmup runs end "
      "elsewhere: Adam + warmup final loss 0.844 +- 0.386 before, 0.943 +- 0.469 after "
      "(3 seeds; the other optimizers' numbers are unchanged).",
      "Also seen in the pilot: at lr 3e-3 the same post-norm network trains without warmup "
      "(Adam final loss 0.16-0.20), so B's instability needs the larger lr 1e-2.",
      "Unlike the lecture's picture, the lecture-Adagrad run here does not come back after "
      "its blow-up: with the root *mean* square, sigma across the valley settles where "
      "eta/sigma sits at the stability limit, so it keeps bouncing (final |w2 - b w1| ~ "
      "0.15); decay removes this.",
      "Every optimizer in B sees the same initializations and mini-batches (seeded); the "
      "loss is the mean cross-entropy on the whole train split, evaluated every "
      f"{w.eval_every} steps. Each optimizer trains its seeds as one population "
      "(leeml.curve_fit.classifier_program: the core's train step, the core's (seed, epoch) "
      "batch permutations; a member whose loss or gradients go NaN/inf is frozen at its "
      "last finite state).",
  ]
  frozen = [f"{r['label']} seed {seed}: step {n}" for r in results["warmup"].values()
            for seed, n in zip(config.seeds, r["nonfinite_step"]) if n]
  if frozen:
    section.notes.append("Went NaN/inf in B (frozen at the last finite state, whose loss is "
                         "reported): " + "; ".join(frozen))
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec06_adaptive_lr", title="Lecture 6: adaptive learning rate "
                    "(Adagrad, RMSProp, Adam, decay, warmup)",
                    config_file="configs/lec06_adaptive_lr.py", run=run))
