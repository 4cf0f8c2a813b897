"""Tests for greedy and beam search with the key/value cache."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import decoding
from leeml.datasets import seq2seq_tasks as st
from leeml.models.transformer import Seq2SeqTransformer, sequence_log_prob

pytestmark = pytest.mark.usefixtures("quick_compiles")

L = 10
IDS = dict(bos_id=st.BOS, eos_id=st.EOS, pad_id=st.PAD)


@functools.lru_cache(maxsize=None)
def _setup():
  """A random 2-layer model whose weights are scaled x2 so that its next-token
  distributions are peaked enough that some greedy outputs end in EOS within L tokens and
  others do not, and beam search finds better sequences on some examples."""
  data = st.generate("reverse", 16, 2, 6, seed=0)
  src = jnp.asarray(data.sources)
  model = Seq2SeqTransformer(data.vocab_size, num_layers=2, width=32, mlp_dim=64,
                             max_len=L)
  params = model.init(jax.random.key(0), src, src)["params"]
  params = jax.tree.map(lambda x: 2.0 * x, params)
  greedy = decoding.greedy_search(model, params, src, max_len=L, **IDS)
  return model, params, src, greedy


def _check_format(tokens):
  """Only PAD after the first EOS; no BOS or PAD before it."""
  for row in np.asarray(tokens).reshape(-1, tokens.shape[-1]).tolist():
    end = row.index(st.EOS) if st.EOS in row else len(row)
    assert all(t == st.PAD for t in row[end + 1:])
    assert all(t not in (st.PAD, st.BOS) for t in row[:end])


def test_cached_greedy_equals_full_prefix_recomputation():
  model, params, src, (tokens, logp) = _setup()
  ref_tokens, ref_logp = decoding.greedy_search_uncached(model, params, src, max_len=L,
                                                         **IDS)
  np.testing.assert_array_equal(tokens, ref_tokens)
  # float32 sums over <= 10 tokens, from differently shaped matmuls: ~1e-5 apart.
  np.testing.assert_allclose(logp, ref_logp, atol=5e-5)
  np.testing.assert_allclose(logp, sequence_log_prob(model, params, src, tokens, st.BOS),
                             atol=5e-5)
  assert tokens.shape == (16, L)
  _check_format(tokens)
  ended = np.any(np.asarray(tokens) == st.EOS, axis=1)
  assert 0 < ended.sum() < 16  # both early-ended and truncated outputs are covered


def test_greedy_is_per_example():
  """Batched decoding gives each example what decoding it alone gives."""
  model, params, src, (tokens, logp) = _setup()
  one_tokens, one_logp = decoding.greedy_search(model, params, src[5:6], max_len=L, **IDS)
  np.testing.assert_array_equal(one_tokens[0], tokens[5])
  np.testing.assert_allclose(one_logp[0], logp[5], atol=1e-5)


def test_beam_size_one_equals_greedy():
  model, params, src, (tokens, logp) = _setup()
  beams, scores, beam_logp = decoding.beam_search(model, params, src, beam_size=1,
                                                  max_len=L, **IDS)
  assert beams.shape == (16, 1, L)
  np.testing.assert_array_equal(beams[:, 0], tokens)
  np.testing.assert_allclose(beam_logp[:, 0], logp, atol=1e-5)
  np.testing.assert_allclose(scores[:, 0], logp, atol=1e-5)  # alpha = 0


def test_beam_search_beats_or_ties_greedy_on_every_example():
  model, params, src, (tokens, _) = _setup()
  beams, scores, beam_logp = decoding.beam_search(model, params, src, beam_size=4,
                                                  max_len=L, **IDS)
  assert beams.shape == (16, 4, L)
  _check_format(beams)
  best = sequence_log_prob(model, params, src, beams[:, 0], st.BOS)
  greedy = sequence_log_prob(model, params, src, tokens, st.BOS)
  assert np.all(best >= greedy - 1e-5)
  assert np.sum(best > greedy + 1e-3) >= 2  # and strictly better on some
  # Returned log-probs are the model's, beams sorted best first, all distinct.
  for j in range(4):
    np.testing.assert_allclose(
        beam_logp[:, j], sequence_log_prob(model, params, src, beams[:, j], st.BOS),
        atol=1e-4)
  assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)
  for row in np.asarray(beams):
    assert len({tuple(r) for r in row}) == 4


def test_length_penalty_scores():
  model, params, src, _ = _setup()
  alpha = 0.6
  beams, scores, beam_logp = decoding.beam_search(model, params, src, beam_size=3,
                                                  max_len=L, alpha=alpha, **IDS)
  lengths = np.sum(np.asarray(beams) != st.PAD, axis=-1)  # EOS included; L if truncated
  np.testing.assert_allclose(scores, beam_logp / ((5.0 + lengths) / 6.0) ** alpha,
                             rtol=1e-5)
  assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)
  _check_format(beams)


def test_cached_decoding_is_unchanged_under_x64():
  """jax_enable_x64 makes Python ints and aranges int64; the cache index (int32) must
  still mix with them: the same tokens and log-probs as in the default 32-bit mode."""
  model, params, src, (tokens, logp) = _setup()
  with jax.enable_x64(True):
    tokens64, logp64 = decoding.greedy_search(model, params, src, max_len=L, **IDS)
  assert not jax.config.jax_enable_x64  # restored
  assert tokens64.dtype == np.int32 and logp64.dtype == np.float32
  np.testing.assert_array_equal(tokens64, tokens)
  np.testing.assert_allclose(logp64, logp, atol=1e-5)
