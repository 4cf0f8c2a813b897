"""The training state: everything a resumed run needs, and nothing that is not an array."""

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """params, optimizer state, BatchNorm statistics and the step counter.

  `nonfinite_step` is -1 while every step so far had a finite loss and finite gradients;
  otherwise it is the first step that did not. The loop checks it at every log step and
  before every checkpoint save, so a NaN never reaches disk and the error can name the
  exact step without a host sync per step.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any
  nonfinite_step: jax.Array

  @classmethod
  def create(cls, variables, tx):
    params = variables["params"]
    return cls(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params),
               batch_stats=variables.get("batch_stats", {}),
               nonfinite_step=jnp.asarray(-1, jnp.int32))

  def variables(self) -> dict:
    v = {"params": self.params}
    if self.batch_stats:
      v["batch_stats"] = self.batch_stats
    return v
