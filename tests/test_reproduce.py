"""leeml.reproduce: selection, configs, crash isolation, the report, exit codes."""

import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import pytest
from absl import flags
from absl.testing import flagsaver

from conftest import REPO, binary_env
from leeml import lectures, reproduce, timing
from leeml.claims import FAIL, PASS, Claim, Stat, judge, less_than
from leeml.lectures import EXPERIMENTS, Experiment, Figure, Section
from test_report import make_png

CONFIG = '''
from configs import default  # the repository root must be importable


def get_config(scale):
  config = default.get_config(scale)
  config.seed = 17
  return config
'''


def _claim(cid, check):
  return Claim(id=cid, statement=f"statement of {cid}", source="a slide",
               threshold="mean x < mean y", check=check)


@pytest.fixture
def fakes(monkeypatch, tmp_path):
  """Registers fake_crash (raises), fake_mixed (PASS + FAIL, a workdir-relative figure, no
  command; 0.1 s of train, a compile in eval) and fake_pass (one PASS, its own command and
  time); returns their calls."""
  config_file = tmp_path / "fake_config.py"
  config_file.write_text(CONFIG)
  calls = []

  def crash(config, workdir):
    calls.append(("fake_crash", config.num_train_steps, workdir))
    raise RuntimeError("boom at step 7")

  def mixed(config, workdir):
    calls.append(("fake_mixed", config.num_train_steps, workdir))
    with timing.phase("train"):
      time.sleep(0.1)
    with timing.phase("eval"):  # a fresh function: traced (and compiled) here
      # 200 chained ops: a compile that takes well over the table's 0.05 s rounding
      # (a one-op function compiled in ~0.03 s under quick compiles and showed 0.0).
      def chain(v):
        for i in range(200):
          v = jnp.sin(v * config.seed + i)
        return v
      jax.jit(chain)(jnp.ones(3)).block_until_ready()
    make_png(os.path.join(workdir, "plots", "curve.png"))
    results = {"x": [1.0, 2.0, 3.0], "y": [float(config.seed)] * 3}
    return Section(
        name="fake_mixed", title="Fake mixed lecture", command="",
        verdicts=[judge(_claim("fake_mixed.lower", lambda r: less_than("x", r["x"], "y", r["y"])),
                        results),
                  judge(_claim("fake_mixed.higher", lambda r: less_than("y", r["y"], "x", r["x"])),
                        results)],
        figures=[Figure("plots/curve.png", "a curve")])

  def passing(config, workdir):
    calls.append(("fake_pass", config.num_train_steps, workdir))
    return Section(name="fake_pass", title="Fake passing lecture", command="my --own=command",
                   verdicts=[judge(_claim("fake_pass.ok", lambda r: less_than("x", [0], "y", [1])),
                                   None)],
                   seconds=12.5)

  for name, fn in (("fake_crash", crash), ("fake_mixed", mixed), ("fake_pass", passing)):
    monkeypatch.setitem(EXPERIMENTS, name, Experiment(name, f"Fake {name}", str(config_file), fn))
  return calls


def run_main(*args):
  """`main` as the binary runs it: flags parsed from args, restored afterwards."""
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["reproduce", "--compilation_cache_dir=", *args])
    return reproduce.main(argv)


