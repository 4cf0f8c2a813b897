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
