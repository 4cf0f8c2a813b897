"""Lecture 6: the residual MLP's layout, the valley methods, the experiment end to end."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import lec06_adaptive_lr as lec06_config
from leeml import claims, curve_fit, models, population
from leeml.lectures import lec06_adaptive_lr as lec06



def _model(norm_position, depth=2):
  cfg = ml_collections.ConfigDict(dict(name="residual_mlp", depth=depth, width=8, expansion=2,
                                       activation="relu", norm_position=norm_position))
  return models.get_model(cfg, 3)


def _layer_norm(x):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + 1e-6)


@pytest.mark.parametrize("norm_position,extra", [("post", 0), ("pre", 2 * 8)])
def test_residual_mlp_parameter_count(norm_position, extra):
  x = jnp.ones((4, 5))
  params = _model(norm_position).init(jax.random.PRNGKey(0), x)["params"]
  count = sum(p.size for p in jax.tree.leaves(params))
  block = 8 * 16 + 16 + 16 * 8 + 8 + 2 * 8  # ffn_in, ffn_out, LayerNorm scale + bias
  assert count == (5 * 8 + 8) + 2 * block + (8 * 3 + 3) + extra
  assert _model(norm_position).apply({"params": params}, x).shape == (4, 3)


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_residual_mlp_places_layer_norm_as_named(norm_position):
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  model = _model(norm_position, depth=1)
  variables = model.init(jax.random.PRNGKey(0), x)
  _, inter = model.apply(variables, x, capture_intermediates=True)
  get = lambda name: np.asarray(inter["intermediates"][name]["__call__"][0])
  embed, ffn_out, norm = get("embed"), get("ffn_out_0"), get("norm_0")
  if norm_position == "post":   # x <- LN(x + FFN(x))
    np.testing.assert_allclose(norm, _layer_norm(embed + ffn_out), rtol=1e-4, atol=1e-5)
  else:                         # x <- x + FFN(LN(x)); LN before the head
    np.testing.assert_allclose(norm, _layer_norm(embed), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(get("final_norm"), _layer_norm(embed + ffn_out), rtol=1e-4,
                               atol=1e-5)
  with pytest.raises(ValueError, match="norm_position"):
    _model("middle").init(jax.random.PRNGKey(0), x)


def test_surface_tx_rules():
  with pytest.raises(ValueError, match="rule="):
    lec06.surface_tx(dict(rule="lion", learning_rate=0.1))
  # optax.adagrad with its default initial accumulator 0.1: the first step on g is
  # -eta g / sqrt(0.1 + g^2).
  tx = lec06.surface_tx(dict(rule="optax_adagrad", learning_rate=0.3, decay_time=0.0))
  upd, _ = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
  np.testing.assert_allclose(upd, -0.3 * np.array([1.0, 2.0]) / np.sqrt([1.1, 4.1]), rtol=1e-5)


def test_warmup_programs_ramp_the_learning_rate_and_keep_seeds_as_members():
  cfg = lec06_config.get_config("smoke").warmup
  cfg.model.depth, cfg.model.width = 1, 8
  cfg.num_steps, cfg.warmup_steps, cfg.batch_size, cfg.eval_every = 4, 2, 8, 2
  rng = np.random.default_rng(0)
  arrays = (rng.normal(size=(32, 5)).astype(np.float32), rng.integers(0, 3, 32), 3)
  variants = {v["key"]: v for v in lec06.warmup_variants(cfg)}
  lr = cfg.learning_rate
  # one Program for both: the warmup length is each member's traced hyperparameter
  program = lec06.warmup_program(cfg, variants["adam"], arrays)
  assert lec06.warmup_program(cfg, variants["adam_warmup"], arrays) is program
  for key, expected in (("adam", [lr] * 4), ("adam_warmup", [0.0, lr / 2, lr, lr])):
    warmup = variants[key]["schedule"].get("warmup_steps", 0)
    r = curve_fit.train_curves(program, population.grid([0, 1], arm=key,
                                                        warmup_steps=[warmup]),
                               num_steps=4, eval_every=2)
    _, rates = r["result"].curves("learning_rate")
    np.testing.assert_allclose(rates, [expected, expected], rtol=1e-6)
    assert r["train_loss"].shape == (2, 2) and np.all(np.isfinite(r["grad_norm"]))
    assert r["train_loss"][0, -1] != r["train_loss"][1, -1]


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec06_runs_end_to_end_and_judges_its_claims(tmp_path, quick_compiles):
  config = lec06_config.get_config("smoke")
  w = config.warmup
  w.num_examples, w.num_steps, w.eval_every, w.warmup_steps = 256, 20, 10, 5
  w.model.depth, w.model.width = 2, 16
  section = lec06.run(config, str(tmp_path))
  ids = [v.claim.id for v in section.verdicts]
  assert ids[:2] == ["lec06.gd_large_lr_stuck", "lec06.gd_small_lr_crawls"] and len(ids) == 8
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  by_id = {v.claim.id: v for v in section.verdicts}
  stuck = by_id["lec06.gd_large_lr_stuck"]
  # GD with eta = 3 on the log-cosh wall bounces on 2u = 3 tanh u (u = 1.2878...): the
  # gradient stays ~ tanh(u) (times the shear factor), the loss ~ log cosh(u) = 0.67.
  assert stuck.passed
  assert stuck.numbers["final loss"].mean == pytest.approx(0.673, abs=0.01)
  assert by_id["lec06.adagrad_blows_up_late"].passed  # at step ~400
  warm = by_id["lec06.warmup.no_warmup_adam_worse"]
  assert warm.numbers["Adam + warmup final loss"].n == 2
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
  assert len(section.tables[0].rows) == len(config.surface.methods)
  assert len(section.tables[1].rows) == 4
