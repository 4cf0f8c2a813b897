"""Lecture 7 (batch normalization): changing the landscape; BN trains faster and at higher lr.

  leeml-reproduce --only=lec07_batchnorm --scale=cpu     (~1-2 min on 2 CPU cores)
  python experiments/lec07_batchnorm.py --scale=cpu       (the same, this experiment only)

Expected (lecture 7, slides "Changing Landscape", "Feature Normalization", "Batch
normalization - Original paper"; Ioffe & Szegedy 2015, Fig. 1, Fig. 2 and the table of
Fig. 3):
(a) y = w1 x1 + w2 x2 + b with x1 ~ O(1), x2 ~ O(100): the MSE error surface is an
    elongated valley (the Hessian condition number is huge), so gradient descent with one
    learning rate crawls along the flat direction. Standardizing each feature makes the
    surface round (condition number ~1) and gradient descent converges in a few steps.
(b) A deep sigmoid MLP (the paper's Fig. 1 net: 3 hidden layers x 100 sigmoid units,
    batch 60) on the embedded digits, trained with SGD + momentum: with BN it reaches the
    target test accuracy in fewer steps than without (paper: Inception 31.0M steps vs
    BN-Baseline 13.3M to 72.2%, 2.3x); with BN a 5x larger learning rate is faster still
    (paper: BN-x5 2.1M steps), and BN still trains at 30x (paper: BN-x30 2.7M steps),
    a learning rate at which the plain network diverges (the paper's sigmoid Inception
    without BN never exceeded 1/1000 accuracy).

Divergence (decided before running): a run diverged if its training loss was ever
non-finite, or its final test accuracy is below `diverged_accuracy` (stuck at chance,
0.1 for 10 classes). Steps to target: the first evaluation step whose test accuracy (eval
mode: BN uses its running averages) is >= `target_accuracy`; never reached = "—" (paper).

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: cpu, full, smoke")
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2) if scale != "full" else (0, 1, 2, 3, 4)

  # (a) Changing the landscape: a linear model on two features of very different scales
  # (lecture: x1 = 1, 2, ...; x2 = 100, 200, ...). x_i = scale_i * (1 + N(0, 1)).
  c.landscape = ml_collections.ConfigDict(dict(
      num_examples=256, feature_scales=(1.0, 100.0), true_w=(1.0, 0.01), true_b=0.5,
      noise=0.1,
      # Gradient descent at learning rate 1/lambda_max(H) (the largest stable-ish step
      # for both surfaces), from w = w* + start_offset, b = b*; converged when the
      # distance to the optimum |theta - theta*| / |theta0 - theta*| <= converge_tol.
      # (Pilot, smoke scale: a relative *loss* criterion was met after 1 step on the raw
      # surface -- the steep w2 error dominates L0 -- so it could not see the flat
      # direction; changed to distance before any cpu run.)
      start_offset=(-1.2, 1.0), converge_tol=1e-3,
      max_gd_steps={"smoke": 2000, "cpu": 5000, "full": 20000}[scale],
      grid=121, extent=1.6))

  # (b) BN paper Fig. 1 / Fig. 3 on embedded data.
  c.paper = ml_collections.ConfigDict(dict(
      dataset="digits",
      model=dict(depth=3, width=100, activation="sigmoid"),  # paper Fig. 1 net
      norms=("none", "batch"),
      lr_multipliers=(1, 5, 30),           # BN-Baseline, BN-x5, BN-x30
      base_learning_rate=0.05, momentum=0.9, batch_size=60,
      num_train_steps={"smoke": 200, "cpu": 2500, "full": 10000}[scale],
      # (Changed after a pilot of part B at these cpu settings with evaluations every 25
      # steps: BN reached the target at the 2nd evaluation (step 50) at every lr, so
      # BN-Baseline and BN-x5 could not be told apart; now every 5 steps. Thresholds
      # unchanged.)
      eval_every_steps={"smoke": 10, "cpu": 5, "full": 5}[scale],
      # Fig. 1(b, c): percentiles of the input to one sigmoid of the last hidden layer.
      percentiles=(15, 50, 85), tracked_unit=0,
      # leeml.population strategy ('' = population.default_strategy).
      strategy=""))

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      # (a) raw features give an elongated surface, standardized ones a round one:
      raw_condition_min=1e3,          # kappa(H) with raw features is at least this
      standardized_condition_max=2.0,  # kappa(H) with standardized features at most this
      condition_ratio_min=100.0,       # kappa_raw / kappa_std at least this, every seed
      # GD converges within this many steps on the standardized surface, and the raw
      # surface needs at least gd_slowdown_min times as many (or does not converge
      # within max_gd_steps), every seed.
      standardized_gd_steps_max=50, gd_slowdown_min=20.0,
      # (b) target test accuracy on digits (the paper's "Inception's accuracy" role).
      target_accuracy=0.90,
      diverged_accuracy=0.2,
      # steps_plain / steps_BN at the base lr: mean over seeds at least this, and > 1 on
      # every seed (an unreached plain run counts as num_train_steps: a lower bound).
      bn_speedup_min=1.5))
  return c
