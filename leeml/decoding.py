"""Autoregressive decoding for `Seq2SeqTransformer` (lectures 12-13): greedy and beam search.

Both are batched, jitted, and loop with `lax.while_loop` over one decoder step at a time
on the incremental key/value cache (`attention.CausalSelfAttention`), stopping early once
every example is done. `greedy_search_uncached` recomputes the whole prefix at every step
instead; it exists to test the cache (same tokens, same log-probabilities) and to time it.

Outputs hold the generated tokens only (no BOS), `pad_id` after the end token, and the
model log-probability sum_t log p(y_t | y_<t, x) over the generated tokens, EOS included.
BOS and PAD are never generated (their log-probabilities are set to -inf for the choice;
the others are not renormalised, so log-probs match teacher-forced scoring).

Beam search keeps `beam_size` live hypotheses; each step takes the 2K best extensions,
finalises those ending in EOS among the K best (as fairseq does, so that beam_size=1 is
exactly greedy search), and keeps the K best that do not end in EOS alive. Finished
hypotheses are ranked by log p / lp(len) with the GNMT length penalty
lp(len) = ((5 + len) / 6) ** alpha (Wu et al. 2016, eq. 14); alpha = 0 ranks by log p.
The search stops when no live hypothesis can still beat the K-th finished one, or at
`max_len`, where unfinished (truncated) hypotheses compete with the finished ones.
"""

import functools

import jax
import jax.numpy as jnp

from leeml.models.transformer import Seq2SeqTransformer

Array = jax.Array
NEG_INF = -1e30  # finite "minus infinity": keeps inf - inf NaNs out of the arithmetic


def init_cache(model: Seq2SeqTransformer, params, encoded: Array, src: Array, length: int):
  """A zero key/value cache for decoding `length` tokens, batch = encoded.shape[0]."""
  def shapes(params, encoded, src):
    dummy = jnp.zeros((encoded.shape[0], length), jnp.int32)
    _, variables = model.apply({"params": params}, dummy, encoded, src, decode=True,
                               method="decode", mutable=["cache"])
    return variables["cache"]
  abstract = jax.eval_shape(shapes, params, encoded, src)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)


