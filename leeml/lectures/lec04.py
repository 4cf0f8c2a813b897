"""Lecture 4 (critical points): Hessian eigenvalues decide local min / max / saddle.

A. The lecture's tiny network y = w1·w2·x on one example: error surface, critical points
   found by code (gradient-norm minimization from a grid of starts) against the analytic
   ones, classified by their Hessians; a saddle escape along the negative-curvature
   eigenvector drawn on the surface.
B. Minimum ratio: small MLPs trained from several seeds, then driven to critical points;
   exact Hessian spectra; minimum ratio vs training loss and its histogram.
(C. Lanczos at ≥1M parameters is a benchmark: benchmarks/lanczos_scale.py.)
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import claims, curvature, data, datasets, losses, plotting, population, timing
from leeml.lectures import Experiment, Figure, Section, Table, register
from leeml.models import MLP

SOURCE = ("Lecture 4 (When gradient is small: local minimum and saddle point), slides "
          "'Tayler Series Approximation', 'Example', 'Don't be afraid of saddle point', "
          "'Saddle Point v.s. Local Minima' (empirical study)")

# ----------------------------------------------------------------------------- A. tiny


def tiny_loss(cfg):
  """L(w) = (ŷ - w1 w2 x)²: the lecture's 1-1-1 linear network on one example."""
  return lambda p: (cfg.y_hat - p["w"][0] * p["w"][1] * cfg.x) ** 2


def tiny_network(cfg, rtol: float = 1e-4) -> dict:
  loss = tiny_loss(cfg)
  search = curvature.make_gradient_norm_minimizer(
      loss, adam_steps=cfg.adam_steps, learning_rate=cfg.adam_learning_rate,
      lm_steps=cfg.newton_steps, target=cfg.grad_target)
  axis = np.linspace(-cfg.extent, cfg.extent, cfg.starts_per_axis)
  found = []
  for w1 in axis:
    for w2 in axis:
      r = search({"w": jnp.array([w1, w2], jnp.float32)})
      cp = curvature.classify_critical_point(loss, r.params, rtol=rtol)
      w = np.asarray(r.params["w"], np.float64)
      # Analytic: ∇L = -2(ŷ - w1 w2 x) x (w2, w1) = 0  <=>  w = 0  or  w1 w2 x = ŷ.
      d_origin, d_hyper = float(np.linalg.norm(w)), abs(w[0] * w[1] * cfg.x - cfg.y_hat)
      analytic = (curvature.SADDLE if d_origin < d_hyper else curvature.LOCAL_MIN)
      found.append(dict(start=(w1, w2), w=w, grad_norm=r.grad_norm, loss=r.loss,
                        kind=cp.kind, analytic_kind=analytic,
                        distance=min(d_origin, d_hyper), eigenvalues=cp.eigenvalues))
  # Escape: at the saddle the gradient is exactly 0, so gradient descent stays there.
  origin = {"w": jnp.zeros(2, jnp.float32)}
  cp0 = curvature.classify_critical_point(loss, origin, rtol=rtol)
  grad = jax.jit(jax.grad(loss))
  escaped, escaped_loss = curvature.escape_saddle(loss, origin, cp0.escape_direction,
                                                  cfg.escape_step)
  path, p = [np.zeros(2), np.asarray(escaped["w"])], escaped
  with timing.phase("train"):
    for _ in range(cfg.gd_steps):
      p = jax.tree.map(lambda a, g: a - cfg.gd_learning_rate * g, p, grad(p))
      path.append(np.asarray(p["w"]))
  gd_at_saddle = jax.tree.map(lambda a, g: a - cfg.gd_learning_rate * g, origin, grad(origin))
  axis = np.linspace(-cfg.extent, cfg.extent, cfg.grid)
  w1, w2 = np.meshgrid(axis, axis, indexing="xy")
  return dict(found=found, saddle=cp0, saddle_loss=float(loss(origin)),
              escape_loss=escaped_loss, final_loss=float(loss(p)), path=np.asarray(path),
              gd_at_saddle_moved=float(jnp.linalg.norm(gd_at_saddle["w"])),
              surface=(axis, (cfg.y_hat - w1 * w2 * cfg.x) ** 2))


