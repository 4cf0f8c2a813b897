"""Lecture 8 (classification): softmax + cross-entropy vs softmax + MSE on one-hot targets.

Two measurements, each against the lecture's statement:
1. The error surface (computed, not drawn): logits (y1, y2) on a grid with y3 fixed very
   low and the label on class 1, the lecture's picture. Where the loss is large
   (y1 << y2) the MSE surface is flat, so gradient descent from there stalls, while
   cross-entropy's gradient has norm ~sqrt(2) and walks to the minimum.
2. Training: the same MLP, the same initialization (same seed), the same SGD and number
   of steps, trained once with each loss on real embedded data (digits, MNIST-1D), over
   several seeds; the cross-entropy network reaches higher training accuracy.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from leeml import claims, lectures, losses, plotting, population, timing
from leeml.lectures import Experiment, Figure, Section, Table, register

LOSS_LABEL = {"softmax_cross_entropy": "cross-entropy", "softmax_mse": "MSE (softmax, one-hot)"}
SOURCE = "Lecture 8 (Classification), slides 'Loss of Classification' / 'MSE vs cross-entropy'"


# ----------------------------------------------------------------------------- surface


def _surface_losses(y1y2, loss_name: str):
  """Loss of logits (y1, y2, -1000) for label 0 — the lecture's 3-class picture."""
  logits = jnp.concatenate([y1y2, jnp.full(y1y2.shape[:-1] + (1,), -1000.0)], axis=-1)
  labels = jnp.zeros(y1y2.shape[:-1], jnp.int32)
  return losses.get_loss(loss_name)(logits.reshape(-1, 3), labels.reshape(-1)).reshape(
      y1y2.shape[:-1])


def error_surface(cfg) -> dict:
  """Loss grids, gradients at the start point and gradient-descent paths for both losses."""
  axis = np.linspace(-cfg.extent, cfg.extent, cfg.grid)
  grid = jnp.stack(jnp.meshgrid(axis, axis, indexing="xy"), axis=-1)  # [..., (y1, y2)]
  start = jnp.asarray(cfg.start, jnp.float32)
  out = {"axis": axis}
  for name in LOSS_LABEL:
    point_loss = lambda p, name=name: _surface_losses(p[None], name)[0]
    grad = jax.grad(point_loss)

    def gd(p, _, grad=grad):
      p = p - cfg.gd_learning_rate * grad(p)
      return p, p

    with timing.phase("train"):
      _, path = jax.block_until_ready(jax.lax.scan(gd, start, None, length=cfg.gd_steps))
    path = jnp.concatenate([start[None], path])
    final_logits = jnp.concatenate([path[-1], jnp.array([-1000.0])])
    out[name] = {
        "grid": np.asarray(_surface_losses(grid, name)),
        "start_loss": float(point_loss(start)),
        "start_grad_norm": float(jnp.linalg.norm(grad(start))),
        "path": np.asarray(path),
        "moved": float(jnp.linalg.norm(path[-1] - start)),
        "final_prob": float(jax.nn.softmax(final_logits)[0]),
    }
  return out


def _plot_surface(surface, cfg, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(5.4, 4.4))
  extent = [-cfg.extent, cfg.extent, -cfg.extent, cfg.extent]
  for ax, name in zip(axes[0], LOSS_LABEL):
    s = surface[name]
    im = ax.imshow(s["grid"], origin="lower", extent=extent, cmap="viridis", aspect="equal")
    ax.contour(surface["axis"], surface["axis"], s["grid"], levels=12, colors="white",
               linewidths=0.5, alpha=0.6)
    ax.plot(s["path"][:, 0], s["path"][:, 1], "r.-", ms=2, lw=1, label="gradient descent")
    ax.plot(*s["path"][0], "r*", ms=12, label="start (large loss)")
    ax.set_title(f"{LOSS_LABEL[name]}\n|grad| at start = {s['start_grad_norm']:.2e}")
    ax.set_xlabel("y1 (logit of the right class)")
    ax.set_ylabel("y2")
    fig.colorbar(im, ax=ax, fraction=0.046)
  axes[0][0].legend(loc="lower right", fontsize=7)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- training


def train_runs(config, workdir: str) -> dict:
  """{dataset: {loss: [per-seed curves]}}; curves hold eval steps and metrics.

  One population (`population.run_config`) of every dataset x loss x seed: the seeds of
  one dataset and loss share one compile (the dataset and the loss are static settings)."""
  members = [population.Member(s, {"dataset.name": d, "loss.name": l}, f"{d}/{l}")
             for d in config.datasets for l in config.losses for s in config.seeds]
  with timing.phase("train"):
    result = population.run_config(config.train, members,
                                   lectures.population_dir(workdir, "train", config.train, members))
  steps, train_acc = result.curves("eval_train_accuracy")
  train_loss = result.curves("eval_train_loss")[1]
  test_acc = result.curves("eval_test_accuracy")[1]
  results: dict = {}
  for i, m in enumerate(members):
    dataset, loss = m.hparams["dataset.name"], m.hparams["loss.name"]
    results.setdefault(dataset, {}).setdefault(loss, []).append({
        "seed": m.seed, "steps": steps.tolist(), "train_accuracy": train_acc[i].tolist(),
        "train_loss": train_loss[i].tolist(), "test_accuracy": test_acc[i].tolist()})
  return results


