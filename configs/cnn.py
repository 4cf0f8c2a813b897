"""The small CNN of the training core on synthetic template images (derived from default).

  python experiments/train.py --config=configs/cnn.py:smoke --workdir=/tmp/w_cnn

smoke: ~15 s on 2 CPU cores; cpu: ~2 min; full: accelerators. Eval accuracy > 0.9 at
`cpu` (the task is easy by construction; this config exercises the CNN path).
"""

from configs import default


def get_config(preset: str | None = None):
  config = default.get_config(preset)
  config.dataset.name = "template_images"
  config.dataset.input_shape = (16, 16, 1)
  config.dataset.noise = 1.0
  config.model = dict(name="cnn", channels=(8, 16), kernel_size=3, pool="max",
                      dense_width=64, activation="relu", norm="none")
  if preset == "full":
    config.dataset.input_shape = (32, 32, 3)
    config.model.channels = (32, 64, 128)
    config.model.dense_width = 256
  return config
