r"""The main job: runs the registered lecture experiments and writes the report.

  python experiments/reproduce.py [--scale=cpu] [--only=lec08,lec11] [--out=report] [--strict]
  leeml-reproduce ...            # the same, as the installed console script

Every experiment runs with `get_config(scale)` of its config file, in its own working
directory `<workdir>/<scale>/<name>` (so runs at different scales never resume from each
other's checkpoints). An experiment that raises becomes a FAIL section holding the error;
the others still run. The report (`<out>/index.html`, `<out>/REPORT.md`, `<out>/figures/`)
is rewritten after each experiment, so a long run shows its progress there too; its table
"Where the time went" splits each experiment's wall time into compile / train / eval /
other (`leeml.timing`).

Exit status: 0 when it ran, FAIL verdicts included; with --strict, 1 when any claim FAILs;
2 when it could not start (unknown scale or experiment, missing or broken config file).
"""

import dataclasses
import datetime
import importlib.util
import os
import platform
import re
import shlex
import sys
import time
import traceback
from typing import Any, Sequence

import jax
from absl import app, flags, logging
from tqdm import tqdm

from leeml import lectures, report, runtime, timing
from leeml.claims import FAIL, Claim, Evidence, Verdict
from leeml.lectures import Experiment, Section

SCALES = ("smoke", "cpu", "full")
# The checkout's root: configs/ lives here, and config files import `configs.default`.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "leeml-reproduce"
_TRACEBACK_LINES = 60

_SCALE = flags.DEFINE_string(
    "scale", "cpu", "Size of every run: smoke (seconds; for tests), cpu (minutes on 2 CPU "
    "cores) or full (accelerators).")
_ONLY = flags.DEFINE_list("only", [], "Experiments to run, comma-separated (e.g. lec08); "
                          "default: every registered one.")
_OUT = flags.DEFINE_string("out", "report", "Report directory: index.html, REPORT.md, figures/.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiments run in <workdir>/<scale>/<name>; "
                               "default: <out>/runs.")
_STRICT = flags.DEFINE_bool("strict", False, "Exit with status 1 when any claim FAILs.")
_CACHE_DIR = flags.DEFINE_string("compilation_cache_dir", runtime.default_cache_dir(),
                                 "JAX persistent compilation cache; '' disables it.")


class ReproduceError(Exception):
  """The job cannot start (bad scale or name, missing or broken config); one line."""


def rerun_command(name: str, scale: str) -> str:
  """The canonical command that reruns one experiment (works from a checkout, no install)."""
  return f"python experiments/reproduce.py --only={name} --scale={scale}"


def load_lectures() -> None:
  """Imports every lecture module, so that each registers its experiment."""
  if hasattr(lectures, "load_all"):
    lectures.load_all()


def select(names: Sequence[str] | None) -> list[Experiment]:
  """The experiments to run, in name order: `names` (validated) or every registered one."""
  load_lectures()
  registered = lectures.EXPERIMENTS
  valid = ", ".join(sorted(registered)) or "(none)"
  wanted = [n.strip() for n in (names or ()) if n.strip()]
  unknown = [n for n in wanted if n not in registered]
  if unknown:
    raise ReproduceError(f"unknown experiment {', '.join(map(repr, unknown))}; "
                         f"registered: {valid}")
  if not registered:
    raise ReproduceError("no experiments are registered")
  return [registered[n] for n in sorted(set(wanted) or registered)]


def load_config(experiment: Experiment, scale: str) -> Any:
  """`get_config(scale)` of the experiment's config file (absolute, or relative to the
  repository root). Any problem is one ReproduceError naming the file."""
  path = experiment.config_file
  if not os.path.isabs(path):
    path = os.path.join(REPO_ROOT, path)
  where = f"{experiment.name}: config {experiment.config_file}"
  if not os.path.isfile(path):
    raise ReproduceError(f"{where}: no such file ({path})")
  if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # so that a config can `from configs import default`
  module_name = "_leeml_config_" + re.sub(r"\W", "_", experiment.name)
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ReproduceError(f"{where}: importing it raised {type(e).__name__}: {e}") from e
  if not callable(getattr(module, "get_config", None)):
    raise ReproduceError(f"{where}: defines no get_config(scale)")
  try:
    return module.get_config(scale)
  except Exception as e:  # pylint: disable=broad-except
    raise ReproduceError(f"{where}: get_config({scale!r}) raised {type(e).__name__}: {e}") from e


