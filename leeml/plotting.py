"""Matplotlib helpers shared by the lecture experiments (Agg backend: no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np


def mean_band(ax, x, runs, label: str, color=None):
  """Plots the mean over runs (rows of `runs`) with a ±1 std band; returns the line."""
  runs = np.asarray(runs, dtype=float)
  mean = runs.mean(axis=0)
  std = runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
  (line,) = ax.plot(x, mean, label=f"{label} (n={len(runs)})", color=color)
  ax.fill_between(x, mean - std, mean + std, alpha=0.25, color=line.get_color())
  return line


def save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return path


def figure(ncols: int = 1, nrows: int = 1, size=(5.0, 3.6)):
  return plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                      layout="constrained")
