"""DCGAN-style conv generator and critic: shapes, parameter counts, output ranges, label
conditioning (concatenated embedding in G, projection in D), spectral norm on convs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from leeml.gan import conv

LATENT = 3


def _z(n=4, key=0):
  return jax.random.normal(jax.random.PRNGKey(key), (n, LATENT))


@pytest.mark.parametrize("size,channels", [(8, (4, 2)), (16, (4, 2)), (16, (4, 2, 2)), (4, (3,))])
def test_generator_shapes_and_sigmoid_range(size, channels, quick_compiles):
  g = conv.ConvGenerator(image_size=size, channels=channels)
  v = g.init(jax.random.PRNGKey(0), _z())
  x = g.apply(v, _z(key=1))
  assert x.shape == (4, size, size, 1)
  assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  assert float(x.std()) > 0   # not a constant image


def test_generator_parameter_count_and_tanh_range():
  # dense 3 -> 2*2*4 (+bias) = 64; conv_0 3*3*4*4 + 4 = 148; conv_1 3*3*4*2 + 2 = 74;
  # to_image 3*3*2*1 + 1 = 19; no norm parameters with norm='none'.
  g = conv.ConvGenerator(image_size=8, channels=(4, 2), output="tanh")
  v = g.init(jax.random.PRNGKey(0), _z())
  assert sum(p.size for p in jax.tree.leaves(v["params"])) == 64 + 148 + 74 + 19
  x = g.apply(v, 10 * _z(key=2))
  assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0 and float(x.min()) < 0.0
  # Layer norm adds a scale and a bias per channel of each block: 2*4 + 2*2 = 12.
  gl = conv.ConvGenerator(image_size=8, channels=(4, 2), norm="layer")
  vl = gl.init(jax.random.PRNGKey(0), _z())
  assert sum(p.size for p in jax.tree.leaves(vl["params"])) == 305 + 12


def test_critic_shapes_and_parameter_count():
  d = conv.ConvCritic(channels=(4, 8))
  x = jnp.ones((5, 16, 16, 1))
  v = d.init(jax.random.PRNGKey(0), x)
  assert d.apply(v, x).shape == (5,)
  # conv_0 3*3*1*4 + 4 = 40; conv_1 3*3*4*8 + 8 = 296; 16 -> 8 -> 4: head 4*4*8 + 1 = 129
  assert sum(p.size for p in jax.tree.leaves(v["params"])) == 40 + 296 + 129
  assert "batch_stats" not in v
  assert d.apply(v, jnp.ones((5, 16, 16))).shape == (5,)   # (N, H, W) gets a channel axis


def test_conditional_generator_depends_on_the_label():
  g = conv.ConvGenerator(image_size=8, channels=(4, 2), num_classes=10, embed_dim=5)
  z = jnp.repeat(_z(1), 10, axis=0)            # the same z for every label
  v = g.init(jax.random.PRNGKey(0), z, jnp.arange(10))
  assert v["params"]["embed"]["embedding"].shape == (10, 5)
  x = np.asarray(g.apply(v, z, jnp.arange(10)))
  diffs = [np.abs(x[i] - x[0]).max() for i in range(1, 10)]
  assert min(diffs) > 1e-4
  # and is the same function of z for a fixed label
  np.testing.assert_allclose(x[3], np.asarray(g.apply(v, z[:1], jnp.array([3])))[0],
                             rtol=1e-5, atol=1e-6)


def test_projection_critic_adds_embedding_times_features(quick_compiles):
  """f(x, y) = ψ(φ(x)) + <e_y, φ(x)>: with the same conv and head parameters, f(x, y) -
  f_uncond(x) is linear in the embedding (doubling e doubles it) and zero for e_y = 0."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (6, 8, 8, 1))
  y = jnp.array([0, 1, 2, 3, 4, 5])
  dc = conv.ConvCritic(channels=(4, 4), num_classes=10)
  du = conv.ConvCritic(channels=(4, 4))
  v = dc.init(jax.random.PRNGKey(1), x, y)
  assert v["params"]["embed"]["embedding"].shape == (10, 2 * 2 * 4)   # one per feature
  base = du.apply({"params": {k: p for k, p in v["params"].items() if k != "embed"}}, x)
  f = dc.apply(v, x, y)
  delta = np.asarray(f - base)
  assert np.abs(delta).min() > 1e-6   # the label changes the score
  e = v["params"]["embed"]["embedding"]
  twice = {"params": {**v["params"], "embed": {"embedding": 2 * e}}}
  np.testing.assert_allclose(np.asarray(dc.apply(twice, x, y) - base), 2 * delta,
                             rtol=1e-4, atol=1e-6)
  zero = {"params": {**v["params"], "embed": {"embedding": e.at[y[0]].set(0.0)}}}
  assert float(dc.apply(zero, x, y)[0]) == pytest.approx(float(base[0]), abs=1e-6)
  # Different labels, same image: different scores.
  same = jnp.repeat(x[:1], 10, axis=0)
  scores = np.asarray(dc.apply(v, same, jnp.arange(10)))
  assert len(np.unique(np.round(scores, 6))) == 10


