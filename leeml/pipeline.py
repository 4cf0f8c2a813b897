"""Input pipelines: how training batches reach the jitted step (both give the same batches).

- `DevicePipeline` (small datasets): the training split lives on the devices, replicated;
  inside the jitted step the batch indices are computed from `state.step`
  (`data.device_train_indices`), gathered, and resharded along the `data` axis. No
  Python work per step, and the position in the data is the step in the checkpoint.
- `HostPipeline` (large datasets): each process computes the step's global indices on
  the host, loads only its own rows, and the global batch is assembled across processes.

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
    replicated = parallel.replicated(mesh)
    # Every process holds the whole (small) split; a replicated global array needs no
    # cross-process assembly beyond each process's own copy.
    # The seed travels as an argument, not a compile-time constant, so runs that differ
    # only in their seed compile to the same program (and share the compilation cache).
    self.arrays = {k: jax.make_array_from_process_local_data(replicated, np.asarray(v))
                   for k, v in (("inputs", split.inputs), ("targets", split.targets),
                                ("seed", np.asarray(seed, np.int32)))}

  def wrap(self, train_step):
    """The step to jit: `(state, arrays, rng) -> (state, metrics)`, gathering on device."""
    def step_on_device(state, arrays, rng):
      idx = data.device_train_indices(state.step, self.batch_size, self.num_examples,
                                      arrays["seed"])
      batch = {k: jax.lax.with_sharding_constraint(arrays[k][idx], self.batch_sharding)
               for k in ("inputs", "targets")}
      return train_step(state, batch, rng)
    return step_on_device

  def feed(self, step: int):
    del step  # the step is read from the state, on device
    return self.arrays


def choose(kind: str, split: data.ArraySplit, batch_size: int, seed: int, mesh):
  """'device' when asked, or for 'auto' when the split is small enough and B <= N."""
  if kind not in PIPELINES:
    raise ValueError(f"input_pipeline={kind!r} is not one of: {', '.join(PIPELINES)}")
  nbytes = split.inputs.nbytes + split.targets.nbytes
  fits = batch_size <= len(split)
  if kind == "device" and not fits:
    raise ValueError(f"input_pipeline='device' needs batch_size ({batch_size}) <= the number "
                     f"of training examples ({len(split)})")
  if kind == "device" or (kind == "auto" and fits and nbytes <= DEVICE_DATA_MAX_BYTES):
    return DevicePipeline(split, batch_size, seed, mesh)
  return HostPipeline(split, batch_size, seed, mesh)
