"""Datasets through tfds without TensorFlow: embedded builders and real tfds datasets.

Every test here runs with the network refused (a socket that tries to connect fails),
and every dataset is prepared into a temporary directory, once per module.
"""

import os
import shutil
import socket

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_config
from leeml import config as config_lib, data, datasets, train
from leeml.datasets import builders, tfds_real
from leeml.metric_writers import read_jsonl


def _refuse(*args, **kwargs):
  raise OSError("a dataset test tried to use the network")


@pytest.fixture(scope="module", autouse=True)
def no_network():
  """Refuses connections and DNS for the whole module (including module fixtures)."""
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(socket.socket, "connect", _refuse)
    mp.setattr(socket.socket, "connect_ex", _refuse)
    mp.setattr(socket, "getaddrinfo", _refuse)
    yield


def _load(name, **fields):
  return datasets.get_dataset(ml_collections.ConfigDict(dict(name=name, **fields)))


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
  """Two independent data dirs: each dataset is prepared in both, to compare bytes."""
  return str(tmp_path_factory.mktemp("data_a")), str(tmp_path_factory.mktemp("data_b"))


@pytest.fixture(scope="module")
def digits(data_dirs):
  return _load("digits", data_dir=data_dirs[0])


@pytest.fixture(scope="module")
def mnist1d(data_dirs):
  return _load("mnist1d", data_dir=data_dirs[0])


@pytest.fixture(scope="module")
def mnist1d_generated():
  """The package's arrays, generated once more here (~4 s of CPU each time): the stored
  `mnist1d` is compared with them, and the later builds below reuse them."""
  np.random.seed(123)
  expected = np.random.get_state()[1].copy()
  arrays = builders._make_mnist1d()  # pylint: disable=protected-access
  assert np.array_equal(np.random.get_state()[1], expected)  # the global RNG is kept
  return arrays


def _copies_of(arrays):
  return lambda: {k: np.copy(v) for k, v in arrays.items()}


@pytest.fixture
def mnist1d_reused(mnist1d_generated, monkeypatch):
  """Builds in this test take `mnist1d_generated` instead of generating again: the
  generator's determinism is `test_mnist1d_matches_the_package_and_keeps_global_rngs` (two
  generations, equal arrays); what these builds check is the preparing and reading."""
  monkeypatch.setattr(builders, "_make_mnist1d", _copies_of(mnist1d_generated))


@pytest.fixture(scope="module")
def mnist1d_shuffled(data_dirs, mnist1d_generated):
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(builders, "_make_mnist1d", _copies_of(mnist1d_generated))
    return _load("mnist1d", data_dir=data_dirs[0], shuffled=True)


def _rows(x):
  return {r.tobytes() for r in x.reshape(len(x), -1)}


def _check_classification(ds, train_shape, test_shape):
  assert ds.num_classes == 10
  assert ds.train.inputs.shape == train_shape and ds.test.inputs.shape == test_shape
  for split in (ds.train, ds.test):
    assert split.inputs.dtype == np.float32 and split.targets.dtype == np.int32
    assert np.all(np.isfinite(split.inputs))
    assert set(np.unique(split.targets)) == set(range(10))  # labels 0..9, all present


def test_network_is_refused():
  with pytest.raises(OSError, match="tried to use the network"):
    socket.create_connection(("example.com", 80), timeout=1)


def test_registry_fields():
  assert datasets.dataset_fields("digits") == dict(image_size=8, data_dir="")
  assert datasets.dataset_fields("mnist1d") == dict(shuffled=False, data_dir="")
  for name in ("mnist", "fashion_mnist", "cifar10"):
    assert datasets.dataset_fields(name) == dict(data_dir="", num_train=0, num_test=0,
                                                 download=False, stream=False)


def test_default_data_dir(monkeypatch):
  monkeypatch.setenv("LEEML_DATA_DIR", "/somewhere/else")
  assert builders.resolve_data_dir("") == "/somewhere/else"
  assert builders.resolve_data_dir("/mine") == "/mine"
  monkeypatch.delenv("LEEML_DATA_DIR")
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  assert builders.resolve_data_dir("") == os.path.expanduser(
      "~/.cache/leeml/tensorflow_datasets")
  monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
  assert builders.resolve_data_dir("") == "/xdg/leeml/tensorflow_datasets"


def test_digits_shapes_dtypes_labels(digits):
  _check_classification(digits, (1497, 8, 8, 1), (300, 8, 8, 1))
  assert digits.train.inputs.min() == 0.0 and digits.train.inputs.max() == 1.0
  assert np.all(np.bincount(digits.test.targets) == 30)  # stratified: 30 per class
  # Pixels are sklearn's 0..16 counts scaled by 1/16.
  assert np.all(np.mod(digits.train.inputs * 16, 1) == 0)


def test_digits_split_is_disjoint_and_covers_sklearn(digits):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  assert not _rows(digits.train.inputs) & _rows(digits.test.inputs)
  ours = np.concatenate([digits.train.inputs, digits.test.inputs]).reshape(-1, 64) * 16
  theirs = load_digits().data
  assert np.array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))


