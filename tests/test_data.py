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


def test_device_indices_equal_host_indices_when_n_times_batch_passes_int32():
  # N * B >= 2**31: the device arithmetic is int32, so forming (step % N) * B would wrap;
  # the host reference computes positions in int64.
  import jax  # pylint: disable=g-import-not-at-top
  for n, batch in ((100_003, 30_011), (46_349, 46_349)):  # B < N and B = N
    fn = jax.jit(lambda s, p, q, b=batch: data.device_train_indices(s, b, p, q))
    last = (2**31 - 1) // n * n - 1  # the largest int32 step whose r = step % N is N - 1
    for s in (n - 1, 3 * n - 2, last):
      assert (s % n) * batch >= 2**31  # would wrap in int32
      e = data.first_epoch(s, batch, n)
      got = fn(s, data.epoch_permutation(3, e, n), data.epoch_permutation(3, e + 1, n))
      np.testing.assert_array_equal(np.asarray(got), data.train_indices(s, batch, n, 3))


def test_mod_mul_is_exact_up_to_int32_moduli():
  rng = np.random.default_rng(0)
  for modulus, factor in ((2**31 - 1, 2**31 - 2), (1_000_003, 999_983), (100_003, 30_011),
                          (7, 5), (46_349, 46_349), (1, 3)):
    x = np.concatenate([[0, 1, modulus - 1, 2**31 - 1],
                        rng.integers(0, 2**31 - 1, 200)]).astype(np.int32)
    want = [int(v) * factor % modulus for v in x]
    got = np.asarray(data.mod_mul(x, factor, modulus))
    np.testing.assert_array_equal(got, want, err_msg=f"modulus {modulus}, factor {factor}")
