"""Lecture 5 (momentum): gradient descent vs gradient descent + momentum.

A. On a 2-D error surface with a local minimum, a saddle point (the barrier) and the
   global minimum (`leeml.surfaces.tilted_double_well`): plain gradient descent started on
   the right stops in the local minimum (gradient = 0 there); the lecture's momentum
   m <- lambda m - eta g, theta <- theta + m, with the same eta, carries the point over the
   barrier into the global minimum. Several starting points, the same eta for both.
B. On a network: the same MLP, initialization and mini-batches trained by SGD and by SGD +
   the lecture's momentum (same eta); momentum reaches a training-loss target in fewer
   steps, over several seeds.

`network_curves` (a seeds-vmapped, jitted mini-batch training loop for any optax
optimizer) is shared with lecture 6's warmup experiment.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import claims, datasets, losses, models, optim, plotting, surfaces, timing
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 5 (Batch and Momentum), slides 'Gradient Descent + Momentum': "
          "m^{t+1} = lambda m^t - eta g^t, theta^{t+1} = theta^t + m^{t+1}; 'the movement "
          "... may not stop at a local minimum / saddle point'")

# ----------------------------------------------------------------------- network training


def load_arrays(dataset_cfg, num_examples: int = 0):
  """(x [n, d] float32, y [n] int32, num_classes) of a registered dataset's train split."""
  ds = datasets.get_dataset(ml_collections.ConfigDict(dict(dataset_cfg)))
  x = np.asarray(ds.train.inputs, np.float32)
  y = np.asarray(ds.train.targets, np.int32)
  if num_examples:
    x, y = x[:num_examples], y[:num_examples]
  return x.reshape(len(x), -1), y, ds.num_classes


def optimizer(opt_cfg, num_steps: int) -> optax.GradientTransformation:
  """`leeml.optim.make_optimizer` from a flat config section (optimizer + schedule keys)."""
  base = ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=0.1, momentum=0.9, nesterov=False, b1=0.9, b2=0.999,
      eps=1e-8, weight_decay=0.0, rms_decay=0.9, initial_accumulator_value=0.1,
      grad_clip_norm=0.0))
  sched = ml_collections.ConfigDict(dict(
      name="constant", warmup_steps=0, decay_steps=0, decay_rate=0.1, boundaries=(),
      end_learning_rate_factor=0.0))
  for key, value in dict(opt_cfg).items():
    if key in base:
      base[key] = value
    elif key.startswith("schedule_"):
      sched[key[len("schedule_"):]] = value
    elif key != "label":
      raise ValueError(f"unknown optimizer field {key!r}")
  return optim.make_optimizer(base, sched, num_steps)


