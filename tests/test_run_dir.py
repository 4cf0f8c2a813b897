"""The lecture run cache: one directory per (training-run config, leeml source)."""

import os

import ml_collections

from leeml import lectures


def _config(**overrides):
  return ml_collections.ConfigDict({**dict(seed=2, learning_rate=0.1, width=16), **overrides})


def test_run_dir_is_stable_for_the_same_config_and_code(tmp_path):
  a = lectures.run_dir(str(tmp_path), "mlp", _config())
  assert a == lectures.run_dir(str(tmp_path), "mlp", _config())
  assert os.path.dirname(a) == os.path.join(str(tmp_path), "runs")
  assert os.path.basename(a).startswith("mlp_seed2_")
  assert lectures.run_dir(str(tmp_path), "mlp", _config(width=32)) != a


def test_run_dir_changes_with_the_code_version(tmp_path, monkeypatch):
  before = lectures.run_dir(str(tmp_path), "mlp", _config())
  monkeypatch.setattr(lectures, "code_version", lambda: "a-fixed-leeml", raising=False)
  after = lectures.run_dir(str(tmp_path), "mlp", _config())
  assert after != before  # a code fix never resumes a run trained by the old code
  assert lectures.run_dir(str(tmp_path), "mlp", _config()) == after
  monkeypatch.setattr(lectures, "code_version", lambda: "another-leeml", raising=False)
  assert lectures.run_dir(str(tmp_path), "mlp", _config()) not in (before, after)


def test_code_version_hashes_the_package_source(tmp_path):
  package = tmp_path / "pkg"
  (package / "sub").mkdir(parents=True)
  (package / "a.py").write_text("x = 1\n")
  (package / "sub" / "b.py").write_text("y = 2\n")
  (package / "notes.txt").write_text("not source")
  first = lectures.source_digest(str(package))
  assert first == lectures.source_digest(str(package))
  (package / "notes.txt").write_text("still not source")
  assert lectures.source_digest(str(package)) == first
  (package / "sub" / "b.py").write_text("y = 3\n")
  changed = lectures.source_digest(str(package))
  assert changed != first
  (package / "sub" / "b.py").rename(package / "b.py")  # same bytes, another file
  assert lectures.source_digest(str(package)) != changed
  assert lectures.code_version() == lectures.code_version()
  assert len(lectures.code_version()) == 40
