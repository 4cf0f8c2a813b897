"""Lecture 3's diagnosis on synthetic curves (one per verdict) and the model-selection helpers."""

import numpy as np
import pytest

from leeml import diagnose as dg

STEPS = np.arange(50)
FALLING = 2.3 * np.exp(-STEPS / 8)          # 2.3 -> ~0.005
PLATEAU = 2.3 - 1.3 * (1 - np.exp(-STEPS / 8))  # 2.3 -> ~1.0: stays large


def test_model_bias_when_train_loss_stays_large_and_shallower_is_no_better():
  d = dg.diagnose({"train_loss": PLATEAU}, reference=PLATEAU + 0.2)
  assert d.verdict == dg.MODEL_BIAS and d.remedy == dg.REMEDIES[dg.MODEL_BIAS]
  assert d.numbers["final train loss"] == pytest.approx(PLATEAU[-1])
  assert dg.diagnose({"train_loss": PLATEAU}).verdict == dg.MODEL_BIAS


def test_optimization_when_deeper_has_higher_train_loss_than_shallower():
  deep = {"train_loss": PLATEAU, "val_loss": PLATEAU + 0.1}
  d = dg.diagnose(deep, reference=FALLING)
  assert d.verdict == dg.OPTIMIZATION
  assert d.numbers["reference final train loss"] == pytest.approx(FALLING[-1])
  # A scalar reference works too; a margin larger than the gap flips it back to bias.
  assert dg.diagnose(deep, reference=0.9).verdict == dg.OPTIMIZATION
  assert dg.diagnose(deep, reference=0.9, optimization_margin=0.5).verdict == dg.MODEL_BIAS
  # Even when the deeper net's train loss is "small", being worse than the shallower
  # one is still the optimization verdict (the lecture's 20- vs 56-layer check).
  assert dg.diagnose({"train_loss": FALLING}, reference=FALLING / 10).verdict == dg.OPTIMIZATION


def test_overfitting_when_val_rises_while_train_falls():
  val = 2.3 * np.exp(-STEPS / 8) + 0.02 * STEPS  # U-shaped: minimum then up
  d = dg.diagnose({"train_loss": FALLING, "val_loss": val}, reference=FALLING * 2)
  assert d.verdict == dg.OVERFITTING
  assert d.numbers["final val loss"] > 1.1 * d.numbers["min val loss"]
  # A large final val loss without a rise is overfitting too (the lecture's "testing loss large").
  flat_high = np.full(50, 1.5)
  flat_high[0] = 2.3
  assert dg.diagnose({"train_loss": FALLING, "val_loss": flat_high}).verdict == dg.OVERFITTING


def test_fine_and_mismatch():
  val = FALLING + 0.05
  assert dg.diagnose({"train_loss": FALLING, "val_loss": val}).verdict == dg.FINE
  assert dg.diagnose({"train_loss": FALLING}).verdict == dg.FINE
  d = dg.diagnose({"train_loss": FALLING, "val_loss": val, "test_loss": val * 10})
  assert d.verdict == dg.MISMATCH and "test loss" in d.reason
  assert dg.diagnose({"train_loss": FALLING, "val_loss": val,
                      "test_loss": val * 1.5}).verdict == dg.FINE


def test_every_verdict_has_a_remedy():
  assert set(dg.REMEDIES) == set(dg.VERDICTS)


def test_validation_split_and_k_fold():
  tr, va = dg.validation_split(100, 0.2, seed=3)
  assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va)
  assert sorted(np.concatenate([tr, va])) == list(range(100))
  folds = dg.k_fold(103, 5, seed=1)
  vals = [v for _, v in folds]
  assert sorted(len(v) for v in vals) == [20, 20, 21, 21, 21]
  assert sorted(np.concatenate(vals)) == list(range(103))
  for tr, va in folds:
    assert len(tr) + len(va) == 103 and not set(tr) & set(va)
  with pytest.raises(ValueError):
    dg.k_fold(10, 1)
  best, means = dg.select_model({"a": [0.3, 0.5], "b": [0.35, 0.36], "c": [1.0, 0.1]})
  assert best == "b" and means["a"] == pytest.approx(0.4)
