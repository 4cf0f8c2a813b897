"""The alternating GAN step: deterministic given the seed, k critic steps, every loss
runs, clipping holds, checkpoints resume exactly; conditional (dict) batches likewise."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leeml import checkpoint, parallel
from leeml.gan import conv, init_gan_state, jit_gan_step, make_gan_step, mixtures, models
from leeml.gan.step import split_real

LATENT = 4


def _init(g, d, g_tx, d_tx, sample):
  """The initial state, by one jitted init placed on the mesh like `jit_gan_step`'s outputs
  (one compile instead of many eager ops; the step then sees the same input types on every
  call and compiles once)."""
  rep = parallel.replicated(parallel.make_mesh())
  return jax.jit(lambda key: init_gan_state(g, d, g_tx, d_tx, key, latent_dim=LATENT,
                                            sample=sample), out_shardings=rep)(
      jax.random.PRNGKey(0))


def _setup(loss="non_saturating", critic_steps=2, weight_param="standard"):
  g = models.MLPGenerator(out_dim=2, depth=1, width=8)
  d = models.MLPCritic(depth=1, width=8, weight_param=weight_param)
  g_tx, d_tx = optax.adam(1e-3), optax.adam(1e-3)
  centers, std = mixtures.mixture("ring8")
  rng = np.random.default_rng(5)
  real = (centers[rng.integers(0, len(centers), (critic_steps, 16))]
          + std * rng.standard_normal((critic_steps, 16, 2))).astype(np.float32)
  state = _init(g, d, g_tx, d_tx, real[0])
  step = make_gan_step(g, d, g_tx, d_tx, loss=loss, latent_dim=LATENT)
  return state, step, real


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_step_is_deterministic_given_the_seed(quick_compiles):
  state, step, real = _setup()
  f = jit_gan_step(step, donate=False)
  runs = []
  for _ in range(2):
    s = state
    for _ in range(3):
      s, m = f(s, real, jax.random.PRNGKey(7))
    runs.append((_leaves(s), float(m["d_loss"]), float(m["g_loss"])))
  for a, b in zip(runs[0][0], runs[1][0]):
    np.testing.assert_array_equal(a, b)
  assert runs[0][1:] == runs[1][1:]
  s2, _ = f(state, real, jax.random.PRNGKey(8))   # another seed: other noise, other result
  s1, _ = f(state, real, jax.random.PRNGKey(7))
  assert not np.array_equal(_leaves(s1.g_params)[0], _leaves(s2.g_params)[0])
  assert int(s.step) == 3


def test_k_critic_steps_then_one_generator_step(quick_compiles):
  state, step, real = _setup(critic_steps=3)
  new, _ = jax.jit(step)(state, real, jax.random.PRNGKey(0))
  assert int(new.d_opt_state[0].count) == 3 and int(new.g_opt_state[0].count) == 1


@pytest.mark.parametrize("loss", ["minimax", "wgan", "wgan_gp", "hinge"])
def test_every_loss_runs_finite(loss, quick_compiles):
  state, step, real = _setup(loss=loss, critic_steps=1,
                             weight_param="spectral_norm" if loss == "hinge" else "standard")
  new, m = jax.jit(step)(state, real, jax.random.PRNGKey(0))
  assert all(np.isfinite(float(v)) for v in m.values())
  if loss == "wgan":
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(new.d_params)) <= 0.01
  if loss == "wgan_gp":
    assert float(m["gradient_penalty"]) > 0
  if loss == "hinge":  # spectral norm's power-iteration vectors are updated by the step
    assert not all(np.array_equal(a, b) for a, b in zip(_leaves(state.d_stats),
                                                        _leaves(new.d_stats)))


def test_checkpoint_resume_replays_exactly(tmp_path, quick_compiles):
  state, step, real = _setup()
  f = jax.jit(step)
  key = jax.random.PRNGKey(1)
  s = state
  for _ in range(2):
    s, _ = f(s, real, key)
  mgr = checkpoint.make_manager(str(tmp_path), keep=1)
  checkpoint.save(mgr, 2, s)
  mgr.wait_until_finished()
  restored = checkpoint.restore(mgr, state)
  a, _ = f(s, real, key)
  b, _ = f(restored, real, key)
  for x, y in zip(_leaves(a), _leaves(b)):
    np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------- conditional (dict) batches


def _setup_conditional(loss="hinge", critic_steps=2, weight_param="spectral_norm"):
  g = conv.ConvGenerator(image_size=4, channels=(4,), num_classes=3, embed_dim=2)
  d = conv.ConvCritic(channels=(4,), num_classes=3, weight_param=weight_param)
  g_tx, d_tx = optax.adam(1e-2), optax.adam(1e-2)
  rng = np.random.default_rng(5)
  real = {"images": rng.uniform(size=(critic_steps, 8, 4, 4, 1)).astype(np.float32),
          "labels": rng.integers(0, 3, (critic_steps, 8)).astype(np.int32)}
  state = _init(g, d, g_tx, d_tx, jax.tree.map(lambda a: a[0], real))
  step = make_gan_step(g, d, g_tx, d_tx, loss=loss, latent_dim=LATENT)
  return state, step, real, g, d


def test_conditional_step_is_deterministic_given_the_seed(quick_compiles):
  state, step, real, _, _ = _setup_conditional()
  assert state.g_params["embed"]["embedding"].shape == (3, 2)
  assert "embed" in state.d_params
  f = jit_gan_step(step, donate=False)
  runs = []
  for _ in range(2):
    s = state
    for _ in range(2):
      s, m = f(s, real, jax.random.PRNGKey(7))
    runs.append((_leaves(s), float(m["d_loss"]), float(m["g_loss"])))
  for a, b in zip(runs[0][0], runs[1][0]):
    np.testing.assert_array_equal(a, b)
  assert runs[0][1:] == runs[1][1:]
  assert int(s.d_opt_state[0].count) == 4 and int(s.g_opt_state[0].count) == 2
  # The labels are an input of the step: other labels, other updates.
  other = {"images": real["images"], "labels": (real["labels"] + 1) % 3}
  s_other, _ = f(state, other, jax.random.PRNGKey(7))
  s_same, _ = f(state, real, jax.random.PRNGKey(7))
  assert not np.array_equal(_leaves(s_other.g_params)[0], _leaves(s_same.g_params)[0])


def test_conditional_critic_output_depends_on_the_label_after_training(quick_compiles):
  state, step, real, _, d = _setup_conditional()
  f = jax.jit(step)
  s = state
  for _ in range(3):
    s, _ = f(s, real, jax.random.PRNGKey(3))
  x = jnp.repeat(real["images"][0, :1], 3, axis=0)
  out = np.asarray(d.apply({"params": s.d_params, "batch_stats": s.d_stats}, x,
                           jnp.arange(3)))
  assert np.ptp(out) > 1e-4, out


def test_conditional_wgan_gp_penalizes_image_gradients_only(quick_compiles):
  state, step, real, _, _ = _setup_conditional(loss="wgan_gp", critic_steps=1,
                                               weight_param="standard")
  new, m = jax.jit(step)(state, real, jax.random.PRNGKey(0))
  assert all(np.isfinite(float(v)) for v in m.values())
  assert float(m["gradient_penalty"]) > 0
  assert int(new.step) == 1


def test_conditional_batch_must_have_images_and_labels():
  with pytest.raises(ValueError, match="images"):
    split_real({"x": jnp.zeros((1, 2, 4, 4, 1)), "labels": jnp.zeros((1, 2), jnp.int32)})
  x = jnp.zeros((1, 2, 3))
  assert split_real(x)[0] is x and split_real(x)[1] is None


def test_unrolled_critic_step_computes_the_scanned_one(quick_compiles):
  # unroll_critic (k = 1 without lax.scan) is the same update: states and metrics agree
  # up to round-off after a step, for a conditional conv GAN with a spectral-norm critic
  # (the lec14_digits setting); k > 1 ignores the flag (the scan runs).
  g = conv.ConvGenerator(image_size=8, channels=(4,), num_classes=3, embed_dim=2)
  d = conv.ConvCritic(channels=(4,), num_classes=3, weight_param="spectral_norm")
  g_tx, d_tx = optax.adam(1e-3), optax.adam(1e-3)
  rng = np.random.default_rng(0)
  real = {"images": rng.uniform(size=(1, 8, 8, 8, 1)).astype(np.float32),
          "labels": rng.integers(0, 3, (1, 8)).astype(np.int32)}
  state = _init(g, d, g_tx, d_tx, jax.tree.map(lambda a: a[0], real))
  out = {}
  for unroll in (False, True):
    step = make_gan_step(g, d, g_tx, d_tx, loss="hinge", latent_dim=LATENT,
                         unroll_critic=unroll)
    out[unroll] = jax.jit(step)(state, real, jax.random.PRNGKey(3))
  (s0, m0), (s1, m1) = out[False], out[True]
  assert sorted(m0) == sorted(m1)
  for a, b in zip(_leaves((s0, m0)), _leaves((s1, m1))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert int(s1.step) == 1 and int(s1.nonfinite_step) == -1
  assert not np.array_equal(_leaves(s1.d_params)[0], _leaves(state.d_params)[0])
