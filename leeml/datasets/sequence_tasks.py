"""Generated long-range sequence tasks (lectures 10-11: self-attention vs RNN, 'distance').

* Recall the first token: tokens x_0 … x_{L-1}; x_0 is one of `num_values` value ids
  (0 … num_values-1), x_1 … x_{L-2} are distractors uniform over `num_distractors` other
  ids, and x_{L-1} is a query id; the target is x_0. The answer is L-1 steps back from
  where it is asked: what makes the task long-range is only that distance (the value is
  recognisable by its id, as in Hochreiter & Schmidhuber's 1997 long-time-lag tasks).
  Chance accuracy is 1 / num_values. With num_distractors=0 the distractors are drawn from
  the value ids themselves, so x_0 can be found only by its position.
* The adding problem (Hochreiter & Schmidhuber 1997, 'Long short-term memory', Sec. 5.4):
  inputs (L, 2): a value channel uniform on [0, 1] and a marker channel with exactly two
  ones, one in each half of the sequence; the target is the sum of the two marked values.
  Predicting the mean (1.0) gives MSE 1/6 ≈ 0.167.

Both are deterministic functions of (seed, length, sizes): numpy's PCG64 generator.
"""

import numpy as np


def recall_vocab_size(num_values: int, num_distractors: int) -> int:
  """Ids: values 0 … V-1, distractors V … V+D-1, the query V+D."""
  return num_values + num_distractors + 1


def recall_first_token(num_examples: int, length: int, num_values: int, seed: int,
                       num_distractors: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(tokens int32 (N, L), targets int32 (N,)): recall x_0 at the query token x_{L-1}.

  Ids as in `recall_vocab_size`; num_distractors=0 draws the distractors from the values.
  """
  if length < 2:
    raise ValueError(f"length must be ≥ 2 (a value and the query), got {length}")
  rng = np.random.default_rng([seed, length, num_values, num_distractors])
  values = rng.integers(0, num_values, size=num_examples)
  if num_distractors:
    tokens = num_values + rng.integers(0, num_distractors, size=(num_examples, length))
  else:
    tokens = rng.integers(0, num_values, size=(num_examples, length))
  tokens[:, 0] = values
  tokens[:, -1] = num_values + num_distractors
  return tokens.astype(np.int32), values.astype(np.int32)


def adding_problem(num_examples: int, length: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(inputs float32 (N, L, 2), targets float32 (N,)): the sum of the two marked values."""
  if length < 2:
    raise ValueError(f"length must be ≥ 2, got {length}")
  rng = np.random.default_rng([seed, length, 2])
  values = rng.uniform(0.0, 1.0, size=(num_examples, length))
  half = length // 2
  first = rng.integers(0, half, size=num_examples)
  second = rng.integers(half, length, size=num_examples)
  markers = np.zeros((num_examples, length))
  rows = np.arange(num_examples)
  markers[rows, first] = 1.0
  markers[rows, second] = 1.0
  targets = values[rows, first] + values[rows, second]
  inputs = np.stack([values, markers], axis=-1).astype(np.float32)
  return inputs, targets.astype(np.float32)

