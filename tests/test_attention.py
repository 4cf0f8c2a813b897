"""Attention library: equality with flax, masks, equivariance, positional encodings, ViT."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml.models import attention as A
from leeml.models import get_model, vit
import ml_collections


def _x(shape, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def test_dot_product_attention_matches_numpy():
  q, k, v = _x((2, 5, 3, 4), 0), _x((2, 6, 3, 4), 1), _x((2, 6, 3, 2), 2)
  out, w = A.dot_product_attention(q, k, v)
  s = np.einsum("bqhd,bkhd->bhqk", q, k) / 2.0
  e = np.exp(s - s.max(-1, keepdims=True))
  w_ref = e / e.sum(-1, keepdims=True)
  np.testing.assert_allclose(w, w_ref, atol=1e-6)
  np.testing.assert_allclose(out, np.einsum("bhqk,bkhd->bqhd", w_ref, v), atol=1e-5)


@pytest.mark.parametrize("case", ["self", "padding", "causal", "cross"])
def test_multi_head_attention_equals_flax(case):
  x, ctx = _x((3, 7, 12), 0), _x((3, 5, 12), 1)
  ref = nn.MultiHeadDotProductAttention(num_heads=3, qkv_features=18, out_features=10)
  mine = A.MultiHeadAttention(num_heads=3, qkv_features=18, out_features=10)
  params = ref.init(jax.random.PRNGKey(2), x)
  # Non-zero biases too (flax initializes them to zero), so every parameter matters.
  params = jax.tree.map(
      lambda p: p if p.ndim > 1 else 0.3 * jax.random.normal(jax.random.PRNGKey(p.size),
                                                             p.shape), params)
  if case == "cross":
    y_ref = ref.apply(params, x, ctx)
    y = mine.apply(params, x, ctx)
  else:
    mask = {"self": None, "padding": A.padding_mask(jnp.array([7, 4, 1]), 7),
            "causal": A.causal_mask(7)}[case]
    y_ref, y = ref.apply(params, x, mask=mask), mine.apply(params, x, mask=mask)
  assert jax.tree.structure(mine.init(jax.random.PRNGKey(2), x)) == jax.tree.structure(params)
  assert np.abs(np.asarray(y_ref)).max() > 0.5          # not a trivially small output
  np.testing.assert_array_less(np.abs(np.asarray(y) - np.asarray(y_ref)).max(), 1e-5)


def test_self_attention_is_permutation_equivariant_without_positions():
  x = _x((2, 9, 16))
  perm = np.random.default_rng(0).permutation(9)
  enc = A.Encoder(num_layers=2, num_heads=4, mlp_dim=32)
  p = enc.init(jax.random.PRNGKey(1), x)
  y, y_perm = enc.apply(p, x), enc.apply(p, x[:, perm])
  np.testing.assert_allclose(y_perm, y[:, perm], atol=1e-5)
  # With learned positions it is not: the same check fails by a wide margin.
  pos = A.LearnedPositions(init_std=1.0)
  pp = pos.init(jax.random.PRNGKey(2), x)
  y2, y2_perm = enc.apply(p, pos.apply(pp, x)), enc.apply(p, pos.apply(pp, x[:, perm]))
  assert np.abs(np.asarray(y2_perm - y2[:, perm])).max() > 0.1


def test_masked_positions_get_exactly_zero_weight():
  x = _x((3, 6, 8))
  layer = A.MultiHeadAttention(num_heads=2)
  p = layer.init(jax.random.PRNGKey(0), x)
  lengths = jnp.array([6, 3, 0])
  _, w = layer.apply(p, x, mask=A.padding_mask(lengths, 6), return_weights=True)
  w = np.asarray(w)
  assert (w[1, :, :, 3:] == 0.0).all() and (w[2] == 0.0).all()
  np.testing.assert_allclose(w[:2, :, :, :].sum(-1), 1.0, atol=1e-6)
  _, wc = layer.apply(p, x, mask=A.causal_mask(6), return_weights=True)
  upper = np.triu(np.ones((6, 6), bool), k=1)
  assert (np.asarray(wc)[:, :, upper] == 0.0).all()
  assert (np.asarray(wc)[:, :, ~upper] > 0.0).all()
  # Query padding: padded query rows are fully masked -> all-zero weights.
  wq = A.attention_weights(_x((1, 4, 1, 2)), _x((1, 4, 1, 2), 1),
                           A.padding_mask(jnp.array([2]), 4, queries=True))
  assert (np.asarray(wq)[0, 0, 2:] == 0.0).all() and (np.asarray(wq)[0, 0, :, 2:] == 0).all()
  # A bias of -inf-like size and a mask agree.
  bias = jnp.where(A.causal_mask(6), 0.0, -1e9)
  _, wb = layer.apply(p, x, bias=bias, return_weights=True)
  np.testing.assert_allclose(wb, wc, atol=1e-7)


def test_sinusoidal_positions():
  pe = np.asarray(A.sinusoidal_positions(50, 16))
  p = np.arange(50)
  np.testing.assert_allclose(pe[:, 0], np.sin(p), atol=1e-6)
  np.testing.assert_allclose(pe[:, 1], np.cos(p), atol=1e-6)
  np.testing.assert_allclose(pe[:, 15], np.cos(p * 10_000 ** (-14 / 16)), atol=1e-6)
  # <PE_p, PE_{p+k}> = sum_i cos(k w_i) depends on the offset k only (Vaswani et al. 3.5).
  dots = np.einsum("pd,pd->p", pe[:-5], pe[5:])
  np.testing.assert_allclose(dots, dots[0], atol=1e-4)
  pe2 = np.asarray(A.sinusoidal_positions_2d(3, 4, 8))
  pe4 = np.asarray(A.sinusoidal_positions(4, 4))
  np.testing.assert_allclose(pe2[4 * 2 + 1, :4], pe4[2], atol=1e-6)   # row 2
  np.testing.assert_allclose(pe2[4 * 2 + 1, 4:], pe4[1], atol=1e-6)   # col 1


def test_relative_position_biases_depend_on_offset_only():
  rb = A.RelativePositionBias2D(num_heads=2, height=3, width=4)
  table = jax.random.normal(jax.random.PRNGKey(0), (5 * 7, 2))
  b = np.asarray(rb.apply({"params": {"table": table}}))[0]
  rel = A.relative_offsets_2d(3, 4)
  for qi, ki in [(0, 11), (5, 6), (11, 0), (7, 7)]:
    dr, dc = rel[qi, ki]
    np.testing.assert_array_equal(b[:, qi, ki], table[(dr + 2) * 7 + dc + 3])
  same = np.all(rel == rel[1, 6], axis=-1)     # all (q, k) pairs with that offset
  assert same.sum() > 1 and np.ptp(b[0][same]) == 0.0
  r1 = A.RelativePositionBias(num_heads=1, max_distance=2)
  t1 = jnp.arange(5.0)[:, None]
  b1 = np.asarray(r1.apply({"params": {"table": t1}}, 4))[0, 0]
  np.testing.assert_array_equal(b1[0], [2, 3, 4, 4])    # offsets 0,1,2,3 (3 clipped to 2)
  np.testing.assert_array_equal(b1[3], [0, 0, 1, 2])


def test_post_norm_block_and_encoder_weights():
  x = _x((2, 5, 8))
  for norm in ("pre", "post"):
    enc = A.Encoder(num_layers=3, num_heads=2, mlp_dim=16, dropout=0.5, norm_position=norm)
    p = enc.init(jax.random.PRNGKey(0), x)
    y, ws = enc.apply(p, x, return_weights=True)
    assert y.shape == x.shape and len(ws) == 3
    np.testing.assert_allclose(np.asarray(ws[2]).sum(-1), 1.0, atol=1e-6)
    y_tr = enc.apply(p, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    assert np.abs(np.asarray(y_tr - y)).max() > 1e-3       # dropout is active in training
  with pytest.raises(ValueError, match="norm_position"):
    A.EncoderBlock(2, 8, norm_position="middle").init(jax.random.PRNGKey(0), x)


def test_mean_attention_distance():
  pos = A.grid_positions(1, 4).astype(float)          # points 0..3 on a line
  w = jnp.full((1, 1, 4, 4), 0.25)
  # Uniform: mean |i - j| over a 4x4 grid of pairs = (0+1+2+3 + 1+0+1+2 + ...) / 16 = 1.25.
  np.testing.assert_allclose(A.mean_attention_distance(w, pos), [1.25], rtol=1e-6)
  eye = jnp.eye(4)[None, None]
  np.testing.assert_allclose(A.mean_attention_distance(eye, pos), [0.0], atol=1e-7)
  # ViT patch centres are p pixels apart: one-hot to the right neighbour = p pixels.
  centers = vit.patch_centers(8, 8, 4)
  np.testing.assert_array_equal(centers, [[1.5, 1.5], [1.5, 5.5], [5.5, 1.5], [5.5, 5.5]])


def test_vit_shapes_params_and_patch_embedding():
  cfg = ml_collections.ConfigDict(dict(name="vit", patch_size=4, width=16, depth=2,
                                       num_heads=2, mlp_dim=32))
  model = get_model(cfg, num_outputs=10)
  x = _x((3, 16, 16, 1))
  p = model.init(jax.random.PRNGKey(0), x)
  n = sum(a.size for a in jax.tree.leaves(p))
  emb = 16 * 16 + 16
  block = 4 * (16 * 16 + 16) + 2 * 2 * 16 + (16 * 32 + 32) + (32 * 16 + 16)
  assert n == emb + 16 * 16 + 2 * block + 2 * 16 + (16 * 10 + 10)
  logits, ws = model.apply(p, x, return_attention=True)
  assert logits.shape == (3, 10) and [w.shape for w in ws] == [(3, 2, 16, 16)] * 2
  # patchify + Dense = a 4x4 convolution with stride 4.
  k = p["params"]["embedding"]["kernel"]
  conv = jax.lax.conv_general_dilated(x, k.reshape(4, 4, 1, 16), (4, 4), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(vit.patchify(x, 4) @ k, conv.reshape(3, 16, 16), atol=1e-5)
  dist = vit.attention_distances(ws, 16, 16, 4)
  assert dist.shape == (2, 2) and (dist > 0).all() and (dist < 16 * np.sqrt(2)).all()
  cls = vit.ViT(num_outputs=10, width=16, num_heads=2, mlp_dim=32, classifier="token",
                posemb="sincos2d")
  pc = cls.init(jax.random.PRNGKey(0), x)
  _, wc = cls.apply(pc, x, return_attention=True)
  assert wc[0].shape == (3, 2, 17, 17)