def test_a_crash_is_a_fail_section_and_the_next_experiment_runs(fakes, tmp_path):
  out, work = str(tmp_path / "out"), str(tmp_path / "work")
  sections = reproduce.reproduce(["fake_mixed", "fake_crash", "fake_mixed"], "smoke", out, work)
  # Name order, duplicates dropped; the smoke preset (60 steps) reached both runs.
  assert [c[:2] for c in fakes] == [("fake_crash", 60), ("fake_mixed", 60)]
  assert fakes[1][2] == os.path.join(os.path.abspath(work), "smoke", "fake_mixed")
  crash, mixed = sections
  assert crash.name == "fake_crash" and crash.title == "Fake fake_crash"
  [v] = crash.verdicts
  assert (v.verdict, v.claim.id) == (FAIL, "fake_crash.runs")
  assert v.detail == "experiment crashed: RuntimeError: boom at step 7"
  assert "Traceback" in crash.notes[0] and "in crash" in crash.notes[0]
  assert crash.command == "python experiments/reproduce.py --only=fake_crash --scale=smoke"
  assert [v.verdict for v in mixed.verdicts] == [PASS, FAIL]  # 2 < 17, then 17 not < 2
  assert mixed.verdicts[1].numbers == {"y": Stat((17.0,) * 3), "x": Stat((1.0, 2.0, 3.0))}
  assert mixed.command == "python experiments/reproduce.py --only=fake_mixed --scale=smoke"
  assert 0 < mixed.seconds < 60  # filled in: the experiment left it at 0
  md = open(os.path.join(out, "REPORT.md"), encoding="utf-8").read()
  assert "experiment crashed: RuntimeError: boom at step 7" in md
  assert "3 claims in 2 sections: **1 PASS**, **2 FAIL**." in md
  assert "| status | complete |" in md and "| scale | smoke |" in md
  assert re.search(r"\| git commit \| ([0-9a-f]{12}|unknown)", md)
  assert re.search(r"\| devices \| cpu: \d+ × ", md)
  # The workdir-relative figure was found and copied into the report.
  assert "![a curve](figures/fake_mixed/curve.png)" in md
  assert os.path.isfile(os.path.join(out, "figures", "fake_mixed", "curve.png"))
  page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
  assert "experiment crashed: RuntimeError: boom at step 7" in page
  # Where the time went: a row per experiment, the parts add up to its total.
  rows = {m[0]: [float(x) for x in m[1:]] for m in re.findall(
      r"^\| (fake_\w+|total) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) "
      r"\| ([\d.]+) \|$", md, re.M)}
  assert list(rows) == ["fake_crash", "fake_mixed", "total"]
  compile_s, train, _, _, total, share = rows["fake_mixed"]
  assert compile_s > 0.0 and 0.1 <= train < 0.1 + 0.5 and total >= 0.1
  assert abs(sum(rows["fake_mixed"][:4]) - total) <= 0.25  # four roundings to 0.1
  assert rows["fake_crash"][1] == 0.0 and rows["total"][5] == 100.0
  assert share > 50.0  # the crash took next to no time
  assert "Where the time went" in page


def test_a_section_keeps_its_own_command_and_time(fakes, tmp_path):
  [s] = reproduce.reproduce(["fake_pass"], "cpu", str(tmp_path / "o"), str(tmp_path / "w"))
  assert fakes == [("fake_pass", 2000, os.path.join(str(tmp_path / "w"), "cpu", "fake_pass"))]
  assert (s.command, s.seconds) == ("my --own=command", 12.5)


def test_unknown_name_lists_the_valid_ones_before_running_anything(fakes, tmp_path):
  out = tmp_path / "out"
  with pytest.raises(reproduce.ReproduceError) as e:
    reproduce.reproduce(["fake_pass", "nope", "lec99"], "smoke", str(out), str(tmp_path / "w"))
  msg = str(e.value)
  assert msg.startswith("unknown experiment 'nope', 'lec99'; registered: ")
  assert "fake_crash, fake_mixed, fake_pass" in msg and "\n" not in msg
  assert fakes == [] and not out.exists()


def test_missing_config_and_bad_scale_stop_before_running(fakes, monkeypatch, tmp_path):
  monkeypatch.setitem(EXPERIMENTS, "fake_missing",
                      Experiment("fake_missing", "t", "configs/no_such_config.py", lambda c, w: 0))
  with pytest.raises(reproduce.ReproduceError, match=r"^fake_missing: config "
                     r"configs/no_such_config\.py: no such file \(.*configs/no_such_config\.py\)$"):
    reproduce.reproduce(["fake_pass", "fake_missing"], "smoke", str(tmp_path / "o"), "w")
  with pytest.raises(reproduce.ReproduceError,
                     match="unknown scale 'huge'; one of: smoke, cpu, full"):
    reproduce.reproduce(["fake_pass"], "huge", str(tmp_path / "o"), "w")
  assert fakes == []


def test_load_config_relative_to_the_repository_and_its_errors(tmp_path):
  run = lambda c, w: None
  exp = Experiment("d", "t", "configs/default.py", run)
  assert reproduce.load_config(exp, "smoke").num_train_steps == 60
  assert reproduce.load_config(exp, "cpu").num_train_steps == 2000
  with pytest.raises(reproduce.ReproduceError, match=r"^d: config configs/default\.py: "
                     r"get_config\('big'\) raised ValueError"):
    reproduce.load_config(exp, "big")
  broken = tmp_path / "broken.py"
  broken.write_text("import not_a_module_anywhere\n")
  with pytest.raises(reproduce.ReproduceError, match="importing it raised ModuleNotFoundError"):
    reproduce.load_config(Experiment("b", "t", str(broken), run), "smoke")
  empty = tmp_path / "empty.py"
  empty.write_text("X = 1\n")
  with pytest.raises(reproduce.ReproduceError, match=r"defines no get_config\(scale\)"):
    reproduce.load_config(Experiment("e", "t", str(empty), run), "smoke")