def _plot_tiny(tiny, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=1, size=(6.4, 5.6))
  ax = axes[0][0]
  axis, surf = tiny["surface"]
  im = ax.contourf(axis, axis, np.log10(surf + 1e-3), levels=30, cmap="viridis")
  fig.colorbar(im, ax=ax, label="log10(L + 1e-3)")
  h = np.linspace(0.5 / cfg.extent, cfg.extent, 200)
  for s in (1, -1):
    ax.plot(s * h, s * cfg.y_hat / (cfg.x * h), "w--", lw=1,
            label="analytic minima w1·w2 = 1" if s == 1 else None)
  style = {curvature.SADDLE: ("rX", "saddle point"), curvature.LOCAL_MIN: ("wo", "local min"),
           curvature.LOCAL_MAX: ("m^", "local max"), curvature.FLAT: ("ks", "flat")}
  seen = set()
  for f in tiny["found"]:
    if f["grad_norm"] <= cfg.grad_target:
      marker, label = style[f["kind"]]
      ax.plot(*f["w"], marker, ms=9 if f["kind"] == curvature.SADDLE else 4, mec="k",
              label=f"found by code: {label}" if f["kind"] not in seen else None)
      seen.add(f["kind"])
  p = tiny["path"]
  ax.plot(p[:, 0], p[:, 1], "r.-", lw=1.2, ms=3, label="escape along u, then GD")
  ax.annotate("", xy=p[1], xytext=p[0], arrowprops=dict(arrowstyle="->", color="r", lw=2))
  ax.set_xlim(-cfg.extent, cfg.extent)
  ax.set_ylim(-cfg.extent, cfg.extent)
  ax.set_xlabel("w1")
  ax.set_ylabel("w2")
  ax.set_title("L = (1 - w1·w2)²: critical points and a saddle escape")
  ax.legend(fontsize=7, loc="lower left")
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- B. ratio


def _digits_subset(cfg):
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": cfg.dataset}))
  x = np.asarray(ds.train.inputs[: cfg.num_examples], np.float32)
  return x.reshape(len(x), -1), np.asarray(ds.train.targets[: cfg.num_examples]), ds.num_classes


def snapshot_program(cfg, x, y, model, loss_fn) -> population.Program:
  """Full-batch Adam (batch = the whole subset) on the lecture-4 MLP as a population
  Program whose state keeps a copy of the params after each of `cfg.train_steps` steps
  (step 0: the init), so one run of max(train_steps) steps serves every length."""
  kept = tuple(sorted(set(cfg.train_steps)))
  at = jnp.asarray(kept, jnp.int32)
  tx = optax.adam(cfg.train_learning_rate)

  def init(key):
    p = model.init(key, x[:1])["params"]
    return {"params": p, "opt": tx.init(p), "step": jnp.zeros((), jnp.int32),
            "snapshots": jax.tree.map(lambda a: jnp.stack([a] * len(kept)), p)}

  def train_step(state, batch, rng, hparams):
    del rng, hparams
    def batch_loss(p):
      return jnp.mean(loss_fn(model.apply({"params": p}, batch["inputs"]), batch["targets"]))
    value, g = jax.value_and_grad(batch_loss)(state["params"])
    upd, opt = tx.update(g, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], upd)
    step = state["step"] + 1
    hit = at == step
    snaps = jax.tree.map(lambda s, a: jnp.where(hit.reshape((-1,) + (1,) * a.ndim), a[None], s),
                         state["snapshots"], params)
    return {"params": params, "opt": opt, "step": step, "snapshots": snaps}, {"loss": value}

  return population.Program(init=init, train_step=train_step,
                            train=data.ArraySplit(x, y), batch_size=len(x), family="mlp")


