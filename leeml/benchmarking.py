"""Timing helpers shared by the scripts under benchmarks/ (CPU side-by-side comparisons).

A benchmark there runs its variants in interleaved rounds in one process and reports
medians; these helpers time one measurement and say how much of the CPU *other*
processes used meanwhile (from /proc/stat minus this process's own rusage), so a round
that shared the cores can be re-measured or reported as loaded.
"""

import ctypes
import os
import platform
import resource
import time


def cpu_ticks() -> tuple[int, int]:
  """(total, idle + iowait) jiffies of all CPUs since boot (Linux /proc/stat)."""
  with open("/proc/stat", encoding="ascii") as f:
    v = [int(t) for t in f.readline().split()[1:]]
  return sum(v[:8]), v[3] + v[4]


def self_usage() -> tuple[float, int]:
  """(user + system CPU seconds, minor page faults) of this process so far."""
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime, r.ru_minflt


def timed(run, n: int) -> tuple[float, float, float]:
  """Runs `run(n)` once: (calls/s, cores other processes used meanwhile, page faults
  per call). `run` must block until its work is done (e.g. `jax.block_until_ready`)."""
  hz = os.sysconf("SC_CLK_TCK")
  (t0, i0), (s0, f0) = cpu_ticks(), self_usage()
  w0 = time.perf_counter()
  run(n)
  wall = time.perf_counter() - w0
  (t1, i1), (s1, f1) = cpu_ticks(), self_usage()
  busy = ((t1 - t0) - (i1 - i0)) / hz
  return n / wall, max(0.0, busy - (s1 - s0)) / wall, (f1 - f0) / n


def tune_malloc(threshold: int = 256 * 2**20) -> str:
  """Keeps freed buffers up to `threshold` bytes in the heap (no mmap/munmap, no trim),
  for both frameworks alike; returns a line saying what was set (or that it failed)."""
  libc = ctypes.CDLL("libc.so.6")
  m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
  ok = libc.mallopt(m_mmap_threshold, threshold) and libc.mallopt(m_trim_threshold, 2 * threshold)
  text = f"mallopt(M_MMAP_THRESHOLD={threshold >> 20} MiB, M_TRIM_THRESHOLD={threshold >> 19} MiB)"
  return text if ok else text + " FAILED"


def cpu_name() -> str:
  """The CPU model name from /proc/cpuinfo (or platform's guess)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or "?"
