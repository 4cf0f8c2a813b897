"""Lecture 5 (batch): time per update / per epoch vs batch size; small vs large batch.

  python experiments/lec05_batch_size.py --scale=cpu   (target ≤3 min on 2 CPU cores;
                                                        smoke: seconds)

Expected (lecture 5, "Batch and Momentum", slides "Small Batch v.s. Large Batch"):
A. Timing, on the device at hand, one jitted SGD update per call (as a training loop runs
   it), after compilation and warm-up, median of interleaved repeats:
   "larger batch size does not require longer time to compute the gradient (unless the
   batch size is too large)": time per update stays within `flat_ratio` × that of batch 1
   up to a batch of at least `min_parallel_batch`, and beyond saturation it grows (batch
   `saturation_pair[1]` costs ≥ `saturation_ratio` × batch `saturation_pair[0]`);
   "smaller batch requires longer time for one epoch": s/epoch at batch 1 ≥ `epoch_ratio`
   × s/epoch at full batch. (The lecture's figure is MNIST on a V100; on 2 CPU cores the
   parallelism saturates much earlier, hence the small `min_parallel_batch` here.)
B. Generalization, the same network trained with each batch size for the same number of
   epochs (so a large batch takes fewer updates), plain SGD, learning rate chosen per batch
   size from `lr_grid` by the best mean *validation* accuracy (a held-out part of the
   training split; the test split is never used to select), ≥3 seeds:
   - "Noisy update is better for training": small-batch training accuracy > large-batch
     training accuracy, every seed (the lecture's MNIST / CIFAR-10 figure, accuracy falls
     as the batch grows at equal epochs).
   - "Small batch is better on testing data": mean small-batch test accuracy ≥ mean
     large-batch test accuracy (Keskar et al. 2017, "On Large-Batch Training for Deep
     Learning: Generalization Gap and Sharp Minima", Table 2: SB vs LB per network).
   - Large batch ends in a sharper minimum: mean top Hessian eigenvalue of the training
     loss at the final parameters (Lanczos, leeml.curvature) is larger for the large batch
     (Keskar et al. 2017, Table 3 / Figure 3; the lecture's "flat minimum" picture).
   Small batch = the first entry of a network's `batch_sizes`, large = the last (0 = the
   whole training part, i.e. full-batch gradient descent).

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  c = ml_collections.ConfigDict()
  c.seeds = {"smoke": (0, 1), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}[scale]

  # A. Timing: random inputs of mnist1d's shape (40 features, 10 classes), the network of
  # part B, one jitted SGD step per call; epoch time = median ms/update × ⌈N / B⌉.
  n_time = {"smoke": 512, "cpu": 4000, "full": 60000}[scale]
  sizes = [2 ** k for k in range(20) if 2 ** k < n_time] + [n_time]
  if scale == "smoke":
    sizes = [1, 8, 64, 512]
  c.timing = ml_collections.ConfigDict(dict(
      input_dim=40, num_classes=10, num_examples=n_time,
      model=dict(name="mlp", depth=2, width=64, activation="relu", residual=False,
                 norm="none"),
      batch_sizes=tuple(sizes),
      warmup=3,                                           # updates after compilation
      repeats={"smoke": 3, "cpu": 7, "full": 9}[scale],   # interleaved rounds; median
      min_seconds={"smoke": 0.005, "cpu": 0.03, "full": 0.05}[scale],  # per measurement
      learning_rate=0.01))

  # B. Generalization: one entry per network (Keskar et al.'s table has one row per net).
  def net(name, dataset, model, num_val, batch_sizes):
    return ml_collections.ConfigDict(dict(name=name, dataset=dataset, model=model,
                                          num_val=num_val, batch_sizes=batch_sizes))
  mlp = lambda width: dict(name="mlp", depth=2, width=width, activation="relu",
                           residual=False, norm="none")
  c.networks = (
      net("mnist1d_mlp", "mnist1d", mlp(64), 500, (16, 64, 256, 1024, 0)),
      net("digits_mlp", "digits", mlp(64), 297, (16, 64, 256, 0)),
  )
  if scale == "smoke":
    c.networks = (net("digits_mlp", "digits", mlp(32), 297, (16, 0)),)
  c.epochs = {"smoke": 3, "cpu": 30, "full": 100}[scale]
  c.lr_grid = (0.03, 0.1, 0.3, 1.0)        # plain SGD; the same grid for every batch size
  c.split_seed = 0                          # which training examples are held out
  # leeml.population strategy for part B ('' = population.default_strategy).
  c.strategy = "vmap"
  c.hessian = ml_collections.ConfigDict(dict(
      batch_size=1000,                      # HVPs accumulate over the training part
      num_iters={"smoke": 10, "cpu": 20, "full": 40}[scale]))  # Lanczos steps

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      # A: the largest batch whose median time per update is ≤ flat_ratio × batch 1's is at
      # least min_parallel_batch ("not slower per update until parallelism saturates").
      flat_ratio=2.0,
      min_parallel_batch={"smoke": 8, "cpu": 16, "full": 256}[scale],
      # A: beyond saturation: t(pair[1]) / t(pair[0]) ≥ saturation_ratio (linear: 7.8×
      # for 512 -> 4000).
      saturation_pair={"smoke": (64, 512), "cpu": (512, 4000), "full": (8192, 60000)}[scale],
      saturation_ratio=3.0,
      # A: s/epoch at batch 1 ≥ epoch_ratio × s/epoch at the full batch.
      epoch_ratio=5.0,
      # B: small-batch train accuracy − large-batch train accuracy > this, every seed.
      train_accuracy_margin=0.0,
      # B: mean small-batch test accuracy ≥ mean large-batch test accuracy − this.
      test_accuracy_slack=0.0,
      # B: mean λmax(large batch) > sharpness_ratio × mean λmax(small batch).
      sharpness_ratio=1.0))
  if scale == "full":
    c.timing.model.width = 256
  return c
