"""Lecture 5 (momentum): gradient descent vs gradient descent + momentum.

  python experiments/lec05_momentum.py --scale=cpu --out=/tmp/lec05   (~10 s of CPU time;
                                                                       38 s wall on a shared machine)

Expected (lecture 5, "Gradient Descent + Momentum": m^{t+1} = lambda m^t - eta g^t,
theta^{t+1} = theta^t + m^{t+1}; the ball rolling down the error surface "may not stop"
at a local minimum or saddle point):
A. On the tilted double well L = (w1^2 - 1)^2 + 0.3 w1 + w2^2 / 2 (local minimum at
   w1 ~ 0.96, saddle point at w1 ~ 0.075, global minimum at w1 ~ -1.04), from a grid of
   starts right of the barrier whose loss is above the saddle's:
   1. gd_stops_at_local_min: GD (eta = 0.02, 1000 steps) ends within `tol` of the local
      minimum from a share >= `gd_local_share` of starts, with |grad| < `stopped_grad`.
   2. momentum_passes_local_min: the lecture's momentum (same eta, lambda = 0.9) ends within
      `tol` of the global minimum from a share >= `momentum_global_share` of starts.
   (Design pilot on this toy: with eta = 0.02, lambda = 0.9, 15 of these 18 starts pass;
   the starts at w1 = 1.5 do not. lambda = 0.95 passes from fewer: the ball rolls back.)
B. Network: MLP 2x64 (ReLU) on digits, mini-batch (64) SGD vs SGD + lecture momentum,
   both eta = 0.03, 3 seeds (same inits and batches). Both arms are members of one
   population (one compile): the lecture's rule with traced lambda, lambda = 0 being SGD.
   Batches are the core's (seed, epoch) permutations (the pilot below used per-step
   random batches; the sampler changed with the move to leeml.population, the threshold
   did not):
   3. momentum_reaches_target_faster: steps until the full-train loss < `target_loss`
      (checked every `eval_every`) are fewer with momentum on every seed (pilot: 80 vs
      480-500).

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  c = ml_collections.ConfigDict()

  c.surface = ml_collections.ConfigDict(dict(
      tilt=0.3, valley_curvature=1.0,
      start_w1=(1.5, 1.6, 1.7, 1.8, 1.9, 2.0), start_w2=(-1.0, 0.0, 1.0),
      learning_rate=0.02, momentum=0.9, num_steps=1000,
      tol=0.05))  # |end - minimum| below this: "ended in that minimum"

  c.seeds = {"smoke": (0, 1), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}[scale]
  c.network = ml_collections.ConfigDict(dict(
      dataset=dict(name="digits"), num_examples={"smoke": 512, "cpu": 0, "full": 0}[scale],
      loss="softmax_cross_entropy",
      model=dict(name="mlp", depth=2, width=64, activation="relu", residual=False,
                 norm="none"),
      learning_rate=0.03, momentum=0.9, batch_size=64,
      num_steps={"smoke": 200, "cpu": 600, "full": 2000}[scale],
      eval_every=20,
      target_loss={"smoke": 0.5, "cpu": 0.3, "full": 0.3}[scale]))

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      gd_local_share=1.0,         # GD stops in the local minimum from every start
      stopped_grad=1e-3,          # ... where the gradient has vanished
      momentum_global_share=0.5,  # momentum passes the barrier from at least half of them
  ))
  return c
