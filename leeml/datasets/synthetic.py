"""Synthetic datasets generated from a seed (no files, no network)."""

import numpy as np

from leeml import data


def gaussian_blobs(cfg) -> data.Dataset:
  """`num_classes` Gaussian clusters in `input_shape` dims, unit-norm centres at random.

  `noise` is the within-class standard deviation; the data seed is `cfg.seed`, so it stays
  fixed while the training seed varies.
  """
  rng = np.random.default_rng(cfg.seed)
  dim = int(np.prod(cfg.input_shape))
  centres = rng.normal(size=(cfg.num_classes, dim))
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)

  def split(n):
    y = rng.integers(0, cfg.num_classes, size=n)
    x = centres[y] + cfg.noise * rng.normal(size=(n, dim))
    return data.ArraySplit(x.reshape((n, *cfg.input_shape)).astype(np.float32), y.astype(np.int32))

  return data.Dataset("gaussian_blobs", split(cfg.num_train), split(cfg.num_test), cfg.num_classes)


def template_images(cfg) -> data.Dataset:
  """Images (H, W, C) = `input_shape`: one random smooth template per class, shifted by up
  to 2 pixels at random, plus pixel noise of std `noise`. A task a CNN finds easy."""
  rng = np.random.default_rng(cfg.seed)
  h, w, c = cfg.input_shape
  coarse = rng.normal(size=(cfg.num_classes, (h + 3) // 4, (w + 3) // 4, c))
  templates = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :h, :w, :]

  def split(n):
    y = rng.integers(0, cfg.num_classes, size=n)
    shifts = rng.integers(-2, 3, size=(n, 2))
    x = np.stack([np.roll(templates[k], tuple(s), axis=(0, 1)) for k, s in zip(y, shifts)])
    x = x + cfg.noise * rng.normal(size=x.shape)
    return data.ArraySplit(x.astype(np.float32), y.astype(np.int32))

  return data.Dataset("template_images", split(cfg.num_train), split(cfg.num_test), cfg.num_classes)


def _regression_1d(name: str, cfg, target) -> data.Dataset:
  """x uniform on [cfg.low, cfg.high] (train: random, test: an even grid), y = target(x)
  plus Gaussian noise of std `noise` on the training targets; float targets (N, 1)."""
  rng = np.random.default_rng(cfg.seed)
  x_train = np.sort(rng.uniform(cfg.low, cfg.high, size=cfg.num_train))
  x_test = np.linspace(cfg.low, cfg.high, cfg.num_test)
  y_train = target(x_train) + cfg.noise * rng.normal(size=cfg.num_train)

  def split(x, y):
    return data.ArraySplit(x[:, None].astype(np.float32), y[:, None].astype(np.float32))

  return data.Dataset(name, split(x_train, y_train), split(x_test, target(x_test)), 0)


def sum_of_sines_target(x, frequencies, amplitudes) -> np.ndarray:
  """sum_i a_i sin(2 pi f_i x): a smooth 1-D curve whose detail grows with f_i."""
  x = np.asarray(x, np.float64)
  return sum(a * np.sin(2 * np.pi * f * x) for f, a in zip(frequencies, amplitudes))


def sum_of_sines(cfg) -> data.Dataset:
  """Lectures 1-2 regression target: a sum of sines (num_classes=0, loss 'mse')."""
  return _regression_1d("sum_of_sines", cfg, lambda x: sum_of_sines_target(
      x, cfg.frequencies, cfg.amplitudes))


def sawtooth_target(x, depth: int) -> np.ndarray:
  """Telgarsky's sawtooth t^depth on [0, 1] (2^depth linear pieces; see leeml.piecewise)."""
  y = np.asarray(x, np.float64) * 2.0 ** depth
  return np.abs(y - 2.0 * np.round(y / 2.0))


def sawtooth(cfg) -> data.Dataset:
  """Lectures 1-2 regression target: the depth-`depth` sawtooth on [low, high] = [0, 1]."""
  return _regression_1d("sawtooth", cfg, lambda x: sawtooth_target(x, cfg.depth))
