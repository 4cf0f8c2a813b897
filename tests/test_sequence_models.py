"""Sequence classifiers (RNN cells, attention) and the generated long-range tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml.datasets import sequence_tasks
from leeml.models import sequence

V, C = 9, 8   # vocabulary (8 values + query), classes


def _closed_form(kind: str, h: int) -> int:
  """Parameter counts from the cells' equations (flax: one bias per gate)."""
  embed, readout = V * h, h * C + C
  if kind == "simple":   # h' = tanh(W_i x + b + W_h h)
    return embed + 2 * h * h + h + readout
  if kind == "lstm":     # 4 gates: W_i x + W_h h + b
    return embed + 4 * (2 * h * h + h) + readout
  if kind == "gru":      # r, z: W_i x + b + W_h h; n: W_i x + b + r*(W_h h + b)
    return embed + 6 * h * h + 4 * h + readout
  m = 2 * h              # attention: embed, LN, q/k/v/out, LN, MLP, final LN, readout
  return embed + 2 * h + 4 * (h * h + h) + 2 * h + (h * m + m + m * h + h) + 2 * h + readout


@pytest.mark.parametrize("kind,width", [("simple", 7), ("lstm", 5), ("gru", 6),
                                        ("attention", 8)])
def test_parameter_counts_match_the_equations(kind, width):
  model = sequence.make(kind, width, num_outputs=C, vocab_size=V, num_heads=2)
  assert sequence.count_params(model, 12) == _closed_form(kind, width)


def test_sized_to_picks_the_closest_width():
  # max_width=64 (the widths found are 17-35): each probe traces an init, so a bisection
  # over 64 widths (6-7 probes) costs about 60% of one over the default 1024 (10-11 probes)
  for kind in sequence.KINDS:
    s = sequence.sized_to(kind, 3000, length=16, num_outputs=C, vocab_size=V, num_heads=2,
                          max_width=64)
    step = 2 if kind == "attention" else 1
    assert s.num_params == _closed_form(kind, s.width)
    neighbours = [_closed_form(kind, w) for w in (s.width - step, s.width + step)]
    assert all(abs(s.num_params - 3000) <= abs(n - 3000) for n in neighbours)
    assert neighbours[0] < 3000 <= neighbours[1] or neighbours[0] <= 3000 < neighbours[1]
  with pytest.raises(ValueError, match="fewer than target"):
    sequence.sized_to("lstm", 10**9, length=4, num_outputs=C, vocab_size=V, max_width=16)


def test_simple_rnn_equals_its_recurrence():
  model = sequence.make("simple", 5, num_outputs=C, vocab_size=V)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, (3, 7)), jnp.int32)
  params = model.init(jax.random.PRNGKey(1), tokens)["params"]
  p = jax.tree.map(np.asarray, params)
  cell = p["cell"]
  h = np.zeros((3, 5))
  for t in range(7):   # h_t = tanh(W_i e(x_t) + b_i + W_h h_{t-1})
    x = p["embed"]["embedding"][np.asarray(tokens[:, t])]
    h = np.tanh(x @ cell["i"]["kernel"] + cell["i"]["bias"] + h @ cell["h"]["kernel"])
  want = h @ p["readout"]["kernel"] + p["readout"]["bias"]
  np.testing.assert_allclose(model.apply({"params": params}, tokens), want, atol=1e-5)


def test_attention_classifier_reads_every_position():
  """Changing only x_0 changes the attention model's output at the last position."""
  model = sequence.make("attention", 8, num_outputs=C, vocab_size=V, num_heads=2)
  a = jnp.zeros((1, 10), jnp.int32).at[0, -1].set(8)
  params = model.init(jax.random.PRNGKey(0), a)
  b = a.at[0, 0].set(3)
  assert float(jnp.max(jnp.abs(model.apply(params, a) - model.apply(params, b)))) > 1e-4
  learned = sequence.make("attention", 8, num_outputs=C, vocab_size=V, positions="learned")
  assert sequence.count_params(learned, 10) == _closed_form("attention", 8) + 10 * 8
  with pytest.raises(ValueError, match="not one of"):
    sequence.make("transformer", 8, num_outputs=C, vocab_size=V)


