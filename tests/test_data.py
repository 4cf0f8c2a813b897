"""The batch order: a function of (seed, step) that visits every example once per epoch."""

import numpy as np
import ml_collections

from leeml import data, datasets


def test_every_example_once_per_epoch_across_straddling_batches():
  n, b = 100, 32  # batches straddle epoch boundaries (100 is not a multiple of 32)
  stream = np.concatenate([data.train_indices(s, b, n, seed=3) for s in range(25)])  # 8 epochs
  for e in range(8):
    assert sorted(stream[e * n:(e + 1) * n]) == list(range(n))
  assert not np.array_equal(stream[:n], stream[n:2 * n])  # reshuffled each epoch


def test_order_is_a_function_of_seed_and_step():
  a = data.train_indices(7, 16, 50, seed=0)
  np.testing.assert_array_equal(a, data.train_indices(7, 16, 50, seed=0))
  assert not np.array_equal(a, data.train_indices(7, 16, 50, seed=1))


def test_process_slices_partition_the_global_batch():
  idx = np.arange(40) * 3
  parts = [data.process_slice(idx, p, 4) for p in range(4)]
  assert all(len(p) == 10 for p in parts)
  np.testing.assert_array_equal(np.concatenate(parts), idx)


def test_eval_batches_pad_and_weight():
  split = data.ArraySplit(np.arange(10, dtype=np.float32)[:, None], np.arange(10))
  batches = list(data.eval_batches(split, 4))
  assert [len(b["targets"]) for b in batches] == [4, 4, 4]
  np.testing.assert_array_equal(batches[-1]["weights"], [1, 1, 0, 0])
  weighted = sum(float((b["weights"] * b["targets"]).sum()) for b in batches)
  assert weighted == sum(range(10))


def test_synthetic_datasets_are_deterministic():
  cfg = ml_collections.ConfigDict(dict(name="template_images", num_train=20, num_test=10,
                                       num_classes=3, input_shape=(8, 8, 1), noise=0.5, seed=4))
  a, b = datasets.get_dataset(cfg), datasets.get_dataset(cfg)
  np.testing.assert_array_equal(a.train.inputs, b.train.inputs)
  assert a.train.inputs.shape == (20, 8, 8, 1) and a.input_shape == (8, 8, 1)
  cfg.seed = 5
  assert not np.array_equal(a.train.inputs, datasets.get_dataset(cfg).train.inputs)