def _log_probs(logits: Array, forbidden: tuple[int, ...]) -> Array:
  """log softmax over the whole vocabulary, then NEG_INF at ids never to be generated.

  The kept entries stay the model's log-probabilities (no renormalisation), so decoded
  log-probs equal teacher-forced ones (`transformer.sequence_log_prob`).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  return logp.at[..., jnp.array(forbidden)].set(NEG_INF)


def _step(model, params, cache, tokens, t, encoded, src, forbidden):
  """One cached decoder step: tokens [batch] at position t -> (log-probs [batch, V], cache)."""
  logits, variables = model.apply(
      {"params": params, "cache": cache}, tokens[:, None], encoded, src,
      jnp.reshape(t, (1,)), decode=True, method="decode", mutable=["cache"])
  return _log_probs(logits[:, 0], forbidden), variables["cache"]


@functools.partial(jax.jit, static_argnames=("model", "max_len", "bos_id", "eos_id", "pad_id"))
def greedy_search(model: Seq2SeqTransformer, params, src: Array, *, max_len: int,
                  bos_id: int, eos_id: int, pad_id: int = 0) -> tuple[Array, Array]:
  """Greedy decoding with the key/value cache.

  Args:
    model: the Seq2SeqTransformer (static).
    params: its parameters.
    src: [batch, src_len] source ids (pad_id-padded).
    max_len: most tokens to generate (≤ model.max_len).
    bos_id, eos_id, pad_id: special token ids.

  Returns:
    (tokens [batch, max_len], log-probs [batch]).
  """
  batch = src.shape[0]
  encoded = model.apply({"params": params}, src, method="encode")
  cache = init_cache(model, params, encoded, src, max_len)

  def body(state):
    t, cache, last, out, logp, done = state
    step_logp, cache = _step(model, params, cache, last, t, encoded, src, (bos_id, pad_id))
    nxt = jnp.argmax(step_logp, axis=-1).astype(jnp.int32)
    gain = jnp.take_along_axis(step_logp, nxt[:, None], axis=-1)[:, 0]
    nxt = jnp.where(done, pad_id, nxt)
    logp = logp + jnp.where(done, 0.0, gain)
    out = out.at[:, t].set(nxt)
    return t + 1, cache, nxt, out, logp, done | (nxt == eos_id)

  state = (jnp.int32(0), cache, jnp.full((batch,), bos_id, jnp.int32),
           jnp.full((batch, max_len), pad_id, jnp.int32), jnp.zeros((batch,), jnp.float32),
           jnp.zeros((batch,), bool))
  state = jax.lax.while_loop(lambda s: (s[0] < max_len) & ~jnp.all(s[5]), body, state)
  return state[3], state[4]


@functools.partial(jax.jit, static_argnames=("model", "max_len", "bos_id", "eos_id", "pad_id"))
def greedy_search_uncached(model: Seq2SeqTransformer, params, src: Array, *, max_len: int,
                           bos_id: int, eos_id: int, pad_id: int = 0) -> tuple[Array, Array]:
  """Greedy decoding that reruns the decoder on the whole prefix at every step (no cache).

  Same arguments and outputs as `greedy_search`.
  """
  batch = src.shape[0]
  encoded = model.apply({"params": params}, src, method="encode")

  def body(state):
    t, out, logp, done = state
    tgt_in = jnp.concatenate([jnp.full((batch, 1), bos_id, jnp.int32), out[:, :-1]], 1)
    logits = model.apply({"params": params}, tgt_in, encoded, src, method="decode")
    step_logp = _log_probs(jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False),
                           (bos_id, pad_id))
    nxt = jnp.argmax(step_logp, axis=-1).astype(jnp.int32)
    gain = jnp.take_along_axis(step_logp, nxt[:, None], axis=-1)[:, 0]
    nxt = jnp.where(done, pad_id, nxt)
    logp = logp + jnp.where(done, 0.0, gain)
    out = out.at[:, t].set(nxt)
    return t + 1, out, logp, done | (nxt == eos_id)

  state = (jnp.int32(0), jnp.full((batch, max_len), pad_id, jnp.int32),
           jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), bool))
  state = jax.lax.while_loop(lambda s: (s[0] < max_len) & ~jnp.all(s[3]), body, state)
  return state[1], state[2]


def length_penalty(length: Array, alpha: float) -> Array:
  """GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016)."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather_beams(x: Array, index: Array) -> Array:
  """x [batch, beams, ...] -> x[b, index[b, j], ...] for index [batch, new_beams]."""
  return jax.vmap(lambda xb, ib: xb[ib])(x, index)


@functools.partial(jax.jit, static_argnames=("model", "beam_size", "max_len", "bos_id",
                                             "eos_id", "pad_id", "alpha"))
