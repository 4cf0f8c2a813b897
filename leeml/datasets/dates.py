"""Date translation (lectures 12-13): a date written out in one language -> another.

A small real translation task that needs no network: the words come from the Unicode
CLDR locale data shipped in `babel`. The source is a calendar date written in
`source_locale` (en_US) in one of `SOURCE_FORMATS` (CLDR's 'full', 'long', 'medium',
'short' and six custom patterns with other word orders, abbreviations and separators);
the target is the same date in `target_locale` (de_DE) in `target_format` ('full'):

  Wednesday, November 25, 2026   -> Mittwoch, 25. November 2026
  25 Nov 2026                    -> Mittwoch, 25. November 2026
  11/25/26                       -> Mittwoch, 25. November 2026

Dates span 1950-01-01 … 2049-12-31, so a two-digit year ('yy') names exactly one date.
Sources without a weekday ('long', 'short', 'y-MM-dd', …) ask the model to compute the
weekday of the German 'full' target from day, month and year; `WEEKDAY_FORMATS` lists the
source formats that spell it out, for an easier variant.

Split: FIXED by calendar date, independent of the seed and of the sizes asked for: a
date's SHA-256 (of "leeml-dates:YYYY-MM-DD") picks its split (80% train, 10%
validation, 10% test), so no test date appears in training in any source format. Each
split then draws distinct (date, source format) pairs: a seeded permutation of that
split's pairs, of which the first n are kept (so a smaller n is a prefix of a larger one).

Tokens: characters. The vocabulary is PAD = 0, BOS = 1, EOS = 2 (shared with
`seq2seq_tasks`) followed by every character, sorted by code point, that any source
format in the source locale or the target format in the target locale writes for any
date of the reference leap year 2000 (every month name, every weekday with every month,
one- and two-digit days, every digit); it depends on the locales and formats only, not on
the split or the sizes. The widths (longest string + EOS) are taken over the same
reference dates: string lengths do not depend on the year within 1950-2049 (always four
digits), and in any one year every month has two-digit days on all seven weekdays.

Whitespace: CLDR writes some spaces as U+202F (narrow no-break space) or U+00A0, and
right-to-left locales add bidi marks (U+200E/U+200F). `normalize` maps every Unicode
space separator (category Zs) to an ASCII space, drops the bidi marks, and applies NFC;
every string the corpus holds, and so the vocabulary, is normalized.
"""

import dataclasses
import datetime
import functools
import hashlib
import json
import unicodedata
from typing import Iterable, Sequence

import numpy as np
from babel import Locale, dates as babel_dates

from leeml.datasets.seq2seq_tasks import BOS, EOS, FIRST_SYMBOL, PAD, Seq2SeqData

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
REFERENCE_YEAR = 2000  # a leap year: Feb 29 is formatted too
SOURCE_FORMATS = ("full", "long", "medium", "short", "EEE, MMM d, y", "EEEE d MMMM y",
                  "EEE d MMMM y", "d MMM y", "MM/dd/yy", "y-MM-dd")
# The source formats above that write the weekday in en_US ('full' is EEEE, MMMM d, y).
WEEKDAY_FORMATS = ("full", "EEE, MMM d, y", "EEEE d MMMM y", "EEE d MMMM y")
SPLITS = ("train", "validation", "test")
# hash bucket (of 10) -> split: 0-7 train, 8 validation, 9 test.
_BUCKET_SPLIT = (0,) * 8 + (1, 2)
_HASH_SALT = "leeml-dates:"
_BIDI_MARKS = frozenset("\u200e\u200f\u061c\u2066\u2067\u2068\u2069\u202a\u202b\u202c"
                        "\u202d\u202e")


def normalize(text: str) -> str:
  """CLDR spaces (U+202F, U+00A0, …) -> ' ', bidi marks dropped, NFC."""
  if text.isascii():
    return text
  out = []
  for c in unicodedata.normalize("NFC", text):
    if c in _BIDI_MARKS:
      continue
    out.append(" " if unicodedata.category(c) == "Zs" else c)
  return "".join(out)


