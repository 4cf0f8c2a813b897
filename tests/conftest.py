"""Shared test helpers: tiny configs and a runner for the binaries in subprocesses."""

import os
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tests run on tiny shapes, where XLA's optimization passes cost more compile time than they
# save (the default run is ~40% faster without them). Set before jax is imported, so that
# subprocesses started by tests (they inherit the environment) compile the same way and
# bit-for-bit comparisons across processes hold. `LEEML_TEST_OPTIMIZED=1` runs the suite
# with XLA's default optimizations; tests about optimized programs use `optimized_compiles`.
#
# For the same reason XLA:CPU emits fusions with its older loop emitters rather than the
# fusion emitters (`--xla_cpu_use_fusion_emitters=false`): measured on 2 cores, the tests
# take ~39% less CPU. Results agree with the default emitters to float rounding (a jitted
# and an eager computation may then differ by an ulp: tests that compare them say so).
# XLA reads XLA_FLAGS when its backend starts, so this holds for the whole session and
# reaches the tests' subprocesses (`binary_env` keeps it); `optimized_compiles` switches
# XLA's optimizations back on, not the emitters. `LEEML_TEST_OPTIMIZED=1` runs the suite as
# users run leeml: default optimizations and emitters.
TEST_XLA_FLAGS = ""
if os.environ.get("LEEML_TEST_OPTIMIZED", "") not in ("1", "true"):
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")
  TEST_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false"
  if TEST_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()
sys.path.insert(0, REPO)  # so tests can import configs/

# Embedded datasets are prepared into a per-session temporary directory, never into the
# user's cache (subprocesses inherit it through the environment).
if "LEEML_DATA_DIR" not in os.environ:
  import tempfile  # pylint: disable=g-import-not-at-top
  os.environ["LEEML_DATA_DIR"] = tempfile.mkdtemp(prefix="leeml_test_data_")

from configs import default  # pylint: disable=g-import-not-at-top


def tiny_config(**overrides):
  """The smoke preset with the progress bar off, plus dotted-key overrides."""
  config = default.get_config("smoke")
  config.progress_bar = False
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def binary_env(device_count: int = 1) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"{TEST_XLA_FLAGS} --xla_force_host_platform_device_count={device_count}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO
  return env


def train_cmd(workdir: str, *flags: str, config: str = "configs/default.py:smoke") -> list[str]:
  return [sys.executable, os.path.join(REPO, "experiments", "train.py"), f"--config={config}",
          f"--workdir={workdir}", "--config.progress_bar=False", "--compilation_cache_dir=",
          *flags]


def run_train(workdir, *flags, device_count=1, timeout=300, check=True, **kw):
  proc = subprocess.run(train_cmd(str(workdir), *flags, **kw), env=binary_env(device_count),
                        cwd=REPO, capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  return proc


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "workdir")


def _most_optimizations_disabled(disabled: bool):
  import jax  # pylint: disable=g-import-not-at-top
  before = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", disabled)
  yield
  jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def quick_compiles():
  """Tiny shapes: XLA's optimizations cost more compile time than they save here (the
  default for the whole test session unless LEEML_TEST_OPTIMIZED=1, see above)."""
  yield from _most_optimizations_disabled(True)


@pytest.fixture
def optimized_compiles():
  """XLA's default optimizations, for tests about what the optimized program does."""
  yield from _most_optimizations_disabled(False)