def _plot_training(results, path: str) -> str:
  datasets = list(results)
  fig, axes = plotting.figure(ncols=len(datasets), size=(4.8, 3.6))
  for ax, dataset in zip(axes[0], datasets):
    for loss, runs in results[dataset].items():
      plotting.mean_band(ax, runs[0]["steps"], [r["train_accuracy"] for r in runs],
                         LOSS_LABEL.get(loss, loss))
    ax.set_title(f"{dataset}: same init, same SGD")
    ax.set_xlabel("step")
    ax.set_ylabel("training accuracy (whole train split)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  out = []
  for dataset in config.datasets:
    def check(r, dataset=dataset):
      finals = {loss: [run["train_accuracy"][-1] for run in r["train"][dataset][loss]]
                for loss in ("softmax_cross_entropy", "softmax_mse")}
      ev = claims.less_than("MSE final train accuracy", finals["softmax_mse"],
                            "CE final train accuracy", finals["softmax_cross_entropy"],
                            margin=th.train_accuracy_margin, paired=True)
      return ev
    out.append(claims.Claim(
        id=f"lec08.ce_trains_faster.{dataset}",
        statement=("Changing the loss function can change the difficulty of optimization: "
                   "from the same start, cross-entropy reaches a higher training accuracy "
                   f"than MSE within the same number of steps ({dataset})"),
        source=SOURCE,
        threshold=(f"on every seed, CE final train accuracy > MSE's + "
                   f"{th.train_accuracy_margin} after {config.train.num_train_steps} SGD steps"),
        check=check))

  def flat(r):
    s = r["surface"]
    ratio = s["softmax_mse"]["start_grad_norm"] / s["softmax_cross_entropy"]["start_grad_norm"]
    mse_max = float(s["softmax_mse"]["grid"].max())
    passed = ratio < th.flat_gradient_ratio and s["softmax_mse"]["start_loss"] > 0.9 * mse_max
    return claims.Evidence(passed, {
        "|grad MSE| / |grad CE| at start": claims.Stat.of([ratio]),
        "MSE loss at start / max MSE on grid": claims.Stat.of([s["softmax_mse"]["start_loss"] / mse_max]),
    }, f"gradient ratio {ratio:.2e} vs threshold {th.flat_gradient_ratio}")
  out.append(claims.Claim(
      id="lec08.mse_flat_where_loss_large",
      statement="With MSE the error surface is flat where the loss is large: training gets stuck",
      source=SOURCE,
      threshold=(f"at (y1, y2) = {tuple(config.surface.start)}: |grad MSE|/|grad CE| < "
                 f"{th.flat_gradient_ratio} and the MSE loss there is > 90% of its maximum"),
      check=flat))

  def walk(r):
    s = r["surface"]
    ce, mse = s["softmax_cross_entropy"], s["softmax_mse"]
    passed = ce["final_prob"] >= th.ce_final_prob and mse["moved"] < th.mse_max_move
    return claims.Evidence(passed, {
        "CE: p(right class) after GD": claims.Stat.of([ce["final_prob"]]),
        "MSE: distance moved by GD": claims.Stat.of([mse["moved"]]),
    }, f"CE p={ce['final_prob']:.3f}, MSE moved {mse['moved']:.2e}")
  out.append(claims.Claim(
      id="lec08.gd_escapes_with_ce_only",
      statement=("Starting where the loss is large, gradient descent on cross-entropy reaches "
                 "the minimum while on MSE it does not move"),
      source=SOURCE,
      threshold=(f"after {config.surface.gd_steps} GD steps (lr {config.surface.gd_learning_rate}): "
                 f"CE p(right) >= {th.ce_final_prob} and MSE moved < {th.mse_max_move}"),
      check=walk))
  return out


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  surface = error_surface(config.surface)
  results = {"surface": surface, "train": train_runs(config, workdir)}
  section = Section(name="lec08", title="Lecture 8: classification — cross-entropy vs MSE",
                    command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [
      Figure(_plot_surface(surface, config.surface, os.path.join(workdir, "error_surface.png")),
             "The lecture's error surface, computed: loss over logits (y1, y2) with y3 = -1000 "
             "and the label on class 1; red: gradient descent from a point of large loss."),
      Figure(_plot_training(results["train"], os.path.join(workdir, "training_curves.png")),
             "Training accuracy on the whole train split, mean ± std over seeds; same "
             "architecture, initialization, optimizer and steps for both losses."),
  ]
  rows = []
  for dataset, by_loss in results["train"].items():
    for loss, runs in by_loss.items():
      rows.append((dataset, LOSS_LABEL.get(loss, loss),
                   str(claims.Stat.of([r["train_accuracy"][-1] for r in runs])),
                   str(claims.Stat.of([r["test_accuracy"][-1] for r in runs])),
                   str(claims.Stat.of([r["train_loss"][-1] for r in runs]))))
  section.tables = [Table(f"After {config.train.num_train_steps} SGD steps "
                          f"(lr {config.train.optimizer.learning_rate}, batch {config.train.batch_size})",
                          ("dataset", "loss", "train accuracy", "test accuracy",
                           "final train loss (own objective)"), tuple(rows))]
  section.notes = [
      "Losses are not comparable across objectives (CE is unbounded, softmax-MSE is at most "
      "2), so the training comparison is on accuracy; the loss column is each run's own "
      "objective.",
      f"Model: MLP {config.train.model.depth}x{config.train.model.width} "
      f"{config.train.model.activation}; seeds {tuple(config.seeds)}.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec08", title="Lecture 8: classification (cross-entropy vs MSE)",
                    config_file="configs/lec08.py", run=run))
