"""Lectures 1-2 experiments end to end at smoke scale, and their library pieces."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lec01_deep_vs_fat as dvf_config
from configs import lec01_piecewise as pw_config
from leeml import claims, curve_fit, models, piecewise
from leeml.lectures import lec01_deep_vs_fat, lec01_piecewise


def _is_png(path):
  return os.path.getsize(path) > 10_000 and open(path, "rb").read(4) == b"\x89PNG"


def test_curve_fit_learns_a_line_exactly_and_seeds_differ():
  x = np.linspace(-1, 1, 64)[:, None]
  y = 3.0 * x - 0.5
  r = curve_fit.fit(curve_fit.model_config(1, 8), x, y, [0, 1],
                    optimizer_cfg=curve_fit.optimizer_config(name="adam", learning_rate=1e-2),
                    num_steps=600, record_every=100)
  assert r["loss"].shape == (2, 6) and r["final_loss"].shape == (2,)
  assert np.all(r["final_loss"] < 1e-3) and np.all(r["loss"][:, 0] > 0.1)
  assert not np.allclose(r["params"]["head"]["kernel"][0], r["params"]["head"]["kernel"][1])
  np.testing.assert_array_equal(r["nonfinite_step"], [0, 0])
  # Kinks start inside the data range (kinks_in_range): the exact regions see them.
  for i in range(2):
    p = curve_fit.seed_params(r["params"], i)
    pred = curve_fit.predict(curve_fit.model_config(1, 8), r["params"], x)[i]
    np.testing.assert_allclose(piecewise.forward(p, x[:, 0]), pred, atol=1e-5)


def test_fit_start_and_activation_members_equal_single_fits():
  # One step of plain GD from the member's start: flax init with k_init, first-layer
  # kinks drawn uniformly in [min x, max x] with k_train (k_init, k_train = split(seed)).
  x = np.linspace(-1, 2, 16)[:, None].astype(np.float32)
  y = np.sin(3 * x)
  opt = curve_fit.optimizer_config(name="sgd", learning_rate=0.1)
  mcfg = curve_fit.model_config(1, 4, "relu")
  both = curve_fit.fit_activations(mcfg, x, y, [3], ("relu", "sigmoid"), optimizer_cfg=opt,
                                   num_steps=1)
  for act in ("relu", "sigmoid"):
    cfg = curve_fit.model_config(1, 4, act)
    model = models.get_model(cfg, num_outputs=1)
    k_init, k_train = jax.random.split(jax.random.PRNGKey(3))
    params = model.init(k_init, x[:1])["params"]
    u = jax.random.uniform(k_train, (4,), minval=-1.0, maxval=2.0)
    params["dense_0"]["bias"] = -params["dense_0"]["kernel"][0] * u
    loss = lambda p, model=model: jnp.mean((model.apply({"params": p}, x) - y) ** 2)
    np.testing.assert_allclose(both[act]["loss"][0, 0], loss(params), rtol=1e-6)
    params = jax.tree.map(lambda a, g: a - 0.1 * g, params, jax.grad(loss)(params))
    np.testing.assert_allclose(both[act]["final_loss"][0], loss(params), rtol=1e-5)
    single = curve_fit.fit(cfg, x, y, [3], optimizer_cfg=opt, num_steps=1)
    np.testing.assert_allclose(both[act]["final_loss"], single["final_loss"], rtol=1e-6)
  assert both["relu"]["final_loss"][0] != both["sigmoid"]["final_loss"][0]


def test_width_for_budget_matches_the_lecture_table_rows():
  assert [lec01_deep_vs_fat.width_for_budget(d, 865, 0.05) for d in (1, 2, 3, 4, 5)] == [
      288, 27, 20, 16, 14]
  assert lec01_deep_vs_fat.mlp_params(4, 16) == 865
  with pytest.raises(ValueError):
    lec01_deep_vs_fat.width_for_budget(6, 865, 0.01)


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_piecewise_experiment_smoke(tmp_path):
  config = pw_config.get_config("smoke")
  config.widths = (2, 8)
  config.seeds = (0, 1)
  section = lec01_piecewise.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec01.error_falls_with_units.relu", "lec01.error_falls_with_units.sigmoid",
      "lec01.relu_regions_at_most_k_plus_1"]
  regions = section.verdicts[2]
  assert regions.verdict == claims.PASS, regions.detail
  assert regions.numbers["exact regions k=8 (on R)"].values == (9.0, 9.0)
  relu = section.verdicts[0].numbers
  assert relu["MSE k=8"].mean < relu["MSE k=2"].mean  # 8 ReLUs beat 2 even at smoke
  assert all(_is_png(f.path) for f in section.figures)
  (table,) = section.tables
  assert [r[0] for r in table.rows] == ["2", "8"]


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_deep_vs_fat_smoke(tmp_path):
  config = dvf_config.get_config("smoke")
  config.sawtooth_depths = (1, 2, 3, 8)
  config.num_steps = 100
  section = lec01_deep_vs_fat.run(config, str(tmp_path))
  exact, trained = section.verdicts
  assert exact.verdict == claims.PASS, exact.detail
  assert exact.numbers["sawtooth pieces / 2^L"].values == (1.0, 1.0, 1.0, 1.0)
  assert trained.claim.id == "lec01.deep_beats_fat_at_equal_parameters"
  assert trained.numbers["4 x 16 final train MSE"].n == 3
  saw, tab = section.tables
  assert [r[1] for r in saw.rows] == ["2", "4", "8", "256"]   # pieces
  assert [r[2] for r in saw.rows] == ["7", "13", "19", "49"]  # 6L + 1 parameters
  assert [r[1] for r in tab.rows] == ["865", "865"]
  assert all(_is_png(f.path) for f in section.figures)
