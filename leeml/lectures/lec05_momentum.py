"""Lecture 5 (momentum): gradient descent vs gradient descent + momentum.

A. On a 2-D error surface with a local minimum, a saddle point (the barrier) and the
   global minimum (`leeml.surfaces.tilted_double_well`): plain gradient descent started on
   the right stops in the local minimum (gradient = 0 there); the lecture's momentum
   m <- lambda m - eta g, theta <- theta + m, with the same eta, carries the point over the
   barrier into the global minimum. Several starting points, the same eta for both.
B. On a network: the same MLP, initialization and mini-batches trained by SGD and by SGD +
   the lecture's momentum (same eta); momentum reaches a training-loss target in fewer
   steps, over several seeds. Both arms are members of one population
   (`leeml.curve_fit.classifier_program`, one compile): the lecture's momentum rule with
   the traced momentum lambda = 0 (plain SGD: m = -eta g) or lambda = cfg.momentum.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leeml import claims, curve_fit, optim, plotting, population, surfaces, timing
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 5 (Batch and Momentum), slides 'Gradient Descent + Momentum': "
          "m^{t+1} = lambda m^t - eta g^t, theta^{t+1} = theta^t + m^{t+1}; 'the movement "
          "... may not stop at a local minimum / saddle point'")

def steps_to_target(eval_steps, curve, target: float) -> float:
  """First evaluated step with loss < target, or inf if never (NaN counts as never)."""
  hit = np.flatnonzero(np.nan_to_num(np.asarray(curve), nan=np.inf) < target)
  return float(eval_steps[hit[0]]) if hit.size else float("inf")


# ----------------------------------------------------------------------------- A. surface


def surface_runs(cfg) -> dict:
  """GD and lecture momentum (same eta) from a grid of starts on the tilted double well.

  Both are the lecture's rule m <- lambda m - eta g with lambda traced (one compile):
  lambda = 0 is plain GD exactly (m = -eta g, as optax.sgd(eta))."""
  loss = surfaces.tilted_double_well(cfg.tilt, cfg.valley_curvature)
  points = surfaces.double_well_points(cfg.tilt)
  starts = np.array([(a, b) for a in cfg.start_w1 for b in cfg.start_w2], np.float32)

  @jax.jit
  @jax.vmap
  def paths(lam):
    tx = optim.lecture_momentum(cfg.learning_rate, lam)
    return surfaces.trajectories(loss, tx, starts, cfg.num_steps)

  with timing.phase("train"):
    both = jax.device_get(paths(jnp.asarray([0.0, cfg.momentum], jnp.float32)))
  out = {"points": points, "starts": starts,
         "start_loss": np.asarray(both.loss[0, :, 0], np.float64)}
  for j, key in enumerate(("gd", "momentum")):
    tr = jax.tree.map(lambda a, j=j: np.asarray(a[j]), both)
    end = np.asarray(tr.points[:, -1], np.float64)
    out[key] = dict(
        paths=tr.points, loss=tr.loss, grad_norm=tr.grad_norm,
        end=end, final_loss=np.asarray(tr.loss[:, -1], np.float64),
        final_grad_norm=np.asarray(tr.grad_norm[:, -1], np.float64),
        at_local=np.linalg.norm(end - [points["local_min"], 0.0], axis=1) < cfg.tol,
        at_global=np.linalg.norm(end - [points["global_min"], 0.0], axis=1) < cfg.tol)
  return out


def _plot_surface(res, cfg, path: str) -> str:
  loss = surfaces.tilted_double_well(cfg.tilt, cfg.valley_curvature)
  xs, ys, grid = surfaces.grid(loss, (-2.0, 2.3), (-1.6, 1.6), num=161)
  fig, axes = plotting.figure(ncols=2, size=(6.2, 4.6))
  ax = axes[0][0]
  ax.contour(xs, ys, grid, levels=np.linspace(grid.min(), 6.0, 30), cmap="viridis",
             linewidths=0.7)
  show = [0, len(res["starts"]) // 2, len(res["starts"]) - 1]
  for key, style in (("gd", "C3"), ("momentum", "C0")):
    for j, i in enumerate(show):
      p = res[key]["paths"][i]
      ax.plot(p[:, 0], p[:, 1], ".-", color=style, ms=1.5, lw=0.8,
              label=("GD" if key == "gd" else "GD + momentum (lecture)") if j == 0 else None)
  pts = res["points"]
  for name, marker in (("local_min", "o"), ("saddle", "X"), ("global_min", "*")):
    ax.plot(pts[name], 0.0, marker, color="k", ms=10, mfc="w",
            label=f"{name.replace('_', ' ')} (L = {pts[name + '_loss']:.2f})")
  ax.plot(res["starts"][:, 0], res["starts"][:, 1], "k+", ms=6, label="starts")
  ax.set_xlabel("w1")
  ax.set_ylabel("w2")
  ax.set_title(f"L = (w1²-1)² + {cfg.tilt:g} w1 + {cfg.valley_curvature:g} w2²/2, "
               f"eta = {cfg.learning_rate:g}, lambda = {cfg.momentum:g}")
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
  ax = axes[0][1]
  for key, color in (("gd", "C3"), ("momentum", "C0")):
    for j, i in enumerate(show):
      ax.plot(res[key]["paths"][i][:, 0], color=color, lw=1,
              label=("GD" if key == "gd" else "GD + momentum") if j == 0 else None)
  for name in ("local_min", "saddle", "global_min"):
    ax.axhline(pts[name], color="k", lw=0.6, ls=":")
    ax.text(cfg.num_steps, pts[name], name.replace("_", " "), fontsize=7, ha="right",
            va="bottom")
  ax.set_xscale("symlog", linthresh=10)
  ax.set_xlim(0, cfg.num_steps)
  ax.set_xlabel("step")
  ax.set_ylabel("w1")
  ax.set_title("w1 along the way (3 of the starts)")
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- B. network


ARMS = ("sgd", "momentum")


def network_program(cfg) -> population.Program:
  """The MLP on the dataset trained by the lecture's momentum rule with traced eta and
  lambda (lambda = 0 is plain mini-batch SGD, exactly: m = 0 m - eta g)."""
  x, y, num_classes = curve_fit.load_arrays(cfg.dataset, cfg.num_examples)
  opt = curve_fit.optimizer_config(name="lecture_momentum", learning_rate=cfg.learning_rate,
                                   momentum=cfg.momentum)
  return curve_fit.classifier_program(
      ml_collections.ConfigDict(dict(cfg.model)), x, y, num_classes, loss=cfg.loss,
      optimizer_cfg=opt, num_steps=cfg.num_steps, batch_size=cfg.batch_size,
      hparams={"learning_rate": cfg.learning_rate, "momentum": cfg.momentum})


def network_members(cfg, seeds) -> list[population.Member]:
  """Every seed in both arms: SGD (lambda = 0) and momentum (lambda = cfg.momentum), the
  same eta, so both see the same inits and mini-batches."""
  return [m for arm, lam in zip(ARMS, (0.0, cfg.momentum))
          for m in population.grid(seeds, arm=arm, learning_rate=[cfg.learning_rate],
                                   momentum=[lam])]


def network_runs(cfg, seeds) -> dict:
  members = network_members(cfg, seeds)
  curves = curve_fit.train_curves(network_program(cfg), members, num_steps=cfg.num_steps,
                                  eval_every=cfg.eval_every, desc="lec05 network")
  out = {}
  for arm in ARMS:
    ids = [i for i, m in enumerate(members) if m.arm == arm]
    r = {k: curves[k][ids] for k in ("train_loss", "batch_loss", "grad_norm", "nonfinite_step")}
    r["eval_steps"] = curves["eval_steps"]
    r["steps_to_target"] = np.asarray(
        [steps_to_target(r["eval_steps"], c, cfg.target_loss) for c in r["train_loss"]])
    out[arm] = r
  return out


def _plot_network(res, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=1, size=(6.0, 3.8))
  ax = axes[0][0]
  for key, label in (("sgd", "SGD"), ("momentum", f"SGD + momentum (lambda={cfg.momentum})")):
    plotting.mean_band(ax, res[key]["eval_steps"], res[key]["train_loss"], label)
  ax.axhline(cfg.target_loss, color="k", ls=":", lw=1, label=f"target {cfg.target_loss}")
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("full-train loss (cross-entropy)")
  ax.set_title(f"MLP {cfg.model.depth}x{cfg.model.width} on {cfg.dataset.name}, "
               f"eta = {cfg.learning_rate}, batch {cfg.batch_size}")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, s, n = config.thresholds, config.surface, config.network

  def stops(r):
    gd = r["surface"]["gd"]
    share = float(np.mean(gd["at_local"]))
    ok = share >= th.gd_local_share and float(gd["final_grad_norm"].max()) < th.stopped_grad
    return claims.Evidence(ok, {
        "share of starts where GD ends in the local minimum": claims.Stat.of([share]),
        "GD final |gradient|": claims.Stat.of(gd["final_grad_norm"]),
        "GD final loss": claims.Stat.of(gd["final_loss"])}, "")

  def passes(r):
    m = r["surface"]["momentum"]
    share = float(np.mean(m["at_global"]))
    return claims.Evidence(share >= th.momentum_global_share, {
        "share of starts where momentum ends in the global minimum": claims.Stat.of([share]),
        "momentum final loss": claims.Stat.of(m["final_loss"])},
        f"{int(m['at_global'].sum())} of {len(m['at_global'])} starts")

  def faster(r):
    return claims.less_than("momentum steps to target", r["network"]["momentum"]["steps_to_target"],
                            "SGD steps to target", r["network"]["sgd"]["steps_to_target"],
                            paired=True)

  starts = len(s.start_w1) * len(s.start_w2)
  return [
      claims.Claim(
          "lec05.surface.gd_stops_at_local_min",
          "Gradient descent stops where the gradient is zero: at the local minimum",
          SOURCE,
          f"from {starts} starts right of the barrier (all with loss above the saddle's), "
          f"GD (eta {s.learning_rate}, {s.num_steps} steps) ends within {s.tol} of the local "
          f"minimum in a share >= {th.gd_local_share} of starts, with |grad| < "
          f"{th.stopped_grad}", stops),
      claims.Claim(
          "lec05.surface.momentum_passes_local_min",
          "With momentum the movement does not stop at the local minimum: it rolls over the "
          "barrier (saddle point) into the lower minimum", SOURCE,
          f"same starts and eta, lambda = {s.momentum}: ends within {s.tol} of the global "
          f"minimum in a share >= {th.momentum_global_share} of starts", passes),
      claims.Claim(
          "lec05.network.momentum_reaches_target_faster",
          "On a network, momentum reaches a training-loss target in fewer steps than plain "
          "(mini-batch) gradient descent with the same eta", SOURCE,
          f"steps until full-train loss < {n.target_loss} (checked every {n.eval_every} "
          f"steps, inf if never within {n.num_steps}): momentum < SGD on every seed "
          f"({len(config.seeds)} seeds)", faster),
  ]


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  results = {"surface": surface_runs(config.surface),
             "network": network_runs(config.network, config.seeds)}
  section = Section(name="lec05_momentum", title="Lecture 5: momentum", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  s, n, r = config.surface, config.network, results["surface"]
  section.figures = [
      Figure(_plot_surface(r, s, os.path.join(workdir, "double_well.png")),
             "GD (red) and the lecture's GD + momentum (blue) with the same eta from three of "
             "the starts; contours of the tilted double well."),
      Figure(_plot_network(results["network"], n, os.path.join(workdir, "network.png")),
             f"Full-train loss, mean ± std over {len(config.seeds)} seeds (same inits and "
             "mini-batches for both optimizers)."),
  ]
  pts = r["points"]
  section.tables = [
      Table(f"A. End points after {s.num_steps} steps (local min w1 = {pts['local_min']:.3f}, "
            f"saddle {pts['saddle']:.3f}, global min {pts['global_min']:.3f})",
            ("start (w1, w2)", "start loss", "GD end w1", "GD final loss",
             "momentum end w1", "momentum final loss"),
            tuple((f"({a:.2f}, {b:.2f})", f"{l0:.3g}", f"{g:.3f}", f"{gl:.3f}", f"{m:.3f}",
                   f"{ml:.3f}") for (a, b), l0, g, gl, m, ml in zip(
                       r["starts"], r["start_loss"], r["gd"]["end"][:, 0], r["gd"]["final_loss"],
                       r["momentum"]["end"][:, 0], r["momentum"]["final_loss"]))),
      Table(f"B. {n.dataset.name}, MLP {n.model.depth}x{n.model.width}: steps to full-train "
            f"loss < {n.target_loss}",
            ("optimizer", "steps to target", "final full-train loss"),
            tuple((label, str(claims.Stat.of(results["network"][k]["steps_to_target"])),
                   str(claims.Stat.of(results["network"][k]["train_loss"][:, -1])))
                  for k, label in (("sgd", "SGD"), ("momentum", "SGD + lecture momentum")))),
  ]
  section.notes = [
      "Momentum is leeml.optim.lecture_momentum (m <- lambda m - eta g; theta <- theta + m); "
      "with a constant eta it equals optax.sgd(eta, momentum=lambda). GD is the same rule "
      "with lambda = 0 (exactly optax.sgd(eta)); both run as one compiled program.",
      "Momentum does not pass every barrier: lambda < 1 is friction, so a start only a "
      "little higher than the saddle can still end in the local minimum (and from a start "
      "lower than the saddle it never passes); with a larger lambda it can roll back over "
      "the barrier. The table lists every start.",
      f"Network B: mini-batch SGD (batch {n.batch_size}) on the same seeds, inits and batch "
      f"order for both optimizers; seeds {tuple(config.seeds)}. Both arms are members of "
      "one population (one compile): the lecture's momentum rule with traced lambda, "
      "lambda = 0 for SGD; batches are the core's (seed, epoch) permutations; the full-train "
      f"loss is evaluated every {n.eval_every} steps.",
  ]
  frozen = [f"{arm} seed {seed}: step {n}" for arm in ARMS
            for seed, n in zip(config.seeds, results["network"][arm]["nonfinite_step"]) if n]
  if frozen:
    section.notes.append("Went NaN/inf in B (frozen at the last finite state): "
                         + "; ".join(frozen))
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec05_momentum", title="Lecture 5: momentum (GD vs GD + momentum)",
                    config_file="configs/lec05_momentum.py", run=run))
