"""Lecture 12: date translation end to end at smoke scale, and the helpers it reports."""

import os

import numpy as np
import pytest

from configs import lec12_transformer as lec12_config
from leeml import claims, seq2seq
from leeml.lectures import lec12_transformer as lec12

pytestmark = pytest.mark.usefixtures("quick_compiles")


def test_configs_validate_and_fix_thresholds_before_running():
  for scale in ("smoke", "cpu"):
    config = lec12_config.get_config(scale)
    seq2seq.validate(config.train)
    assert config.thresholds.min_exact_match == 0.90
  cpu = lec12_config.get_config("cpu")
  assert len(cpu.seeds) >= 3 and cpu.train.task.name == "dates"
  full = lec12_config.get_config("full").train
  assert full.task.name == "translation" and full.task.num_train == 0   # 0 = all pairs
  seq2seq.validate(full)
  with pytest.raises(ValueError, match="scale"):
    lec12_config.get_config("huge")


def test_digit_alignment_counts_digits_attending_to_digits():
  eye = np.eye(4)   # output char q attends source char q ('⏎' = EOS at the end)
  maps = [{"source": "1a2", "output": "1b2", "layers": [eye]},
          {"source": "ab3", "output": "7", "layers": [np.eye(2, 4)]}]
  # '1'->'1' digit, '2'->'2' digit, '7'->'a' not: 2 of 3
  assert lec12.digit_alignment(maps) == pytest.approx(2 / 3)


def test_chunks_have_one_length_so_the_engine_compiles_one_chunk():
  # Chunks end at every evaluation, checkpoint and the last step, and are at most
  # chunk_steps long: all of one length when each of those is a multiple of it.
  for scale in ("smoke", "cpu", "full"):
    t = lec12_config.get_config(scale).train
    n = lec12.chunk_steps(t)
    for every in (t.eval_every_steps, t.checkpoint_every_steps, t.num_train_steps):
      assert every % n == 0, (scale, every, n)
  assert lec12.chunk_steps(lec12_config.get_config("cpu").train) == 250


# The whole experiment end to end (lec01's took 15-20 s of CPU each; the others alike or
# more): run with `pytest -m slow`. Its pieces have unit tests in the default run.
@pytest.mark.slow
def test_lec12_runs_end_to_end(tmp_path):
  config = lec12_config.get_config("smoke")
  section = lec12.run(config, str(tmp_path))
  assert [v.claim.id for v in section.verdicts] == ["lec12.dates.exact_match",
                                                    "lec12.dates.within_budget"]
  em = dict(section.verdicts[0].numbers)["greedy test exact match"]
  assert em.n == 1 and 0.0 <= em.mean <= 1.0
  # 12 smoke steps cannot translate dates: the claim FAILs honestly at this scale.
  assert section.verdicts[0].verdict == claims.FAIL
  assert section.verdicts[1].verdict == claims.PASS
  greedy_vs_beam, per_seed, examples = section.tables
  assert [r[0] for r in greedy_vs_beam.rows] == ["greedy", "beam 4"]
  bleu = float(greedy_vs_beam.rows[0][2].split(" ")[0])
  assert 0.0 <= bleu <= 100.0
  assert len(per_seed.rows) == 1 and float(per_seed.rows[0][2]) > 0.0   # test NLL
  assert len(examples.rows) == config.attention_examples
  # The picked examples have differently shaped sources (numeric, day-first, month-first).
  sources = [r[0] for r in examples.rows]
  assert sources[0][0].isdigit() and ("/" in sources[0] or "-" in sources[0])
  assert sources[2][0].isalpha()
  for fig in section.figures:
    assert os.path.getsize(fig.path) > 10_000 and open(fig.path, "rb").read(4) == b"\x89PNG"
