"""Lecture 3 (general guidance): read the training loss to tell optimization from overfitting.

  python experiments/reproduce.py --only=lec03 --scale=cpu       (~2-3 min on 2 CPU cores;
                                                                  smoke: ~30 s)

Expected (Lecture 3, "Optimization Issue": "Gaining the insights from comparison" — the
56-layer net has higher *training* loss than the 20-layer one (He et al. 2016, ResNet
Fig. 1), so it is not overfitting but optimization; "Overfitting": small training loss,
large testing loss): (1) on MNIST-1D a deeper plain MLP (BatchNorm, ReLU, SGD + momentum as
in the ResNet paper) ends with a higher training loss than a shallower one, and
`leeml.diagnose` calls it "optimization"; its residual version (same depth and width)
trains to a loss no higher than the shallower plain net's. (2) A big MLP on a small
training set (100 noisy Gaussian-blob examples): training loss falls, validation loss
rises, and `diagnose` calls it "overfitting".

Depths scaled to CPU: the paper's 20 vs 56 layers become 4 vs 20 (cpu) / 2 vs 8 (smoke);
full uses 20 vs 56. The validation curve is the test split of each dataset (MNIST-1D and
gaussian_blobs have no separate validation split). Digits/MNIST-1D have no `num_train`
field, so the small-training-set case uses gaussian_blobs with num_train=100.

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections

from configs import default


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: cpu, full, smoke")
  c = ml_collections.ConfigDict()
  c.seeds = (0, 1, 2) if scale != "full" else (0, 1, 2, 3, 4)
  c.depths = {"smoke": (2, 8), "cpu": (4, 20), "full": (20, 56)}[scale]  # (shallow, deep)

  # (1) Degradation: plain vs residual MLPs on MNIST-1D, model depth filled in per run.
  t = default.get_config("smoke" if scale == "smoke" else "cpu")
  t.progress_bar = False
  t.eval_on_train = True
  t.dataset = ml_collections.ConfigDict(dict(name="mnist1d"))
  t.batch_size = 128
  t.eval_batch_size = 1000
  t.model = dict(name="mlp", depth=4, width={"smoke": 32, "cpu": 64, "full": 256}[scale],
                 activation="relu", residual=False, norm="batch")
  t.loss.name = "softmax_cross_entropy"
  t.optimizer.name = "momentum"          # ResNet paper: SGD, momentum 0.9, lr 0.1
  t.optimizer.learning_rate = 0.1
  t.optimizer.momentum = 0.9
  t.schedule.name = "constant"
  t.num_train_steps = {"smoke": 150, "cpu": 1500, "full": 20000}[scale]
  t.eval_every_steps = t.num_train_steps // 10
  t.log_every_steps = t.eval_every_steps
  t.checkpoint_every_steps = t.num_train_steps
  t.keep_checkpoints = 1
  c.degradation = t

  # (2) Overfitting: a big MLP, a small noisy training set, Adam, many epochs.
  o = ml_collections.ConfigDict(t.to_dict())
  o.dataset = ml_collections.ConfigDict(dict(
      name="gaussian_blobs", num_train=100, num_test=1000, num_classes=10, input_shape=(16,),
      noise=0.6, seed=0))
  o.batch_size = 100
  o.model = dict(name="mlp", depth=3, width={"smoke": 128, "cpu": 256, "full": 512}[scale],
                 activation="relu", residual=False, norm="none")
  o.optimizer.name = "adam"
  o.optimizer.learning_rate = 1e-3
  o.num_train_steps = {"smoke": 200, "cpu": 1000, "full": 5000}[scale]
  o.eval_every_steps = o.num_train_steps // 20
  o.log_every_steps = o.eval_every_steps
  o.checkpoint_every_steps = o.num_train_steps
  c.overfitting = o

  # diagnose() settings (leeml.diagnose defaults, written out) and claim thresholds.
  c.diagnose = ml_collections.ConfigDict(dict(
      relative_target=0.1, optimization_margin=0.0, rise=0.1))
  c.thresholds = ml_collections.ConfigDict(dict(
      # deeper plain final train loss > shallower plain's + margin, mean and every seed.
      degradation_margin=0.0,
      # mean final train loss of the residual deep net <= the shallow plain net's + margin.
      residual_margin=0.0))
  return c
