"""Input pipelines: how training batches reach the jitted step (both give the same batches).

- `DevicePipeline` (small datasets): the training split lives on the devices, replicated;
  inside the jitted step the batch indices are computed from `state.step`
  (`data.device_train_indices`), gathered, and resharded along the `data` axis. No
  Python work per step, and the position in the data is the step in the checkpoint.
- `HostPipeline` (large or streamed datasets): each process computes the step's global
  indices on the host, loads only its own rows (from memory, or from the data source for
  a `SourceSplit`), and the global batch is assembled across processes.

`choose(...)` picks one from config `input_pipeline` ('auto', 'device', 'host').
"""

import jax
import numpy as np

from leeml import data, parallel

# 'auto' keeps a training split on device up to this size (it is replicated per device).
DEVICE_DATA_MAX_BYTES = 256 * 2**20
PIPELINES = ("auto", "device", "host")


class HostPipeline:
  name = "host"

  def __init__(self, split: data.ArraySplit, batch_size: int, seed: int, mesh):
    self.split, self.batch_size, self.seed, self.mesh = split, batch_size, seed, mesh

  def wrap(self, train_step):
    """The step to jit: `(state, batch, rng) -> (state, metrics)`."""
    return train_step

  def feed(self, step: int):
    idx = data.process_slice(data.train_indices(step, self.batch_size, len(self.split), self.seed),
                             jax.process_index(), jax.process_count())
    return parallel.global_batch(self.split.get_batch(idx), self.mesh)


class DevicePipeline:
  name = "device"

  def __init__(self, split: data.ArraySplit, batch_size: int, seed: int, mesh):
    self.batch_size, self.seed, self.num_examples = batch_size, seed, len(split)
    self.batch_sharding = parallel.data_sharding(mesh)
    self.replicated = parallel.replicated(mesh)
    # Every process holds the whole (small) split; a replicated global array needs no
    # cross-process assembly beyond each process's own copy.
    self.arrays = {k: jax.make_array_from_process_local_data(self.replicated, np.asarray(v))
                   for k, v in (("inputs", split.inputs), ("targets", split.targets))}
    self._perms: dict[int, jax.Array] = {}
    n = self.num_examples
    self._perm_fn = jax.jit(lambda seed, epoch: data.epoch_permutation(seed, epoch, n),
                            out_shardings=self.replicated)

  def _permutation(self, epoch: int) -> jax.Array:
    """Computed once per epoch (a sort of N keys), not once per step."""
    if epoch in self._perms:
      self._perms[epoch] = self._perms.pop(epoch)  # most recently used goes last
    else:
      if len(self._perms) >= 4:
        self._perms.pop(next(iter(self._perms)))  # least recently used
      # Dispatched asynchronously onto the mesh (no host round trip, no pipeline stall).
      self._perms[epoch] = self._perm_fn(self.seed, epoch)
    return self._perms[epoch]

  def wrap(self, train_step):
    """The step to jit: `(state, feed, rng) -> (state, metrics)`, gathering on device."""
    def step_on_device(state, feed, rng):
      idx = data.device_train_indices(state.step, self.batch_size, feed["perm"],
                                      feed["perm_next"])
      batch = {k: jax.lax.with_sharding_constraint(feed[k][idx], self.batch_sharding)
               for k in ("inputs", "targets")}
      return train_step(state, batch, rng)
    return step_on_device

  def feed(self, step: int):
    """The data arrays and this step's two epoch orders (the step itself is read from
    the state on device; the seed enters only through the orders, so runs that differ
    only in their seed compile to the same program)."""
    epoch = data.first_epoch(step, self.batch_size, self.num_examples)
    return dict(self.arrays, perm=self._permutation(epoch),
                perm_next=self._permutation(epoch + 1))


def choose(kind: str, split: data.ArraySplit, batch_size: int, seed: int, mesh):
  """'device' when asked, or for 'auto' when the split is small enough and B <= N."""
  if kind not in PIPELINES:
    raise ValueError(f"input_pipeline={kind!r} is not one of: {', '.join(PIPELINES)}")
  in_memory = isinstance(split, data.ArraySplit)
  fits = batch_size <= len(split)
  if kind == "device" and not (fits and in_memory):
    raise ValueError(
        "input_pipeline='device' needs an in-memory split (not dataset.stream) and "
        f"batch_size ({batch_size}) <= the number of training examples ({len(split)})")
  if kind == "device" or (kind == "auto" and fits and in_memory
                          and split.nbytes <= DEVICE_DATA_MAX_BYTES):
    return DevicePipeline(split, batch_size, seed, mesh)
  return HostPipeline(split, batch_size, seed, mesh)
