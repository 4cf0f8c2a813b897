"""Real translation corpora from tfds (lectures 12-13), for users who are online.

The offline translation task is `leeml.datasets.dates`; this loader reads a real parallel
corpus with the same output structure (`TranslationCorpus`: train/validation/test
`Seq2SeqData` + a character `Vocab`), so the same training code runs on either.

Dataset: any tfds dataset with a `Translation` feature and supervised keys (source,
target), named as 'name/config'. The default is 'ted_hrlr_translate/pt_to_en' (Qi et al.
2018: TED talk transcripts, Portuguese -> English, about 51,800 / 1,190 / 1,800
train / validation / test sentence pairs, lower-cased; small, common, and the corpus of
the TensorFlow Transformer tutorial). Others: 'ted_hrlr_translate/<xx>_to_en',
'wmt14_translate/de-en' (4.5M pairs: set num_train), 'wmt_t2t_translate/de-en'.
`reverse=True` swaps the direction.

Like `tfds_real`, data is read with `tfds.data_source` (array_record, no TensorFlow) from
a prepared `data_dir`; nothing is downloaded unless `download=True`, and an unprepared
dataset is one `DatasetNotPreparedError` line saying how to prepare it
(`tfds build ted_hrlr_translate/pt_to_en --data_dir=DIR --file_format=array_record`,
once, where TensorFlow and the network are available).

Tokens: characters (no subword model to train or ship). The vocabulary is every
character of the kept training pairs (both languages, one shared table) seen at least
`min_char_count` times, sorted by code point, after PAD/BOS/EOS = 0/1/2 and UNK = 3;
validation/test characters outside it become UNK. Text is normalized as in `dates`
(Unicode spaces -> ' ', bidi marks dropped, NFC).

Length: pairs with either side longer than `max_chars` characters are DROPPED from every
split, not truncated (a truncated target teaches a wrong translation); the counts are in
`num_dropped`. Sequences are then EOS-terminated and PAD-padded to width max_chars + 1,
fixed by the config. `num_train`/`num_validation`/`num_test` keep the first N remaining
pairs of a split in stored order (0 = all).
"""

import dataclasses
import importlib
from collections import Counter

import tensorflow_datasets as tfds

from leeml.datasets import tfds_real
from leeml.datasets.dates import Vocab, normalize
from leeml.datasets.seq2seq_tasks import Seq2SeqData

DEFAULT_DATASET = "ted_hrlr_translate/pt_to_en"
SPLITS = ("train", "validation", "test")
FIELDS = dict(name=DEFAULT_DATASET, data_dir="", download=False, max_chars=128,
              num_train=0, num_validation=0, num_test=0, min_char_count=1, reverse=False)


@dataclasses.dataclass(frozen=True)
class TranslationCorpus:
  """A tfds translation corpus as character ids, like `dates.DatesCorpus`."""
  train: Seq2SeqData
  validation: Seq2SeqData
  test: Seq2SeqData
  vocab: Vocab
  source_language: str
  target_language: str
  name: str
  max_chars: int
  num_dropped: dict  # split -> pairs dropped for length (among those read)


def _register_builder_module(name: str) -> None:
  """Imports tfds' translate module for `name` (e.g. wmt14_translate -> translate.wmt14).

  Without TensorFlow, tfds' lazy registry does not find some translation builders (the
  WMT ones) until their module is imported.
  """
  base = name.split("/")[0].removesuffix("_translate")
  try:
    importlib.import_module(f"tensorflow_datasets.translate.{base}")
  except ImportError:
    pass


def open_sources(name: str, data_dir: str = "", download: bool = False) -> dict:
  """split -> tfds data source of `name` in `data_dir` ('' = leeml's default)."""
  _register_builder_module(name)
  sources = tfds_real.open_sources(name, data_dir, download, splits=SPLITS)
  return dict(zip(SPLITS, sources))