def minimum_ratio_points(cfg, seeds, rtol: float) -> list[dict]:
  """Train each seed's MLP for each step count (one population run of all seeds), search
  a critical point from each, classify it."""
  x, y, num_classes = _digits_subset(cfg)
  model = MLP(num_outputs=num_classes, **dict(cfg.model))
  loss_fn = losses.get_loss(cfg.loss)

  def loss(p):
    return jnp.mean(loss_fn(model.apply({"params": p}, x), y))

  program = snapshot_program(cfg, x, y, model, loss_fn)
  kept = tuple(sorted(set(cfg.train_steps)))
  with timing.phase("train"):
    result = population.run(program, population.grid(list(seeds)), num_steps=max(kept),
                            progress=False, desc="lec04 training")
  value = jax.jit(loss)
  search = curvature.make_gradient_norm_minimizer(
      loss, adam_steps=cfg.adam_steps, learning_rate=cfg.adam_learning_rate,
      lm_steps=cfg.newton_steps, target=cfg.search_target)
  points = []
  for i, seed in enumerate(seeds):
    snapshots = result.states[i]["snapshots"]
    for n in cfg.train_steps:
      p = jax.tree.map(lambda a, k=kept.index(n): jnp.asarray(a[k]), snapshots)
      trained_loss = float(value(p))
      r = search(p)
      cp = curvature.classify_critical_point(loss, r.params, rtol=rtol)
      points.append(dict(seed=seed, train_steps=n, trained_loss=trained_loss, loss=r.loss,
                         grad_norm=r.grad_norm, kind=cp.kind, ratio=cp.minimum_ratio,
                         ratio_all=cp.minimum_ratio_all, num_negative=cp.num_negative,
                         num_zero=cp.num_zero, num_params=len(cp.eigenvalues),
                         eigenvalues=cp.eigenvalues, tol=cp.tol))
  return points


def _plot_ratio(points, grad_tol, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(4.8, 3.8))
  crit = [q for q in points if q["grad_norm"] <= grad_tol]
  rest = [q for q in points if q["grad_norm"] > grad_tol]
  ax = axes[0][0]
  for group, style, label in ((crit, "o", f"|∇L| ≤ {grad_tol:g}"),
                              (rest, "x", f"|∇L| > {grad_tol:g} (not critical)")):
    if group:
      ax.scatter([q["loss"] for q in group], [q["ratio"] for q in group],
                 c=[q["seed"] for q in group], marker=style, cmap="tab10", vmin=0,
                 vmax=9, label=label)
  ax.set_xscale("log")
  ax.set_xlabel("training loss at the critical point (MSE)")
  ax.set_ylabel("minimum ratio  #pos / (#pos + #neg)")
  ax.axhline(1.0, color="k", lw=0.6, ls=":")
  ax.set_title("minimum ratio vs training loss (colour: seed)")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  ratios = [q["ratio"] for q in crit]
  ax.hist(ratios, bins=np.linspace(min(ratios + [0.5]), 1.0, 21), color="C0", edgecolor="k")
  ax.set_xlabel("minimum ratio")
  ax.set_ylabel("critical points")
  ax.set_title(f"{len(crit)} critical points (|∇L| ≤ {grad_tol:g})")
  return plotting.save(fig, path)


