"""Train-step throughput: leeml's MLP and CNN vs a minimal jax step and PyTorch eager, on CPU.

    python benchmarks/step_throughput.py                 # both models, batch 128, float32
    python benchmarks/step_throughput.py --models cnn --steps 40 --repeats 7
    python benchmarks/step_throughput.py --quick         # a few short rounds (~1 min)

For each model, one process measures (same batch, same float32 data, same seed):

* leeml        -- the real train step: `leeml.steps.make_train_step(model, tx, loss)` with
                  `tx = leeml.optim.make_optimizer(...)` (momentum 0.9, lr 0.01), a
                  `TrainState`, jitted as `jax.jit(step, donate_argnums=0)`, with the
                  grad/param/update norms on every step (`diagnostics_every=1`);
* leeml-log    -- the same step with the norms on log steps only
                  (`diagnostics_every=log_every_steps`, 50 as in the default config, and
                  the last of 1000 steps): one compiled step, a `lax.cond` picks the kind;
* plain-jax    -- the same flax model in a minimal step: value_and_grad + optax.sgd
                  (momentum 0.9) + apply_updates; no metrics, no NaN guard;
* torch eager  -- the same architecture in PyTorch (NCHW), CrossEntropyLoss, torch.optim.SGD
                  (only when torch, the `bench` extra, is installed);
* leeml+opts   -- the leeml step again, jitted with `--compiler-options` (default: the
                  XLA:CPU options proposed in BENCHMARKS.md, which route convolutions to
                  XLA's Eigen kernels instead of YNNPACK). Not what leeml does today.

Every step trains on the same device-resident batch (input pipeline not measured).
Compilation and `--warmup` steps are excluded. A measurement runs `--steps` steps and
then blocks (`block_until_ready` for JAX; torch eager is synchronous); the variants are
measured in interleaved rounds, `--repeats` times each, and the median steps/s is
reported, with the median over rounds of leeml/plain-jax within the same round (robust
to load that changes from round to round). Because other processes can share the CPU,
each round also records how many cores *other* processes used meanwhile (from
/proc/stat); the busiest rounds are re-measured (up to --retries times) and the worst
remaining value is printed.

Allocator: XLA:CPU allocates each step's temporary buffers, and torch eager each
activation, with glibc malloc; with glibc's default (dynamic) mmap threshold, buffers of
several MB are mmap'ed and unmapped again, so each step page-faults tens of MB back in
(~9k faults/step for either framework's CNN step on this machine, ~20% of its time), and
how much depends on the process' allocation history. `--malloc tuned` (default) raises
the mmap and trim thresholds with mallopt() at start-up, for both frameworks, so neither
pays for page faults and the numbers do not depend on what ran before; `--malloc default`
leaves glibc alone.

`--profile DIR` also writes a jax.profiler trace of the leeml CNN step and prints the
XLA ops by time; `--dump-hlo DIR` writes its optimized HLO.
"""

import argparse
import collections
import glob
import os
import re
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
try:  # the `bench` extra; without it the torch columns are left out
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:
  torch = None

from leeml import config as leeml_config
from leeml import benchmarking, losses, optim, runtime, steps
from leeml.models import CNN, MLP
from leeml.train_state import TrainState

# XLA:CPU options for the "leeml+opts" column: YNNPACK keeps dots and reductions but not
# convolutions, which fall back to XLA's Eigen convolution (see BENCHMARKS.md).
PROPOSED_CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}

DEFAULT_STEPS = {"mlp": 200, "cnn": 30, "cnn_flax": 15}
QUICK_STEPS = {"mlp": 50, "cnn": 8, "cnn_flax": 4}
NUM_TRAIN_STEPS = 1000  # the schedule's horizon; also the "last step" of leeml-log


# ----------------------------------------------------------------------------- models

