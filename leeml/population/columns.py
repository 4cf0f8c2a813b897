"""Members that train on their own data: per-seed training sets of one size stacked as the
columns of one split, so that every member shares one compiled step.

Row j of `seed_columns([...])` holds example j of every seed's set (inputs (n, S, ...),
targets (n, S)). The engine samples rows by each member's own (seed, epoch) permutation,
the core's sampler, and `own_column` (inside the Program's train step) keeps the member's
column, named by its traced hyperparameter `data_column`: member s trains on its own set
exactly as a single run on that set would.
"""

import jax.numpy as jnp
import numpy as np

from leeml import data


def seed_columns(per_seed: list[tuple[np.ndarray, np.ndarray]]) -> data.ArraySplit:
  """[(inputs (n, ...), targets (n,)) per seed] -> one split with a seed axis at 1."""
  sizes = {len(x) for x, _ in per_seed} | {len(y) for _, y in per_seed}
  if len(sizes) != 1:
    raise ValueError(f"seed_columns: the per-seed sets differ in size ({sorted(sizes)})")
  return data.ArraySplit(np.stack([x for x, _ in per_seed], 1),
                         np.stack([y for _, y in per_seed], 1))


def own_column(batch: dict, hparams, name: str = "data_column") -> dict:
  """The member's column (`hparams[name]`) of a `seed_columns` batch."""
  col = jnp.asarray(hparams[name]).astype(jnp.int32)
  return {k: jnp.take(v, col, axis=1) for k, v in batch.items()}
