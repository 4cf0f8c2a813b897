"""Lecture 9 (CNN, spatial transformer): ST-CNN vs CNN on distorted digits (R and RTS).

  leeml-reproduce --only=lec09_stn --scale=cpu      (~1 min on 2 idle CPU cores; smoke: ~30 s)

(cpu: 4 populations of 3 seeds (one compile per model; R and RTS share it through the
persistent compilation cache), 300 steps each.)

Expected (lecture 9: "CNN can't handle rotation and scaling. Improvement: spatial
transformer layer"; Jaderberg et al. 2015, Table 1, distorted MNIST test error: CNN 1.2% /
0.8% vs ST-CNN (affine) 0.7% / 0.5% on R / RTS): on the embedded digits distorted like the
paper's R (rotation +-45 deg, the issue's range; the paper's R uses +-90) and RTS
(rotation +-45 deg, scale 0.7-1.2, translation on a larger canvas), the same classifier
CNN with an affine spatial transformer in front reaches a lower test error than without
it, trained identically (same steps, optimizer, batch order). Absolute errors are higher
than the paper's: 1,497 training digits (x4 distortions) instead of 60,000, and minutes
of CPU training.
Second, measured on R: the transformer learns to undo the rotation without any
supervision of theta -- the rotation angle of its theta is anti-correlated with the
distortion angle each test digit received.

Thresholds are fixed here, before any cpu-scale run; the experiment only reads them.
"""

import ml_collections

from configs import default


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: smoke, cpu, full")
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2)
  c.variants = ("R", "RTS")
  c.models = ("cnn", "st_cnn")

  # The classifier CNN is the same in both models (ST-CNN = transformer + this CNN).
  classifier = dict(channels=(16, 32), kernel_size=3, pool="max", dense_width=64,
                    activation="relu", norm="none")
  c.model_fields = ml_collections.ConfigDict(dict(
      cnn=dict(name="cnn", **classifier),
      # Localization net on the 2x-downsampled input (14x14): cheap, and pose shows there.
      st_cnn=dict(name="st_cnn", loc_channels=(8, 16), loc_dense_width=32, loc_downsample=1,
                  **classifier)))

  # The dataset section; `variant` is filled in per run. Data seed fixed (0): training
  # seeds change the initialization and batch order, not the data.
  c.dataset = ml_collections.ConfigDict(dict(
      name="distorted_digits", canvas_size=28, digit_size=16, max_angle=45.0, min_scale=0.7,
      max_scale=1.2, train_copies=4, test_copies=4, seed=0))

  t = default.get_config("cpu")
  t.progress_bar = False
  t.batch_size = 64
  t.eval_batch_size = 600
  t.optimizer.name = "adam"
  t.optimizer.learning_rate = 1e-3
  t.schedule.name = "constant"
  # cpu: 300 steps (was 1,000 before issue 16's cpu budget of 60 s; the timing pilot of
  # this experiment already showed ST-CNN ahead on RTS at 300 steps, test accuracy 0.915
  # vs 0.56). Thresholds unchanged. Confirmed on fresh seeds 1000-1002 (not in any pilot;
  # 2026-12-01): all 3 claims PASS: test error ST-CNN vs CNN 0.059 vs 0.091 (R), 0.108 vs
  # 0.429 (RTS); r(distortion angle, theta angle) = -0.914.
  t.num_train_steps = {"smoke": 60, "cpu": 300, "full": 20000}[scale]
  t.eval_every_steps = t.num_train_steps // 5
  t.log_every_steps = t.eval_every_steps
  t.checkpoint_every_steps = t.num_train_steps
  t.keep_checkpoints = 1
  c.train = t

  if scale == "smoke":
    c.seeds = (0,)
    c.dataset.train_copies = 1
    c.dataset.test_copies = 1
  if scale == "full":
    c.seeds = (0, 1, 2, 3, 4)
    c.dataset.train_copies = 20
    c.dataset.test_copies = 10
    c.train.batch_size = 256
    c.train.eval_batch_size = 3000

  c.num_plot = 10  # test digits shown in the rectified-output figure (per variant)

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      # Mean test error of ST-CNN over seeds < mean test error of the CNN minus this,
      # on each variant (Table 1 shape: ST-CNN below CNN).
      error_margin=0.0,
      # On R, Pearson r between the distortion angle and the rotation angle of the
      # learned theta, averaged over seeds, is below this (the transformer rotates back).
      max_angle_correlation=-0.5))
  return c
