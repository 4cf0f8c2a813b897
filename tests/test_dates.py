"""The babel/CLDR date-translation corpus: formats, fixed split by date, vocabulary, widths."""

import datetime

import numpy as np
import pytest

from leeml.datasets import dates
from leeml.datasets.seq2seq_tasks import BOS, EOS, PAD


@pytest.fixture(scope="module")
def corpus():
  return dates.load(3000, 500, 500, seed=0)


def test_issue_example_is_formatted():
  d = datetime.date(2026, 11, 25)
  assert dates.format_date(d, "full", "en_US") == "Wednesday, November 25, 2026"
  assert dates.format_date(d, "full", "de_DE") == "Mittwoch, 25. November 2026"
  assert dates.format_date(d, "full", "zh_CN") == "2026年11月25日星期三"
  assert dates.format_date(d, "full", "fr_FR") == "mercredi 25 novembre 2026"
  assert dates.format_date(d, "MM/dd/yy", "en_US") == "11/25/26"
  # Every source format of that date maps to the German 'full' target.
  split = dates.split_of(d)
  for seed in range(50):
    pairs = dates.examples(split, 2000, seed=seed)
    hits = [s for s, t in pairs if t == "Mittwoch, 25. November 2026"]
    if hits:
      break
  assert hits, "the issue's date was never drawn"
  assert set(hits) <= {dates.format_date(d, f, "en_US") for f in dates.SOURCE_FORMATS}


def test_encode_decode_roundtrip(corpus):
  v = corpus.vocab
  text = "Mittwoch, 25. November 2026"
  ids = v.encode(text, add_eos=True)
  assert min(ids[:-1]) >= 3 and ids[-1] == EOS
  assert v.decode(ids) == text
  assert v.decode([BOS] + ids + [PAD, 7, 8]) == text  # BOS skipped, stops at EOS
  assert v.decode([v.encode("a")[0], PAD, v.encode("b")[0]]) == "ab"  # PAD skipped
  for split in (corpus.train, corpus.test):
    for row_s, row_t in zip(split.sources[:200], split.targets[:200]):
      s, t = v.decode(row_s), v.decode(row_t)
      np.testing.assert_array_equal(v.encode_batch([s], len(row_s))[0], row_s)
      np.testing.assert_array_equal(v.encode_batch([t], len(row_t))[0], row_t)
  with pytest.raises(ValueError, match="not in the vocabulary"):
    v.encode("Mittwoch ß€")


def test_vocab_json_roundtrip(corpus, tmp_path):
  path = str(tmp_path / "vocab.json")
  corpus.vocab.save(path)
  loaded = dates.Vocab.load(path)
  assert loaded == corpus.vocab and loaded.size == corpus.vocab.size
  assert loaded.encode("Mai 1980") == corpus.vocab.encode("Mai 1980")


def test_split_is_fixed_by_date_and_disjoint():
  by_split = dates.split_dates()
  sets = {k: set(v) for k, v in by_split.items()}
  total = (dates.LAST_DATE - dates.FIRST_DATE).days + 1
  assert sum(len(v) for v in sets.values()) == total == 100 * 365 + 25  # 25 leap years
  assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["validation"])
  assert not (sets["validation"] & sets["test"])
  # About 80 / 10 / 10 %.
  assert abs(len(sets["test"]) / total - 0.1) < 0.01
  assert abs(len(sets["train"]) / total - 0.8) < 0.01
  # Through the corpus: no test target date (any source format, any seed) in training.
  for seed in (0, 1):
    train = dates.examples("train", 5000, seed=seed)
    test = dates.examples("test", 1000, seed=1 - seed)
    assert not {t for _, t in train} & {t for _, t in test}
    assert not {s for s, _ in train} & {s for s, _ in test}


