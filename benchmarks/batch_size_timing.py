r"""Time per update and per epoch vs batch size (lecture 5), on the current device.

  python benchmarks/batch_size_timing.py                      # lecture 5's cpu setting
  python benchmarks/batch_size_timing.py --num-examples=60000 --width=256

One process measures every batch size (1, 2, 4, ... and the full batch N): an MLP
(inputs of `--input-dim` features, `--depth` hidden layers of `--width` ReLU units, 10
classes) on resident random data, one jitted plain-SGD update per Python call (as a
training loop runs it), compilation and `--warmup` updates excluded. Each measurement
runs k updates (k calibrated per batch so it lasts ≥ `--min-seconds`) and blocks on the
result; rounds are interleaved over batch sizes, `--repeats` of them, and the median is
reported with the min–max over rounds. s/epoch = median ms/update × ⌈N / B⌉ (derived,
not timed separately); examples/s = B / (ms/update). The measurement code is
`leeml.lectures.lec05_batch_size.time_updates`, the same one experiment
`lec05_batch_size` uses.
"""

import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top

from leeml.lectures import lec05_batch_size as lec05  # pylint: disable=g-import-not-at-top


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or "?"


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--num-examples", type=int, default=4000, help="N: epoch size, full batch")
  p.add_argument("--input-dim", type=int, default=40)
  p.add_argument("--depth", type=int, default=2)
  p.add_argument("--width", type=int, default=64)
  p.add_argument("--repeats", type=int, default=7)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--min-seconds", type=float, default=0.03)
  args = p.parse_args()
  n = args.num_examples
  sizes = [2 ** k for k in range(40) if 2 ** k < n] + [n]
  cfg = ml_collections.ConfigDict(dict(
      input_dim=args.input_dim, num_classes=10, num_examples=n,
      model=dict(name="mlp", depth=args.depth, width=args.width, activation="relu",
                 residual=False, norm="none"),
      batch_sizes=tuple(sizes), warmup=args.warmup, repeats=args.repeats,
      min_seconds=args.min_seconds, learning_rate=0.01))
  dev = jax.devices()[0]
  print(f"device: {dev.platform} ({dev.device_kind}); host CPU: {_cpu_name()}, "
        f"{os.cpu_count()} logical cores; jax {jax.__version__}")
  w = args.width
  print(f"MLP {args.input_dim}-" + "-".join([str(w)] * args.depth) + "-10, plain SGD, "
        f"float32, N = {n}; median of {args.repeats} interleaved rounds\n")
  timing = lec05.time_updates(cfg, progress=False)
  print("| batch | ms/update | min–max ms over rounds | s/epoch | examples/s |")
  print("|---:|---:|---:|---:|---:|")
  for r in timing:
    print(f"| {r['batch']} | {r['ms_update']:.4g} | {min(r['ms_rounds']):.3g}–"
          f"{max(r['ms_rounds']):.3g} | {r['s_epoch']:.4g} | {r['examples_per_s']:.4g} |")
  b_par = lec05.parallel_batch(timing, 2.0)
  t1 = timing[0]["ms_update"]
  best = max(timing, key=lambda r: r["examples_per_s"])
  print(f"\nlargest batch with ms/update ≤ 2 × batch 1's: {b_par}; "
        f"s/epoch(B=1) / s/epoch(B={n}) = {timing[0]['s_epoch'] / timing[-1]['s_epoch']:.1f}; "
        f"peak throughput at B={best['batch']} ({best['examples_per_s']:.3g} examples/s, "
        f"{best['ms_update'] / t1:.1f}× batch 1's time per update)")


if __name__ == "__main__":
  main()
