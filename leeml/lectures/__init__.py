"""The lecture experiments that `reproduce` runs, and what each returns for the report.

An experiment is `run(config, workdir) -> Section`: it trains and measures (over the seeds
its config lists), judges its claims (`leeml.claims`), saves its plots as PNG files under
`workdir`, and returns them with tables and notes. Experiments register themselves in
`EXPERIMENTS` by name (e.g. 'lec08'); `configs/<name>.py:<scale>` is their config.
"""

import dataclasses
import functools
import hashlib
import json
import os
from typing import Callable

from leeml.claims import Verdict


@dataclasses.dataclass(frozen=True)
class Figure:
  path: str     # a PNG file, absolute or relative to the experiment's workdir
  caption: str


@dataclasses.dataclass(frozen=True)
class Table:
  title: str
  header: tuple[str, ...]
  rows: tuple[tuple[str, ...], ...]


@dataclasses.dataclass
class Section:
  """One lecture's part of the report."""
  name: str                 # 'lec08'
  title: str                # 'Lecture 8: classification — cross-entropy vs MSE'
  command: str              # the exact command that reruns just this section
  verdicts: list[Verdict] = dataclasses.field(default_factory=list)
  figures: list[Figure] = dataclasses.field(default_factory=list)
  tables: list[Table] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Experiment:
  name: str
  title: str
  config_file: str          # relative to the repository root, e.g. 'configs/lec08.py'
  run: Callable[..., Section]


EXPERIMENTS: dict[str, Experiment] = {}


def source_digest(package_dir: str) -> str:
  """SHA-1 over every `*.py` file under `package_dir` (relative path and bytes, in sorted
  order): the same with or without a git checkout, e.g. for an installed package."""
  paths = []
  for root, dirs, files in os.walk(package_dir):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    paths.extend(os.path.join(root, f) for f in files if f.endswith(".py"))
  sha = hashlib.sha1()
  for path in sorted(paths):
    rel = os.path.relpath(path, package_dir).replace(os.sep, "/")
    with open(path, "rb") as f:
      content = f.read()
    sha.update(f"{rel}\0{len(content)}\0".encode())
    sha.update(content)
  return sha.hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
  """The version of the leeml code a run was trained by: `source_digest` of the installed
  leeml package (all `leeml/**/*.py`, ~0.7 MB), computed once per process."""
  return source_digest(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_dir(workdir: str, tag: str, run_config) -> str:
  """A directory per distinct training run (`workdir/runs/<tag>_seed<s>_<hash>`), the hash
  over the run's config and `code_version()`: a rerun reuses finished runs (they resume
  with nothing left to do), while a changed config or any change to leeml's source never
  resumes a stale run."""
  key = run_config.to_json(sort_keys=True) + "\n" + code_version()
  digest = hashlib.sha1(key.encode()).hexdigest()[:10]
  return os.path.join(workdir, "runs", f"{tag}_seed{run_config.seed}_{digest}")


def population_dir(workdir: str, tag: str, run_config, members) -> str:
  """A directory per distinct population (`workdir/runs/<tag>_seeds<...>_<hash>`), the
  hash over its config, its members (`population.Member`: seed, settings, arm) and
  `code_version()`: a rerun reuses a finished population (it resumes with nothing left to
  train); a changed config, member or leeml source never resumes a stale one."""
  settings = [m.settings() for m in members]
  key = "\n".join([run_config.to_json(sort_keys=True), json.dumps(settings, sort_keys=True),
                   code_version()])
  digest = hashlib.sha1(key.encode()).hexdigest()[:10]
  seeds = "-".join(str(s) for s in sorted({int(m.seed) for m in members}))
  return os.path.join(workdir, "runs", f"{tag}_seeds{seeds}_{digest}")


def register(experiment: Experiment) -> Experiment:
  if experiment.name in EXPERIMENTS:
    raise ValueError(f"experiment {experiment.name!r} is registered twice")
  EXPERIMENTS[experiment.name] = experiment
  return experiment


def get_experiment(name: str) -> Experiment:
  if name not in EXPERIMENTS:
    raise ValueError(f"experiment {name!r} is not one of: {', '.join(sorted(EXPERIMENTS))}")
  return EXPERIMENTS[name]


def load_all() -> dict[str, Experiment]:
  """Imports every `lecNN*` module of this package (each registers itself)."""
  import importlib  # pylint: disable=g-import-not-at-top
  import pkgutil  # pylint: disable=g-import-not-at-top
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if info.name.startswith("lec"):
      importlib.import_module(f"{__name__}.{info.name}")
  return EXPERIMENTS