def test_digits_deterministic_bytes(digits, data_dirs):
  other = _load("digits", data_dir=data_dirs[1])
  for a, b in ((digits.train, other.train), (digits.test, other.test)):
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.targets.tobytes() == b.targets.tobytes()
  for split in ("train", "test"):  # the prepared files themselves are identical
    fname = f"leeml_digits-{split}.array_record-00000-of-00001"
    paths = [os.path.join(d, "leeml_digits", "1.0.0", fname) for d in data_dirs]
    with open(paths[0], "rb") as fa, open(paths[1], "rb") as fb:
      assert fa.read() == fb.read()


def test_second_load_reuses_prepared_files(digits, data_dirs, monkeypatch):
  version_dir = os.path.join(data_dirs[0], "leeml_digits", "1.0.0")
  before = {f: os.stat(os.path.join(version_dir, f)).st_mtime_ns for f in os.listdir(version_dir)}

  def regenerate(*args, **kwargs):
    raise AssertionError("prepared digits were generated again")

  monkeypatch.setattr(builders.LeemlDigits, "_split_generators", regenerate)
  again = _load("digits", data_dir=data_dirs[0])
  assert again.train.inputs.tobytes() == digits.train.inputs.tobytes()
  after = {f: os.stat(os.path.join(version_dir, f)).st_mtime_ns for f in os.listdir(version_dir)}
  assert after == before


def test_digits_read_back_through_tfds_data_source(digits, data_dirs):
  sources = tfds.data_source("leeml_digits", data_dir=data_dirs[0], download=False)
  assert len(sources["train"]) == 1497 and len(sources["test"]) == 300
  example = sources["test"][0]
  assert example["image"].shape == (8, 8, 1) and example["image"].dtype == np.uint8
  assert int(example["label"]) == digits.test.targets[0]


@pytest.mark.parametrize("size", [16, 28])
def test_digits_upsampling(digits, data_dirs, size):
  big = _load("digits", data_dir=data_dirs[0], image_size=size)
  _check_classification(big, (1497, size, size, 1), (300, size, size, 1))
  assert big.train.inputs.min() >= 0.0 and big.train.inputs.max() <= 1.0
  assert np.array_equal(big.train.targets, digits.train.targets)
  # Bilinear resizing roughly preserves each image's mean intensity.
  np.testing.assert_allclose(big.train.inputs.mean(axis=(1, 2, 3)),
                             digits.train.inputs.mean(axis=(1, 2, 3)), atol=0.03)


def test_digits_invalid_image_size(data_dirs):
  with pytest.raises(ValueError, match=r"^dataset\.image_size must be one of 8, 16, 28 "
                                       r"\(got 12\)$"):
    _load("digits", data_dir=data_dirs[0], image_size=12)


def test_mnist1d_shapes_dtypes_labels(mnist1d):
  _check_classification(mnist1d, (4000, 40), (1000, 40))
  assert mnist1d.name == "mnist1d"
  # The package's scaling: standardized over train and test together.
  x = np.concatenate([mnist1d.train.inputs, mnist1d.test.inputs])
  assert abs(x.mean()) < 1e-3 and abs(x.std() - 1.0) < 1e-3


def test_mnist1d_matches_the_package_and_keeps_global_rngs(mnist1d, mnist1d_generated):
  """The stored data is the package's `make_dataset(get_dataset_args())`, unaltered;
  generating it (which seeds numpy's global RNG with 42) leaves the global RNG as it was
  (checked in `mnist1d_generated`)."""
  ref = mnist1d_generated
  assert np.array_equal(mnist1d.train.inputs, ref["x"].astype(np.float32))
  assert np.array_equal(mnist1d.test.inputs, ref["x_test"].astype(np.float32))
  assert np.array_equal(mnist1d.train.targets, ref["y"])
  assert np.array_equal(mnist1d.test.targets, ref["y_test"])


def test_mnist1d_split_is_disjoint(mnist1d):
  assert not _rows(mnist1d.train.inputs) & _rows(mnist1d.test.inputs)


def test_mnist1d_deterministic_bytes(mnist1d, data_dirs, mnist1d_reused):
  other = _load("mnist1d", data_dir=data_dirs[1])
  for a, b in ((mnist1d.train, other.train), (mnist1d.test, other.test)):
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.targets.tobytes() == b.targets.tobytes()


def test_mnist1d_shuffled_is_one_fixed_permutation(mnist1d, mnist1d_shuffled):
  perm = builders.mnist1d_permutation()
  assert sorted(perm) == list(range(40)) and not np.array_equal(perm, np.arange(40))
  assert mnist1d_shuffled.name == "mnist1d_shuffled"
  _check_classification(mnist1d_shuffled, (4000, 40), (1000, 40))
  for plain, shuffled in ((mnist1d.train, mnist1d_shuffled.train),
                          (mnist1d.test, mnist1d_shuffled.test)):
    assert np.array_equal(plain.targets, shuffled.targets)
    assert np.array_equal(np.sort(plain.inputs, axis=1), np.sort(shuffled.inputs, axis=1))
    assert np.array_equal(shuffled.inputs, plain.inputs[:, perm])  # same perm, both splits


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)),
                                         ("cifar10", (32, 32, 3))])
