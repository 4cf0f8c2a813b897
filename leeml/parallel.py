"""One way to go parallel: a 1-D device Mesh with a `data` axis, on one host or many.

The batch is sharded along `data` with a NamedSharding; parameters and optimizer state
are replicated; the step is a plain `jax.jit` with in/out shardings, and XLA inserts the
gradient all-reduce. The same code runs on 1 CPU device, 8 forced host devices, a GPU
box, or several processes joined by `jax.distributed`.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over all (global) devices, ordered by process so that each process's
  devices hold one contiguous block of the batch (what `global_batch` assumes)."""
  devices = jax.devices() if devices is None else devices
  devices = sorted(devices, key=lambda d: (d.process_index, d.id))
  return Mesh(np.array(devices), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """Assembles the global batch from each process's local part (leading axis sharded)."""
  sharding = data_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def to_host(tree):
  """Fetches replicated arrays to numpy on every process (also when not fully addressable).

  An array sharded across processes (each process holds only some of its rows) is an
  error here, not its first shard: gather it with `all_rows`."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if not x.sharding.is_fully_replicated:
        raise ValueError(f"to_host: an array of shape {x.shape} is sharded across processes "
                         "(this process holds only part of it); use parallel.all_rows")
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)
  return jax.tree.map(get, tree)


def all_rows(x: jax.Array) -> np.ndarray:
  """A batch-sharded array as one numpy array of all its rows, on every process (with
  several processes a process addresses only its own rows: they are all-gathered;
  `to_host` is for replicated arrays)."""
  if jax.process_count() == 1:
    return np.asarray(x)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
