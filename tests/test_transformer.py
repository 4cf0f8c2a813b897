"""Tests for the encoder-decoder Transformer: shapes, masks, cache, switches, loss."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leeml.models import attention, layers
from leeml.models.transformer import (Seq2SeqTransformer, sequence_cross_entropy,
                                      sequence_log_prob, shift_right)

pytestmark = pytest.mark.usefixtures("quick_compiles")

V = 13
# One small size everywhere: eager op compilations are cached by shape and reused.
KW = dict(num_layers=2, num_heads=4, width=32, mlp_dim=64, max_len=10)
H, D, M = 4, 32, 64
SRC = jnp.array([[3, 4, 5, 6, 2, 0, 0],
                 [7, 8, 2, 0, 0, 0, 0],
                 [9, 10, 11, 12, 3, 4, 2]], jnp.int32)
TGT = jnp.array([[6, 5, 4, 3, 2, 0],
                 [8, 7, 2, 0, 0, 0],
                 [4, 3, 12, 11, 10, 9]], jnp.int32)


def _init(model, seed=0):
  return model.init(jax.random.key(seed), SRC, shift_right(TGT, 1))["params"]


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


@pytest.mark.parametrize("kw", [
    dict(), dict(norm_position="post"), dict(positions="learned"), dict(positions="none"),
    dict(residual=False), dict(tie_embeddings=False), dict(num_decoder_layers=1)])
def test_output_shapes_and_finite(kw):
  model = Seq2SeqTransformer(V, **{**KW, **kw})
  params = _init(model)
  logits = model.apply({"params": params}, SRC, shift_right(TGT, 1))
  assert logits.shape == (3, 6, V)
  assert np.all(np.isfinite(logits))
  enc = model.apply({"params": params}, SRC, method="encode")
  assert enc.shape == (3, 7, model.width)


def test_parameter_counts():
  d, m, v = D, M, V
  tied = _count(_init(Seq2SeqTransformer(V, **KW)))
  untied = _count(_init(Seq2SeqTransformer(V, **KW, tie_embeddings=False)))
  attn = 4 * (d * d + d)
  mlp = d * m + m + m * d + d
  ln = 2 * d
  enc_block, dec_block = attn + mlp + 2 * ln, 2 * attn + mlp + 3 * ln
  expected = v * d + 2 * enc_block + ln + 2 * dec_block + ln
  assert tied == expected
  # Untied: a target embedding table plus an output layer with bias.
  assert untied - tied == v * d + d * v + v
  learned = _count(_init(Seq2SeqTransformer(V, **KW, positions="learned")))
  assert learned - tied == 2 * 10 * d


def test_extra_source_padding_changes_nothing():
  """Padding mask: more PAD columns on the source leave every logit unchanged."""
  model = Seq2SeqTransformer(V, **{**KW, "max_len": 12})
  params = _init(model)
  tgt_in = shift_right(TGT, 1)
  base = model.apply({"params": params}, SRC, tgt_in)
  padded = jnp.pad(SRC, ((0, 0), (0, 4)))
  np.testing.assert_allclose(model.apply({"params": params}, padded, tgt_in), base,
                             atol=1e-5)
  # ...while a real source token does change them (the test can fail).
  changed = model.apply({"params": params}, SRC.at[1, 1].set(9), tgt_in)
  assert np.abs(changed[1] - base[1]).max() > 1e-3
  np.testing.assert_allclose(changed[0], base[0], atol=1e-6)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_decoder_is_causal(norm_position):
  """Causal mask: changing target input j changes logits at j.. only."""
  model = Seq2SeqTransformer(V, **KW, norm_position=norm_position)
  params = _init(model)
  tgt_in = shift_right(TGT, 1)
  base = model.apply({"params": params}, SRC, tgt_in)
  for j in (1, 3, 5):
    out = model.apply({"params": params}, SRC, tgt_in.at[:, j].set(12))
    np.testing.assert_allclose(out[:, :j], base[:, :j], atol=1e-6)
    assert np.abs(out[:, j] - base[:, j]).max() > 1e-3


def test_decoder_block_attention_weights():
  block = attention.DecoderBlock(num_heads=H, mlp_dim=M)
  x = jax.random.normal(jax.random.key(1), (3, 6, D))
  ctx = jax.random.normal(jax.random.key(2), (3, 7, D))
  cmask = attention.padding_mask(jnp.array([7, 2, 5]), 7)
  params = block.init(jax.random.key(0), x, ctx, cmask)
  out, (w_self, w_cross) = block.apply(params, x, ctx, cmask, return_weights=True)
  assert out.shape == (3, 6, D)
  assert w_self.shape == (3, H, 6, 6) and w_cross.shape == (3, H, 6, 7)
  upper = np.triu(np.ones((6, 6), bool), k=1)
  assert np.all(np.asarray(w_self)[..., upper] == 0.0)
  assert np.all(np.asarray(w_self)[..., ~upper] > 0.0)
  np.testing.assert_allclose(w_self.sum(-1), 1.0, atol=1e-6)
  assert np.all(np.asarray(w_cross)[1, :, :, 2:] == 0.0)
  assert np.all(np.asarray(w_cross)[2, :, :, 5:] == 0.0)
  assert np.all(np.asarray(w_cross)[2, :, :, :5] > 0.0)
  np.testing.assert_allclose(w_cross.sum(-1), 1.0, atol=1e-6)


def test_causal_self_attention_matches_multi_head_attention_with_causal_mask():
  """Same parameter layout: MultiHeadAttention with causal_mask gives the same output."""
  x = jax.random.normal(jax.random.key(3), (3, 6, D))
  causal = attention.CausalSelfAttention(num_heads=H)
  params = causal.init(jax.random.key(0), x)
  mha = attention.MultiHeadAttention(num_heads=H)
  np.testing.assert_allclose(causal.apply(params, x),
                             mha.apply(params, x, mask=attention.causal_mask(6)), atol=1e-6)


def test_kv_cache_matches_full_computation():
  """Incremental decoding (1 token, then 2 at once, then 1 by 1) equals the full pass."""
  layer = attention.CausalSelfAttention(num_heads=H)
  x = jax.random.normal(jax.random.key(4), (3, 6, D))
  params = layer.init(jax.random.key(0), x)
  full = layer.apply(params, x)
  _, cache = layer.apply(params, jnp.zeros_like(x), decode=True, mutable=["cache"])
  assert int(cache["cache"]["cache_index"]) == 0
  assert cache["cache"]["cached_key"].shape == (3, 6, H, D // H)
  outs, start = [], 0
  for n in (1, 2, 1, 1, 1):
    out, cache = layer.apply({**params, **cache}, x[:, start:start + n], decode=True,
                             mutable=["cache"])
    outs.append(out)
    start += n
  assert int(cache["cache"]["cache_index"]) == 6
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_post_ln_outputs_are_normalised_and_residual_switch_matters():
  x = jax.random.normal(jax.random.key(5), (3, 6, D)) * 3 + 1
  ctx = jax.random.normal(jax.random.key(6), (3, 7, D))
  post = attention.DecoderBlock(num_heads=H, mlp_dim=M, norm_position="post")
  params = post.init(jax.random.key(0), x, ctx)
  out = post.apply(params, x, ctx)
  np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.var(-1), 1.0, atol=1e-3)
  no_res = attention.DecoderBlock(num_heads=H, mlp_dim=M, norm_position="post",
                                  residual=False)
  assert np.abs(no_res.apply(params, x, ctx) - out).max() > 1e-2
  # Without residuals a pre-LN encoder block's output no longer contains x: adding a
  # constant to x (which LayerNorm removes) leaves it unchanged.
  enc = attention.EncoderBlock(num_heads=H, mlp_dim=M, residual=False)
  p = enc.init(jax.random.key(0), x)
  np.testing.assert_allclose(enc.apply(p, x + 5.0), enc.apply(p, x), atol=1e-4)
  enc_res = attention.EncoderBlock(num_heads=H, mlp_dim=M)
  np.testing.assert_allclose(enc_res.apply(p, x + 5.0) - enc_res.apply(p, x), 5.0,
                             atol=1e-4)


def test_dropout_only_in_training():
  model = Seq2SeqTransformer(V, **KW, dropout=0.3)
  params = _init(model)
  tgt_in = shift_right(TGT, 1)
  a = model.apply({"params": params}, SRC, tgt_in)
  b = model.apply({"params": params}, SRC, tgt_in)
  np.testing.assert_array_equal(a, b)
  c = model.apply({"params": params}, SRC, tgt_in, train=True,
                  rngs={"dropout": jax.random.key(1)})
  assert np.abs(c - a).max() > 1e-3


def test_label_smoothed_loss_closed_form():
  logits = jax.random.normal(jax.random.key(7), (3, 6, V))
  eps = 0.1
  loss, count = sequence_cross_entropy(logits, TGT, pad_id=0, label_smoothing=eps)
  logp = np.asarray(jax.nn.log_softmax(logits))
  tgt = np.asarray(TGT)
  expected = np.zeros(3)
  for b in range(3):
    for t in range(6):
      if tgt[b, t] != 0:
        expected[b] += -(1 - eps) * logp[b, t, tgt[b, t]] - eps * logp[b, t].mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_array_equal(count, [5, 3, 6])
  plain, _ = sequence_cross_entropy(logits, TGT)
  np.testing.assert_allclose(
      plain, np.sum(optax.softmax_cross_entropy_with_integer_labels(logits, TGT)
                    * (tgt != 0), -1), rtol=1e-5)


def test_sequence_log_prob_is_minus_unsmoothed_loss():
  model = Seq2SeqTransformer(V, **KW)
  params = _init(model)
  logits = model.apply({"params": params}, SRC, shift_right(TGT, 1))
  loss, _ = sequence_cross_entropy(logits, TGT)
  np.testing.assert_allclose(sequence_log_prob(model, params, SRC, TGT, 1), -loss,
                             rtol=1e-5)


def test_bad_positions_raise():
  with pytest.raises(ValueError, match="positions"):
    _init(Seq2SeqTransformer(V, positions="rotary"))
  with pytest.raises(ValueError, match="norm_position"):
    _init(Seq2SeqTransformer(V, norm_position="middle"))




@pytest.mark.parametrize("norm_position,count", [("pre", 4 + 1 + 6 + 1), ("post", 4 + 6)])
def test_every_layer_norm_takes_the_two_pass_variance(norm_position, count):
  """flax's one-pass variance is off by O(1) at |mean|/std = 1000 in float32 (see
  tests/test_norms.py); every LayerNorm of the encoder and decoder must be leeml's."""
  norms = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.LayerNorm):
      norms["/".join(context.module.path)] = context.module
    return next_fun(*args, **kwargs)

  model = Seq2SeqTransformer(V, **{**KW, "norm_position": norm_position})
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: _init(model))
  # 2 encoder blocks x 2 branches (+ the final norm when pre-LN), 2 decoder blocks x 3.
  assert len(norms) == count
  assert all(isinstance(m, layers.LayerNorm) and not m.use_fast_variance
             for m in norms.values()), sorted(norms)