def test_deterministic_prefix_and_seed(corpus):
  again = dates.load(3000, 500, 500, seed=0)
  for a, b in ((corpus.train, again.train), (corpus.test, again.test)):
    assert np.array_equal(a.sources, b.sources) and np.array_equal(a.targets, b.targets)
  smaller = dates.load(1000, 10, 10, seed=0)  # smaller sizes are prefixes
  assert np.array_equal(smaller.train.sources, corpus.train.sources[:1000])
  assert np.array_equal(smaller.test.targets, corpus.test.targets[:10])
  other = dates.load(3000, 500, 500, seed=1)
  assert not np.array_equal(other.train.sources, corpus.train.sources)
  # Pairs within a split are distinct.
  pairs = {(a.tobytes(), b.tobytes()) for a, b in zip(corpus.train.sources,
                                                      corpus.train.targets)}
  assert len(pairs) == 3000


def test_widths_fixed_and_vocab_independent_of_n(corpus):
  small = dates.load(5, 3, 2, seed=7)
  assert small.vocab == corpus.vocab
  assert small.train.sources.shape == (5, 30) and corpus.train.sources.shape == (3000, 30)
  assert small.test.targets.shape == (2, 31) and corpus.validation.targets.shape == (500, 31)
  for split in (corpus.train, corpus.validation, corpus.test):
    assert split.vocab_size == corpus.vocab.size == 51 and split.task == "dates_en_US_de_DE"
    assert split.sources.dtype == np.int32
    # EOS-terminated, PAD after: one EOS per row, at length - 1.
    for x in (split.sources, split.targets):
      assert np.all(np.sum(x == EOS, axis=1) == 1)
      lengths = np.sum(x != PAD, axis=1)
      assert np.all(x[np.arange(len(x)), lengths - 1] == EOS)
      assert not np.any(x == BOS)
  # The widths are the longest strings of the whole 1950-2049 range (+ EOS), checked
  # exhaustively for the formats with names and the target.
  every = dates.all_dates()
  longest_target = max(len(dates.format_date(d, "full", "de_DE")) for d in every)
  assert longest_target + 1 == corpus.train.targets.shape[1]
  longest_source = max(len(dates.format_date(d, "full", "en_US")) for d in every)
  assert longest_source + 1 == corpus.train.sources.shape[1]
  assert longest_source == len("Wednesday, September 30, 2026")


def test_whitespace_normalized_and_other_locales():
  assert dates.normalize("25\u202fNov\u00a02026\u200f") == "25 Nov 2026"
  for locale in ("zh_CN", "fr_FR", "ru_RU", "ar_EG"):
    c = dates.load(300, 5, 5, target_locale=locale)
    assert c.target_locale == locale and c.train.task == f"dates_en_US_{locale}"
    assert all(ord(ch) > 32 or ch == " " for ch in c.vocab.chars)
    assert not set(c.vocab.chars) & {"\u202f", "\u00a0", "\u200f", "\u200e"}
    texts = [c.vocab.decode(t) for t in c.train.targets]
    assert all(t == dates.normalize(t) for t in texts)
  zh = dates.load(50, 5, 5, target_locale="zh_CN")
  d = zh.vocab.decode(zh.train.targets[0])
  assert "年" in d and "月" in d and d[d.index("日") + 1:].startswith("星期")
  long = dates.load(50, 5, 5, target_format="long")
  assert long.train.task == "dates_en_US_de_DE_long"
  assert long.train.targets.shape[1] == len("30. September 2026") + 1


def test_weekday_formats_spell_the_weekday():
  d = datetime.date(2026, 11, 25)  # a Wednesday
  for f in dates.SOURCE_FORMATS:
    assert ("Wed" in dates.format_date(d, f, "en_US")) == (f in dates.WEEKDAY_FORMATS)
  c = dates.load(200, 5, 5, source_formats=dates.WEEKDAY_FORMATS)
  names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
  assert all(any(n in c.vocab.decode(s) for n in names) for s in c.train.sources)
  with pytest.raises(ValueError, match="exceeds"):
    dates.load(10, 10, 10**6)
