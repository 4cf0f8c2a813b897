"""tfds builders for the embedded datasets (digits, MNIST-1D) and their loaders.

The data of each builder ships inside a pip package (scikit-learn's bundled digits; the
`mnist1d` generator), so nothing is downloaded. On first use a builder is prepared with
`file_format="array_record"` into `data_dir`; later uses find it prepared and only read.
Reading goes through `builder.as_data_source()` (random access, no TensorFlow): tfds
4.9.10 without TensorFlow prepares and reads array_record, while `tfds.load` (tf.data)
and `tfds.features.Image` (PNG encoding) need TensorFlow, so features here are plain
`Tensor`s. The splits are small, so a loader reads a whole split into memory.

Preparation is deterministic (fixed seeds, stored order = generation order via
`disable_shuffling`), so two preparations write the same bytes.

  digits   scikit-learn's 1,797 real 8x8 handwritten digits (pixel values 0..16). Fixed
           stratified split: exactly 30 images of each class (300) to test, the other
           1,497 to train, chosen with seed 0. Loaded as float32 (H, W, 1) in [0, 1]
           (pixel / 16), optionally upsampled to 16x16 or 28x28 at load time.
  mnist1d  the MNIST-1D dataset, generated offline by the `mnist1d` package with its
           default arguments (seed 42): 4,000 train / 1,000 test sequences of length 40,
           kept with the package's scaling (standardized over the whole dataset: mean 0,
           std 1). Config 'shuffled' applies one fixed permutation of the 40 positions
           (seed 0, same for train and test): the MNIST-1D paper's shuffled-pixel task.
"""

import dataclasses
import os
import random

import jax
import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from leeml import data

IMAGE_SIZES = (8, 16, 28)
DIGITS_TEST_PER_CLASS = 30
DIGITS_SPLIT_SEED = 0
MNIST1D_LENGTH = 40
MNIST1D_PERMUTATION_SEED = 0
_DIGITS_MAX_PIXEL = 16  # sklearn's digits are counts of on-pixels in 4x4 blocks of a 32x32 bitmap


def default_data_dir() -> str:
  """`$LEEML_DATA_DIR`, else `$XDG_CACHE_HOME/leeml/tensorflow_datasets` (~/.cache/...)."""
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.environ.get("LEEML_DATA_DIR") or os.path.join(cache, "leeml", "tensorflow_datasets")


def resolve_data_dir(data_dir: str) -> str:
  """The directory a `dataset.data_dir` field names ('' means the default)."""
  return os.path.expanduser(data_dir) if data_dir else default_data_dir()


def digits_split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) indices into the digits: 30 of each class to test, chosen with seed 0.

  Each split is then shuffled (same generator) so classes interleave in stored order.
  """
  rng = np.random.default_rng(DIGITS_SPLIT_SEED)
  test = np.concatenate([
      rng.permutation(np.flatnonzero(labels == k))[:DIGITS_TEST_PER_CLASS]
      for k in range(10)])
  train = np.setdiff1d(np.arange(len(labels)), test)
  return rng.permutation(train), rng.permutation(test)


def mnist1d_permutation() -> np.ndarray:
  """The fixed permutation of the 40 positions used by the 'shuffled' config."""
  return np.random.default_rng(MNIST1D_PERMUTATION_SEED).permutation(MNIST1D_LENGTH)


def _make_mnist1d() -> dict:
  """The MNIST-1D arrays from the package, leaving the global RNGs as they were.

  `make_dataset` seeds numpy's and Python's global RNGs (seed 42); restoring them keeps
  loading a dataset from changing unrelated random streams.
  """
  from mnist1d.data import get_dataset_args, make_dataset  # pylint: disable=g-import-not-at-top
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    return make_dataset(get_dataset_args())
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)


class _PackagedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the builders whose data comes from an installed package."""

  # tfds 4.9.10 finds a builder's code (for download checksums) through the
  # `importlib_resources` backport, which it does not declare as a dependency
  # (tensorflow/datasets#11212): preparing crashes with ModuleNotFoundError. Nothing
  # here is downloaded, so point it at this file directly.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)


