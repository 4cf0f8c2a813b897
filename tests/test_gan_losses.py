"""GAN losses against their formulas; gradient penalty against finite differences;
spectral norm's largest singular value."""

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml.gan import losses, models

REAL = np.array([2.0, -1.0, 0.5, 3.0])
FAKE = np.array([-2.0, 0.3, 1.5, -0.7])


def _sig(x):
  return 1 / (1 + np.exp(-x))


def test_minimax_and_non_saturating_match_log_d_formulas():
  d_r, d_f = _sig(REAL), _sig(FAKE)
  critic = -np.mean(np.log(d_r)) - np.mean(np.log(1 - d_f))
  for name in ("minimax", "non_saturating"):
    np.testing.assert_allclose(losses.get_gan_loss(name).critic(REAL, FAKE), critic, rtol=1e-6)
  np.testing.assert_allclose(losses.get_gan_loss("minimax").generator(FAKE),
                             np.mean(np.log(1 - d_f)), rtol=1e-6)
  np.testing.assert_allclose(losses.get_gan_loss("non_saturating").generator(FAKE),
                             -np.mean(np.log(d_f)), rtol=1e-6)


def test_minimax_critic_loss_at_optimal_d_is_log4_minus_2js():
  # Discrete P, Q: D* = p / (p + q); the critic loss is log 4 - 2 JS(P||Q).
  p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.1, 0.1, 0.3, 0.5])
  logit = np.log(p + 1e-300) - np.log(q + 1e-300)
  logit = np.clip(logit, -60, 60)
  real = -np.sum(p * np.log(_sig(logit)))
  fake = -np.sum(q * np.log1p(-_sig(logit)))
  m = (p + q) / 2
  kl = lambda a, b: np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / b), 0))
  js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
  # The library's loss on a weighted "batch" equals the expectation: check elementwise.
  per_r = np.asarray(jax.nn.softplus(-logit))
  per_f = np.asarray(jax.nn.softplus(jnp.asarray(logit)))
  np.testing.assert_allclose(np.sum(p * per_r) + np.sum(q * per_f), real + fake, rtol=1e-5)
  np.testing.assert_allclose(real + fake, np.log(4) - 2 * js, rtol=1e-5)


@pytest.mark.parametrize("name", ["wgan", "wgan_gp"])
def test_wasserstein_losses(name):
  spec = losses.get_gan_loss(name)
  np.testing.assert_allclose(spec.critic(REAL, FAKE), FAKE.mean() - REAL.mean(), rtol=1e-6)
  np.testing.assert_allclose(spec.generator(FAKE), -FAKE.mean(), rtol=1e-6)
  assert spec.clip == (name == "wgan") and spec.gradient_penalty == (name == "wgan_gp")


def test_hinge_loss():
  spec = losses.get_gan_loss("hinge")
  expect = np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE))
  np.testing.assert_allclose(spec.critic(REAL, FAKE), expect, rtol=1e-6)
  np.testing.assert_allclose(spec.generator(FAKE), -FAKE.mean(), rtol=1e-6)


def test_unknown_loss_names_the_valid_ones():
  with pytest.raises(ValueError, match="hinge"):
    losses.get_gan_loss("lsgan")


def test_clip_params():
  clipped = losses.clip_params({"a": jnp.array([-1.0, 0.005, 2.0])}, 0.01)
  np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])


def test_gradient_penalty_matches_finite_differences():
  jax.config.update("jax_enable_x64", True)
  try:
    w = jnp.array([[0.7, -1.3], [0.4, 0.9]], jnp.float64)

    def critic(x):  # a nonlinear critic with a known formula: f(x) = sum(tanh(x W)) + x0²
      return jnp.sum(jnp.tanh(x @ w), axis=-1) + x[:, 0] ** 2

    key = jax.random.PRNGKey(3)
    real = jnp.array([[1.0, 2.0], [-0.5, 0.3], [0.2, -1.0]], jnp.float64)
    fake = jnp.array([[0.1, 0.1], [2.0, -2.0], [-1.0, 0.5]], jnp.float64)
    gp = float(losses.gradient_penalty(critic, real, fake, key))
    eps = np.asarray(jax.random.uniform(key, (3, 1), jnp.float64))
    x_hat = eps * np.asarray(real) + (1 - eps) * np.asarray(fake)
    f = lambda x: float(critic(jnp.asarray(x[None]))[0])
    h, expect = 1e-6, []
    for x in x_hat:
      g = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(2)]
      expect.append((np.linalg.norm(g) - 1) ** 2)
    np.testing.assert_allclose(gp, np.mean(expect), rtol=1e-6)
  finally:
    jax.config.update("jax_enable_x64", False)


def test_spectral_norm_critic_kernels_have_unit_top_singular_value():
  critic = models.MLPCritic(depth=2, width=16, weight_param="spectral_norm")
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
  v = critic.init(jax.random.PRNGKey(1), x)

  def power_step(_, stats):
    _, new = critic.apply({"params": v["params"], "batch_stats": stats}, x, train=True,
                          mutable=["batch_stats"])
    return new["batch_stats"]

  stats = jax.jit(lambda s: jax.lax.fori_loop(0, 300, power_step, s))(v["batch_stats"])
  flat_p = traverse_util.flatten_dict(v["params"])
  flat_s = traverse_util.flatten_dict(stats)
  checked = 0
  for path, kernel in flat_p.items():
    if path[-1] != "kernel":
      continue
    sigma = [s for p, s in flat_s.items() if p[-1].endswith("sigma") and path[-2] in p[-1]]
    assert len(sigma) == 1, (path, list(flat_s))
    top = np.linalg.svd(np.asarray(kernel), compute_uv=False)[0]
    np.testing.assert_allclose(top / float(sigma[0]), 1.0, rtol=1e-3)
    checked += 1
  assert checked == 3
