"""Tests for the generated copy/reverse/sort/addition tasks."""

import numpy as np
import pytest

from leeml.datasets import seq2seq_tasks as st


def _body(row):
  """Symbols of a row before its first EOS (there must be exactly one EOS, then PADs)."""
  row = list(row)
  end = row.index(st.EOS)
  assert all(t == st.PAD for t in row[end + 1:])
  assert st.EOS not in row[:end] and st.PAD not in row[:end]
  return row[:end]


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_symbol_tasks_are_correct(task):
  data = st.generate(task, 200, 2, 9, seed=3)
  assert data.sources.shape == (200, 10) and data.targets.shape == (200, 10)
  assert data.sources.dtype == np.int32
  assert data.vocab_size == 13
  for s, t in zip(data.sources, data.targets):
    x, y = _body(s), _body(t)
    assert 2 <= len(x) <= 9
    assert min(x) >= st.FIRST_SYMBOL and max(x) < data.vocab_size
    expected = {"copy": x, "reverse": x[::-1], "sort": sorted(x)}[task]
    assert y == expected


def test_addition_is_correct_and_output_lengths_vary():
  data = st.generate("addition", 300, 1, 4, seed=0)
  assert data.sources.shape == (300, 10) and data.targets.shape == (300, 6)
  assert data.vocab_size == 14
  for s, t in zip(data.sources, data.targets):
    a, b = st.to_text(s, "addition").split("+")
    assert len(a) <= 4 and len(b) <= 4
    assert (len(a) == 1 or a[0] != "0") and (len(b) == 1 or b[0] != "0")
    assert int(st.to_text(t, "addition")) == int(a) + int(b)
    _body(t)
  assert set(data.target_lengths) == {2, 3, 4, 5, 6}  # 1..5 digits + EOS


def test_lengths_are_variable_and_cover_the_range():
  data = st.generate("copy", 500, 3, 7, seed=1)
  assert set(data.source_lengths) == {4, 5, 6, 7, 8}
  np.testing.assert_array_equal(data.source_lengths, data.target_lengths)


def test_deterministic_in_seed_and_task():
  a = st.generate("reverse", 50, 1, 6, seed=7)
  b = st.generate("reverse", 50, 1, 6, seed=7)
  c = st.generate("reverse", 50, 1, 6, seed=8)
  d = st.generate("copy", 50, 1, 6, seed=7)
  np.testing.assert_array_equal(a.sources, b.sources)
  np.testing.assert_array_equal(a.targets, b.targets)
  assert not np.array_equal(a.sources, c.sources)
  assert not np.array_equal(a.sources, d.sources)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="task"):
    st.generate("unknown", 10, 1, 3, seed=0)
  with pytest.raises(ValueError, match="min_len"):
    st.generate("copy", 10, 4, 3, seed=0)


def test_to_text():
  assert st.to_text(np.array([3, 4, 5, 2, 0]), "copy") == "abc"
  assert st.to_text(np.array([4, st.plus_id(), 12, 2]), "addition") == "1+9"
