"""Lectures 1-2 (piecewise-linear curves): k ReLUs or k sigmoids fit a curve; exact regions.

  python experiments/reproduce.py --only=lec01_piecewise --scale=cpu   (~30 s on 2 CPU cores;
                                                                        smoke: ~10 s)

Expected (Lecture 1, "Piecewise Linear Curves": a red curve = constant + sum of a set of
hard sigmoids; "more pieces require more" units; sigmoids approximate them; Lecture 2:
ReLU = two ReLUs make a hard sigmoid): a 1-hidden-layer network of k ReLUs or k sigmoids
fits a smooth curve better as k grows, and a 1-hidden-layer ReLU net of k units is a
piecewise-linear function of at most k + 1 pieces (each unit adds one kink).

Method: full-batch Adam on a sum of sines, x in [-1, 1] (leeml.curve_fit on the population
engine: for each k, every seed with both activations is a member of one Program, one
compile per k; a member's start is the one the pre-population fit drew, so its numbers
agree with it up to float summation order). First-layer biases are drawn so each unit's kink lies in the data range
(`kinks_in_range`). Disclosure: a pilot with flax's zero bias init (every kink at x = 0)
stalled ReLU fits at MSE ~0.079 for k = 8..64 on this target; that pilot is why the init
spreads the kinks (the lecture's one hard sigmoid per segment). The thresholds below were
written after that pilot and before any run with this init.

The grid cross-check compares the grid's count with what the exact edges predict for
that grid (1 + grid cells holding an edge). Disclosure: the first smoke run required
grid == exact and failed on kinks of trained nets closer than the grid spacing (e.g.
k=32: 29 exact regions, 27 on a 20,001-point grid); the check was corrected to the
prediction above (a grid cannot resolve them), before any cpu-scale run.

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: cpu, full, smoke")
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2) if scale != "full" else (0, 1, 2, 3, 4)
  c.activations = ("relu", "sigmoid")
  c.widths = {"smoke": (2, 8, 32), "cpu": (2, 4, 8, 16, 32, 64),
              "full": (2, 4, 8, 16, 32, 64, 128, 256)}[scale]
  # The curve (leeml.datasets 'sum_of_sines'); train on a grid-like random sample.
  c.dataset = ml_collections.ConfigDict(dict(
      name="sum_of_sines", num_train=256, num_test=1024, low=-1.0, high=1.0,
      frequencies=(1.0, 2.0, 3.0), amplitudes=(1.0, 0.5, 0.3), noise=0.0, seed=0))
  c.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2))
  c.num_steps = {"smoke": 500, "cpu": 4000, "full": 20000}[scale]
  c.record_every = 20
  # Dense-grid cross-check of the exact region count (points on the data range).
  c.grid_points = {"smoke": 20_001, "cpu": 200_001, "full": 2_000_001}[scale]
  # The hard-sigmoid / sigmoid picture: the curve cut into n segments (n hard sigmoids).
  c.segments = (8, 16, 32, 64, 128)

  c.thresholds = ml_collections.ConfigDict(dict(
      # Error falls with k: mean final MSE at each k <= consecutive_factor x the mean at
      # the previous k, and MSE(largest k) <= overall_factor x MSE(smallest k); per activation.
      consecutive_factor=1.1,
      overall_factor=0.1))
  return c