def languages(name: str, reverse: bool = False) -> tuple[str, str]:
  """(source, target) language codes of `name` from its supervised keys."""
  _register_builder_module(name)
  keys = tfds.builder(name).info.supervised_keys
  if not keys or len(keys) != 2:
    raise ValueError(f"{name!r} has no (source, target) supervised keys: {keys}")
  return (keys[1], keys[0]) if reverse else (keys[0], keys[1])


def _text(value) -> str:
  if isinstance(value, bytes):
    value = value.decode("utf-8")
  elif hasattr(value, "item"):  # numpy bytes/str scalar
    return _text(value.item())
  return normalize(str(value))


def read_pairs(source, src_lang: str, tgt_lang: str, max_chars: int,
               num: int = 0) -> tuple[list[tuple[str, str]], int]:
  """(first `num` pairs with both sides <= max_chars (0: all), number dropped for length)."""
  kept, dropped = [], 0
  for i in range(len(source)):
    r = source[i]
    s, t = _text(r[src_lang]), _text(r[tgt_lang])
    if len(s) > max_chars or len(t) > max_chars:
      dropped += 1
      continue
    kept.append((s, t))
    if num and len(kept) == num:
      break
  return kept, dropped


def build_vocab(pairs: list[tuple[str, str]], min_count: int = 1) -> Vocab:
  """Characters of both sides seen >= min_count times, code-point order, with UNK."""
  counts = Counter()
  for s, t in pairs:
    counts.update(s)
    counts.update(t)
  return Vocab(tuple(sorted(c for c, k in counts.items() if k >= min_count)), unk=True)


def from_config(cfg) -> TranslationCorpus:
  """`load` with the fields of a config section: `tfds_name` (or `name`) and any of
  data_dir, download, max_chars, num_train, num_validation, num_test, min_char_count,
  reverse (missing ones take `FIELDS`' defaults)."""
  get = lambda key: cfg[key] if key in cfg else FIELDS[key]  # noqa: E731
  name = cfg["tfds_name"] if "tfds_name" in cfg else get("name")
  return load(name, **{k: get(k) for k in FIELDS if k != "name"})


def load(name: str = DEFAULT_DATASET, *, data_dir: str = "", download: bool = False,
         max_chars: int = 128, num_train: int = 0, num_validation: int = 0,
         num_test: int = 0, min_char_count: int = 1, reverse: bool = False
         ) -> TranslationCorpus:
  """The corpus `name` as character ids; see the module docstring for every field.

  `name` may also be a config section (anything `from_config` reads).
  """
  if not isinstance(name, str):
    return from_config(name)
  if max_chars < 1 or min_char_count < 1:
    raise ValueError(f"need max_chars >= 1 and min_char_count >= 1, got {max_chars}, "
                     f"{min_char_count}")
  src_lang, tgt_lang = languages(name, reverse)
  sources = open_sources(name, data_dir, download)
  pairs, dropped = {}, {}
  for split, num in zip(SPLITS, (num_train, num_validation, num_test)):
    pairs[split], dropped[split] = read_pairs(sources[split], src_lang, tgt_lang,
                                              max_chars, num)
    if num and len(pairs[split]) < num:
      raise ValueError(f"num_{split}={num} exceeds the {len(pairs[split])} pairs of {name} "
                       f"{split} with both sides <= max_chars={max_chars}")
    if not pairs[split]:
      raise ValueError(f"no {split} pair of {name} has both sides <= max_chars={max_chars}")
  vocab = build_vocab(pairs["train"], min_char_count)
  task = f"{name.replace('/', '_')}_{src_lang}_{tgt_lang}"

  def encode(split):
    return Seq2SeqData(vocab.encode_batch([s for s, _ in pairs[split]], max_chars + 1),
                       vocab.encode_batch([t for _, t in pairs[split]], max_chars + 1),
                       vocab.size, task)

  return TranslationCorpus(encode("train"), encode("validation"), encode("test"), vocab,
                           src_lang, tgt_lang, name, max_chars, dropped)
