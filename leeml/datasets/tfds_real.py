"""Real tfds datasets (mnist, fashion_mnist, cifar10) read without TensorFlow.

Read with `tfds.data_source` (array_record, random access), never `tfds.load` (tf.data
needs TensorFlow). Nothing is downloaded unless `dataset.download=True`: offline, a
dataset missing from `data_dir` is one `DatasetNotPreparedError` line saying how to get
it, not a network timeout. Preparing these datasets (tfds' generators read the raw files
with `tf.io.gfile` and PNG-encode images) needs TensorFlow and the network, once:

  tfds build mnist --data_dir=DIR --file_format=array_record

Reading the prepared files needs neither (images are decoded with PIL). Images load as
float32 (H, W, C) in [0, 1] (pixel / 255), labels as int32.
"""

import numpy as np
import tensorflow_datasets as tfds

from leeml import data
from leeml.datasets import builders

# name -> number of classes; all three have 'image' (uint8 HxWxC) and 'label' features.
REAL_DATASETS = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10}
FIELDS = dict(data_dir="", num_train=0, num_test=0, download=False, stream=False)


class DatasetNotPreparedError(FileNotFoundError):
  """A real tfds dataset is not prepared (as array_record) in the data dir."""


def _not_prepared(name: str, data_dir: str) -> DatasetNotPreparedError:
  """The one-line error for a dataset `tfds.data_source` cannot read from `data_dir`."""
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():  # e.g. by `tfds.load`, which writes tfrecord
    file_format = builder.info.file_format
    return DatasetNotPreparedError(
        f"dataset.name={name!r} is prepared in {builder.data_path} as "
        f"{file_format.value if file_format else 'tfrecord'}, not array_record; convert it "
        f"once where TensorFlow is available (`tfds convert_format "
        f"--dataset_version_dir={builder.data_path} --out_file_format=array_record`)")
  return DatasetNotPreparedError(
      f"dataset.name={name!r} is not prepared in {data_dir}; nothing was downloaded. "
      f"Prepare it once where TensorFlow and the network are available (`tfds build {name} "
      f"--data_dir={data_dir} --file_format=array_record`) or set dataset.download=True")


def open_sources(name: str, data_dir: str, download: bool = False,
                 splits: tuple[str, ...] = ("train", "test")):
  """tfds data sources of `name`'s `splits` in `data_dir` ('' = leeml's default), in
  order; an unprepared dataset raises `DatasetNotPreparedError` (one line)."""
  data_dir = builders.resolve_data_dir(data_dir)
  try:
    # With an explicit data_dir, tfds.data_source does not itself pick array_record for
    # preparation (only when data_dir is None), so ask for it.
    sources = tfds.data_source(
        name, split=list(splits), data_dir=data_dir, download=download,
        builder_kwargs=dict(file_format="array_record"))
  except (KeyError, NotImplementedError, FileNotFoundError, ValueError):
    # Unprepared: tfds raises KeyError (empty splits) or, for a tfrecord-prepared copy,
    # NotImplementedError (no random access). Our one line replaces tfds' traceback.
    if download:
      raise
    raise _not_prepared(name, data_dir) from None
  return tuple(sources)


def _split(source, num: int, field: str, name: str) -> data.ArraySplit:
  if num > len(source):
    raise ValueError(f"dataset.{field}={num} exceeds the {len(source)} examples of {name}")
  images, labels = builders.read_split(source, "image", num or None)
  return data.ArraySplit(images.astype("float32") / 255.0, labels)


def _decode(records) -> dict:
  return {"inputs": np.stack([np.asarray(r["image"]) for r in records]).astype(np.float32) / 255.0,
          "targets": np.asarray([r["label"] for r in records], dtype=np.int32)}


def _stream(source, num: int, field: str, name: str) -> data.SourceSplit:
  if num > len(source):
    raise ValueError(f"dataset.{field}={num} exceeds the {len(source)} examples of {name}")
  return data.SourceSplit(source, _decode, num or None)


def load(cfg) -> data.Dataset:
  """Fields: `data_dir`, `num_train`/`num_test` (first N examples; 0 = all), `download`,
  `stream` (read each batch from the data source instead of loading splits in memory)."""
  train, test = open_sources(cfg.name, cfg.data_dir, cfg.download)
  make = _stream if cfg.stream else _split
  return data.Dataset(cfg.name, make(train, cfg.num_train, "num_train", cfg.name),
                      make(test, cfg.num_test, "num_test", cfg.name), REAL_DATASETS[cfg.name])
