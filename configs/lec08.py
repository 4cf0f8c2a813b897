"""Lecture 8 (classification): softmax + cross-entropy vs softmax + MSE on one-hot targets.

  leeml-reproduce --only=lec08 --scale=cpu        (~2 min on 2 CPU cores; smoke: ~30 s)

Expected (lecture 8, slide "Loss of Classification": "Changing the loss function can
change the difficulty of optimization"; "Minimizing cross-entropy is equivalent to
maximizing likelihood"): from the same initialization, with the same optimizer and steps,
the cross-entropy network reaches higher training accuracy than the MSE network; on the
lecture's error surface (two logits, a third fixed very low, label = class 1) the MSE
surface is flat where the loss is large, so gradient descent started there does not move,
while cross-entropy has a gradient of order 1 there and walks to the minimum.

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections

from configs import default


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2)
  c.datasets = ("digits", "mnist1d")
  c.losses = ("softmax_cross_entropy", "softmax_mse")

  # One population of runs; dataset and loss are set per member (static settings: one
  # compile per dataset x loss, shared by its seeds). Plain SGD, as in the
  # lecture's gradient descent; the same init for both losses (init depends on the seed).
  t = default.get_config("smoke" if scale == "smoke" else "cpu")
  t.progress_bar = False
  t.eval_on_train = True
  # Only the name: each population member sets 'dataset.name' (leeml/lectures/lec08.py).
  t.dataset = ml_collections.ConfigDict(dict(name=c.datasets[0]))
  t.batch_size = 64
  t.eval_batch_size = 500
  t.model = dict(name="mlp", depth=2, width=128, activation="relu", residual=False,
                 norm="none")
  t.optimizer.name = "sgd"
  t.optimizer.learning_rate = 0.1
  t.schedule.name = "constant"
  t.num_train_steps = {"smoke": 300, "cpu": 2000, "full": 20000}[scale]
  t.eval_every_steps = t.num_train_steps // 10
  t.log_every_steps = t.eval_every_steps
  t.checkpoint_every_steps = t.num_train_steps
  t.keep_checkpoints = 1
  c.train = t
  if scale == "full":
    c.seeds = (0, 1, 2, 3, 4)

  # The lecture's error surface: logits (y1, y2) on a grid, y3 fixed at -1000, label 1.
  c.surface = ml_collections.ConfigDict(dict(
      extent=10.0, grid=101, start=(-8.0, 8.0), gd_steps=200, gd_learning_rate=1.0))

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      # CE's final training accuracy exceeds MSE's by at least this, on every seed.
      train_accuracy_margin=0.0,
      # |grad MSE| / |grad CE| at the start point is below this ("flat").
      flat_gradient_ratio=1e-3,
      # After gd_steps of gradient descent from the start, CE puts at least this much
      # probability on the right class, and MSE moved less than `mse_max_move`.
      ce_final_prob=0.9,
      mse_max_move=0.1))
  return c
