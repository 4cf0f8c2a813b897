"""In-memory datasets and the deterministic, resumable batch order of the training core.

The batch order is a pure function of (seed, step): the training stream is the
concatenation of one permutation of the training set per epoch (`jax.random.permutation`
under the key `fold_in(PRNGKey(seed), epoch)`), and step `s` reads positions
[s*B, (s+1)*B) of it. Resuming at step `s` therefore needs no iterator state beyond the
step (which the checkpoint holds), batches may straddle epoch boundaries, and no example
is ever dropped.

Two pipelines give the same batches: `train_indices` on the host (large datasets: each
process gathers its rows from the data source) and `device_train_indices` inside the
jitted step (small datasets kept on device: no per-step host work at all).

Multi-host: every process computes the same global indices and loads only its own
contiguous slice (`process_slice`); `leeml.parallel.global_batch` assembles the global
array. Datasets themselves (synthetic families, tfds builders) live in `leeml.datasets`.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
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

  @property
  def element_spec(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    return {"inputs": (self.inputs.shape[1:], self.inputs.dtype),
            "targets": (self.targets.shape[1:], self.targets.dtype)}

  @property
  def nbytes(self) -> int:
    return self.inputs.nbytes + self.targets.nbytes


class SourceSplit:
  """A split read batch by batch from a random-access source (e.g. `tfds.data_source`).

  For datasets that should not be held in memory: the host pipeline asks only for the
  rows of each step (each process only for its own rows). `decode(records)` turns a list
  of source records into {'inputs', 'targets'} numpy arrays.
  """

  def __init__(self, source, decode, num_examples: int | None = None):
    self.source, self.decode = source, decode
    self.num_examples = len(source) if num_examples is None else num_examples
    first = decode([source[0]])
    self.element_spec = {k: (v.shape[1:], v.dtype) for k, v in first.items()}
    self.nbytes = self.num_examples * sum(
        int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in self.element_spec.values())

  def __len__(self) -> int:
    return self.num_examples

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return self.decode([self.source[int(i)] for i in indices])


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  train: "ArraySplit | SourceSplit"
  test: "ArraySplit | SourceSplit"
  num_classes: int  # 0 for regression

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train.element_spec["inputs"][0])


@functools.partial(jax.jit, static_argnums=2)
def epoch_permutation(seed, epoch, num_examples: int) -> jax.Array:
  """The order of epoch `epoch`: the one definition both pipelines use."""
  return jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(seed), epoch),
                                num_examples)


def epoch_orders(seed, first_epoch, num_epochs: int, num_examples: int) -> jax.Array:
  """[num_epochs, num_examples]: `epoch_permutation` of epochs first_epoch, first_epoch + 1,
  ... (traceable: jit it with num_epochs and num_examples static)."""
  epochs = first_epoch + jnp.arange(num_epochs)
  return jax.vmap(lambda e: epoch_permutation(seed, e, num_examples))(epochs)


@functools.lru_cache(maxsize=4)
def _host_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.asarray(epoch_permutation(seed, epoch, num_examples))


def first_epoch(step: int, batch_size: int, num_examples: int) -> int:
  """The epoch of the first example of step `step` (host arithmetic, no overflow)."""
  return step * batch_size // num_examples


def train_indices(step: int, batch_size: int, num_examples: int, seed: int) -> np.ndarray:
  """Global example indices of training step `step` (see the module docstring)."""
  positions = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
  epochs, offsets = np.divmod(positions, num_examples)
  out = np.empty(batch_size, dtype=np.int64)
  for e in np.unique(epochs):
    sel = epochs == e
    out[sel] = _host_permutation(num_examples, seed, int(e))[offsets[sel]]
  return out


def device_train_indices(step: jax.Array, batch_size: int, perm: jax.Array,
                         perm_next: jax.Array) -> jax.Array:
  """`train_indices` inside jit, given the permutations of the step's first epoch and the
  next (`epoch_permutation(seed, first_epoch(step, ...))` and of that + 1).

  O(batch) work per step: the permutations are computed once per epoch, outside. Needs
  batch_size <= num_examples (a batch then spans at most two epochs). All arithmetic is
  int32 and never leaves [0, num_examples): the batch's start within its epoch,
  (step * batch_size) mod num_examples, comes from `mod_mul`, since neither
  step * batch_size nor (step mod N) * batch_size fits int32 once N * B >= 2**31.
  """
  num_examples = perm.shape[0]
  if batch_size > num_examples:
    raise ValueError(f"the on-device pipeline needs batch_size ({batch_size}) <= the number "
                     f"of training examples ({num_examples})")
  start = mod_mul(jnp.asarray(step, jnp.int32), batch_size, num_examples)
  j = jnp.arange(batch_size, dtype=jnp.int32)
  room = num_examples - start  # in (0, N]: how many of the batch still fit this epoch
  in_this_epoch = j < room
  # start + j only where it is < N; j - room otherwise (both in [0, N), no wrap).
  offsets = jnp.where(in_this_epoch, start + jnp.minimum(j, room - 1), j - jnp.minimum(j, room))
  return jnp.where(in_this_epoch, perm[offsets], perm_next[offsets])


def mod_add(a: jax.Array, b: jax.Array, modulus: int) -> jax.Array:
  """(a + b) mod `modulus` for a, b in [0, modulus), without leaving [0, modulus)."""
  gap = modulus - b  # in (0, modulus]
  return jnp.where(a >= gap, a - gap, a + b)


def mod_mul(x: jax.Array, factor: int, modulus: int) -> jax.Array:
  """(x * factor) mod `modulus` for an int32 x >= 0, exactly, in int32 arithmetic.

  When (modulus - 1) * (factor mod modulus) fits int32 it is the plain product; otherwise
  double-and-add over the bits of x mod `modulus` (at most 31 scalar steps), every value in
  [0, modulus), so nothing wraps for any modulus < 2**31.
  """
  r = jnp.asarray(x, jnp.int32) % modulus
  if (modulus - 1) * (factor % modulus) < 2**31:
    return (r * (factor % modulus)) % modulus
  f = jnp.int32(factor % modulus)
  acc = jnp.zeros_like(r)
  for bit in reversed(range(max(1, (modulus - 1).bit_length()))):
    acc = mod_add(acc, acc, modulus)
    acc = mod_add(acc, jnp.where((r >> bit) & 1 == 1, f, jnp.int32(0)), modulus)
  return acc


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