@dataclasses.dataclass(frozen=True)
class Vocab:
  """Character vocabulary: PAD/BOS/EOS = 0/1/2, then `chars` at ids 3, 4, ….

  With `unk=True`, id 3 is the unknown character (decoded as U+FFFD) and `chars` start
  at 4; without it, encoding an unknown character raises.
  """
  chars: tuple[str, ...]
  unk: bool = False

  def __post_init__(self):
    if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
      raise ValueError("Vocab.chars must be distinct single characters")

  @property
  def first_char_id(self) -> int:
    return FIRST_SYMBOL + int(self.unk)

  @property
  def unk_id(self) -> int | None:
    return FIRST_SYMBOL if self.unk else None

  @property
  def size(self) -> int:
    return self.first_char_id + len(self.chars)

  @functools.cached_property
  def _ids(self) -> dict[str, int]:
    return {c: self.first_char_id + i for i, c in enumerate(self.chars)}

  def encode(self, text: str, add_eos: bool = False) -> list[int]:
    """Character ids of `text` (no BOS), EOS appended if `add_eos`."""
    ids = self._ids
    if self.unk:
      out = [ids.get(c, FIRST_SYMBOL) for c in text]
    else:
      try:
        out = [ids[c] for c in text]
      except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} (U+{ord(e.args[0]):04X}) of {text!r} "
                         f"is not in the vocabulary") from None
    return out + [EOS] if add_eos else out

  def decode(self, ids: Iterable[int]) -> str:
    """The text of `ids` up to the first EOS; PAD and BOS are skipped."""
    out = []
    for t in np.asarray(ids).reshape(-1).tolist():
      if t == EOS:
        break
      if t in (PAD, BOS):
        continue
      if self.unk and t == FIRST_SYMBOL:
        out.append("\ufffd")
      elif self.first_char_id <= t < self.size:
        out.append(self.chars[t - self.first_char_id])
      else:
        raise ValueError(f"id {t} is outside the vocabulary (size {self.size})")
    return "".join(out)

  def encode_batch(self, texts: Sequence[str], width: int) -> np.ndarray:
    """[len(texts), width] int32: each text's ids + EOS, PAD-padded."""
    out = np.full((len(texts), width), PAD, np.int32)
    for i, text in enumerate(texts):
      ids = self.encode(text, add_eos=True)
      if len(ids) > width:
        raise ValueError(f"{text!r} needs {len(ids)} tokens (EOS included) > width {width}")
      out[i, :len(ids)] = ids
    return out

  def to_json(self) -> str:
    return json.dumps({"chars": "".join(self.chars), "unk": self.unk,
                       "special": {"pad": PAD, "bos": BOS, "eos": EOS}}, ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str) -> "Vocab":
    d = json.loads(text)
    if d.get("special") != {"pad": PAD, "bos": BOS, "eos": EOS}:
      raise ValueError(f"vocabulary special ids {d.get('special')} are not PAD/BOS/EOS = "
                       f"{PAD}/{BOS}/{EOS}")
    return cls(tuple(d["chars"]), bool(d.get("unk", False)))

  def save(self, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
      f.write(self.to_json())

  @classmethod
  def load(cls, path: str) -> "Vocab":
    with open(path, encoding="utf-8") as f:
      return cls.from_json(f.read())


@dataclasses.dataclass(frozen=True)
class DatesCorpus:
  """Three splits (fixed by date) sharing one character vocabulary."""
  train: Seq2SeqData
  validation: Seq2SeqData
  test: Seq2SeqData
  vocab: Vocab
  source_locale: str
  target_locale: str


@functools.lru_cache(maxsize=1 << 20)  # babel's formatting is the slow part of `load`
def format_date(date: datetime.date, fmt: str, locale: str) -> str:
  """`date` in CLDR format `fmt` ('full'/'long'/'medium'/'short' or a pattern), normalized."""
  return normalize(babel_dates.format_date(date, fmt, locale=_locale(locale)))


@functools.lru_cache(maxsize=None)
def _locale(name: str) -> Locale:
  return Locale.parse(name)


def all_dates() -> list[datetime.date]:
  """Every date from FIRST_DATE to LAST_DATE (1950-2049), in order."""
  first, last = FIRST_DATE.toordinal(), LAST_DATE.toordinal()
  return [datetime.date.fromordinal(o) for o in range(first, last + 1)]


def split_of(date: datetime.date) -> str:
  """The fixed split of a calendar date: by a SHA-256 of its ISO form."""
  digest = hashlib.sha256((_HASH_SALT + date.isoformat()).encode()).digest()
  return SPLITS[_BUCKET_SPLIT[int.from_bytes(digest[:8], "big") % 10]]


@functools.lru_cache(maxsize=None)
def split_dates() -> dict[str, tuple[datetime.date, ...]]:
  """split name -> its dates in calendar order (fixed; about 80/10/10%)."""
  out = {s: [] for s in SPLITS}
  for d in all_dates():
    out[split_of(d)].append(d)
  return {s: tuple(v) for s, v in out.items()}


def _reference_dates() -> list[datetime.date]:
  start = datetime.date(REFERENCE_YEAR, 1, 1).toordinal()
  return [datetime.date.fromordinal(start + i) for i in range(366)]


@functools.lru_cache(maxsize=None)
def _vocab_and_widths(source_locale: str, source_formats: tuple[str, ...],
                      target_locale: str, target_format: str) -> tuple[Vocab, int, int]:
  chars, src_w, tgt_w = set(), 0, 0
  for d in _reference_dates():
    for fmt in source_formats:
      s = format_date(d, fmt, source_locale)
      chars.update(s)
      src_w = max(src_w, len(s) + 1)
    t = format_date(d, target_format, target_locale)
    chars.update(t)
    tgt_w = max(tgt_w, len(t) + 1)
  return Vocab(tuple(sorted(chars))), src_w, tgt_w


def vocab_and_widths(source_locale: str = "en_US", target_locale: str = "de_DE",
                     target_format: str = "full",
                     source_formats: Sequence[str] = SOURCE_FORMATS) -> tuple[Vocab, int, int]:
  """(vocabulary, source width, target width) for these locales and formats; widths
  count EOS. Depends on nothing else (not the split, the sizes or the seed)."""
  return _vocab_and_widths(source_locale, tuple(source_formats), target_locale,
                           target_format)


def _draw(split: str, n: int, seed: int, num_formats: int) -> list[tuple[datetime.date, int]]:
  """n distinct (date, source-format index) pairs of `split`, a prefix of a seeded order."""
  dates = split_dates()[split]
  pool = len(dates) * num_formats
  if n > pool:
    raise ValueError(f"num_{split}={n} exceeds the {pool} distinct (date, format) pairs of "
                     f"the {split} split")
  rng = np.random.default_rng([seed, SPLITS.index(split), num_formats])
  picks = rng.permutation(pool)[:n]
  return [(dates[p // num_formats], int(p % num_formats)) for p in picks.tolist()]


def examples(split: str, n: int, *, seed: int = 0, source_locale: str = "en_US",
             target_locale: str = "de_DE", target_format: str = "full",
             source_formats: Sequence[str] = SOURCE_FORMATS) -> list[tuple[str, str]]:
  """The (source, target) strings `load` encodes for `split`, with the same arguments."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not one of: {', '.join(SPLITS)}")
  return [(format_date(d, source_formats[f], source_locale),
           format_date(d, target_format, target_locale))
          for d, f in _draw(split, n, seed, len(source_formats))]


def load(num_train: int, num_validation: int, num_test: int, *, seed: int = 0,
         source_locale: str = "en_US", target_locale: str = "de_DE",
         target_format: str = "full",
         source_formats: Sequence[str] = SOURCE_FORMATS) -> DatesCorpus:
  """The date-translation corpus: see the module docstring. Deterministic in the arguments."""
  source_formats = tuple(source_formats)
  if not source_formats:
    raise ValueError("source_formats is empty")
  vocab, src_w, tgt_w = vocab_and_widths(source_locale, target_locale, target_format,
                                         source_formats)
  task = f"dates_{source_locale}_{target_locale}"
  if target_format != "full":
    task += f"_{target_format}"
  splits = {}
  for split, n in zip(SPLITS, (num_train, num_validation, num_test)):
    pairs = examples(split, n, seed=seed, source_locale=source_locale,
                     target_locale=target_locale, target_format=target_format,
                     source_formats=source_formats)
    splits[split] = Seq2SeqData(vocab.encode_batch([s for s, _ in pairs], src_w),
                                vocab.encode_batch([t for _, t in pairs], tgt_w),
                                vocab.size, task)
  return DatesCorpus(splits["train"], splits["validation"], splits["test"], vocab,
                     source_locale, target_locale)
