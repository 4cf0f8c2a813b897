"""Lecture 3 (general guidance): read the loss curves, name the problem, give the remedy.

The lecture's flow chart:

  loss on training data large?
    yes -> compare with a shallower / simpler model trained the same way:
           the deeper one has *higher* training loss -> optimization (it could fit at
           least what the shallower one fits: 56 vs 20 layers, ResNet paper Fig. 1);
           otherwise                               -> model bias (the model is too simple)
    no  -> loss on validation data large (or rising while training loss falls)?
             yes -> overfitting
             no  -> a held-out test set from another distribution is large -> mismatch
                    else                                                   -> fine

`diagnose(curves, reference)` applies it to loss histories; the numbers that define
"large" are arguments (defaults relative to the loss at the start of training), so a
caller states them before looking. `validation_split` / `k_fold` / `select_model` are the
lecture's model selection ("N-fold cross validation": pick the model with the lowest mean
validation loss, never by the public test set).
"""

import dataclasses
from typing import Mapping, Sequence

import numpy as np

MODEL_BIAS, OPTIMIZATION, OVERFITTING, MISMATCH, FINE = (
    "model bias", "optimization", "overfitting", "mismatch", "fine")
VERDICTS = (MODEL_BIAS, OPTIMIZATION, OVERFITTING, MISMATCH, FINE)

# The lecture's remedies (Lecture 3, "General Guidance" slides).
REMEDIES = {
    MODEL_BIAS: "Redesign the model to make it more flexible: more features, more neurons "
                "and layers (the optimum is not in the function set: the needle is not in "
                "the haystack).",
    OPTIMIZATION: "The model is flexible enough but the optimizer does not find the low "
                  "loss: start from a shallower network that is easier to optimize, use a "
                  "more powerful optimizer (momentum, adaptive learning rates — lectures "
                  "4-5) or an architecture that is easier to optimize (residual "
                  "connections, normalization).",
    OVERFITTING: "Small training loss, large validation loss: more training data, data "
                 "augmentation, or a more constrained model — fewer parameters / shared "
                 "parameters (CNN), fewer features, early stopping, regularization, "
                 "dropout. Do not constrain so much that model bias returns.",
    MISMATCH: "Training and testing data come from different distributions: more "
              "training data will not help; understand how the data were generated "
              "(domain adaptation, lecture on HW11).",
    FINE: "Training and validation losses are both small: keep the model selected by "
          "validation loss (not by the public test set).",
}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
  verdict: str
  remedy: str
  reason: str
  numbers: Mapping[str, float]


def _final(history) -> float:
  h = np.ravel(np.asarray(history, np.float64))
  if h.size == 0:
    raise ValueError("an empty loss history")
  return float(h[-1])


def diagnose(curves: Mapping[str, Sequence[float]], reference=None, *,
             train_target: float | None = None, relative_target: float = 0.1,
             optimization_margin: float = 0.0, rise: float = 0.1,
             val_target: float | None = None, mismatch_ratio: float = 2.0) -> Diagnosis:
  """The lecture-3 verdict for one run.

  Args:
    curves: {'train_loss': history, 'val_loss': history (optional), 'test_loss': history
      (optional; data from a possibly different distribution)}. Histories are sequences
      in time order; the last value is the final loss. Losses on the whole split are
      best (eval mode), not noisy minibatch losses.
    reference: the training-loss history (or final value) of a shallower / simpler model
      trained the same way.
    train_target: training loss at or below which it counts as "small"; default
      `relative_target` x the first value of `train_loss` (the loss at the first
      evaluation: at initialization if the history starts there).
    optimization_margin: the deeper model is "worse" when its final training loss
      exceeds the reference's by more than this (absolute).
    rise: validation loss "rises" when its final value exceeds its minimum by more than
      this fraction of the minimum.
    val_target: validation loss above which it is "large"; default `relative_target` x
      the first value of `val_loss`, and never below the training target.
    mismatch_ratio: the test loss is "large" (mismatch) when it exceeds the validation
      loss by this factor while validation is fine.
  """
  train = np.ravel(np.asarray(curves["train_loss"], np.float64))
  train_final = _final(train)
  target = relative_target * float(train[0]) if train_target is None else train_target
  numbers = {"final train loss": train_final, "train target": target}

  if reference is not None:
    ref_final = _final(reference)
    numbers["reference final train loss"] = ref_final
    if train_final > ref_final + optimization_margin:
      return Diagnosis(OPTIMIZATION, REMEDIES[OPTIMIZATION],
                       f"final training loss {train_final:.4g} > the shallower model's "
                       f"{ref_final:.4g}: a deeper model can do at least what the shallower "
                       "does, so the optimizer failed (not overfitting: this is training "
                       "loss)", numbers)
  if train_final > target:
    extra = ("; the shallower reference is no better" if reference is not None else
             "; no shallower reference given, so optimization is not excluded")
    return Diagnosis(MODEL_BIAS, REMEDIES[MODEL_BIAS],
                     f"final training loss {train_final:.4g} > target {target:.4g}{extra}",
                     numbers)

  if "val_loss" in curves and len(curves["val_loss"]):
    val = np.ravel(np.asarray(curves["val_loss"], np.float64))
    val_final, val_min = float(val[-1]), float(val.min())
    vt = max(relative_target * float(val[0]) if val_target is None else val_target, target)
    numbers.update({"final val loss": val_final, "min val loss": val_min, "val target": vt})
    rose = val_final > val_min * (1.0 + rise)
    if rose or val_final > vt:
      why = (f"validation loss rose from its minimum {val_min:.4g} to {val_final:.4g}"
             if rose else f"final validation loss {val_final:.4g} > {vt:.4g}")
      return Diagnosis(OVERFITTING, REMEDIES[OVERFITTING],
                       f"training loss is small ({train_final:.4g}) but {why}", numbers)
    if "test_loss" in curves and len(curves["test_loss"]):
      test_final = _final(curves["test_loss"])
      numbers["final test loss"] = test_final
      if test_final > mismatch_ratio * max(val_final, 1e-12):
        return Diagnosis(MISMATCH, REMEDIES[MISMATCH],
                         f"validation loss {val_final:.4g} (same distribution as training) "
                         f"is small but test loss {test_final:.4g} is > {mismatch_ratio}x it",
                         numbers)
  return Diagnosis(FINE, REMEDIES[FINE], "training and validation losses are small", numbers)


# ----------------------------------------------------------------------------- model selection


def validation_split(num_examples: int, fraction: float = 0.1, seed: int = 0):
  """(train_indices, val_indices): a random `fraction` of the training set held out."""
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"fraction must be in (0, 1) (got {fraction})")
  perm = np.random.default_rng(seed).permutation(num_examples)
  n_val = max(1, int(round(fraction * num_examples)))
  return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def k_fold(num_examples: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
  """Lecture 3's N-fold cross validation: k (train, val) index pairs; the val parts are
  disjoint, cover every example once, and differ in size by at most one."""
  if not 2 <= k <= num_examples:
    raise ValueError(f"k must be in [2, {num_examples}] (got {k})")
  perm = np.random.default_rng(seed).permutation(num_examples)
  folds = np.array_split(perm, k)
  return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(folds[i]))
          for i in range(k)]


def select_model(val_losses: Mapping[str, Sequence[float]]) -> tuple[str, dict[str, float]]:
  """The model with the lowest mean validation loss over folds, and every model's mean."""
  means = {name: float(np.mean(v)) for name, v in val_losses.items()}
  return min(means, key=means.get), means