def test_invalid_configurations_raise():
  z = _z()
  with pytest.raises(ValueError, match="batch"):
    conv.ConvGenerator(image_size=8, channels=(4,), norm="batch").init(jax.random.PRNGKey(0), z)
  with pytest.raises(ValueError, match="divisible"):
    conv.ConvGenerator(image_size=10, channels=(4, 2)).init(jax.random.PRNGKey(0), z)
  with pytest.raises(ValueError, match="labels"):
    conv.ConvGenerator(image_size=8, channels=(4,), num_classes=10).init(
        jax.random.PRNGKey(0), z)
  with pytest.raises(ValueError, match="labels"):
    conv.ConvCritic(channels=(4,)).init(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 1)),
                                        jnp.zeros((2,), jnp.int32))
  with pytest.raises(ValueError, match="output"):
    conv.ConvGenerator(image_size=8, channels=(4,), output="relu").init(
        jax.random.PRNGKey(0), z)


def test_spectral_norm_conv_critic_top_singular_values_are_one(quick_compiles):
  """After power iterations, each conv kernel (reshaped to (k*k*C_in, C_out)), the head and
  the class embedding are divided by their top singular value: the effective matrices
  have top singular value 1 (the stored sigma matches numpy's SVD)."""
  critic = conv.ConvCritic(channels=(4, 8), weight_param="spectral_norm", num_classes=10)
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1))
  y = jnp.arange(4)
  v = critic.init(jax.random.PRNGKey(1), x, y)

  def power_step(_, stats):
    _, new = critic.apply({"params": v["params"], "batch_stats": stats}, x, y, train=True,
                          mutable=["batch_stats"])
    return new["batch_stats"]

  stats = jax.jit(lambda s: jax.lax.fori_loop(0, 200, power_step, s))(v["batch_stats"])
  flat_p = traverse_util.flatten_dict(v["params"])
  flat_s = traverse_util.flatten_dict(stats)
  checked = set()
  for path, w in flat_p.items():
    if path[-1] not in ("kernel", "embedding"):
      continue
    name = path[-2]
    sigma = [s for p, s in flat_s.items() if p[-1] == f"{name}/{path[-1]}/sigma"]
    assert len(sigma) == 1, (path, list(flat_s))
    matrix = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
    top = np.linalg.svd(matrix, compute_uv=False)[0]
    np.testing.assert_allclose(float(sigma[0]), top, rtol=1e-3)
    np.testing.assert_allclose(np.linalg.svd(matrix / float(sigma[0]), compute_uv=False)[0],
                               1.0, rtol=1e-3)
    checked.add(name)
  assert checked == {"conv_0", "conv_1", "head", "embed"}
  # Eval mode uses the stored statistics: the same outputs as a training call after them.
  out_eval = critic.apply({"params": v["params"], "batch_stats": stats}, x, y)
  out_train, _ = critic.apply({"params": v["params"], "batch_stats": stats}, x, y,
                              train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(out_eval, out_train, rtol=1e-3, atol=1e-5)
