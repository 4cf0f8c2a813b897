"""Process-level setup for binaries: persistent compilation cache, multi-process start."""

import os

import jax
from absl import logging


def default_cache_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
  return os.path.join(base, "leeml", "jax_cache")


def enable_compilation_cache(cache_dir: str, min_compile_time_secs: float = 0.5) -> None:
  """Turns on JAX's persistent compilation cache, so a rerun skips XLA compiles that took
  longer than `min_compile_time_secs`. An empty `cache_dir` leaves it off."""
  if not cache_dir:
    return
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_secs)


def initialize_distributed(coordinator_address: str, num_processes: int, process_id: int,
                           cpu_collectives: str = "gloo") -> None:
  """Joins a multi-process run. On CPU, cross-process collectives need gloo (or mpi)."""
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  logging.info("process %d/%d: %d local of %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def quiet_library_logs() -> None:
  """Keeps orbax's per-save INFO chatter out of the console (its warnings still show)."""
  import logging as std_logging  # pylint: disable=g-import-not-at-top

  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(keep)


# XLA:CPU: let YNNPACK keep dots and reductions but not convolutions, which then use
# XLA's Eigen convolutions: 2x the CNN train step on CPU (jaxlib 0.10.2, BENCHMARKS.md);
# YNNPACK's backward-filter convolution was 4x slower than Eigen's.
_CPU_STEP_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}
_step_options: dict | None = None
# Programs that run once (a population's init, its epoch orders): LLVM at -O1 halves their
# compile (a 20-layer residual MLP's vmapped init: 20.5 s -> 9.9 s; the init's 37 threefry
# loops are most of it) and gives the same bits (`tests/test_runtime.py`); -O0 does not.
_ONCE_OPTIONS = {"xla_backend_optimization_level": 1}


def step_compiler_options() -> dict:
  """Compiler options for leeml's jitted steps: the CPU options above when this backend
  accepts them (the option is experimental: probed once, dropped if it does not compile),
  none elsewhere."""
  global _step_options
  if _step_options is None:
    _step_options = {}
    if jax.default_backend() == "cpu":
      try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_STEP_OPTIONS).lower(1.0).compile()
        _step_options = dict(_CPU_STEP_OPTIONS)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("XLA:CPU step options not accepted (%s); using defaults", e)
  return _step_options


def once_compiler_options() -> dict:
  """Compiler options for programs that run once or a few times per run (parameter init,
  epoch orders): the step options plus, on CPU, LLVM -O1 (a shorter compile, the same bits;
  measured in `_ONCE_OPTIONS`' comment). A step keeps `step_compiler_options()`: -O1 made
  the residual MLP's train step 1.5x slower."""
  options = step_compiler_options()
  if jax.default_backend() == "cpu":
    options = {**options, **_ONCE_OPTIONS}
  return options
