"""Population strategies: ms per member-step, compile seconds, peak RSS, on 1 and 8 devices.

    python benchmarks/population.py                       # 16 seeds, cnn + mlp + transformer, every strategy
    python benchmarks/population.py --models mlp --members 8 --steps 50,150

16 members (seeds) of a lec09-like CNN (channels 16, 32, 3x3, max pooling; 8x8 digits),
a lec08-like MLP (2 x 256, relu), Adam 2e-3, batch 64, and lec13's Transformer (2+2
layers, width 64, 4 heads, the reverse task n <= 8; `seq2seq.program`, batch 64), through
`leeml.population.run` with each strategy, on a 1-device mesh and on an 8-device mesh of
simulated host devices (this script sets XLA_FLAGS=--xla_force_host_platform_device_count=8
before importing jax; on XLA:CPU the 8 devices share the same cores).

Each cell runs the population for S1 steps (cold: compiles), again for S1 and for S2
steps (warm: `population.run` caches its compiled engine per program); scans run in
chunks of S1 steps. ms per member-step = (t(S2) - t(S1)) / (members x (S2 - S1)) of the
warm runs (evaluation and setup cancel out); compile seconds = cold - warm t(S1). Peak RSS is the
process's maximum resident set after the cell (monotonic over the cells, so only growth
is informative). Other processes sharing the CPU inflate every number alike: the
"load" column is the cores they used meanwhile (`leeml.benchmarking`). Until the engine
ran each device's members under shard_map, the 8-device CNN cells aborted in XLA:CPU's
collective rendezvous (40 s timeout, "only 7 of 8 threads arrived"): the vmapped CNN step
had 6 all-gathers (tests/test_population_devices.py).
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top

from leeml import benchmarking, parallel, population, seq2seq  # pylint: disable=g-import-not-at-top
from leeml import config as config_lib  # pylint: disable=g-import-not-at-top

MODELS = {
    "cnn": dict(name="cnn", channels=(16, 32), kernel_size=3, pool="max", dense_width=0),
    "mlp": dict(name="mlp", depth=2, width=256, activation="relu"),
}


def transformer_program(batch: int):
  """lec13's positions variant (configs/lec13_transformer_ablations.py, cpu scale)."""
  c = seq2seq.base_config()
  c.progress_bar = False
  c.task.update(dict(name="reverse", min_len=1, max_len=8, num_symbols=10, num_train=8192,
                     num_validation=64, num_test=512))
  c.model.update(dict(num_layers=2, num_heads=4, width=64, mlp_dim=128, dropout=0.0,
                      norm_position="pre", positions="sinusoidal", residual=True,
                      tie_embeddings=True, max_len=16))
  c.optimizer.update(dict(name="adam", learning_rate=2e-3, grad_clip_norm=0.0))
  c.schedule.update(dict(name="constant", warmup_steps=0))
  c.batch_size, c.num_train_steps = batch, 400
  return seq2seq.program(c)


def program(model: str, batch: int):
  if model == "transformer":
    return transformer_program(batch)
  c = config_lib.base_config()
  c.dataset = ml_collections.ConfigDict(dict(name="digits", image_size=8))
  c.model = ml_collections.ConfigDict(MODELS[model])
  c.batch_size, c.eval_batch_size = batch, 512
  c.optimizer.name, c.optimizer.learning_rate = "adam", 2e-3
  c.progress_bar = False
  return population.program_from_config(c)


def measure(prog, members, strategy, mesh, s1, s2):
  def timed(n):
    t0 = time.perf_counter()
    population.run(prog, members, num_steps=n, strategy=strategy, mesh=mesh,
                   scan_steps=s1, progress=False)
    return time.perf_counter() - t0

  (total0, idle0), (self0, _) = benchmarking.cpu_ticks(), benchmarking.self_usage()
  w0 = time.perf_counter()
  cold = timed(s1)  # compiles (the engine is cached per program: later runs do not)
  warm1, warm2 = timed(s1), timed(s2)
  wall = time.perf_counter() - w0
  (total1, idle1), (self1, _) = benchmarking.cpu_ticks(), benchmarking.self_usage()
  busy = ((total1 - total0) - (idle1 - idle0)) / os.sysconf("SC_CLK_TCK")
  per = (warm2 - warm1) / (len(members) * (s2 - s1))
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return per * 1e3, cold - warm1, rss, max(0.0, busy - (self1 - self0)) / wall


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", default="cnn,mlp,transformer")
  p.add_argument("--strategies", default=",".join(population.STRATEGIES))
  p.add_argument("--members", type=int, default=16)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", default="20,100", help="S1,S2 (see the docstring)")
  p.add_argument("--devices", default="1,8")
  args = p.parse_args()
  s1, s2 = (int(s) for s in args.steps.split(","))
  print(f"CPU: {benchmarking.cpu_name()}, {os.cpu_count()} cores; jax {jax.__version__}, "
        f"{jax.device_count()} devices ({jax.default_backend()}); {args.members} members, "
        f"batch {args.batch}, steps {s1} and {s2}")
  members = [population.Member(s) for s in range(args.members)]
  print("\n| model | devices | strategy | ms / member-step | compile s | peak RSS MiB | load |")
  print("|---|---:|---|---:|---:|---:|---:|")
  for model in args.models.split(","):
    prog = program(model, args.batch)
    for d in (int(x) for x in args.devices.split(",")):
      mesh = parallel.make_mesh(jax.devices()[:d])
      for strategy in args.strategies.split(","):
        ms, comp, rss, load = measure(prog, members, strategy, mesh, s1, s2)
        print(f"| {model} | {d} | {strategy} | {ms:.3f} | {comp:.1f} | {rss:.0f} | "
              f"{load:.2f} |", flush=True)
  print(f"\ndefault strategy on {jax.default_backend()}: " + ", ".join(
      f"{m} -> {population.default_strategy(m)}" for m in ("cnn", "mlp", "transformer")))


if __name__ == "__main__":
  main()
