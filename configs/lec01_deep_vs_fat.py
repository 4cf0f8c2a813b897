"""Lectures 1-2 (deep vs fat): depth buys exponentially more linear pieces than width.

  python experiments/reproduce.py --only=lec01_deep_vs_fat --scale=cpu   (~1 min on 2 CPU
                                                                          cores; smoke ~15 s)

Expected (Lecture 2 / "Why Deep?" — "Fat + Short v.s. Thin + Tall": with the same number
of parameters the deeper network is better, Seide et al. 2011 table of layers x size vs
word error rate; Telgarsky 2016): (a) exact — composing the triangle map L times with 2
ReLUs per layer gives 2^L linear pieces on [0, 1] with 6L + 1 parameters, while one
hidden layer of k ReLUs has at most k + 1 pieces, so it needs k >= 2^L - 1 units
(~3 * 2^L parameters); (b) trained — at an equal parameter budget (±5%) a deep-narrow net
reaches a lower training loss on a high-frequency curve than a 1-hidden-layer wide one.

Method: (a) leeml.piecewise (numpy float64, exact); (b) full-batch Adam on a sum of sines
(leeml.curve_fit on the population engine, the seeds of one depth are members of one
Program; first-layer kinks drawn inside the data range as in configs/lec01_piecewise.py), one width per depth chosen so the parameter count is within
±5% of the 1 x 288 net's (865).

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: cpu, full, smoke")
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2) if scale != "full" else (0, 1, 2, 3, 4)
  # (a) exact: sawtooth depths, and random 1-hidden-layer nets per depth for the bound.
  c.sawtooth_depths = (1, 2, 3, 4, 5, 6, 7, 8)
  c.random_shallow_nets = 20
  # (b) trained: the lecture's table rows (layers x width) at one parameter budget.
  c.budget = 865                 # 1 x 288 = 4 x 16 = 865 parameters
  c.budget_tolerance = 0.05
  c.depths = (1, 2, 3, 4, 5) if scale != "smoke" else (1, 4)
  c.dataset = ml_collections.ConfigDict(dict(
      name="sum_of_sines", num_train=1024, num_test=1024, low=-1.0, high=1.0,
      frequencies=(2.0, 5.0, 9.0, 13.0), amplitudes=(1.0, 0.7, 0.5, 0.3), noise=0.0, seed=0))
  c.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=3e-3))
  c.num_steps = {"smoke": 300, "cpu": 5000, "full": 50000}[scale]
  c.record_every = 50

  c.thresholds = ml_collections.ConfigDict(dict(
      # (b) the deepest row's final training MSE < the 1-hidden-layer row's by this
      # margin, in the mean and on every seed.
      deep_beats_fat_margin=0.0,
      # (a) the shallow construction equals the sawtooth to this max |difference|.
      construction_tolerance=1e-9))
  return c
