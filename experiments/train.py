r"""Trains any leeml config: the generic binary of the training core.

  python experiments/train.py --config=configs/default.py:smoke --workdir=/tmp/w \
      [--config.optimizer.name=adam --config.optimizer.learning_rate=1e-3]

Rerunning with the same --workdir resumes from the latest checkpoint. For several hosts
(or several processes on one), pass --coordinator_address/--num_processes/--process_id
to every process; on CPU the cross-process collectives use gloo.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top

from leeml import config as config_lib, loop, runtime, train  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file[:preset].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and TensorBoard go here.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0; set to run multi-process.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index.")
_CPU_COLLECTIVES = flags.DEFINE_string("cpu_collectives", "gloo",
                                       "Cross-process collectives on CPU (gloo or mpi).")
_CACHE_DIR = flags.DEFINE_string("compilation_cache_dir", runtime.default_cache_dir(),
                                 "JAX persistent compilation cache; '' disables it.")
_CACHE_MIN_SECS = flags.DEFINE_float(
    "compilation_cache_min_compile_secs", 0.5,
    "Only compiles that took at least this many seconds are written to the cache.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  runtime.quiet_library_logs()
  runtime.enable_compilation_cache(_CACHE_DIR.value, _CACHE_MIN_SECS.value)
  if _COORDINATOR.value:
    runtime.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                   _CPU_COLLECTIVES.value)
  logging.info("JAX %s: process %d of %d, %d devices (%s)", jax.__version__, jax.process_index(),
               jax.process_count(), jax.device_count(), jax.default_backend())
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except config_lib.ConfigError as e:
    sys.exit(f"leeml: invalid config: {e}")
  except loop.NonFiniteError as e:
    sys.exit(f"leeml: {e}")


if __name__ == "__main__":
  app.run(main)