def beam_search(model: Seq2SeqTransformer, params, src: Array, *, beam_size: int,
                max_len: int, bos_id: int, eos_id: int, pad_id: int = 0,
                alpha: float = 0.0) -> tuple[Array, Array, Array]:
  """Batched beam search with the key/value cache.

  Args:
    model, params, src, max_len, bos_id, eos_id, pad_id: as in `greedy_search`.
    beam_size: K hypotheses per example (needs vocab_size ≥ 2K).
    alpha: length-penalty exponent (0 = rank by total log-probability).

  Returns:
    (tokens [batch, K, max_len], scores [batch, K], log-probs [batch, K]), best first;
    score = log-prob / length_penalty(number of generated tokens, alpha).
  """
  batch, k = src.shape[0], beam_size
  encoded = model.apply({"params": params}, src, method="encode")
  encoded = jnp.repeat(encoded, k, axis=0)
  src_k = jnp.repeat(src, k, axis=0)
  cache = init_cache(model, params, encoded, src_k, max_len)
  max_penalty = length_penalty(jnp.float32(max_len), alpha)

  def stop_bound(live_lp):
    # A live hypothesis' log-prob only falls, and lp(len) ≤ lp(max_len), so its score can
    # never exceed live_lp / lp(max_len) (log-probs are ≤ 0).
    return live_lp[:, 0] / max_penalty

  def cond(state):
    t, _, live_seqs, live_lp, fin_seqs, fin_scores, fin_lp = state
    del live_seqs, fin_seqs, fin_lp
    done = fin_scores[:, -1] >= stop_bound(live_lp)
    return (t < max_len) & ~jnp.all(done)

  def body(state):
    t, cache, live_seqs, live_lp, fin_seqs, fin_scores, fin_lp = state
    last = jnp.where(t == 0, bos_id,
                     jax.lax.dynamic_index_in_dim(live_seqs, jnp.maximum(t - 1, 0), axis=2,
                                                  keepdims=False))
    step_logp, cache = _step(model, params, cache, last.reshape(-1), t, encoded, src_k,
                             (bos_id, pad_id))
    vocab = step_logp.shape[-1]
    cand = (live_lp[:, :, None] + step_logp.reshape(batch, k, vocab)).reshape(batch, -1)
    vals, idx = jax.lax.top_k(cand, 2 * k)  # sorted, best first
    beam, tok = idx // vocab, (idx % vocab).astype(jnp.int32)
    seqs = _gather_beams(live_seqs, beam)
    seqs = jax.vmap(lambda s, v: jax.lax.dynamic_update_index_in_dim(s, v, t, axis=1))(
        seqs, tok[:, :, None])
    is_eos = tok == eos_id
    # Finished: EOS extensions among the K best.
    new_fin = is_eos & (jnp.arange(2 * k) < k)[None] & (vals > NEG_INF / 2)
    fin_cand = jnp.where(new_fin, vals / length_penalty(t + 1.0, alpha), NEG_INF)
    all_scores = jnp.concatenate([fin_scores, fin_cand], axis=1)
    fin_scores, top = jax.lax.top_k(all_scores, k)
    fin_seqs = _gather_beams(jnp.concatenate([fin_seqs, seqs], axis=1), top)
    fin_lp = _gather_beams(jnp.concatenate([fin_lp, vals], axis=1), top)
    # Live: the K best extensions that do not end in EOS.
    live_lp, keep = jax.lax.top_k(jnp.where(is_eos, NEG_INF, vals), k)
    live_seqs = _gather_beams(seqs, keep)
    parent = (jnp.arange(batch)[:, None] * k + _gather_beams(beam, keep)).reshape(-1)
    cache = jax.tree.map(lambda c: c[parent] if c.ndim else c, cache)
    return t + 1, cache, live_seqs, live_lp, fin_seqs, fin_scores, fin_lp

  live_lp = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (batch, 1))
  empty = jnp.full((batch, k, max_len), pad_id, jnp.int32)
  state = (jnp.int32(0), cache, empty, live_lp, empty,
           jnp.full((batch, k), NEG_INF, jnp.float32), jnp.full((batch, k), NEG_INF, jnp.float32))
  t, _, live_seqs, live_lp, fin_seqs, fin_scores, fin_lp = jax.lax.while_loop(
      cond, body, state)
  # Hypotheses still live at max_len are truncated candidates (scored at length max_len);
  # after an early stop none of them can beat the K-th finished one.
  live_scores = jnp.where(t >= max_len, live_lp / max_penalty, NEG_INF)
  scores, top = jax.lax.top_k(jnp.concatenate([fin_scores, live_scores], axis=1), k)
  seqs = _gather_beams(jnp.concatenate([fin_seqs, live_seqs], axis=1), top)
  logp = _gather_beams(jnp.concatenate([fin_lp, live_lp], axis=1), top)
  return seqs, scores, logp