class LeemlDigits(_PackagedBuilder):
  """scikit-learn's 8x8 handwritten digits with a fixed stratified train/test split."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: 1,497 train / 300 test (30 per class)."}

  def _info(self) -> tfds.core.DatasetInfo:
    # DatasetInfo directly: `dataset_info_from_configs` wants metadata files next to code.
    return tfds.core.DatasetInfo(
        builder=self,
        description="UCI optical handwritten digits as bundled with scikit-learn "
                    "(1,797 8x8 images, pixel values 0..16).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True,
        homepage="https://archive.ics.uci.edu/dataset/80",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the data ships with scikit-learn
    from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
    digits = sk_datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., None]
    train, test = digits_split_indices(digits.target)
    return {
        "train": self._generate_examples(images[train], digits.target[train]),
        "test": self._generate_examples(images[test], digits.target[test]),
    }

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}


@dataclasses.dataclass(eq=False)
class Mnist1dConfig(tfds.core.BuilderConfig):
  """`shuffled`: apply `mnist1d_permutation()` to the positions of every sequence."""
  shuffled: bool = False


class LeemlMnist1d(_PackagedBuilder):
  """MNIST-1D (Greydanus 2020), generated by the `mnist1d` package; configs default/shuffled.

  The shuffled variant is a builder config rather than a load-time option so that each
  variant is a self-describing tfds dataset (`leeml_mnist1d/shuffled`) on disk.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: mnist1d 0.0.2 default arguments."}
  BUILDER_CONFIGS = [
      Mnist1dConfig(name="default", description="Sequences as generated."),
      Mnist1dConfig(name="shuffled", shuffled=True,
                    description="One fixed permutation (seed 0) of the 40 positions."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="MNIST-1D: 1-D templates of the ten digits, randomly padded, "
                    "translated, scaled, sheared and noised; length 40, standardized.",
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(MNIST1D_LENGTH,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("x", "label"),
        disable_shuffling=True,
        homepage="https://github.com/greydanus/mnist1d",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated from code
    d = _make_mnist1d()
    x, x_test = d["x"].astype(np.float32), d["x_test"].astype(np.float32)
    if self.builder_config.shuffled:
      perm = mnist1d_permutation()
      x, x_test = x[:, perm], x_test[:, perm]
    return {
        "train": self._generate_examples(x, d["y"]),
        "test": self._generate_examples(x_test, d["y_test"]),
    }

  def _generate_examples(self, xs, labels):
    for i, (x, label) in enumerate(zip(xs, labels)):
      yield i, {"x": x, "label": int(label)}


def prepared_builder(builder_cls, data_dir: str, config: str | None = None):
  """A builder for `data_dir`, prepared (array_record) unless it already is."""
  builder = builder_cls(data_dir=resolve_data_dir(data_dir), config=config)
  if not builder.is_prepared():  # otherwise reuse the files: no regeneration
    builder.download_and_prepare(file_format="array_record")
  return builder


def read_split(source, key: str, num: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The first `num` (default: all) examples of a data source as (inputs, int32 labels)."""
  num = len(source) if num is None else num
  examples = [source[i] for i in range(num)]
  if not examples:
    raise ValueError(f"{source} is empty")
  inputs = np.stack([np.asarray(e[key]) for e in examples])
  labels = np.asarray([e["label"] for e in examples], dtype=np.int32)
  return inputs, labels


def _read_builder(builder, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  sources = builder.as_data_source()
  return {split: read_split(sources[split], key) for split in ("train", "test")}


def upsample(images: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of (N, H, W, C) images to (N, size, size, C), clipped to [0, 1].

  `jax.image.resize` 'linear' (half-pixel centres); interpolating convexly keeps values in
  [0, 1], the clip only removes float rounding.
  """
  if images.shape[1] == size:
    return images
  n, _, _, c = images.shape
  out = jax.image.resize(images, (n, size, size, c), method="linear")
  return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def load_digits(cfg) -> data.Dataset:
  """Fields: `image_size` (8, 16 or 28), `data_dir` ('' = default cache)."""
  if cfg.image_size not in IMAGE_SIZES:
    raise ValueError(f"dataset.image_size must be one of {', '.join(map(str, IMAGE_SIZES))} "
                     f"(got {cfg.image_size!r})")
  splits = _read_builder(prepared_builder(LeemlDigits, cfg.data_dir), "image")

  def convert(images, labels):
    x = images.astype(np.float32) / _DIGITS_MAX_PIXEL
    return data.ArraySplit(upsample(x, cfg.image_size), labels)

  return data.Dataset("digits", convert(*splits["train"]), convert(*splits["test"]), 10)


def load_mnist1d(cfg) -> data.Dataset:
  """Fields: `shuffled` (the fixed position permutation), `data_dir` ('' = default)."""
  config = "shuffled" if cfg.shuffled else "default"
  splits = _read_builder(prepared_builder(LeemlMnist1d, cfg.data_dir, config), "x")
  name = "mnist1d_shuffled" if cfg.shuffled else "mnist1d"
  return data.Dataset(name, data.ArraySplit(*splits["train"]), data.ArraySplit(*splits["test"]),
                      10)
