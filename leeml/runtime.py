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