class FlaxReferenceCNN(nn.Module):
  """The CNN written with stock flax layers (nn.Conv, nn.max_pool): the pre-optimization
  formulation, for comparison with leeml's CNN (`--models cnn_flax`)."""
  num_outputs: int

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    for i, c in enumerate((32, 64)):
      x = nn.Conv(c, (3, 3), padding="SAME", name=f"conv_{i}")(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2), padding="VALID")
    x = nn.relu(nn.Dense(256, name="dense")(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_outputs, name="head")(x)


def jax_model(name):
  if name == "mlp":
    return MLP(num_outputs=10, depth=3, width=512, activation="relu")
  if name == "cnn":
    return CNN(num_outputs=10, channels=(32, 64), kernel_size=3, pool="max", dense_width=256)
  if name == "cnn_flax":
    return FlaxReferenceCNN(num_outputs=10)
  raise ValueError(f"unknown model {name!r}")


def torch_model(name):
  tnn = torch.nn
  if name == "mlp":
    return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 512),
                          tnn.ReLU(), tnn.Linear(512, 512), tnn.ReLU(), tnn.Linear(512, 10))
  return tnn.Sequential(  # cnn, cnn_flax
      tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
      tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
      tnn.Flatten(), tnn.Linear(7 * 7 * 64, 256), tnn.ReLU(), tnn.Linear(256, 10))


# ----------------------------------------------------------------------------- steps

def leeml_runner(model, batch, compiler_options=None, diagnostics_every=1):
  cfg = leeml_config.base_config()
  cfg.optimizer.name = "momentum"
  cfg.optimizer.learning_rate = 0.01
  cfg.optimizer.momentum = 0.9
  tx = optim.make_optimizer(cfg.optimizer, cfg.schedule, num_train_steps=NUM_TRAIN_STEPS)
  variables = model.init(jax.random.key(0), batch["inputs"])
  state = TrainState.create(variables, tx)
  step = steps.make_train_step(model, tx, losses.get_loss("softmax_cross_entropy"),
                               diagnostics_every=diagnostics_every,
                               num_train_steps=NUM_TRAIN_STEPS)
  # As leeml.train jits it: with leeml.runtime.step_compiler_options() (on CPU: Eigen convs).
  options = compiler_options if compiler_options else runtime.step_compiler_options()
  step = jax.jit(step, donate_argnums=0, compiler_options=options)
  rng = jax.random.key(1)
  box = [state]

  def run(n):
    s = box[0]
    for _ in range(n):
      s, _ = step(s, batch, rng)
    jax.block_until_ready(s)
    box[0] = s

  return run, step, box


