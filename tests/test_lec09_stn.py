"""Lecture 9 (spatial transformer): the distorted digits, theta's angle, the experiment."""

import os

import ml_collections
import numpy as np
import pytest

from configs import lec09_stn as lec09_stn_config
from leeml import claims, datasets, lectures, population, transforms
from leeml.datasets import builders, distorted
from leeml.lectures import lec09_stn


def _cfg(**fields):
  return ml_collections.ConfigDict(dict(name="distorted_digits", train_copies=1, test_copies=2,
                                        **fields))


def _spec_fields(**fields):
  values = datasets.dataset_fields("distorted_digits")
  values.update(train_copies=1, test_copies=2, **fields)
  return ml_collections.ConfigDict(values)


def test_no_distortion_gives_the_centred_upsampled_digits():
  d = datasets.get_dataset(_cfg(variant="R", max_angle=0.0))
  digits = datasets.get_dataset(ml_collections.ConfigDict(dict(name="digits")))
  centred = np.pad(builders.upsample(digits.test.inputs, 16), ((0, 0), (6, 6), (6, 6), (0, 0)))
  assert d.test.inputs.shape == (600, 28, 28, 1) and d.train.inputs.shape == (1497, 28, 28, 1)
  np.testing.assert_array_equal(d.test.inputs[:300], centred)  # identity warp is exact
  np.testing.assert_array_equal(d.test.inputs[300:], centred)
  np.testing.assert_array_equal(d.test.targets, np.tile(digits.test.targets, 2))


def test_translation_moves_the_centre_of_mass_by_the_recorded_shift():
  # Translation only (no rotation, scale 1): bilinear interpolation keeps the mass and
  # moves the centre of mass exactly by the shift, while the digit stays on the canvas.
  fields = dict(variant="RTS", max_angle=0.0, min_scale=1.0, max_scale=1.0)
  d = datasets.get_dataset(_cfg(**fields))
  shift = distorted.split_distortions(_spec_fields(**fields), "test")["shift"]
  centred = datasets.get_dataset(_cfg(variant="R", max_angle=0.0)).test.inputs

  def moments(x):
    mass = x[..., 0].sum(axis=(1, 2))
    rows, cols = np.mgrid[:28, :28]
    return mass, np.stack([(x[..., 0] * cols).sum(axis=(1, 2)) / mass,
                           (x[..., 0] * rows).sum(axis=(1, 2)) / mass], axis=1)

  mass0, com0 = moments(centred)
  mass1, com1 = moments(d.test.inputs)
  assert np.abs(shift).max() > 5.0  # up to (28 - 16) / 2 = 6 pixels each way
  np.testing.assert_allclose(mass1, mass0, rtol=1e-4)
  np.testing.assert_allclose(com1 - com0, shift, atol=1e-3)


def test_distortions_are_deterministic_and_in_range():
  rts = distorted.split_distortions(_spec_fields(variant="RTS"), "test")
  again = distorted.split_distortions(_spec_fields(variant="RTS"), "test")
  for k in rts:
    np.testing.assert_array_equal(rts[k], again[k])
  assert rts["angle"].shape == (600,) and np.abs(rts["angle"]).max() <= 45.0
  assert rts["scale"].min() >= 0.7 and rts["scale"].max() <= 1.2
  # The digit box (16 * scale pixels) stays on the 28-pixel canvas.
  assert np.all(np.abs(rts["shift"]) <= (28 - 16 * rts["scale"][:, None]) / 2 + 1e-4)
  r = distorted.split_distortions(_spec_fields(variant="R"), "test")
  np.testing.assert_array_equal(r["scale"], 1.0)
  np.testing.assert_array_equal(r["shift"], 0.0)
  train = distorted.split_distortions(_spec_fields(variant="R"), "train")
  assert train["angle"].shape == (1497,) and not np.allclose(train["angle"][:600], r["angle"])
  with pytest.raises(ValueError, match="variant"):
    datasets.get_dataset(_cfg(variant="P"))


def test_rotation_angle_inverts_affine_matrix():
  angles = np.array([-170.0, -45.0, 0.0, 12.5, 90.0, 179.0])
  theta = transforms.affine_matrix(angles, np.array([0.5, 0.8, 1.0, 1.2, 2.0, 1.0]), 0.3, -0.1)
  np.testing.assert_allclose(lec09_stn.rotation_angle(theta), angles, atol=1e-4)


def test_population_dir_names_the_seeds_and_changes_with_config_and_members():
  config = lec09_stn_config.get_config("smoke")
  c = lec09_stn._run_config(config, "R", "cnn", 0)
  members = population.grid((0, 1, 2), arm="R_cnn")
  d = lectures.population_dir("/w", "R_cnn", c, members)
  assert d.startswith("/w/runs/R_cnn_seeds0-1-2_")
  assert d == lectures.population_dir("/w", "R_cnn", c, population.grid((0, 1, 2), arm="R_cnn"))
  assert d[-10:] != lectures.population_dir("/w", "R_cnn", c, members[:2])[-10:]
  assert d[-10:] != lectures.population_dir("/w", "R_cnn", c, population.grid(
      (0, 1, 2), arm="R_cnn", learning_rate=[0.1]))[-10:]
  c2 = lec09_stn._run_config(config, "RTS", "cnn", 0)
  assert d[-10:] != lectures.population_dir("/w", "R_cnn", c2, members)[-10:]


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec09_stn_runs_end_to_end_and_judges_its_claims(tmp_path):
  config = lec09_stn_config.get_config("smoke")
  config.seeds = (0,)
  config.variants = ("R",)  # RTS runs the same code with another dataset field
  config.dataset.canvas_size = 14
  config.dataset.digit_size = 8
  config.train.num_train_steps = 20
  config.train.eval_every_steps = 10
  config.train.log_every_steps = 10
  config.train.checkpoint_every_steps = 20
  config.num_plot = 4
  section = lec09_stn.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec09_stn.st_cnn_beats_cnn.R", "lec09_stn.transformer_undoes_rotation"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  err = section.verdicts[0].numbers["CNN test error"]
  assert err.n == 1 and 0.0 <= err.mean < 0.8  # 20 Adam steps: well below chance (0.9)
  r = section.verdicts[1].numbers["Pearson r(distortion angle, theta angle)"]
  assert r.n == 1 and -1.0 <= r.mean <= 1.0
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 5_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  (table,) = section.tables
  assert [row[:2] for row in table.rows] == [("R", "CNN"), ("R", "ST-CNN (affine)")]
  # A rerun reuses the finished runs: same numbers, no training.
  again = lec09_stn.run(config, str(tmp_path))
  assert again.verdicts[0].numbers["CNN test error"] == err
  assert again.verdicts[1].numbers == section.verdicts[1].numbers