def _plot_spectra(points, path: str) -> str:
  fig, axes = plotting.figure(ncols=1, size=(6.4, 3.6))
  ax = axes[0][0]
  for q in sorted(points, key=lambda q: q["loss"])[:: max(1, len(points) // 6)]:
    ev = q["eigenvalues"]
    ax.plot(np.arange(len(ev)) / len(ev), np.sign(ev) * np.log10(1 + np.abs(ev) / q["tol"]),
            lw=1, label=f"seed {q['seed']}, {q['train_steps']} steps, L={q['loss']:.3g}")
  ax.axhline(0, color="k", lw=0.5)
  ax.set_xlabel("eigenvalue index / #params (ascending)")
  ax.set_ylabel("sign(λ)·log10(1 + |λ|/tol)")
  ax.set_title("Exact Hessian spectra at found critical points")
  ax.legend(fontsize=6)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, tiny_cfg = config.thresholds, config.tiny

  def classified(r):
    found = [f for f in r["tiny"]["found"] if f["grad_norm"] <= tiny_cfg.grad_target]
    agree = [f["kind"] == f["analytic_kind"] for f in found]
    far = max((f["distance"] for f in found), default=float("inf"))
    saddle_ev = r["tiny"]["saddle"].eigenvalues
    saddles = sum(f["kind"] == curvature.SADDLE for f in found)
    minima = sum(f["kind"] == curvature.LOCAL_MIN for f in found)
    passed = (bool(found) and all(agree) and far <= th.tiny_analytic_tol and saddles > 0
              and minima > 0 and np.allclose(saddle_ev, [-2, 2], atol=th.tiny_analytic_tol))
    return claims.Evidence(passed, {
        "found points agreeing with the analytic kind": claims.Stat.of([np.mean(agree)]),
        "max distance to the analytic critical set": claims.Stat.of([far]),
        "saddle eigenvalues": claims.Stat.of(saddle_ev),
    }, f"{len(found)} points found (|∇L| ≤ {tiny_cfg.grad_target:g}): {saddles} saddle, "
       f"{minima} local min; saddle λ = {np.round(saddle_ev, 6).tolist()}")

  def escape(r):
    t = r["tiny"]
    passed = (t["gd_at_saddle_moved"] == 0.0 and t["escape_loss"] < t["saddle_loss"]
              and t["final_loss"] < th.tiny_escape_loss)
    return claims.Evidence(passed, {
        "loss at the saddle": claims.Stat.of([t["saddle_loss"]]),
        "loss after the step along u": claims.Stat.of([t["escape_loss"]]),
        "loss after the escape + GD": claims.Stat.of([t["final_loss"]]),
        "distance GD moves at the saddle": claims.Stat.of([t["gd_at_saddle_moved"]]),
    }, "")

  def enough(r):
    crit = [q for q in r["points"] if q["grad_norm"] <= th.grad_norm]
    seeds = {q["seed"] for q in crit}
    return claims.Evidence(len(crit) >= th.min_points and len(seeds) >= th.min_seeds, {
        "critical points": claims.Stat.of([len(crit)]),
        "seeds with a critical point": claims.Stat.of([len(seeds)]),
        "|∇L| at all searched points": claims.Stat.of([q["grad_norm"] for q in r["points"]]),
    }, f"{len(crit)}/{len(r['points'])} searched points reached |∇L| ≤ {th.grad_norm:g}")

  def rare(r):
    crit = [q for q in r["points"] if q["grad_norm"] <= th.grad_norm]
    ratios = [q["ratio"] for q in crit]
    share = float(np.mean([x == 1.0 for x in ratios])) if ratios else float("nan")
    med = float(np.median(ratios)) if ratios else float("nan")
    return claims.Evidence(share <= th.max_local_min_share and med < 1.0, {
        "share of critical points with minimum ratio 1": claims.Stat.of([share]),
        "minimum ratio": claims.Stat.of(ratios),
        "median minimum ratio": claims.Stat.of([med]),
    }, f"{sum(x == 1.0 for x in ratios)} of {len(ratios)} critical points are local minima")

  n_train = len(config.minratio.train_steps)
  return [
      claims.Claim(
          id="lec04.tiny_net.critical_points_classified",
          statement=("At a critical point the Hessian decides: the origin of L = (1 - w1 w2)² "
                     "is a saddle point (λ = ±2), the points w1 w2 = 1 are minima"),
          source=SOURCE,
          threshold=(f"every point found with |∇L| ≤ {tiny_cfg.grad_target:g} from a "
                     f"{tiny_cfg.starts_per_axis}² grid of starts is within "
                     f"{th.tiny_analytic_tol:g} of the analytic set and has its kind; the "
                     f"saddle's eigenvalues are ±2 within {th.tiny_analytic_tol:g}"),
          check=classified),
      claims.Claim(
          id="lec04.tiny_net.saddle_escape",
          statement=("Don't be afraid of saddle point: updating along the eigenvector u of a "
                     "negative eigenvalue decreases the loss"),
          source=SOURCE,
          threshold=(f"GD moves 0 at the saddle; a step of {tiny_cfg.escape_step} along u "
                     f"lowers L, and {tiny_cfg.gd_steps} GD steps then reach L < "
                     f"{th.tiny_escape_loss:g}"),
          check=escape),
      claims.Claim(
          id="lec04.minratio.critical_points_found",
          statement="Critical points (gradient ≈ 0) of trained networks can be found",
          source=SOURCE,
          threshold=(f"≥ {th.min_points} points with |∇L| ≤ {th.grad_norm:g} from ≥ "
                     f"{th.min_seeds} seeds ({len(config.seeds)} seeds × {n_train} "
                     "training lengths searched)"),
          check=enough),
      claims.Claim(
          id="lec04.minratio.local_minima_rare",
          statement=("Minimum ratio = #positive eigenvalues / #eigenvalues is rarely 1: "
                     "local minima are rare, most critical points are saddles"),
          source=SOURCE,
          threshold=(f"among points with |∇L| ≤ {th.grad_norm:g}: share with minimum ratio "
                     f"1 ≤ {th.max_local_min_share} and median minimum ratio < 1 (|λ| ≤ "
                     f"{th.eig_rtol:g}·max|λ| counts as 0)"),
          check=rare),
  ]


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  th = config.thresholds
  results = {"tiny": tiny_network(config.tiny, rtol=th.eig_rtol),
             "points": minimum_ratio_points(config.minratio, config.seeds, th.eig_rtol)}
  section = Section(name="lec04", title="Lecture 4: critical points — Hessian, saddle "
                    "points, minimum ratio", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot_tiny(results["tiny"], config.tiny, os.path.join(workdir, "tiny_network.png")),
             "The lecture's error surface L = (1 - w1·w2)² (log scale). Markers: critical "
             "points found by minimizing |∇L| from a grid of starts, classified by their "
             "Hessian eigenvalues; dashed: the analytic minima; red: one step from the "
             "saddle along the eigenvector of λ = -2, then gradient descent."),
      Figure(_plot_ratio(results["points"], th.grad_norm,
                         os.path.join(workdir, "minimum_ratio.png")),
             "Minimum ratio at critical points of small MLPs vs their training loss, and its "
             "histogram (points with |∇L| ≤ the threshold)."),
      Figure(_plot_spectra(results["points"], os.path.join(workdir, "spectra.png")),
             "Exact Hessian spectra (all eigenvalues, ascending) at some of the found points; "
             "the flat band is |λ| ≤ tol."),
  ]
  rows = tuple((str(q["seed"]), str(q["train_steps"]), f"{q['trained_loss']:.4g}",
                f"{q['loss']:.4g}", f"{q['grad_norm']:.2e}",
                "yes" if q["grad_norm"] <= th.grad_norm else "no", q["kind"],
                f"{q['ratio']:.4f}", f"{q['ratio_all']:.3f}", str(q["num_negative"]),
                str(q["num_zero"])) for q in results["points"])
  section.tables = [
      Table(f"B. Critical points of {results['points'][0]['num_params']}-parameter MLPs "
            f"(digits, {config.minratio.num_examples} examples, {config.minratio.loss})",
            ("seed", "Adam steps", "loss after training", "loss at point", "|∇L|",
             f"|∇L| ≤ {th.grad_norm:g}", "kind", "minimum ratio", "#pos / #all",
             "#neg", "#zero"), rows),
      Table("A. Tiny network: critical points found by code",
            ("kind (code)", "kind (analytic)", "count", "max |∇L|", "max distance"),
            tuple((k, a, str(len(g)), f"{max(f['grad_norm'] for f in g):.1e}",
                   f"{max(f['distance'] for f in g):.1e}")
                  for (k, a), g in _group(results["tiny"]["found"]).items())),
  ]
  section.notes = [
      "Minimum ratio here = #positive / (#positive + #negative) with |λ| ≤ "
      f"{th.eig_rtol:g}·max|λ| counted as zero (flat: constant-zero digit pixels, "
      "symmetries, rounding); '#pos / #all' is the lecture's ratio with flat directions "
      "counted as not positive. Both equal 1 only when no eigenvalue is clearly negative.",
      "Critical points are searched by Adam on ½|∇L|² then Levenberg–Marquardt steps on ∇L "
      "(leeml/curvature/search.py); the table gives the |∇L| reached at every point.",
      "Changed after the first cpu run (12 of 24 points reached |∇L| ≤ 1e-3 then): the "
      "search's second phase was a truncated Newton step that stalled, and is now "
      "Levenberg–Marquardt; cpu scale searches 10 seeds (was 6) with up to 40 steps (was "
      "20), stopping at |∇L| ≤ 1e-4. The thresholds were not changed.",
      "Training before the search is one population run of all seeds "
      "(`leeml.population`, full-batch Adam, params kept at every listed step count); a "
      "seed's init key is the population's (split of PRNGKey(seed)), so the points differ "
      "from those of the runs before this change (init from PRNGKey(seed)).",
      "Each Levenberg–Marquardt step solves (H² + ν·max λ²·I) d = H ∇L by a float64 Cholesky "
      "solve (was: an eigendecomposition of H per step; the same step up to rounding, and "
      "the table above was unchanged to its printed digits by the switch); the spectrum is "
      "computed once per point, for its classification.",
      "Experiment C (Lanczos top-5 at ≥1M parameters) is benchmarks/lanczos_scale.py; "
      "its numbers are in BENCHMARKS.md.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


def _group(found):
  out: dict = {}
  for f in found:
    out.setdefault((f["kind"], f["analytic_kind"]), []).append(f)
  return out


register(Experiment(name="lec04", title="Lecture 4: critical points (Hessian, saddle points, "
                    "minimum ratio)", config_file="configs/lec04.py", run=run))