def test_real_tfds_with_mock_data(tmp_path, name, shape):
  with tfds.testing.mock_data(num_examples=40):
    ds = _load(name, data_dir=str(tmp_path))
    small = _load(name, data_dir=str(tmp_path), num_train=5, num_test=3)
  assert ds.name == name and ds.num_classes == 10
  assert ds.train.inputs.shape == (40, *shape) and ds.test.inputs.shape == (40, *shape)
  for split in (ds.train, ds.test):
    assert split.inputs.dtype == np.float32 and split.targets.dtype == np.int32
    assert split.inputs.min() >= 0.0 and split.inputs.max() <= 1.0
    assert split.targets.min() >= 0 and split.targets.max() <= 9
  assert len(small.train) == 5 and len(small.test) == 3
  assert np.array_equal(small.train.inputs, ds.train.inputs[:5])


def test_real_tfds_offline_error_is_one_line(tmp_path):
  with pytest.raises(tfds_real.DatasetNotPreparedError) as info:
    _load("mnist", data_dir=str(tmp_path))
  msg = str(info.value)
  assert "\n" not in msg
  assert msg.startswith(f"dataset.name='mnist' is not prepared in {tmp_path}")
  assert "tfds build mnist" in msg and "--file_format=array_record" in msg
  assert info.value.__cause__ is None and info.value.__suppress_context__


def test_tfrecord_prepared_copy_says_convert(digits, data_dirs, tmp_path):
  """A copy prepared as tfrecord (what `tfds.load` writes) is named as such, one line."""
  shutil.copytree(os.path.join(data_dirs[0], "leeml_digits"), tmp_path / "leeml_digits")
  version_dir = tmp_path / "leeml_digits" / "1.0.0"
  info = version_dir / "dataset_info.json"
  info.write_text(info.read_text().replace('"array_record"', '"tfrecord"'))
  for f in version_dir.glob("*.array_record-*"):
    f.rename(version_dir / f.name.replace("array_record", "tfrecord"))
  with pytest.raises(tfds_real.DatasetNotPreparedError,
                     match=r"^dataset\.name='leeml_digits' is prepared in .* as tfrecord, not "
                           r"array_record; convert it once .*tfds convert_format") as e:
    tfds_real.open_sources("leeml_digits", str(tmp_path))
  assert "\n" not in str(e.value)


def test_real_tfds_num_train_too_large(tmp_path):
  with tfds.testing.mock_data(num_examples=4):
    with pytest.raises(ValueError, match=r"^dataset\.num_train=10 exceeds the 4 examples"):
      _load("cifar10", data_dir=str(tmp_path), num_train=10)


def test_config_with_digits_validates_and_trains(data_dirs, tmp_path):
  config = tiny_config(num_train_steps=20)
  config.dataset = ml_collections.ConfigDict(dict(name="digits", image_size=8,
                                                  data_dir=data_dirs[0]))
  config_lib.validate(config)
  workdir = str(tmp_path / "workdir")
  train.train_and_evaluate(config, workdir)
  losses = [r["train_loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
            if "train_loss" in r]
  assert len(losses) == 20
  assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_config_rejects_unknown_digits_field(data_dirs):
  config = tiny_config()
  config.dataset = ml_collections.ConfigDict(dict(name="digits", image_sise=16))
  with pytest.raises(config_lib.ConfigError, match="did you mean 'image_size'"):
    config_lib.validate(config)


def test_streamed_split_reads_the_same_rows_and_trains(tmp_path):
  """dataset.stream=True reads each batch from the data source (host pipeline)."""
  idx = np.array([7, 0, 39, 7, 12])
  with tfds.testing.mock_data(num_examples=40):
    in_memory = _load("mnist", data_dir=str(tmp_path))
    streamed = _load("mnist", data_dir=str(tmp_path), stream=True)
    assert isinstance(streamed.train, data.SourceSplit) and len(streamed.train) == 40
    assert streamed.input_shape == (28, 28, 1)
    assert streamed.train.nbytes == in_memory.train.inputs.nbytes + in_memory.train.targets.nbytes
    for key, value in streamed.train.get_batch(idx).items():
      np.testing.assert_array_equal(value, in_memory.train.get_batch(idx)[key])
    curves = {}
    for stream in (False, True):
      config = tiny_config(num_train_steps=6, batch_size=8, eval_batch_size=16,
                           log_every_steps=3, checkpoint_every_steps=6)
      config.dataset = ml_collections.ConfigDict(dict(
          name="mnist", data_dir=str(tmp_path), num_train=0, num_test=0, download=False,
          stream=stream))
      workdir = str(tmp_path / f"w{stream}")
      train.train_and_evaluate(config, workdir)
      curves[stream] = [r["train_loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
                        if "train_loss" in r]
    np.testing.assert_allclose(curves[True], curves[False], rtol=1e-6)
    assert len(curves[True]) == 6
