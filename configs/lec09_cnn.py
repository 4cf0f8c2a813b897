"""Lecture 9 (CNN): receptive field, parameter sharing, pooling, (no) rotation/scale invariance.

  python experiments/reproduce.py --only=lec09_cnn --scale=cpu --out=/tmp/lec09_cnn_cpu
  python experiments/lec09_cnn.py --scale=cpu

cpu: ~1.5 min on 2 idle CPU cores (cold compilation cache); smoke: ~30 s; full:
accelerators (more seeds and steps).

Expected, with the source of each number:
1. Receptive field (lecture 9, "Receptive field", "kernel size, stride, padding"): the
   analytic field (the R/J/offset recursion over the layer list) equals the support of
   ∂(one output unit)/∂(input) on every architecture listed below. Exact: threshold 0.
2. Parameter sharing (lecture 9, "Parameter sharing"; "larger model bias, less
   overfitting"): on the real 16x16 digits, the CNN has ≤ 1/10 of the parameters of the
   MLP and of the locally connected net (same receptive fields, no sharing), and the best
   mean test accuracy; the MLP fits the training set as well (mean train accuracy within
   0.01 of the CNN's) but has the larger train-test gap. MNIST-1D (Greydanus & Steinbach
   2020, "Scaling down deep learning", arXiv:2011.14439, table 1 / repository README):
   test accuracy logistic 32% < MLP 68% < CNN 94%; on the shuffled-position task the CNN
   falls to 56%, below the MLP's 68% (a wrong model bias hurts). We claim the order, not
   the numbers (fewer steps here).
3. Pooling (lecture 9, "Pooling ... decrease computation", "Pooling is not always good"):
   2x2 max pooling cuts the forward multiply-adds of the 16x16 digits CNN by ≥ 2x and its
   measured training step time, and costs ≤ 0.02 mean test accuracy. Where it hurts is
   measured on the native 8x8 digits (two poolings leave 2x2 maps; a third conv + pool
   leaves 1x1); no claim there.
4. Invariance (lecture 9, "CNN is not invariant to scaling and rotation (we need data
   augmentation)"): the CNN's test accuracy falls as the test images are rotated
   (0..90 degrees, non-increasing within 0.02, and ≥ 0.3 lower at 90) and as they are
   scaled away from 1 (non-increasing within 0.02, ≥ 0.2 lower at the sweep's ends);
   training with random rotations (±45°) and scalings (content x0.7..1.4) raises the mean
   accuracy over the transformed test points by ≥ 0.05 on every seed.

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: smoke, cpu, full")
  c = ml_collections.ConfigDict()
  c.seeds = {"smoke": (0, 1), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}[scale]

  # 1. Receptive field: CNN configs (run through leeml.models.CNN) and raw layer lists
  # (kind, kernel, stride, padding, dilation) run through lax, on a 28x28 input.
  c.rf = ml_collections.ConfigDict(dict(
      input_size=28,
      cnn_archs=dict(
          default_3x3_maxpool=dict(channels=(4, 8), kernel_size=3, pool="max"),
          k5_nopool=dict(channels=(4, 4, 4), kernel_size=5, pool="none"),
          stride2_valid=dict(channels=(4, 8, 8), kernel_size=3, strides=2, padding="VALID",
                             pool="none"),
          stride2_same_avgpool=dict(channels=(4, 8), kernel_size=4, strides=2, pool="avg"),
      ),
      layer_archs=dict(
          dilated=(("conv", 3, 1, "SAME", 2), ("conv", 3, 1, "SAME", 1),
                   ("pool", 2, 2, "VALID", 1), ("conv", 3, 2, 1, 1)),
          vgg_like=(("conv", 3, 1, "SAME", 1), ("conv", 3, 1, "SAME", 1),
                    ("pool", 2, 2, "VALID", 1), ("conv", 3, 1, "SAME", 1),
                    ("conv", 3, 1, "SAME", 1), ("pool", 2, 2, "VALID", 1)),
      )))

  # Training: populations (leeml.population; every seed a member of one compiled program
  # per model), Adam, the core's (seed, epoch) permutation batches.
  # The reduced cpu step counts below were chosen knowing the old verdicts; confirmed on
  # fresh seeds 1000-1002 (not in any pilot; 2026-12-01, commit 41e27a5): all 11 claims
  # PASS, e.g. sharing: CNN test accuracy 0.976 vs locally connected 0.967 vs MLP 0.966;
  # MNIST-1D: logistic 0.32 < MLP 0.67 < CNN 0.916, shuffled CNN 0.599 < MLP 0.654.
  # cpu: 500 steps (was 1,500 before the population engine, issue 16's cpu budget): 21
  # epochs of the 1,497 training digits, still to train accuracy ~1 for every model, so
  # the sharing claims (test accuracy and train-test gap of fitted models) keep their
  # meaning. Evaluated (train + test splits) 5 times per run, for the curves figure.
  digits_steps = {"smoke": 60, "cpu": 500, "full": 5000}[scale]
  c.digits = ml_collections.ConfigDict(dict(
      image_size=16, steps=digits_steps, batch_size=64, learning_rate=2e-3,
      eval_every=digits_steps // 5))
  c.models = ml_collections.ConfigDict(dict(
      mlp=dict(name="mlp", depth=2, width=256, activation="relu"),
      locally_connected=dict(name="locally_connected", channels=(16, 32), kernel_size=3,
                             pool="max", dense_width=0),
      cnn=dict(name="cnn", channels=(16, 32), kernel_size=3, pool="max", dense_width=0),
  ))

  # MNIST-1D: the paper's trio; the CNN is 1-D (see leeml/lectures/lec09_cnn.py).
  # cpu: 1,500 steps (was 3,000; issue 16's cpu budget): 37 epochs of the 4,000 training
  # examples; the claims are the paper's order of test accuracies, not its numbers (6,000
  # steps there). Evaluated once, at the end (only final accuracies are reported).
  m1d_steps = {"smoke": 100, "cpu": 1500, "full": 6000}[scale]
  c.mnist1d = ml_collections.ConfigDict(dict(
      steps=m1d_steps, batch_size=100, learning_rate=1e-2,
      shuffled=(False, True),
      mlp_width=100, mlp_depth=2, cnn_channels=25))
  c.paper_mnist1d = ml_collections.ConfigDict(dict(  # arXiv:2011.14439 / mnist1d README
      logistic=(0.32, 0.32), mlp=(0.68, 0.68), cnn=(0.94, 0.56)))  # (regular, shuffled)

  # 3. Pooling: the digits CNN with pool none vs max: (image size, channels) setups. The
  # claims read the first (the sharing CNN); the others probe where pooling may hurt: the
  # native 8x8 digits (maps 8 -> 4 -> 2) and a third conv+pool (8 -> 4 -> 2 -> 1); they
  # carry no claim and run at full scale only (at cpu scale they cost 4 of the 12
  # compiles and ~40% of the training for issue 16's budget).
  setups = ((16, (16, 32)), (8, (16, 32)), (8, (16, 32, 32)))
  c.pooling = ml_collections.ConfigDict(dict(
      setups=setups if scale == "full" else setups[:1], pools=("max", "none")))

  # 4. Invariance sweeps (test set only) and the augmentation used in training.
  c.invariance = ml_collections.ConfigDict(dict(
      angles=(0, 15, 30, 45, 60, 75, 90, 135, 180),   # each averaged over ±angle
      magnifications=(0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 1.75, 2.0),  # content size
      augment_max_angle=45.0, augment_magnification=(0.7, 1.4)))

  c.thresholds = ml_collections.ConfigDict(dict(
      rf_mismatch=0,                 # analytic vs empirical: exact agreement
      param_ratio=10.0,              # CNN params * ratio <= MLP's and LC's
      train_tolerance=0.01,          # MLP mean train acc >= CNN's - this
      pool_mac_ratio=2.0,            # MACs without pooling / with >= this
      pool_max_acc_loss=0.02,        # mean test acc(no pool) - acc(max pool) <= this
      monotone_tolerance=0.02,       # sweep may rise by at most this between steps
      rotation_drop=0.3,             # acc(0) - acc(90°) >= this
      scale_drop=0.2,                # acc(x1) - acc(sweep ends) >= this (each end)
      augment_gain=0.05))            # every seed: aug - plain (mean over transformed) >=
  return c
