"""Lecture 14 (JS vs Wasserstein): closed forms, the measured minimax gradient against its
boundary formula, and the experiment end to end at smoke scale."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lec14_divergence as config_lib
from leeml import claims, population
from leeml.gan.models import MLPCritic
from leeml.lectures import lec14_divergence as lec


def test_closed_forms():
  cf = lec.closed_form([0.25, 0.5, 1.0, 3.0], 1.0)
  np.testing.assert_allclose(cf["js"], [0.25 * math.log(2), 0.5 * math.log(2),
                                        math.log(2), math.log(2)])
  np.testing.assert_allclose(cf["grad_minimax"], [math.log(2)] * 2 + [0, 0])
  np.testing.assert_allclose(cf["w"], [0.25, 0.5, 1.0, 3.0])


def test_minimax_gradient_matches_its_boundary_formula(quick_compiles):
  # For G_θ(z) = z + θ, z ~ U[-w/2, w/2] and any smooth critic f:
  # ∂/∂θ E log(1 - D(z + θ)) = (1/w) [log(1 - D(θ + w/2)) - log(1 - D(θ - w/2))],
  # so autodiff through the sampled generator must agree with two critic evaluations.
  config = config_lib.get_config("smoke")
  config.train_steps = 50
  config.eval_samples = 200_000
  thetas = jnp.asarray(config.thetas, jnp.float32)
  params = lec.train_critics(config, "minimax")   # the population: seeds × θ
  assert jax.tree.leaves(params)[0].shape[:2] == (len(config.seeds), len(config.thetas))
  out = lec.make_measure(config)(params, params, jax.random.PRNGKey(1), thetas)
  critic = MLPCritic(**dict(config.critic))
  w = config.width
  for i, t in enumerate(config.thetas):
    p = jax.tree.map(lambda a, i=i: a[0, i], params)
    ends = critic.apply({"params": p}, jnp.array([[t + w / 2], [t - w / 2]]))
    log1m_d = -np.asarray(jax.nn.softplus(ends), np.float64)
    expect = (log1m_d[0] - log1m_d[1]) / w
    assert float(out["dgrad_minimax"][0, i]) == pytest.approx(expect, rel=0.02, abs=1e-4)


def test_critic_member_is_the_single_run_of_its_seed_and_theta(quick_compiles):
  # Member (seed, θ) of the population == the same critic trained alone; θ is traced.
  config = config_lib.get_config("smoke")
  config.train_steps, config.seeds = 5, (0, 1)
  program = lec.critic_program(config, "wgan_gp")
  both = lec.train_critics(config, "wgan_gp", program)
  alone = population.run(program, [population.Member(1, {"theta": config.thetas[1]})],
                         num_steps=config.train_steps, progress=False).params(0)
  for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(alone), strict=True):
    np.testing.assert_allclose(a[1, 1], b, rtol=1e-6, atol=1e-7)
  # Another θ, another critic (the head's bias gets no gradient from the WGAN-GP loss).
  assert not all(np.allclose(a[1, 0], b) for a, b in zip(jax.tree.leaves(both),
                                                         jax.tree.leaves(alone)))


@pytest.mark.slow  # end to end, like every lecture's (10 s); its pieces have unit tests here
def test_lec14_divergence_runs_end_to_end_and_judges_its_claims(tmp_path, quick_compiles):
  config = config_lib.get_config("smoke")
  section = lec.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == [
      "lec14_divergence.js_constant", "lec14_divergence.wasserstein_grows",
      "lec14_divergence.minimax_gradient_vanishes",
      "lec14_divergence.wgan_gradient_persists"]
  assert all(v.verdict in (claims.PASS, claims.FAIL) for v in section.verdicts)
  assert all("raised" not in v.detail for v in section.verdicts)
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000
  assert len(section.tables[0].rows) == len(config.thetas)