def crashed_section(experiment: Experiment, error: BaseException, tb: str) -> Section:
  """The section of an experiment that raised: one FAIL verdict with the error."""
  claim = Claim(id=f"{experiment.name}.runs",
                statement=f"The {experiment.name} experiment runs to completion",
                source="leeml.reproduce",
                threshold="run(config, workdir) returns a Section without raising",
                check=lambda _: Evidence(False, {}, "the experiment crashed"))
  verdict = Verdict(claim, FAIL, {}, f"experiment crashed: {type(error).__name__}: {error}")
  lines = tb.rstrip("\n").splitlines()
  if len(lines) > _TRACEBACK_LINES:
    lines = ["... (traceback shortened)"] + lines[-_TRACEBACK_LINES:]
  return Section(name=experiment.name, title=experiment.title, command="", verdicts=[verdict],
                 notes=["The experiment raised; no claim of it was judged. Traceback:\n"
                        + "\n".join(lines)])


def run_experiment(experiment: Experiment, config: Any, scale: str,
                   workdir: str) -> tuple[Section, dict[str, float]]:
  """Runs one experiment; never raises (an exception becomes a crashed section). Returns
  the section and its wall time split into `leeml.timing.PARTS` (seconds)."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  start = time.perf_counter()
  with timing.record() as rec:
    try:
      section = experiment.run(config, workdir=workdir)
      if not isinstance(section, Section):
        raise TypeError(f"run() returned {type(section).__name__}, not a Section")
    except Exception as e:  # pylint: disable=broad-except
      section = crashed_section(experiment, e, traceback.format_exc())
  if not section.seconds:
    section.seconds = time.perf_counter() - start
  if not section.command:
    section.command = rerun_command(experiment.name, scale)
  # Figure paths may be relative to the experiment's workdir; the report needs real paths.
  section.figures = [dataclasses.replace(f, path=os.path.join(workdir, f.path))
                     for f in section.figures]
  return section, dict(rec.seconds)


def run_metadata(scale: str, *, started: float, seconds: float, status: str,
                 command: str | None = None) -> dict[str, str]:
  """What the report says about the run: when, what, where, on which code and hardware."""
  devices = jax.devices()
  kinds = sorted({d.device_kind for d in devices})
  meta = {
      "status": status,
      "date": datetime.datetime.fromtimestamp(started).astimezone().isoformat(
          timespec="seconds"),
      "scale": scale,
      "total time": report.format_seconds(seconds),
      "git commit": report.git_commit(REPO_ROOT) or "unknown (not a git checkout)",
      "jax": f"{jax.__version__} (python {platform.python_version()})",
      "devices": f"{jax.default_backend()}: {len(devices)} × {', '.join(kinds)}"
                 + (f", {jax.process_count()} processes" if jax.process_count() > 1 else ""),
  }
  if command:
    meta["command"] = command
  return meta


def reproduce(names: Sequence[str] | None, scale: str, out_dir: str, workdir: str, *,
              command: str | None = None) -> list[Section]:
  """Runs the experiments (`names`, or all) at `scale`, writes the report to `out_dir`.

  Everything that can stop the job (scale, names, config files) is checked before the
  first experiment runs, and raises ReproduceError.
  """
  if scale not in SCALES:
    raise ReproduceError(f"unknown scale {scale!r}; one of: {', '.join(SCALES)}")
  experiments = select(names)
  configs = {e.name: load_config(e, scale) for e in experiments}
  started, t0 = time.time(), time.perf_counter()
  sections, timings = [], {}
  bar = tqdm(experiments, desc="reproduce", unit="exp", file=sys.stderr, dynamic_ncols=True)
  for exp in bar:
    bar.set_postfix_str(exp.name)
    section, timings[exp.name] = run_experiment(exp, configs[exp.name], scale,
                                                os.path.join(workdir, scale, exp.name))
    sections.append(section)
    c = report.count([section])
    bar.write(f"{exp.name}: {c.passed} PASS, {c.failed} FAIL in "
              f"{report.format_seconds(section.seconds)}", file=sys.stderr)
    done = len(sections) == len(experiments)
    status = ("complete" if done else f"incomplete: {len(sections)} of {len(experiments)} "
              "experiments done (still running, or interrupted)")
    meta = run_metadata(scale, started=started, seconds=time.perf_counter() - t0,
                        status=status, command=command)
    report.write_report(sections, out_dir, scale=scale, meta=meta, timings=timings)
  bar.close()
  return sections


def summary_text(sections: Sequence[Section], out_dir: str) -> str:
  """The console summary: a line per section, every FAIL with its numbers, the report."""
  width = max([len("section")] + [len(s.name) for s in sections])
  lines = [f"{'section':<{width}}  claims  PASS  FAIL  time"]
  for s in sections:
    c = report.count([s])
    lines.append(f"{s.name:<{width}}  {c.claims:>6}  {c.passed:>4}  {c.failed:>4}  "
                 f"{report.format_seconds(s.seconds)}")
  c = report.count(sections)
  lines.append(f"{'total':<{width}}  {c.claims:>6}  {c.passed:>4}  {c.failed:>4}  "
               f"{report.format_seconds(sum(s.seconds for s in sections))}")
  for s in sections:
    for v in s.verdicts:
      if v.verdict == FAIL:
        lines.append(f"FAIL {v.claim.id}: {v.numbers_text() or v.detail}")
  lines.append(f"report: {os.path.join(out_dir, 'index.html')} "
               f"(and {os.path.join(out_dir, 'REPORT.md')})")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
  """The absl main of `experiments/reproduce.py` and `leeml-reproduce`; flags are parsed."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  runtime.quiet_library_logs()
  if not flags.FLAGS["verbosity"].present:  # progress bars and the summary, not INFO chatter
    logging.set_verbosity(logging.WARNING)
  # Seeds of one experiment compile identical programs: cache every one of them.
  runtime.enable_compilation_cache(_CACHE_DIR.value, min_compile_time_secs=0.0)
  out_dir = _OUT.value
  workdir = _WORKDIR.value or os.path.join(out_dir, "runs")
  try:
    sections = reproduce(_ONLY.value, _SCALE.value, out_dir, workdir,
                         command=shlex.join(sys.argv))
  except ReproduceError as e:
    print(f"{PROG}: {e}", file=sys.stderr)
    return 2
  print(summary_text(sections, out_dir))
  return 1 if _STRICT.value and report.count(sections).failed else 0


def run(only: Sequence[str] | None = None) -> None:
  """Entry of `leeml-reproduce` and `experiments/reproduce.py`: parses flags, runs main.

  A lecture's own binary (`experiments/lec08_classification.py`) calls `run(only=[...])`:
  the same flags, with --only defaulting to its experiments and --out to report/<name>.
  """
  if only:
    flags.FLAGS.set_default("only", list(only))
    flags.FLAGS.set_default("out", os.path.join("report", "_".join(only)))
  # absl's --help lists the main module's flags and docstring; ours live in this module.
  for holder in (_SCALE, _ONLY, _OUT, _WORKDIR, _STRICT, _CACHE_DIR):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[holder.name])
  main_module = sys.modules.get("__main__")
  if main_module is not None and not main_module.__doc__:
    main_module.__doc__ = __doc__  # the console script's generated wrapper has none
  app.run(main)