def test_main_summary_and_exit_codes(fakes, tmp_path, capsys):
  out = str(tmp_path / "out")
  assert run_main("--only=fake_mixed,fake_crash", "--scale=smoke", f"--out={out}") == 0
  stdout = capsys.readouterr().out
  assert re.search(r"^fake_crash\s+1\s+0\s+1\s", stdout, re.M)
  assert re.search(r"^fake_mixed\s+2\s+1\s+1\s", stdout, re.M)
  assert re.search(r"^total\s+3\s+1\s+2\s", stdout, re.M)
  assert "FAIL fake_crash.runs: experiment crashed: RuntimeError: boom at step 7" in stdout
  assert "FAIL fake_mixed.higher: y = 17 ± 0 (n=3); x = 2 ± 1 (n=3)" in stdout
  assert f"report: {out}/index.html (and {out}/REPORT.md)" in stdout
  # The default workdir is <out>/runs.
  assert fakes[-1][2] == os.path.join(os.path.abspath(out), "runs", "smoke", "fake_mixed")
  # --strict: a FAIL is exit status 1; all PASS is 0.
  assert run_main("--only=fake_mixed", "--scale=smoke", f"--out={out}", "--strict") == 1
  assert run_main("--only=fake_pass", "--scale=smoke", f"--out={out}", "--strict") == 0
  assert run_main("--only=fake_pass", "--scale=smoke", f"--out={out}") == 0
  # It could not start: 2, with the reason on stderr.
  capsys.readouterr()
  assert run_main("--only=nope", f"--out={out}", "--strict") == 2
  err = capsys.readouterr().err
  assert err.startswith("leeml-reproduce: unknown experiment 'nope'; registered: ")
  assert "fake_crash, fake_mixed, fake_pass" in err


# Three subprocesses, each importing jax and every lecture (~10 s of CPU each); the same
# exit codes are checked in-process above. Run with `pytest -m slow`.
@pytest.mark.slow
def test_binary_help_and_unknown_name(tmp_path):
  reproduce.load_lectures()
  registered = sorted(lectures.EXPERIMENTS)
  binary = [sys.executable, os.path.join(REPO, "experiments", "reproduce.py")]
  proc = subprocess.run(binary + ["--help"], env=binary_env(), cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 1, proc.stderr  # absl's --help exits with 1
  for flag in ("--scale", "--only", "--out", "--workdir", "--[no]strict",
               "--compilation_cache_dir"):
    assert flag in proc.stdout, flag
  proc = subprocess.run(binary + ["--only=surely_not_a_lecture", "--compilation_cache_dir="],
                        env=binary_env(), cwd=tmp_path, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 2
  assert "unknown experiment 'surely_not_a_lecture'; registered: " in proc.stderr
  assert proc.stderr.strip().endswith(", ".join(registered) or "(none)")
  assert not (tmp_path / "report").exists()
  # The console script's entry point (`leeml-reproduce`) has the same flags.
  code = ("import sys; from leeml.reproduce import run; "
          "sys.argv = ['leeml-reproduce', '--help']; run()")
  proc = subprocess.run([sys.executable, "-c", code], env=binary_env(), cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 1, proc.stderr
  assert "--[no]strict" in proc.stdout and "Exit status: 0 when it ran" in proc.stdout


def test_every_experiment_has_its_own_binary():
  """experiments/<lecture>.py runs exactly one experiment (`reproduce.run(only=[name])`)."""
  reproduce.load_lectures()
  sources = {}
  for name in os.listdir(os.path.join(REPO, "experiments")):
    if name.endswith(".py"):
      with open(os.path.join(REPO, "experiments", name)) as f:
        sources[name] = f.read()
  for exp in sorted(lectures.EXPERIMENTS):
    owners = [n for n, text in sources.items() if f'reproduce.run(only=["{exp}"])' in text]
    assert len(owners) == 1, (exp, owners)


# Two subprocesses (~10 s of CPU each). Run with `pytest -m slow`.
@pytest.mark.slow
def test_a_lecture_binary_has_the_reproduce_flags_and_defaults(tmp_path):
  """An unknown flag value fails as in `leeml-reproduce`; --help names --only's and --out's
  defaults (the lecture and report/<name>)."""
  binary = [sys.executable, os.path.join(REPO, "experiments", "lec08_classification.py")]
  proc = subprocess.run(binary + ["--help"], env=binary_env(), cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 1, proc.stderr
  assert "default: 'lec08'" in proc.stdout and "default: 'report/lec08'" in proc.stdout
  proc = subprocess.run(binary + ["--scale=huge", "--compilation_cache_dir="],
                        env=binary_env(), cwd=tmp_path, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 2 and "unknown scale 'huge'" in proc.stderr
