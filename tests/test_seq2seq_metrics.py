"""Exact match on id arrays and corpus BLEU (sacrebleu) on constructed cases."""

import math

import numpy as np
import pytest

from leeml import seq2seq_metrics as m
from leeml.datasets import dates

E, P = 2, 0  # EOS, PAD


def test_exact_match_constructed_cases():
  targets = np.array([[5, 6, E, P, P],
                      [5, 6, E, P, P],
                      [5, 6, E, P, P],
                      [5, 6, E, P, P],
                      [5, 6, 7, E, P],
                      [5, E, P, P, P]])
  predictions = np.array([[5, 6, E, P, P, P],   # equal, wider: padding ignored
                          [5, 6, E, 9, 9, 9],   # wrong tokens after EOS ignored
                          [5, 6, 7, E, P, P],   # EOS one step late: wrong
                          [5, E, P, P, P, P],   # EOS one step early: wrong
                          [5, 6, 7, 8, 9, 9],   # never ended: wrong
                          [5, E, E, 3, P, P]])  # second EOS ignored
  per = m.exact_match_per_example(predictions, targets)
  assert per.tolist() == [True, True, False, False, False, True]
  assert m.exact_match(predictions, targets) == pytest.approx(3 / 6)
  assert m.exact_match(targets, targets) == 1.0


def test_exact_match_custom_ids_and_no_eos():
  # eos_id / pad_id are honoured: with EOS = 9, the 2s are ordinary tokens.
  assert m.exact_match([[2, 9, 4]], [[2, 9, 7]], eos_id=9, pad_id=4) == 1.0
  assert m.exact_match([[2, 3, 9]], [[2, 9, 3]], eos_id=9) == 0.0
  # Two rows without EOS match when their non-PAD tokens agree.
  assert m.exact_match([[3, 4, P]], [[3, 4]]) == 1.0
  with pytest.raises(ValueError, match="same N"):
    m.exact_match(np.zeros((2, 3)), np.zeros((3, 3)))


def test_bleu_identical_and_disjoint():
  refs = ["Mittwoch, 25. November 2026", "Samstag, 2. Februar 1985"]
  assert m.bleu(refs, refs) == pytest.approx(100.0)
  assert m.bleu(["x y z w", "q r s t"], ["a b c d", "e f g h"]) == 0.0


def test_bleu_hand_computed_with_brevity_penalty():
  # hyp 'a b c d x' (5 words) vs ref 'a b c d e f' (6): n-gram precisions 4/5, 3/4,
  # 2/3, 1/2 (geometric mean (1/5)^(1/4)), brevity penalty exp(1 - 6/5).
  expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25 * math.exp(1 - 6 / 5)
  assert m.bleu(["a b c d x"], ["a b c d e f"]) == pytest.approx(expected, abs=1e-9)
  assert expected == pytest.approx(54.75, abs=0.01)
  # All precisions 1, only the brevity penalty: 4 of 6 words.
  assert m.bleu(["a b c d"], ["a b c d e f"]) == pytest.approx(100 * math.exp(-0.5))


def test_bleu_tokenizer_for_chinese():
  hyp, ref = ["2026年11月25日星期三"], ["2026年11月25日星期四"]
  assert m.bleu_tokenizer("zh_CN") == "zh" and m.bleu_tokenizer("de_DE") == "13a"
  assert m.bleu_tokenizer("ja_JP") == "char"
  # 13a makes the whole date one word (BLEU 0); 'zh' scores the 8 of 9 tokens that agree.
  assert m.bleu(hyp, ref, tokenize="13a") == 0.0
  assert m.bleu(hyp, ref, tokenize="zh") == pytest.approx(
      100 * (8 / 9 * 7 / 8 * 6 / 7 * 5 / 6) ** 0.25)
  with pytest.raises(ValueError, match="2 hypotheses but 1"):
    m.bleu(["a", "b"], ["a"])


def test_ids_to_text():
  vocab = dates.Vocab(tuple("abc"))
  ids = np.array([[3, 4, E, 5], [1, 5, 5, E]])
  assert m.ids_to_text(ids, vocab) == ["ab", "cc"]
  assert m.ids_to_text(ids[0], vocab) == "ab"
