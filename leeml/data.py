"""In-memory datasets and the deterministic, resumable batch order of the training core.

The batch order is a pure function of (seed, step): the training stream is the
concatenation of one permutation of the training set per epoch, and step `s` reads
positions [s*B, (s+1)*B) of it. Resuming at step `s` therefore needs no iterator state,
batches may straddle epoch boundaries, and no example is ever dropped.

Multi-host: every process computes the same global indices and loads only its own
contiguous slice (`process_slice`); `leeml.parallel.global_batch` assembles the global
array. Datasets themselves (synthetic families, tfds builders) live in `leeml.datasets`.
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
