"""Default config of the training core: an MLP classifying Gaussian blobs.

  python experiments/train.py --config=configs/default.py:smoke --workdir=/tmp/w

Presets (`--config=configs/default.py:<preset>`):
  smoke  ~10 s on 2 CPU cores (mostly compile time); for tests. Final eval accuracy > 0.5.
  cpu    ~1 min on 2 CPU cores: 2,000 steps; eval accuracy ~0.95 (the classes overlap).
  full   accelerators: wider, deeper, longer, bigger batch.
No lecture claim rides on this config; it exercises the core (lecture configs derive
from it and override a few fields).
"""

from leeml.config import base_config


def get_config(preset: str | None = None):
  config = base_config()
  preset = preset or "cpu"
  if preset == "smoke":
    config.num_train_steps = 60
    config.batch_size = 32
    config.eval_batch_size = 256
    config.log_every_steps = 10
    config.checkpoint_every_steps = 20
    config.dataset.num_train = 512
    config.dataset.num_test = 256
    config.model.width = 32
  elif preset == "cpu":
    config.num_train_steps = 2000
    config.eval_every_steps = 500
  elif preset == "full":
    config.num_train_steps = 20000
    config.batch_size = 1024
    config.eval_batch_size = 4096
    config.eval_every_steps = 2000
    config.checkpoint_every_steps = 2000
    config.dataset.num_train = 65536
    config.dataset.num_test = 8192
    config.dataset.input_shape = (64,)
    config.model.depth = 4
    config.model.width = 512
    config.schedule.name = "warmup_cosine"
    config.schedule.warmup_steps = 1000
  else:
    raise ValueError(f"preset {preset!r} is not one of: cpu, full, smoke")
  return config
