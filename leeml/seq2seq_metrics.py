"""Sequence-to-sequence metrics (lectures 12-13): exact match on ids, corpus BLEU on text.

* `exact_match`: the fraction of examples whose predicted ids equal the target ids up to
  and including the first EOS. PAD ids are ignored wherever they are (so widths may
  differ), and so is anything after the first EOS. A prediction without EOS never ended:
  it matches only a target that has no EOS either.
* `bleu`: corpus BLEU (Papineni et al. 2002) from `sacrebleu`, one reference per
  hypothesis, sacrebleu's defaults (4-grams, brevity penalty, 'exp' smoothing), on the
  0-100 scale. BLEU counts words, so the tokenizer must suit the target language:
  sacrebleu's '13a' (its default, the WMT standard) splits on spaces and punctuation and
  suits German, French, English…; Chinese has no spaces, so '13a' would make a whole date
  like 2026年11月25日星期三 one word: use 'zh' (each CJK character a token).
  `bleu_tokenizer(locale)` picks: 'zh' for zh*, 'char' for ja*/ko* (sacrebleu's
  'ja-mecab'/'ko-mecab' need MeCab, not installed), '13a' otherwise.
* `ids_to_text`: id rows -> strings through a vocabulary with `decode` (e.g.
  `leeml.datasets.dates.Vocab`), for BLEU or for reading.
"""

from typing import Sequence

import numpy as np
import sacrebleu

EOS_ID, PAD_ID = 2, 0


def _canonical(row: np.ndarray, eos_id: int, pad_id: int) -> tuple[int, ...]:
  ends = np.flatnonzero(row == eos_id)
  if ends.size:
    row = row[:ends[0] + 1]
  return tuple(row[row != pad_id].tolist())


def exact_match_per_example(predictions, targets, eos_id: int = EOS_ID,
                            pad_id: int = PAD_ID) -> np.ndarray:
  """bool [N]: prediction i equals target i up to and including the first EOS."""
  predictions, targets = np.asarray(predictions), np.asarray(targets)
  if predictions.ndim != 2 or targets.ndim != 2 or len(predictions) != len(targets):
    raise ValueError(f"need [N, L] predictions and targets with the same N, got "
                     f"{predictions.shape} and {targets.shape}")
  return np.array([_canonical(p, eos_id, pad_id) == _canonical(t, eos_id, pad_id)
                   for p, t in zip(predictions, targets)], dtype=bool)


def exact_match(predictions, targets, eos_id: int = EOS_ID, pad_id: int = PAD_ID) -> float:
  """Fraction of rows where predictions == targets up to the first EOS (PAD ignored)."""
  matches = exact_match_per_example(predictions, targets, eos_id, pad_id)
  return float(matches.mean()) if matches.size else 0.0


def bleu_tokenizer(locale: str) -> str:
  """sacrebleu tokenizer for text in `locale`: 'zh', 'char' (ja, ko) or '13a'."""
  language = locale.replace("-", "_").split("_")[0].lower()
  if language == "zh":
    return "zh"
  if language in ("ja", "ko"):
    return "char"
  return "13a"


def bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
  """Corpus BLEU (0-100) of `hypotheses` against one reference each."""
  hypotheses, references = list(hypotheses), list(references)
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
  return float(sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score)


def ids_to_text(ids, vocab) -> str | list[str]:
  """One id row -> its text; a [N, L] array -> N texts (each up to its first EOS)."""
  ids = np.asarray(ids)
  if ids.ndim == 1:
    return vocab.decode(ids)
  if ids.ndim != 2:
    raise ValueError(f"ids must be [L] or [N, L], got shape {ids.shape}")
  return [vocab.decode(row) for row in ids]
