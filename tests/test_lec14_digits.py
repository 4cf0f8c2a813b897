"""Lecture 14 digits experiment: the smoke scale end to end (claims judged, figures and
tables filled), and the Fréchet-distance bar's formula."""

import os

import ml_collections
import numpy as np
import pytest

from configs import lec14_digits as config_lib
from leeml import claims
from leeml.lectures import lec14_digits as lec


def test_fd_threshold_is_the_stricter_of_the_two_references():
  th = ml_collections.ConfigDict(dict(fd_vs_real=10.0, fd_vs_baseline=0.25))
  r = {"fd_real_test": 1.5, "fd_baselines": {"noise": 100.0, "pixels": 40.0}}
  assert lec.fd_threshold(r, th) == pytest.approx(min(15.0, 10.0))
  r["fd_baselines"]["pixels"] = 80.0
  assert lec.fd_threshold(r, th) == pytest.approx(15.0)


def test_cpu_thresholds_are_in_the_config_and_docstring():
  c = config_lib.get_config("cpu")
  assert len(c.seeds) >= 3
  assert c.thresholds.conditional_accuracy == 0.90
  for name in ("fd_vs_real", "fd_vs_baseline", "min_class_share", "conditional_accuracy"):
    assert name in config_lib.__doc__
  assert config_lib.get_config("full").dataset.name == "mnist"


@pytest.mark.slow  # end to end / subprocess; the slow run (.ci/run-slow) covers it
def test_lec14_digits_runs_end_to_end_and_judges_its_claims(tmp_path, quick_compiles):
  config = config_lib.get_config("smoke")
  section = lec.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec14_digits.fd_below_threshold", "lec14_digits.all_classes_covered",
      "lec14_digits.conditional_generates_requested_digit"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  assert all("raised" not in v.detail for v in section.verdicts)
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000
  # One row per reference, baseline and GAN; per-seed class shares sum to 1.
  assert len(section.tables[0].rows) == 1 + 3 + 2
  shares = np.array([[float(v) for v in row[1:]] for row in section.tables[1].rows])
  np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=2e-3)
  fd = section.verdicts[0].numbers
  # References are what they should be: real digits far closer than uniform noise.
  assert fd["FD, real test digits (reference)"].mean < fd["FD, baseline: uniform noise"].mean
  # Each GAN trained in its own resumable run directory, checkpointed at its last step.
  runs = sorted(os.listdir(tmp_path / "runs"))
  assert [r.split("_seed")[0] for r in runs] == ["conditional", "unconditional"]
  for r in runs:
    assert os.listdir(tmp_path / "runs" / r / "checkpoints") == [str(config.gan.num_train_steps)]


def test_generate_compiles_once_per_generator():
  # Scoring draws samples for every seed: one compile of G serves them all.
  import jax  # pylint: disable=g-import-not-at-top
  from jax import monitoring  # pylint: disable=g-import-not-at-top
  from leeml.gan import conv  # pylint: disable=g-import-not-at-top
  g = conv.ConvGenerator(image_size=8, channels=(4,), norm="layer")
  params = jax.jit(g.init)(jax.random.PRNGKey(0), jax.numpy.zeros((1, 3)))["params"]
  compiles = []

  def listen(event, secs, **_):
    del secs
    if event == "/jax/core/compile/backend_compile_duration":
      compiles.append(event)
  monitoring.register_event_duration_secs_listener(listen)
  try:
    a = lec.generate(g, params, jax.random.PRNGKey(1), 5, 3)
    first = len(compiles)
    b = lec.generate(g, params, jax.random.PRNGKey(1), 5, 3)
  finally:
    monitoring.unregister_event_duration_listener(listen)
  assert a.shape == (5, 8, 8, 1) and np.array_equal(a, b)
  assert first >= 1 and len(compiles) == first