@pytest.mark.parametrize("num_layers,positions", [(1, "sinusoidal"), (2, "learned")])
def test_last_query_attention_is_the_same_model(num_layers, positions):
  """`last_query=True` computes the last layer at the last position only: the same
  parameters (one init), logits and gradients as the whole encoder, and its last layer's
  attention is O(L), not O(L²) (the compiled program's temporary memory)."""
  kw = dict(num_outputs=C, vocab_size=V, num_heads=2, num_layers=num_layers,
            positions=positions)
  full = sequence.make("attention", 8, **kw)
  last = sequence.make("attention", 8, last_query=True, **kw)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, (3, 12)), jnp.int32)
  params = full.init(jax.random.PRNGKey(0), tokens)
  assert jax.tree.structure(last.init(jax.random.PRNGKey(0), tokens)) == jax.tree.structure(
      params)
  for u, v in zip(jax.tree.leaves(params), jax.tree.leaves(
      last.init(jax.random.PRNGKey(0), tokens))):
    np.testing.assert_array_equal(u, v)
  np.testing.assert_allclose(last.apply(params, tokens), full.apply(params, tokens),
                             rtol=1e-5, atol=1e-6)
  labels = jnp.arange(3) % C

  def grads(model):
    def loss(p):
      logits = model.apply(p, tokens)
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(3), labels])
    return jax.grad(loss)(params)
  for u, v in zip(jax.tree.leaves(grads(full)), jax.tree.leaves(grads(last))):
    np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)
  # A change at x_0 still reaches the last position's output.
  other = tokens.at[:, 0].set((tokens[:, 0] + 1) % V)
  assert float(jnp.max(jnp.abs(last.apply(params, tokens) - last.apply(params, other)))) > 1e-4


def test_last_query_attention_memory_is_linear_in_length():
  kw = dict(num_outputs=C, vocab_size=V, num_heads=2)

  def temp_bytes(model, length):
    tokens = jnp.zeros((4, length), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), tokens)
    f = jax.jit(jax.grad(lambda p: model.apply(p, tokens).sum()))
    return f.lower(params).compile().memory_analysis().temp_size_in_bytes
  full, last = (sequence.make("attention", 8, last_query=q, **kw) for q in (False, True))
  # 4x the length: the whole layer's L×L weights make its memory grow ~16x, the last
  # query's 1×L row ~4x.
  assert temp_bytes(full, 256) > 10 * temp_bytes(full, 64)
  assert temp_bytes(last, 256) < 6 * temp_bytes(last, 64)


def test_recall_first_token():
  x, y = sequence_tasks.recall_first_token(2000, 12, 8, seed=3, num_distractors=5)
  assert x.shape == (2000, 12) and x.dtype == np.int32 and y.shape == (2000,)
  assert sequence_tasks.recall_vocab_size(8, 5) == 14
  np.testing.assert_array_equal(y, x[:, 0])
  assert y.min() == 0 and y.max() == 7 and np.all(x[:, -1] == 13)
  middle = x[:, 1:-1]
  assert middle.min() == 8 and middle.max() == 12      # distractor ids only
  np.testing.assert_allclose(np.bincount(middle.ravel() - 8) / middle.size, 1 / 5, atol=0.01)
  x2, _ = sequence_tasks.recall_first_token(2000, 12, 8, seed=3, num_distractors=5)
  x3, _ = sequence_tasks.recall_first_token(2000, 12, 8, seed=4, num_distractors=5)
  np.testing.assert_array_equal(x, x2)
  assert np.mean(x[:, :-1] != x3[:, :-1]) > 0.7
  # No distractor ids: the distractors are values, x_0 is found only by its position.
  x0, y0 = sequence_tasks.recall_first_token(2000, 12, 8, seed=3)
  assert np.all(x0[:, -1] == 8) and x0[:, 1:-1].max() == 7
  np.testing.assert_array_equal(y0, x0[:, 0])


def test_adding_problem():
  x, y = sequence_tasks.adding_problem(500, 10, seed=0)
  assert x.shape == (500, 10, 2) and y.shape == (500,)
  markers = x[..., 1]
  assert np.all(markers.sum(1) == 2)
  assert np.all(markers[:, :5].sum(1) == 1) and np.all(markers[:, 5:].sum(1) == 1)
  np.testing.assert_allclose(y, (x[..., 0] * markers).sum(1), rtol=1e-6)
  # Predicting the mean 1 gives MSE = Var(U1 + U2) = 2/12 (the task's baseline).
  assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.03
