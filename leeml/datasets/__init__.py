"""Dataset registry: a config section `dataset` = {name, **that dataset's fields}.

Every dataset registers a `DatasetSpec`: a loader `cfg -> leeml.data.Dataset` and its
configurable fields with defaults (the defaults give the types `leeml.config` checks).
The embedded datasets exist offline: generated from a seed, or built by a tfds builder
from data shipped inside a pip package and cached on first use. The real tfds datasets
(mnist, fashion_mnist, cifar10) are read from a data_dir where a user prepared them
online; offline and unprepared, they fail with one line saying how to prepare them.
"""

import dataclasses
from typing import Any, Callable, Mapping

from leeml import data
from leeml.datasets import builders, distorted, synthetic, tfds_real


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  load: Callable[[Any], data.Dataset]
  fields: Mapping[str, Any]
  description: str


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  if spec.name in DATASETS:
    raise ValueError(f"dataset {spec.name!r} is registered twice")
  DATASETS[spec.name] = spec
  return spec


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f"dataset.name={name!r} is not one of: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def dataset_fields(name: str) -> dict[str, Any]:
  """The configurable fields of dataset `name` (besides `name`), with defaults."""
  return dict(get_spec(name).fields)


def get_dataset(cfg) -> data.Dataset:
  """Loads the dataset a config section names; fields it omits take their defaults."""
  spec = get_spec(cfg.name)
  values = dict(spec.fields)
  values.update({k: v for k, v in dict(cfg).items() if k != "name"})
  return spec.load(_Fields(name=cfg.name, **values))


class _Fields(dict):
  """Attribute access to a dict of fields (what loaders read)."""
  __getattr__ = dict.__getitem__


register(DatasetSpec(
    "gaussian_blobs", synthetic.gaussian_blobs,
    dict(num_train=4096, num_test=1024, num_classes=10, input_shape=(16,), noise=0.3, seed=0),
    "Gaussian clusters around random unit-norm centres, one per class."))
register(DatasetSpec(
    "template_images", synthetic.template_images,
    dict(num_train=4096, num_test=1024, num_classes=10, input_shape=(16, 16, 1), noise=1.0,
         seed=0),
    "One smooth random template per class, shifted by up to 2 pixels, plus noise."))
register(DatasetSpec(
    "digits", builders.load_digits, dict(image_size=8, data_dir=""),
    "scikit-learn's 1,797 real 8x8 handwritten digits (tfds builder, prepared on first use): "
    "1,497 train / 300 test (30 per class); image_size 8, 16 or 28 (bilinear upsampling)."))
register(DatasetSpec(
    "mnist1d", builders.load_mnist1d, dict(shuffled=False, data_dir=""),
    "MNIST-1D generated offline by the mnist1d package (4,000/1,000 x 40, standardized); "
    "shuffled=True: one fixed permutation of the 40 positions (the paper's shuffled task)."))
for _name in tfds_real.REAL_DATASETS:
  register(DatasetSpec(
      _name, tfds_real.load, dict(tfds_real.FIELDS),
      f"tfds {_name!r} read as array_record from data_dir (prepare it once online, "
      "or download=True with TensorFlow installed); images in [0, 1]."))
del _name
register(DatasetSpec(
    "sum_of_sines", synthetic.sum_of_sines,
    dict(num_train=256, num_test=1024, low=-1.0, high=1.0, frequencies=(1.0, 2.0, 3.0),
         amplitudes=(1.0, 0.5, 0.3), noise=0.0, seed=0),
    "1-D regression (num_classes=0, targets (N, 1), loss 'mse'): sum_i a_i sin(2 pi f_i x), "
    "x uniform on [low, high] (test: an even grid, noise-free)."))
register(DatasetSpec(
    "sawtooth", synthetic.sawtooth,
    dict(num_train=256, num_test=1024, low=0.0, high=1.0, depth=4, noise=0.0, seed=0),
    "1-D regression (num_classes=0, loss 'mse'): Telgarsky's depth-`depth` sawtooth on "
    "[0, 1], 2^depth linear pieces (lectures 1-2, deep vs fat)."))
register(DatasetSpec(
    "distorted_digits", distorted.load,
    dict(variant="RTS", canvas_size=28, digit_size=16, max_angle=45.0, min_scale=0.7,
         max_scale=1.2, train_copies=4, test_copies=4, seed=0, data_dir=""),
    "The real digits upsampled to digit_size and randomly warped on a canvas (lecture 9, "
    "the STN paper's distorted MNIST): 'R' rotation +-max_angle; 'RTS' also scale "
    "[min_scale, max_scale] and translation; copies per train/test digit, fixed seed."))
