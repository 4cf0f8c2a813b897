"""Orbax checkpoints of the TrainState in `workdir/checkpoints` (periodic, keep N, resume)."""

import os

import jax
import orbax.checkpoint as ocp


def make_manager(workdir: str, *, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                               options=options)


def save(manager: ocp.CheckpointManager, step: int, state) -> None:
  manager.save(step, args=ocp.args.StandardSave(state), force=True)


def restore(manager: ocp.CheckpointManager, state, step: int | None = None):
  """Restores `step` (default: latest) into arrays shaped and sharded like `state`."""
  step = manager.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))
