"""Lecture 6 (adaptive learning rate): GD, Adagrad, RMSProp, Adam on an elongated valley;
learning-rate warmup for Adam.

  python experiments/lec06_adaptive_lr.py --scale=cpu --out=/tmp/lec06
  (~75 s of CPU time, i.e. ~1-1.5 min on 2 idle cores; 5 min 42 s wall measured on a
   heavily shared machine; smoke: ~32 s CPU)

Expected (lecture 6, "Training stuck ≠ small gradient", "Different parameters needs
different learning rate", "Learning rate scheduling", "Warm up"; notes formulas:
Adagrad sigma_t = sqrt(mean_{i<=t} g_i^2), RMSProp sigma_t = sqrt(a sigma_{t-1}^2 +
(1 - a) g_t^2)):
A. Convex elongated valley L(w) = a w1^2 / 2 + log cosh(w2 - b w1) (a = 1e-3, slightly
   sheared by b so that the floor is not an axis), from a start far along the flat
   direction and up the steep wall:
   1. gd_large_lr_stuck: GD with eta = 3 (> 2 / curvature 1 across the valley) bounces
      between the walls forever: over the second half of the run the loss changes by less
      than `stuck_rel_change` (relative) while the gradient norm stays above
      `stuck_min_grad_norm`, and the loss stays above `stuck_min_loss`.
   2. gd_small_lr_crawls: GD with eta = 0.1 (stable) crawls along the flat direction:
      after `num_steps`, neither GD run is within `min_region` of the minimum.
   3. adagrad_reaches_min_region: the lecture's Adagrad (eta = 0.3) gets within
      `min_region` of the minimum within `num_steps`.
   4. adagrad_blows_up_late: ... but then, at least `late_gap` steps after it first
      reached the valley floor (|w2 - b w1| < `floor_width`), it is thrown across the
      valley: max |w2 - b w1| >= `blowup_offset` (sigma of w2 has shrunk while the w2
      gradients were small, so eta / sigma grew past the stability limit).
   5. decay_fixes_blowup: with eta_t = eta / sqrt(1 + t / tau) (tau = 30) the same
      Adagrad never leaves the floor by more than `no_blowup_offset` after reaching it,
      reaches the minimum region and ends with loss < `decay_final_loss`.
   6. rmsprop_adam_reach_min_region: lecture RMSProp (alpha = 0.9, eta = 0.1) and Adam
      (optax, eta = 0.1) get within `min_region` of the minimum within `num_steps`.
B. Warmup (lecture 6 "Warm up", citing Liu et al. 2020 RAdam; post-norm instability:
   Xiong et al. 2020): a post-norm residual MLP (8 blocks x(LN(x + FFN(x))), width 64) on
   MNIST-1D, mini-batch Adam at lr 1e-2, 3 seeds:
   7. no_warmup_adam_worse: Adam without warmup ends with a higher full-train loss than
      Adam with a linear warmup (`warmup_steps`), by > `warmup_margin` on every seed.
   8. radam_without_warmup: RAdam without warmup ends lower than no-warmup Adam by
      > `warmup_margin` on every seed.
   (Control, no claim: the same network in pre-norm trained by no-warmup Adam.)
   Each optimizer trains its seeds as one population (leeml.curve_fit.classifier_program,
   the core's train step); batches are the core's (seed, epoch) permutations (the pilot
   used per-step random batches; the sampler changed with the move to leeml.population,
   the thresholds did not).

Setting of B chosen by a pilot (reported in the section notes): at depth 8, width 64,
lr 1e-2, post-norm, 1000 steps, no-warmup Adam stayed at chance (loss 2.25-2.31) on 3
seeds while warmup (0.57-0.77) and RAdam (0.33-0.41) trained; the pre-norm control
trained without warmup (0.21). The setting is fixed here before the cpu-scale run.
Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  c = ml_collections.ConfigDict()

  # A. The elongated valley (leeml.surfaces.elongated_valley) and the optimizers on it.
  c.surface = ml_collections.ConfigDict(dict(
      flat_curvature=1e-3, steep_scale=1.0, shear=0.05, start=(-8.0, 2.6),
      num_steps={"smoke": 3000, "cpu": 3000, "full": 3000}[scale],
      xlim=(-9.0, 1.5), ylim=(-2.0, 3.0)))
  c.surface.methods = [
      # rule: gd | lecture_adagrad | lecture_rmsprop | adam | optax_adagrad
      dict(label="GD, eta=3 (large)", rule="gd", learning_rate=3.0, decay_time=0.0),
      dict(label="GD, eta=0.1 (small)", rule="gd", learning_rate=0.1, decay_time=0.0),
      dict(label="Adagrad (lecture), eta=0.3", rule="lecture_adagrad", learning_rate=0.3,
           decay_time=0.0),
      dict(label="Adagrad (lecture) + decay eta/sqrt(1+t/30)", rule="lecture_adagrad",
           learning_rate=0.3, decay_time=30.0),
      dict(label="RMSProp (lecture), alpha=0.9, eta=0.1", rule="lecture_rmsprop",
           learning_rate=0.1, decay_time=0.0),
      dict(label="Adam (optax), eta=0.1", rule="adam", learning_rate=0.1, decay_time=0.0),
      dict(label="optax.adagrad (root of the sum), eta=0.3", rule="optax_adagrad",
           learning_rate=0.3, decay_time=0.0),
  ]

  # B. Warmup on a post-norm residual MLP.
  c.seeds = {"smoke": (0, 1), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}[scale]
  c.warmup = ml_collections.ConfigDict(dict(
      dataset=dict(name="mnist1d"), num_examples={"smoke": 1000, "cpu": 0, "full": 0}[scale],
      loss="softmax_cross_entropy",
      model=dict(name="residual_mlp", depth={"smoke": 4, "cpu": 8, "full": 8}[scale],
                 width=64, expansion=2, activation="relu", norm_position="post"),
      num_steps={"smoke": 100, "cpu": 1000, "full": 3000}[scale],
      batch_size=128,
      eval_every={"smoke": 20, "cpu": 50, "full": 100}[scale],
      learning_rate=1e-2,
      warmup_steps={"smoke": 10, "cpu": 100, "full": 300}[scale]))

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      min_region=0.5,           # |w - w*| below this: "reached the minimum region"
      stuck_rel_change=1e-3,    # |L(T) - L(T/2)| / L(T/2) below this: loss plateau
      stuck_min_grad_norm=0.1,  # min |grad| over the second half above this
      stuck_min_loss=0.1,       # loss of the stuck run stays above this (min is 0)
      floor_width=0.05,         # |w2 - b w1| below this: on the valley floor
      late_gap=100,             # a blow-up counts if >= this many steps after the floor
      blowup_offset=0.3,        # ... and |w2 - b w1| reaches at least this (6x the floor)
      no_blowup_offset=0.1,     # with decay, |w2 - b w1| stays below this after the floor
      decay_final_loss=1e-3,
      warmup_margin=0.2))       # nats of final full-train loss, on every seed
  return c
