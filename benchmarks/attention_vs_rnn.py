"""Self-attention vs RNN on this device: forward+backward time per batch vs sequence length.

    python benchmarks/attention_vs_rnn.py                       # L = 16 … 1024, batch 16
    python benchmarks/attention_vs_rnn.py --lengths 16,256 --batch 32 --target-params 20000

Models (leeml/models/sequence.py): a simple RNN, an LSTM, a GRU (flax `nn.RNN` over
SimpleCell / LSTMCell / GRUCell) and a one-layer self-attention encoder
(leeml/models/attention.py), each sized to --target-params parameters, on the recall-first-
token task's tokens (8 values, 8 distractor ids). One process measures everything:

* table 1 -- fwd+bwd (the jitted gradient of the cross-entropy) ms per batch, median of
  --repeats blocked calls after compilation and --warmup calls, for every model at every L
  (the models alternate at each L, so contention from other processes hits them alike);
  the sequential steps of one forward pass read from its jaxpr (RNN: L scan iterations,
  attention: 1); and the L at which the fastest model changes;
* table 2 -- self-attention's time and compiled temporary memory (XLA `memory_analysis()`
  `temp_size_in_bytes`: the buffers the gradient computation allocates besides its
  arguments and outputs) vs L, with the log-log slopes between consecutive lengths
  (2 = quadratic).

The library code is leeml/lectures/lec11_rnn_vs_attention.py (experiment
`lec11_rnn_vs_attention` runs the same measurement at its config's lengths).
"""

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from leeml.lectures import lec11_rnn_vs_attention as lec11  # noqa: E402


def _config(args) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.kinds = tuple(args.kinds.split(","))
  c.target_params = args.target_params
  c.attention = ml_collections.ConfigDict(dict(num_layers=1, num_heads=2, mlp_ratio=2,
                                               positions="sinusoidal"))
  c.task = ml_collections.ConfigDict(dict(num_values=8, num_distractors=8))
  c.timing = ml_collections.ConfigDict(dict(
      lengths=tuple(int(x) for x in args.lengths.split(",")), batch_size=args.batch,
      warmup=args.warmup, repeats=args.repeats))
  return c


def _load() -> float:
  return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--lengths", default="16,32,64,128,256,512,1024")
  p.add_argument("--kinds", default="simple,lstm,gru,attention")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--target-params", type=int, default=5000)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--repeats", type=int, default=7)
  args = p.parse_args()
  cfg = _config(args)
  lengths = list(cfg.timing.lengths)

  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
        f"jax {jax.__version__}; load average at start {_load():.1f}")
  models = lec11.build_models(cfg, lengths[0])
  print("models: " + ", ".join(f"{lec11.LABEL[k]} width {s.width} ({s.num_params:,} params)"
                               for k, s in models.items()))
  t0 = time.perf_counter()
  timing = lec11.parallel_table(cfg, lambda L: lec11.build_models(cfg, L))
  seconds = time.perf_counter() - t0

  print(f"\nTable 1. forward+backward ms per batch (batch {args.batch}, median of "
        f"{args.repeats}, (min) in parentheses), sequential steps in brackets")
  head = ["L"] + [lec11.LABEL[k] for k in cfg.kinds] + ["fastest"]
  print("| " + " | ".join(head) + " |")
  print("|" + "|".join(["---:"] * (len(head) - 1) + ["---"]) + "|")
  for L in lengths:
    cells = [f"{timing[k][L]['ms']:.2f} ({min(timing[k][L]['ms_all']):.2f}) "
             f"[{timing[k][L]['sequential_steps']}]" for k in cfg.kinds]
    fastest = min(cfg.kinds, key=lambda k: timing[k][L]["ms"])
    print(f"| {L} | " + " | ".join(cells) + f" | {lec11.LABEL[fastest]} |")
  if "attention" in cfg.kinds:
    for k in cfg.kinds:
      if k != "attention":
        print("  " + lec11.crossover(timing, k, lengths))

    print(f"\nTable 2. self-attention cost vs L (batch {args.batch})")
    print("| L | fwd+bwd ms | slope (time) | compiled temp MiB | slope (memory) |")
    print("|---:|---:|---:|---:|---:|")
    att = timing["attention"]
    for i, L in enumerate(lengths):
      ms, mem = att[L]["ms"], att[L]["temp_bytes"]
      if i:
        prev = lengths[i - 1]
        s_t = np.log(ms / att[prev]["ms"]) / np.log(L / prev)
        s_m = np.log(mem / att[prev]["temp_bytes"]) / np.log(L / prev)
        slopes = (f"{s_t:.2f}", f"{s_m:.2f}")
      else:
        slopes = ("", "")
      print(f"| {L} | {ms:.2f} | {slopes[0]} | {mem / 2**20:.2f} | {slopes[1]} |")
    if len(lengths) >= 3:
      top = lengths[-3]
      s_t = lec11.loglog_slope(lengths, [att[L]["ms"] for L in lengths], top)
      s_m = lec11.loglog_slope(lengths, [att[L]["temp_bytes"] for L in lengths], top)
      print(f"  least-squares slope over L ≥ {top}: time {s_t:.2f}, memory {s_m:.2f}")
    print("\nCompiled temp MiB of the RNNs (linear in L) for contrast: " + "; ".join(
        f"{lec11.LABEL[k]} " + ", ".join(f"{timing[k][L]['temp_bytes'] / 2**20:.2f}"
                                        for L in lengths)
        for k in cfg.kinds if k != "attention"))
  print(f"\nmeasured in {seconds:.0f} s (compiles included); load average now {_load():.1f}")


if __name__ == "__main__":
  main()
