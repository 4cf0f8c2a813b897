"""In-memory datasets and the deterministic, resumable batch order of the training core.

The batch order is a pure function of (seed, step): the training stream is the
concatenation of one permutation of the training set per epoch, and step `s` reads
positions [s*B, (s+1)*B) of it. Resuming at step `s` therefore needs no iterator state,
batches may straddle epoch boundaries, and no example is ever dropped.

Multi-host: every process computes the same global indices and loads only its own
contiguous slice (`process_slice`); `leeml.parallel.global_batch` assembles the global
array. The lecture datasets (tfds builders, digits, MNIST-1D, ...) arrive with the data
issue; the synthetic families here are what the core's tests and smoke runs need.
"""

import dataclasses
import functools

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """One split held as aligned numpy arrays: `inputs`, `targets`."""
  inputs: np.ndarray
  targets: np.ndarray

  def __post_init__(self):
    if len(self.inputs) != len(self.targets):
      raise ValueError(f"inputs ({len(self.inputs)}) and targets ({len(self.targets)}) differ in length")

  def __len__(self) -> int:
    return len(self.inputs)

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return {"inputs": self.inputs[indices], "targets": self.targets[indices]}


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  train: ArraySplit
  test: ArraySplit
  num_classes: int  # 0 for regression

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train.inputs.shape[1:])


def gaussian_blobs(cfg) -> Dataset:
  """`num_classes` Gaussian clusters in `input_shape` dims, unit-norm centres at random.

  `noise` is the within-class standard deviation; the data seed is `cfg.seed`, so it stays
  fixed while the training seed varies.
  """
  rng = np.random.default_rng(cfg.seed)
  dim = int(np.prod(cfg.input_shape))
  centres = rng.normal(size=(cfg.num_classes, dim))
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)

  def split(n):
    y = rng.integers(0, cfg.num_classes, size=n)
    x = centres[y] + cfg.noise * rng.normal(size=(n, dim))
    return ArraySplit(x.reshape((n, *cfg.input_shape)).astype(np.float32), y.astype(np.int32))

  return Dataset("gaussian_blobs", split(cfg.num_train), split(cfg.num_test), cfg.num_classes)


def template_images(cfg) -> Dataset:
  """Images (H, W, C) = `input_shape`: one random smooth template per class, shifted by up
  to 2 pixels at random, plus pixel noise of std `noise`. A task a CNN finds easy."""
  rng = np.random.default_rng(cfg.seed)
  h, w, c = cfg.input_shape
  coarse = rng.normal(size=(cfg.num_classes, (h + 3) // 4, (w + 3) // 4, c))
  templates = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :h, :w, :]

  def split(n):
    y = rng.integers(0, cfg.num_classes, size=n)
    shifts = rng.integers(-2, 3, size=(n, 2))
    x = np.stack([np.roll(templates[k], tuple(s), axis=(0, 1)) for k, s in zip(y, shifts)])
    x = x + cfg.noise * rng.normal(size=x.shape)
    return ArraySplit(x.astype(np.float32), y.astype(np.int32))

  return Dataset("template_images", split(cfg.num_train), split(cfg.num_test), cfg.num_classes)


DATASETS = {"gaussian_blobs": gaussian_blobs, "template_images": template_images}


def get_dataset(cfg) -> Dataset:
  if cfg.name not in DATASETS:
    raise ValueError(f"dataset.name={cfg.name!r} is not one of: {', '.join(sorted(DATASETS))}")
  return DATASETS[cfg.name](cfg)


@functools.lru_cache(maxsize=4)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng((seed, epoch)).permutation(num_examples)


def train_indices(step: int, batch_size: int, num_examples: int, seed: int) -> np.ndarray:
  """Global example indices of training step `step` (see the module docstring)."""
  positions = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
  epochs, offsets = np.divmod(positions, num_examples)
  out = np.empty(batch_size, dtype=np.int64)
  for e in np.unique(epochs):
    sel = epochs == e
    out[sel] = _epoch_permutation(num_examples, seed, int(e))[offsets[sel]]
  return out


def process_slice(global_indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """The contiguous part of a global batch that process `process_index` loads."""
  per_process = len(global_indices) // process_count
  return global_indices[process_index * per_process:(process_index + 1) * per_process]


def eval_batches(split: ArraySplit, batch_size: int, process_index: int = 0, process_count: int = 1):
  """Yields this process's part of every global eval batch, padding the last one.

  Each batch carries `weights` (1 for real examples, 0 for padding), so metrics are
  averages over exactly the split's examples.
  """
  n = len(split)
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    weights = (idx < n).astype(np.float32)
    idx = np.minimum(idx, n - 1)
    batch = split.get_batch(process_slice(idx, process_index, process_count))
    batch["weights"] = process_slice(weights, process_index, process_count)
    yield batch
