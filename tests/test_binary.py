"""experiments/train.py end to end: artifacts, resume, presets, compilation cache."""

import pytest
import os

from conftest import REPO, binary_env, run_train, train_cmd
from leeml.metric_writers import read_jsonl

import subprocess


@pytest.mark.slow  # the binary end to end twice (13 s); resume is covered by test_trainers.py in the default run
def test_smoke_run_then_rerun_resumes(tmp_path):
  workdir = str(tmp_path / "w")
  first = run_train(workdir)
  assert "resumed" not in first.stderr
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["20", "40", "60"]
  assert os.listdir(os.path.join(workdir, "tensorboard"))
  n_lines = len(open(os.path.join(workdir, "metrics.jsonl")).readlines())
  assert n_lines == 61  # 60 train records + 1 eval
  second = run_train(workdir)
  assert "resumed from step 60" in second.stderr
  assert len(open(os.path.join(workdir, "metrics.jsonl")).readlines()) == n_lines


@pytest.mark.slow  # end to end / subprocess; the slow run (.ci/run-slow) covers it
def test_cnn_preset_with_overrides_trains(tmp_path):
  workdir = str(tmp_path / "cnn")
  run_train(workdir, "--config.num_train_steps=40", "--config.optimizer.name=adam",
            "--config.optimizer.learning_rate=0.003", config="configs/cnn.py:smoke")
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train_loss = [r["train_loss"] for r in records if "train_loss" in r]
  assert len(train_loss) == 40 and train_loss[-1] < 0.5 * train_loss[0]
  assert records[-1]["eval_accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_persistent_compilation_cache_is_written(tmp_path):
  cache = tmp_path / "cache"
  cmd = [c for c in train_cmd(str(tmp_path / "w")) if not c.startswith("--compilation_cache")]
  # Every compile is written (min 0 s): the smoke programs can compile in under the default
  # 0.5 s, so whether any entry appeared depended on the machine's speed.
  proc = subprocess.run(cmd + [f"--compilation_cache_dir={cache}",
                               "--compilation_cache_min_compile_secs=0"],
                        env=binary_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert len(os.listdir(cache)) >= 1
