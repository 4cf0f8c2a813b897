"""The tfds translation loader, offline: `tfds.testing.mock_data` and the not-prepared error.

tfds ships no metadata (dataset_info.json) for ted_hrlr_translate, so `mock_data`'s
policy is `MockPolicy.USE_CODE` (AUTO would fall back to it): the feature spec comes
from the builder's code, and random strings are generated from it (the same examples in
every split). A second test supplies hand-written pairs through `as_data_source_fn`, and
a third prepares a tiny translation builder as array_record and reads it for real (bytes
values, no mocking), as a prepared ted_hrlr_translate would be read.
"""

import socket

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from leeml.datasets import tfds_real, translation
from leeml.datasets.seq2seq_tasks import EOS, PAD

NAME = translation.DEFAULT_DATASET


def _refuse(*args, **kwargs):
  raise OSError("a translation test tried to use the network")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
  monkeypatch.setattr(socket.socket, "connect", _refuse)
  monkeypatch.setattr(socket, "getaddrinfo", _refuse)


def test_mock_data_random_examples():
  with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
    raw = tfds.data_source(NAME, split="train")
    raw = [(raw[i]["pt"], raw[i]["en"]) for i in range(30)]
    corpus = translation.load(max_chars=16)
    rev = translation.load(max_chars=16, reverse=True, num_train=3)
  kept = [(s, t) for s, t in raw if len(s) <= 16 and len(t) <= 16]
  assert 0 < len(kept) < 30  # the filter is exercised both ways
  assert corpus.num_dropped == {s: 30 - len(kept) for s in translation.SPLITS}
  assert (corpus.source_language, corpus.target_language) == ("pt", "en")
  assert corpus.name == NAME and corpus.max_chars == 16
  assert corpus.train.sources.shape == (len(kept), 17) == corpus.test.targets.shape
  assert corpus.train.task == "ted_hrlr_translate_pt_to_en_pt_en"
  # Vocabulary: the training characters, code-point order, after PAD/BOS/EOS/UNK.
  chars = sorted(set("".join(s + t for s, t in kept)))
  assert list(corpus.vocab.chars) == chars and corpus.vocab.size == 4 + len(chars)
  assert corpus.train.vocab_size == corpus.vocab.size
  for (s, t), xs, xt in zip(kept, corpus.train.sources, corpus.train.targets):
    assert corpus.vocab.decode(xs) == s and corpus.vocab.decode(xt) == t
    assert xt[len(t)] == EOS and np.all(xt[len(t) + 1:] == PAD)
  # reverse swaps the sides; num_train keeps the first pairs.
  assert (rev.source_language, rev.target_language) == ("en", "pt")
  assert len(rev.train.sources) == 3
  assert rev.vocab.decode(rev.train.sources[0]) == kept[0][1]


_PAIRS = {
    "train": [(b"obrigado .", b"thank you ."),
              ("muito\u202fobrigado .", "thank you very much ."),
              ("uma frase longa demais para o limite .", "a sentence too long ."),
              ("ol\u00e1 .", "hello .")],
    "validation": [("ol\u00e1 !", "hello !")],
    "test": [("n\u00e3o .", "no .")],
}


def _as_data_source(self, split, **kwargs):
  del self, kwargs
  def source(name):
    return [{"pt": p, "en": e} for p, e in _PAIRS[name]]
  return [source(s) for s in split] if isinstance(split, (list, tuple)) else source(split)


def test_hand_written_pairs_unk_filter_and_normalization():
  with tfds.testing.mock_data(as_data_source_fn=_as_data_source):
    corpus = translation.load(max_chars=24)
    with pytest.raises(ValueError, match="num_train=5 exceeds the 3 pairs"):
      translation.load(max_chars=24, num_train=5)
  assert corpus.num_dropped == {"train": 1, "validation": 0, "test": 0}
  v = corpus.vocab
  train = [v.decode(x) for x in corpus.train.sources]
  assert train == ["obrigado .", "muito obrigado .", "ol\u00e1 ."]  # bytes decoded, U+202F
  assert "\u00e3" not in v.chars and "!" not in v.chars
  # Characters never seen in training become UNK (id 3), decoded as U+FFFD.
  assert v.decode(corpus.test.sources[0]) == "n\ufffdo ."
  assert corpus.validation.targets[0].tolist().count(v.unk_id) == 1
  assert v.decode(corpus.validation.targets[0]) == "hello \ufffd"
  assert corpus.train.sources.shape == (3, 25)


class LeemlToyTranslation(tfds.core.GeneratorBasedBuilder):
  """Five pairs per split, Portuguese with a CLDR narrow no-break space; 's' only in
  validation/test ('test' and 'validation' vs 'train')."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.Translation(languages=["en", "pt"]),
        supervised_keys=("pt", "en"), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {s: self._generate_examples(s) for s in translation.SPLITS}

  def _generate_examples(self, split):
    for i in range(5):
      yield i, {"pt": f"ol\u00e1 {split} {i}\u202f.", "en": f"hello {split} {i} ."}


def test_reads_a_prepared_array_record_corpus(tmp_path):
  builder = LeemlToyTranslation(data_dir=str(tmp_path), file_format="array_record")
  builder.download_and_prepare()
  raw = tfds.data_source(builder.name, split="train", data_dir=str(tmp_path))[0]
  assert isinstance(raw["pt"], bytes)  # the real reader returns UTF-8 bytes
  corpus = translation.load(builder.name, data_dir=str(tmp_path), num_test=2)
  # The same through a config section (as leeml.seq2seq's task section passes it).
  task = ml_collections.ConfigDict(dict(name="translation", tfds_name=builder.name,
                                        data_dir=str(tmp_path), max_chars=128, num_train=0,
                                        num_validation=0, num_test=2, seed=0))
  same = translation.load(task)
  assert np.array_equal(same.test.targets, corpus.test.targets) and same.vocab == corpus.vocab
  v = corpus.vocab
  assert [v.decode(x) for x in corpus.train.sources] == [
      f"ol\u00e1 train {i} ." for i in range(5)]
  assert [v.decode(x) for x in corpus.test.targets] == ["hello te\ufffdt 0 .",
                                                        "hello te\ufffdt 1 ."]
  assert corpus.train.sources.shape == (5, 129) and corpus.validation.targets.shape == (5, 129)
  assert "".join(v.chars) == " .01234aehilnortá"


def test_not_prepared_is_one_line(tmp_path):
  with pytest.raises(tfds_real.DatasetNotPreparedError) as info:
    translation.load(data_dir=str(tmp_path))
  msg = str(info.value)
  assert "\n" not in msg and msg.startswith(f"dataset.name={NAME!r} is not prepared in")
  assert f"tfds build {NAME}" in msg and "--file_format=array_record" in msg


def test_wmt_builders_resolve_offline():
  # tfds' lazy registry misses the WMT builders without TensorFlow; the loader imports them.
  assert translation.languages("wmt14_translate/de-en") == ("de", "en")
  assert translation.languages("ted_hrlr_translate/ru_to_en", reverse=True) == ("en", "ru")