def plain_runner(model, batch):
  tx = optax.sgd(0.01, momentum=0.9)
  params = model.init(jax.random.key(0), batch["inputs"])["params"]

  def step(carry, x, y):
    params, opt_state = carry

    def loss_fn(p):
      logits = model.apply({"params": p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  step = jax.jit(step, donate_argnums=0)
  box = [(params, tx.init(params))]

  def run(n):
    c = box[0]
    for _ in range(n):
      c, _ = step(c, batch["inputs"], batch["targets"])
    jax.block_until_ready(c)
    box[0] = c

  return run


def torch_runner(name, x, y):
  torch.manual_seed(0)
  model = torch_model(name)
  opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
  loss_fn = torch.nn.CrossEntropyLoss()
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
  yt = torch.from_numpy(y.astype(np.int64))

  def run(n):
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss_fn(model(xt), yt).backward()
      opt.step()

  return run


# ----------------------------------------------------------------------------- timing

def measure(runners, n, repeats, retries, busy_limit=0.15):
  """Interleaved rounds; {name: (median steps/s, max foreign load, max faults/step, rates)};
  rates[i] is round i's (a re-measured round keeps its index)."""
  samples = {k: [] for k in runners}
  for _ in range(repeats):
    for k, run in runners.items():
      time.sleep(0.2)  # let the other framework's worker threads go idle
      samples[k].append(benchmarking.timed(run, n))
  for k, run in runners.items():  # re-measure rounds that shared the CPU
    for _ in range(retries):
      worst = max(range(repeats), key=lambda i: samples[k][i][1])
      if samples[k][worst][1] < busy_limit:
        break
      time.sleep(1.0)
      samples[k][worst] = benchmarking.timed(run, n)
  return {k: (statistics.median(r for r, _, _ in v), max(l for _, l, _ in v),
              max(f for _, _, f in v), [r for r, _, _ in v]) for k, v in samples.items()}


# ----------------------------------------------------------------------------- profile

def _describe_op(hlo, name):
  """'shape opcode [jax op name]' of HLO instruction `name` in the module text `hlo`."""
  m = re.search(r"\n\s*(?:ROOT )?%" + re.escape(name) + r" = (\S+) ([\w-]+)\(([^\n]*)", hlo)
  if not m:
    return ""
  op = re.search(r'op_name="([^"]*)"', m.group(3))
  return f"{m.group(1)} {m.group(2)} {op.group(1)[-70:] if op else ''}"


def profile_step(run, outdir, hlo, n=10, top=25):
  """jax.profiler trace of n steps; prints XLA ops by total time per step."""
  from jax.profiler import ProfileData  # pylint: disable=g-import-not-at-top
  with jax.profiler.trace(outdir):
    run(n)
  path = sorted(glob.glob(os.path.join(outdir, "**", "*.xplane.pb"), recursive=True))[-1]
  agg = collections.defaultdict(float)
  for plane in ProfileData.from_file(path).planes:
    for line in plane.lines:
      if not line.name.startswith("tf_XLA"):
        continue
      for ev in line.events:
        if not ev.name.startswith(("ThunkExecutor", "end:", "SlinkyThreadPool")):
          agg[ev.name] += ev.duration_ns / 1e6 / n
  print(f"\nXLA ops of the leeml CNN step by time (ms/step, summed over threads; Eigen "
        f"convolutions run asynchronously and are under-counted); trace: {path}")
  for name, ms in sorted(agg.items(), key=lambda kv: -kv[1])[:top]:
    print(f"  {ms:7.3f}  {name:26s} {_describe_op(hlo, name)}")


# ----------------------------------------------------------------------------- main

def machine_info():
  cpu = benchmarking.cpu_name()
  mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  torch_info = (f"torch {torch.__version__} (threads={torch.get_num_threads()})" if torch
                else "torch not installed (no torch columns)")
  return (f"CPU: {cpu}, {os.cpu_count()} logical cores, {mem:.0f} GiB RAM, load average "
          f"{' '.join(f'{l:.1f}' for l in os.getloadavg())} (1/5/15 min)\n"
          f"jax {jax.__version__} ({jax.devices()[0].device_kind}, devices={jax.devices()}), "
          f"{torch_info}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def paired_ratio(res, name, base="plain"):
  """Median over rounds of name/base steps/s measured in the same round."""
  return statistics.median(a / b for a, b in zip(res[name][3], res[base][3]))


def parse_options(text):
  if text in ("", "none"):
    return None
  if text == "proposed":
    return dict(PROPOSED_CPU_OPTIONS)
  return dict(kv.split("=", 1) for kv in text.split(","))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--models", default="mlp,cnn", help="comma list of: mlp, cnn, cnn_flax")
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--steps", type=int, default=0,
                 help=f"steps per measurement (0: per model, {DEFAULT_STEPS})")
  p.add_argument("--repeats", type=int, default=7)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--retries", type=int, default=3,
                 help="re-measurements of rounds during which other processes were busy")
  p.add_argument("--quick", action="store_true",
                 help=f"short rounds ({QUICK_STEPS} steps), 3 repeats, no retries, no "
                      "leeml+opts column (overrides --steps/--repeats/--retries)")
  p.add_argument("--log-every", type=int, default=leeml_config.base_config().log_every_steps,
                 help="diagnostics_every of the leeml-log variant (the default config's "
                      "log_every_steps)")
  p.add_argument("--compiler-options", default="proposed",
                 help="options of the leeml+opts column: 'proposed', 'none' (no column), "
                      "or k=v,k=v (XLA debug options)")
  p.add_argument("--malloc", default="tuned", choices=("tuned", "default"),
                 help="glibc allocator thresholds for both frameworks (see above)")
  p.add_argument("--profile", default="", help="write a jax.profiler trace of the CNN here")
  p.add_argument("--dump-hlo", default="", help="write the CNN step's optimized HLO here")
  args = p.parse_args()
  if args.quick:
    args.repeats, args.retries, args.compiler_options = 3, 0, "none"

  malloc = benchmarking.tune_malloc() if args.malloc == "tuned" else "glibc default"
  print(machine_info())
  print(f"allocator: {malloc}")
  opts = parse_options(args.compiler_options)
  print(f"batch {args.batch}, float32, SGD lr 0.01 momentum 0.9, softmax cross-entropy; "
        f"leeml-log: norms every {args.log_every} steps; leeml+opts = {opts}\n")
  rng = np.random.default_rng(0)
  x = rng.standard_normal((args.batch, 28, 28, 1), dtype=np.float32)
  y = rng.integers(0, 10, args.batch).astype(np.int32)
  batch = {"inputs": jnp.asarray(x), "targets": jnp.asarray(y)}

  rows = []
  for name in args.models.split(","):
    model = jax_model(name)
    n_params = sum(l.size for l in jax.tree.leaves(model.init(jax.random.key(0), batch["inputs"])))
    leeml_run, leeml_step, box = leeml_runner(model, batch)
    runners = {"leeml": leeml_run, "plain": plain_runner(model, batch),
               "leeml-log": leeml_runner(model, batch, diagnostics_every=args.log_every)[0]}
    if torch:
      runners["torch"] = torch_runner(name, x, y)
    if opts:
      runners["leeml+opts"] = leeml_runner(model, batch, opts)[0]
    for run in runners.values():  # compile + warm up
      run(args.warmup)
    n = (QUICK_STEPS[name] if args.quick else args.steps) or DEFAULT_STEPS[name]
    res = measure(runners, n, args.repeats, args.retries)
    rows.append((name, n_params, res))
    print(f"{name}: {n} steps x {args.repeats} rounds; steps/s per round (max page faults "
          "per step):\n  " + "\n  ".join(
              f"{k:11s} " + " ".join(f"{r:6.1f}" for r in v[3]) + f"  ({v[2]:.0f})"
              for k, v in res.items()))
    if name.startswith("cnn") and (args.dump_hlo or args.profile):
      hlo = leeml_step.lower(box[0], batch, jax.random.key(1)).compile().as_text()
      if args.dump_hlo:
        os.makedirs(args.dump_hlo, exist_ok=True)
        with open(os.path.join(args.dump_hlo, f"{name}_leeml_step.txt"), "w") as f:
          f.write(hlo)
      if args.profile:
        profile_step(leeml_run, os.path.join(args.profile, name), hlo)

  head = ("| model | params | leeml steps/s | leeml-log steps/s | plain-jax steps/s "
          "| leeml/plain | leeml-log/plain |")
  sep = "|---|---:|---:|---:|---:|---:|---:|"
  if torch:
    head += " torch eager steps/s | leeml/torch | leeml-log/torch |"
    sep += "---:|---:|---:|"
  if opts:
    head += " leeml+opts steps/s |"
    sep += "---:|"
  print("\n" + head + "\n" + sep)
  for name, n_params, res in rows:
    p = res["plain"][0]
    line = (f"| {name} | {n_params:,} | {res['leeml'][0]:.1f} | {res['leeml-log'][0]:.1f} | "
            f"{p:.1f} | {res['leeml'][0] / p:.2f}x ({paired_ratio(res, 'leeml'):.2f}) | "
            f"{res['leeml-log'][0] / p:.2f}x ({paired_ratio(res, 'leeml-log'):.2f}) |")
    if torch:
      t = res["torch"][0]
      line += f" {t:.1f} | {res['leeml'][0] / t:.2f}x | {res['leeml-log'][0] / t:.2f}x |"
    if opts:
      line += f" {res['leeml+opts'][0]:.1f} |"
    print(line)
  print("\nratio: of the medians (in parentheses: median over rounds of the ratio within a "
        "round).")
  load = max(v[1] for _, _, res in rows for v in res.values())
  print(f"\nmedian of {args.repeats} interleaved rounds; other processes used at most "
        f"{load:.2f} cores during any kept round.")


if __name__ == "__main__":
  main()
