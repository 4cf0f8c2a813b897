"""Digit-classifier GAN metrics: Fréchet distance against its closed form, Inception Score
at its extremes, class histograms and dropped modes on constructed sets, the classifier."""

import math

import ml_collections
import numpy as np
import pytest
import scipy.linalg

from leeml import datasets
from leeml.gan import evaluation as ev


def _spd(rng, d, scale=1.0):
  a = rng.normal(size=(d, d))
  return scale * (a @ a.T / d + 0.1 * np.eye(d))


def test_frechet_distance_closed_form_diagonal():
  # Commuting (diagonal) covariances: |μ1 - μ2|² + Σ_i (σ1_i - σ2_i)².
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
  expect = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)   # 5 + 5 = 10
  got = ev.frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2))
  assert got == pytest.approx(expect, rel=1e-10)
  assert expect == 10.0


def test_frechet_distance_matches_scipy_sqrtm_on_non_commuting_covariances():
  rng = np.random.default_rng(0)
  for d in (2, 5, 16):
    c1, c2 = _spd(rng, d), _spd(rng, d, 3.0)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    ref = (np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2)
           - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2).real))
    assert ev.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)
    assert ev.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-9)
    # Symmetric in its two arguments.
    assert ev.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(
        ev.frechet_distance(mu2, c2, mu1, c1), rel=1e-8)


def test_feature_frechet_distance_of_gaussian_samples_approaches_the_closed_form():
  rng = np.random.default_rng(1)
  d, n = 4, 200_000
  c1, c2 = _spd(rng, d), _spd(rng, d, 2.0)
  mu1, mu2 = np.zeros(d), np.full(d, 0.5)
  a = rng.multivariate_normal(mu1, c1, size=n)
  b = rng.multivariate_normal(mu2, c2, size=n)
  expect = ev.frechet_distance(mu1, c1, mu2, c2)
  assert expect > 1.0
  assert ev.feature_frechet_distance(a, b) == pytest.approx(expect, rel=0.02)
  # Identical sets: 0 (up to round-off); the same distribution: ~0 (sampling bias only).
  assert ev.feature_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
  assert ev.feature_frechet_distance(a[: n // 2], a[n // 2:]) < 0.01 * expect


def test_inception_score_extremes_and_a_hand_computed_case():
  k = 7
  constant = np.tile(np.array([0.1, 0.6, 0.3, 0, 0, 0, 0]), (50, 1))
  assert ev.inception_score(constant) == pytest.approx(1.0, abs=1e-12)   # KL(p || p) = 0
  confident = np.eye(k)[np.arange(70) % k]                             # uniform classes
  assert ev.inception_score(confident) == pytest.approx(k, rel=1e-12)
  # Two samples, p(y|x) = (1, 0) and (0.5, 0.5): p(y) = (0.75, 0.25);
  # KL1 = log(1/0.75), KL2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25).
  kl1 = math.log(1 / 0.75)
  kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
  probs = np.array([[1.0, 0.0], [0.5, 0.5]])
  assert ev.inception_score(probs) == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
  # Confident but all one class (mode collapse): 1.
  assert ev.inception_score(np.eye(k)[np.zeros(30, int)]) == pytest.approx(1.0)


def test_class_histogram_and_dropped_modes():
  predicted = np.array([0] * 50 + [1] * 30 + [2] * 15 + [3] * 4 + [4] * 1)
  shares = ev.class_histogram(predicted, num_classes=6)
  np.testing.assert_allclose(shares, [0.5, 0.3, 0.15, 0.04, 0.01, 0.0])
  assert ev.dropped_classes(shares, 0.05) == [3, 4, 5]
  assert ev.dropped_classes(shares, 0.0) == []
  assert ev.dropped_classes(ev.class_histogram(np.arange(100) % 10), 0.1) == []


@pytest.mark.slow  # ~20 s
def test_classifier_learns_the_digits_and_gives_features():
  ds = datasets.get_dataset(ml_collections.ConfigDict(dict(name="digits", image_size=8)))
  config = ev.classifier_config()
  config.steps = 150
  clf = ev.train_classifier(ds.train.inputs, ds.train.targets, config)
  acc = clf.accuracy(ds.test.inputs, ds.test.targets)
  assert acc > 0.85, acc
  probs = clf.probabilities(ds.test.inputs[:20])
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  feats = clf.features(ds.test.inputs[:20])
  assert feats.shape == (20, config.dense_width) and feats.min() >= 0.0   # ReLU outputs
  # Deterministic in the config's seed.
  again = ev.train_classifier(ds.train.inputs, ds.train.targets, config)
  np.testing.assert_array_equal(again.features(ds.test.inputs[:20]), feats)
  # The real test set scores as the lecture expects of a good generator.
  assert ev.inception_score(clf.probabilities(ds.test.inputs)) > 7.0