def network_curves(model, tx: optax.GradientTransformation, x, y, loss_name: str, seeds,
                   num_steps: int, batch_size: int, eval_every: int) -> dict:
  """Trains one network per seed (vmapped over seeds, one jit) with mini-batch `tx`.

  The seed sets the initialization and the mini-batch order (the same for every `tx`, so
  optimizers are compared on the same inits and batches). Returns numpy arrays:
  `eval_steps` [E] (0, eval_every, ..., num_steps), `train_loss` [S, E] (mean loss on all
  of x), `batch_loss` and `grad_norm` [S, num_steps] (per step, the mini-batch's).
  A diverged run carries NaN/inf from that point on.
  """
  if num_steps % eval_every:
    raise ValueError(f"num_steps={num_steps} is not a multiple of eval_every={eval_every}")
  x, y = jnp.asarray(x), jnp.asarray(y)
  loss_fn = losses.get_loss(loss_name)

  def mean_loss(params, xb, yb):
    return jnp.mean(loss_fn(model.apply({"params": params}, xb), yb))

  value_grad = jax.value_and_grad(mean_loss)

  def one_seed(key):
    init_key, data_key = jax.random.split(key)
    params = model.init(init_key, x[:1])["params"]

    def step(carry, t):
      params, state = carry
      idx = jax.random.choice(jax.random.fold_in(data_key, t), x.shape[0], (batch_size,),
                              replace=False)
      value, g = value_grad(params, x[idx], y[idx])
      upd, state = tx.update(g, state, params)
      return (optax.apply_updates(params, upd), state), (value, optax.tree.norm(g))

    def chunk(carry, c):
      carry, (values, norms) = jax.lax.scan(step, carry, c * eval_every + jnp.arange(eval_every))
      return carry, (mean_loss(carry[0], x, y), values, norms)

    carry = (params, tx.init(params))
    _, (evals, values, norms) = jax.lax.scan(chunk, carry, jnp.arange(num_steps // eval_every))
    return (jnp.concatenate([mean_loss(params, x, y)[None], evals]), values.reshape(-1),
            norms.reshape(-1))

  keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
  with timing.phase("train"):  # the periodic full-data losses are inside the same program
    train_loss, batch_loss, grad_norm = jax.block_until_ready(jax.jit(jax.vmap(one_seed))(keys))
  return {"eval_steps": np.arange(0, num_steps + 1, eval_every),
          "train_loss": np.asarray(train_loss), "batch_loss": np.asarray(batch_loss),
          "grad_norm": np.asarray(grad_norm)}


def steps_to_target(eval_steps, curve, target: float) -> float:
  """First evaluated step with loss < target, or inf if never (NaN counts as never)."""
  hit = np.flatnonzero(np.nan_to_num(np.asarray(curve), nan=np.inf) < target)
  return float(eval_steps[hit[0]]) if hit.size else float("inf")


# ----------------------------------------------------------------------------- A. surface


def surface_runs(cfg) -> dict:
  """GD and lecture momentum (same eta) from a grid of starts on the tilted double well."""
  loss = surfaces.tilted_double_well(cfg.tilt, cfg.valley_curvature)
  points = surfaces.double_well_points(cfg.tilt)
  starts = np.array([(a, b) for a in cfg.start_w1 for b in cfg.start_w2], np.float32)
  out = {"points": points, "starts": starts,
         "start_loss": np.asarray([float(loss(jnp.asarray(s))) for s in starts])}
  for key, tx in (("gd", optax.sgd(cfg.learning_rate)),
                  ("momentum", optim.lecture_momentum(cfg.learning_rate, cfg.momentum))):
    with timing.phase("train"):
      tr = jax.block_until_ready(surfaces.trajectories(loss, tx, starts, cfg.num_steps))
    end = np.asarray(tr.points[:, -1], np.float64)
    out[key] = dict(
        paths=np.asarray(tr.points), loss=np.asarray(tr.loss), grad_norm=np.asarray(tr.grad_norm),
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


def network_runs(cfg, seeds) -> dict:
  x, y, num_classes = load_arrays(cfg.dataset, cfg.num_examples)
  model = models.get_model(ml_collections.ConfigDict(dict(cfg.model)), num_classes)
  out = {}
  for key, opt in (("sgd", dict(name="sgd", learning_rate=cfg.learning_rate)),
                   ("momentum", dict(name="lecture_momentum", learning_rate=cfg.learning_rate,
                                     momentum=cfg.momentum))):
    curves = network_curves(model, optimizer(opt, cfg.num_steps), x, y, cfg.loss, seeds,
                            cfg.num_steps, cfg.batch_size, cfg.eval_every)
    curves["steps_to_target"] = np.asarray(
        [steps_to_target(curves["eval_steps"], c, cfg.target_loss)
         for c in curves["train_loss"]])
    out[key] = curves
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
      "with a constant eta it equals optax.sgd(eta, momentum=lambda).",
      "Momentum does not pass every barrier: lambda < 1 is friction, so a start only a "
      "little higher than the saddle can still end in the local minimum (and from a start "
      "lower than the saddle it never passes); with a larger lambda it can roll back over "
      "the barrier. The table lists every start.",
      f"Network B: mini-batch SGD (batch {n.batch_size}) on the same seeds, inits and batch "
      f"order for both optimizers; seeds {tuple(config.seeds)}.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec05_momentum", title="Lecture 5: momentum (GD vs GD + momentum)",
                    config_file="configs/lec05_momentum.py", run=run))
