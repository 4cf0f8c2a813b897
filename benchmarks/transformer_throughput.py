"""Transformer speed on CPU: leeml's Seq2SeqTransformer vs torch.nn.Transformer, and decoding
with and without the key/value cache (lectures 12-13).

    python benchmarks/transformer_throughput.py            # two sizes + decoding, a few min
    python benchmarks/transformer_throughput.py --quick    # tiny sizes, seconds (the test)
    python benchmarks/transformer_throughput.py --sizes base --no-compile

Train step (one process, same CPU, same float32 batch of random tokens with padding, same
initial weights: the torch model is loaded with the jax parameters, `copy_to_torch`):

* leeml          -- the real step: `leeml.seq2seq.make_train_step` (teacher forcing,
                    label-smoothed cross entropy eps 0.1 averaged over real target tokens,
                    token accuracy, grad/param/update norms) with
                    `leeml.optim.make_optimizer` (adam, lr 1e-3) and a `TrainState`,
                    jitted as leeml.train does: donated, `runtime.step_compiler_options()`;
* plain-jax      -- the same flax model and loss in a minimal step: value_and_grad +
                    optax.adam + apply_updates, no metrics;
* torch eager    -- `torch.nn.Transformer` (pre-LN `norm_first`, `batch_first`, dropout 0,
                    tanh-GELU, LayerNorm eps 1e-6 as flax) between the same tied embedding
                    (scaled by sqrt(width), plus sinusoidal positions) and the same tied
                    output projection, source key padding masks, a causal target mask,
                    `F.cross_entropy(ignore_index=PAD, label_smoothing=0.1)`,
                    `torch.optim.Adam` (its default, for-loop implementation);
* torch.compile  -- the same model and loss under `torch.compile` (default inductor mode;
                    the forward + loss is compiled, backward through AOTAutograd, the
                    optimizer step eager). Its compile time (first step) is reported apart.

Decoding (the first size's model, untrained): `leeml.decoding.greedy_search` (cached),
`greedy_search_uncached` (reruns the decoder on the whole prefix every step) and
`beam_search` (beam 4, cached) at several output lengths; for reference, greedy decoding
with torch.nn.Transformer, which has no cache (prefix recomputed, eager, no_grad). So that
an untrained model runs every search to `max_len`, the end token passed to the search is
-1, an id no search can produce: no hypothesis ever finishes, and each call generates
exactly batch x max_len tokens (checked: no PAD in the output). tokens/s counts those
output tokens (for beam search: the best hypothesis' tokens; the search extends 4x as many).

Timing as in benchmarks/step_throughput.py: compilation and warm-up excluded, a measurement
runs n calls (calibrated to ~--seconds) and blocks, the variants run in interleaved rounds,
the median is reported, the cores *other* processes used during each round are recorded
(/proc/stat) and the busiest rounds re-measured (--retries). glibc's mmap/trim thresholds
are raised first for both frameworks (`--malloc tuned`, see BENCHMARKS.md).
"""

import argparse
import functools
import math
import os
import statistics
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from leeml import config as leeml_config
from leeml import benchmarking, decoding, optim, runtime, seq2seq
from leeml.models import attention
from leeml.models.transformer import Seq2SeqTransformer, shift_right
from leeml.train_state import TrainState

try:
  import torch  # the `bench` extra; absent in the test extra
except ImportError:  # pragma: no cover
  torch = None

PAD, BOS, EOS = seq2seq.PAD, seq2seq.BOS, seq2seq.EOS
FIRST_SYMBOL = 3
NEVER = -1  # an end token no search can produce: untrained models decode to max_len
LABEL_SMOOTHING = 0.1
LEARNING_RATE = 1e-3

# width, heads, layers (encoder and decoder each), mlp, vocab, batch, src/tgt lengths.
SIZES = {
    "base": dict(width=128, heads=4, layers=2, mlp=512, vocab=64, batch=64, src_len=32,
                 tgt_len=32),
    "wide": dict(width=256, heads=4, layers=2, mlp=1024, vocab=64, batch=64, src_len=32,
                 tgt_len=32),
    "tiny": dict(width=32, heads=2, layers=1, mlp=64, vocab=16, batch=4, src_len=8,
                 tgt_len=8),
}


# ----------------------------------------------------------------------------- models


def jax_model(size: dict, max_len: int = 64) -> Seq2SeqTransformer:
  """leeml's Transformer at `size`: pre-LN, sinusoidal positions, tied embeddings."""
  return Seq2SeqTransformer(vocab_size=size["vocab"], num_layers=size["layers"],
                            num_heads=size["heads"], width=size["width"],
                            mlp_dim=size["mlp"], dropout=0.0, norm_position="pre",
                            positions="sinusoidal", tie_embeddings=True, max_len=max_len,
                            pad_id=PAD)


def make_batch(size: dict, seed: int = 0) -> dict:
  """Random symbols with random lengths (half to full), PAD after; targets end in EOS."""
  rng = np.random.default_rng(seed)

  def tokens(length):
    ids = rng.integers(FIRST_SYMBOL, size["vocab"], (size["batch"], length))
    lens = rng.integers(length // 2, length + 1, size["batch"])
    return np.where(np.arange(length)[None] < lens[:, None], ids, PAD).astype(np.int32), lens

  src, _ = tokens(size["src_len"])
  tgt, lens = tokens(size["tgt_len"])
  tgt[np.arange(size["batch"]), lens - 1] = EOS
  return {"inputs": src, "targets": tgt}


def init_params(model: Seq2SeqTransformer, batch: dict, seed: int = 0):
  src, tgt = jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])
  return model.init(jax.random.key(seed), src, shift_right(tgt, BOS))["params"]


def count_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def torch_model(size: dict, max_len: int = 64):
  """The same architecture in PyTorch: tied embedding + torch.nn.Transformer + tied output."""
  nn, F = torch.nn, torch.nn.functional

  class TorchSeq2Seq(nn.Module):
    """Embedding * sqrt(width) + sinusoidal positions -> nn.Transformer -> embedding^T."""

    def __init__(self):
      super().__init__()
      d = size["width"]
      self.scale = math.sqrt(d)
      self.embed = nn.Embedding(size["vocab"], d)
      pe = np.asarray(attention.sinusoidal_positions(max_len, d))
      self.register_buffer("positions", torch.from_numpy(pe.copy()), persistent=False)
      with warnings.catch_warnings():  # "nested tensors unused with norm_first": fine
        warnings.simplefilter("ignore", UserWarning)
        self.transformer = nn.Transformer(
            d_model=d, nhead=size["heads"], num_encoder_layers=size["layers"],
            num_decoder_layers=size["layers"], dim_feedforward=size["mlp"], dropout=0.0,
            activation=functools.partial(F.gelu, approximate="tanh"),  # flax nn.gelu
            layer_norm_eps=1e-6, batch_first=True, norm_first=True)  # flax LayerNorm eps

    def _embed(self, ids):
      return self.embed(ids) * self.scale + self.positions[:ids.shape[1]]

    def forward(self, src, tgt_in):
      src_pad = src == PAD  # True = ignore (torch's convention)
      n = tgt_in.shape[1]
      causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
      h = self.transformer(self._embed(src), self._embed(tgt_in), tgt_mask=causal,
                           src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad,
                           tgt_is_causal=True)
      return F.linear(h, self.embed.weight)

  return TorchSeq2Seq()


def copy_to_torch(params, model) -> None:
  """Loads leeml `params` into `torch_model(...)` (exact copies, float32)."""
  t = lambda x: torch.from_numpy(np.array(x, np.float32))  # noqa: E731
  state = {"embed.weight": t(params["src_embed"]["embedding"])}

  def dense(prefix, p):  # flax kernel [in, out] -> torch weight [out, in]
    state[f"{prefix}.weight"] = t(p["kernel"]).T
    state[f"{prefix}.bias"] = t(p["bias"])

  def norm(prefix, p):
    state[f"{prefix}.weight"], state[f"{prefix}.bias"] = t(p["scale"]), t(p["bias"])

  def attn(prefix, p):
    d = p["out"]["bias"].shape[0]
    state[f"{prefix}.in_proj_weight"] = torch.cat(
        [t(p[k]["kernel"]).reshape(d, -1).T for k in ("query", "key", "value")])
    state[f"{prefix}.in_proj_bias"] = torch.cat(
        [t(p[k]["bias"]).reshape(-1) for k in ("query", "key", "value")])
    state[f"{prefix}.out_proj.weight"] = t(p["out"]["kernel"]).reshape(-1, d).T
    state[f"{prefix}.out_proj.bias"] = t(p["out"]["bias"])

  enc = params["encoder"]
  layers = sorted(k for k in enc if k.startswith("block_"))
  for i, name in enumerate(layers):
    p, pre = enc[name], f"transformer.encoder.layers.{i}"
    attn(f"{pre}.self_attn", p["attention"])
    norm(f"{pre}.norm1", p["norm_attention"])
    norm(f"{pre}.norm2", p["norm_mlp"])
    dense(f"{pre}.linear1", p["mlp"]["hidden"])
    dense(f"{pre}.linear2", p["mlp"]["output"])
  norm("transformer.encoder.norm", enc["norm_out"])
  for i in range(len(layers)):
    p, pre = params[f"blocks_{i}"], f"transformer.decoder.layers.{i}"
    attn(f"{pre}.self_attn", p["self_attention"])
    attn(f"{pre}.multihead_attn", p["cross_attention"])
    norm(f"{pre}.norm1", p["norm_self_attention"])
    norm(f"{pre}.norm2", p["norm_cross_attention"])
    norm(f"{pre}.norm3", p["norm_mlp"])
    dense(f"{pre}.linear1", p["mlp"]["hidden"])
    dense(f"{pre}.linear2", p["mlp"]["output"])
  norm("transformer.decoder.norm", params["decoder_norm"])
  model.load_state_dict(state, strict=True)


def torch_loss(model, src, tgt):
  """Teacher forcing, label-smoothed cross entropy averaged over real target tokens."""
  tgt_in = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)
  logits = model(src, tgt_in)
  return torch.nn.functional.cross_entropy(
      logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD,
      label_smoothing=LABEL_SMOOTHING)


# ----------------------------------------------------------------------------- steps
# A runner is run(n): n steps (or decoding calls), blocked at the end.


def leeml_runner(model, params, batch):
  """leeml's train step as leeml.train runs it."""
  cfg = leeml_config.base_config()
  cfg.optimizer.name = "adam"
  cfg.optimizer.learning_rate = LEARNING_RATE
  cfg.schedule.name = "constant"
  tx = optim.make_optimizer(cfg.optimizer, cfg.schedule, num_train_steps=10_000)
  state = TrainState.create({"params": jax.tree.map(jnp.copy, params)}, tx)  # donated
  step = seq2seq.make_train_step(model, tx, label_smoothing=LABEL_SMOOTHING)
  step = jax.jit(step, donate_argnums=0, compiler_options=runtime.step_compiler_options())
  batch = jax.tree.map(jnp.asarray, batch)
  rng, box = jax.random.key(1), [state]

  def run(n):
    s = box[0]
    for _ in range(n):
      s, metrics = step(s, batch, rng)
    jax.block_until_ready(s)
    box[0] = s
    return metrics

  return run


def plain_runner(model, params, batch):
  """The same model and loss in a minimal jitted step: value_and_grad + optax.adam."""
  tx = optax.adam(LEARNING_RATE)
  src, tgt = jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])

  def step(carry):
    p, opt_state = carry
    loss, grads = jax.value_and_grad(lambda q: seq2seq.token_loss(
        model, q, src, tgt, label_smoothing=LABEL_SMOOTHING)[0])(p)
    updates, opt_state = tx.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), loss

  step = jax.jit(step, donate_argnums=0)
  box = [(jax.tree.map(jnp.copy, params), tx.init(params))]

  def run(n):
    c = box[0]
    for _ in range(n):
      c, loss = step(c)
    jax.block_until_ready(c)
    box[0] = c
    return loss

  return run


def torch_runner(size, params, batch, *, compile_model: bool = False):
  """torch.nn.Transformer loaded with `params`; eager or under torch.compile."""
  torch.manual_seed(0)
  model = torch_model(size)
  copy_to_torch(params, model)
  model.train()
  opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
  src = torch.from_numpy(batch["inputs"].astype(np.int64))
  tgt = torch.from_numpy(batch["targets"].astype(np.int64))
  loss_fn = torch.compile(torch_loss) if compile_model else torch_loss

  def run(n):
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(model, src, tgt)
      loss.backward()
      opt.step()
    return loss.detach()

  return run


def decode_runner(kind, model, params, src, max_len):
  """Decoding `kind` ('cached', 'uncached', 'beam4') of `src` to exactly max_len tokens."""
  common = dict(max_len=max_len, bos_id=BOS, eos_id=NEVER, pad_id=PAD)
  if kind == "cached":
    fn = lambda: decoding.greedy_search(model, params, src, **common)[0]  # noqa: E731
  elif kind == "uncached":
    fn = lambda: decoding.greedy_search_uncached(model, params, src, **common)[0]  # noqa: E731
  elif kind == "beam4":
    fn = lambda: decoding.beam_search(model, params, src, beam_size=4, **common)[0][:, 0]  # noqa: E731
  else:
    raise ValueError(f"unknown decoding kind {kind!r}")

  def run(n):
    for _ in range(n):
      out = fn()
    return jax.block_until_ready(out)

  return run


def torch_decode_runner(size, params, src, max_len):
  """Greedy decoding with torch.nn.Transformer (no cache: the prefix is recomputed)."""
  model = torch_model(size)
  copy_to_torch(params, model)
  model.eval()
  src = torch.from_numpy(np.asarray(src).astype(np.int64))

  def run(n):
    with torch.no_grad():
      for _ in range(n):
        out = torch.full((src.shape[0], 1), BOS, dtype=torch.int64)
        for _ in range(max_len):
          logits = model(src, out)[:, -1]
          logits[:, [BOS, PAD]] = -torch.inf
          out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
    return out[:, 1:].numpy()

  return run


# ----------------------------------------------------------------------------- timing


def timed(run, n):
  """(calls/s, cores used by other processes meanwhile) of run(n)."""
  rate, load, _ = benchmarking.timed(run, n)
  return rate, load


def calibrate(run, seconds):
  """Calls per measurement so that one takes about `seconds` (at least 1)."""
  rate, _ = timed(run, 1)
  return max(1, int(round(rate * seconds)))


def measure(runners, counts, repeats, retries, busy_limit=0.15, pause=0.2):
  """Interleaved rounds; {name: (median calls/s, max other-process cores, rates, loads)}."""
  samples = {k: [] for k in runners}
  for _ in range(repeats):
    for k, run in runners.items():
      time.sleep(pause)  # let the other framework's worker threads go idle
      samples[k].append(timed(run, counts[k]))
  for k, run in runners.items():  # re-measure rounds that shared the CPU
    for _ in range(retries):
      worst = max(range(repeats), key=lambda i: samples[k][i][1])
      if samples[k][worst][1] < busy_limit:
        break
      time.sleep(5 * pause)
      samples[k][worst] = timed(run, counts[k])
  return {k: (statistics.median(r for r, _ in v), max(l for _, l in v), [r for r, _ in v],
              [l for _, l in v]) for k, v in samples.items()}


# ----------------------------------------------------------------------------- benchmarks


def train_benchmark(size_name, args, log=print):
  """One size: {variant: (median steps/s, max load, rates, loads)}, params, extras."""
  size = SIZES[size_name]
  model = jax_model(size)
  batch = make_batch(size)
  params = init_params(model, batch)
  runners = {"leeml": leeml_runner(model, params, batch),
             "plain-jax": plain_runner(model, params, batch)}
  extra = {"params": count_params(params),
           "target_tokens": int(np.sum(batch["targets"] != PAD)), "compile_s": {},
           "errors": {}}
  if torch is not None and args.torch:
    runners["torch eager"] = torch_runner(size, params, batch)
    if args.compile:
      runners["torch.compile"] = torch_runner(size, params, batch, compile_model=True)
    extra["torch_params"] = sum(p.numel() for p in torch_model(size).parameters())
  for name in list(runners):
    w0 = time.perf_counter()
    try:
      runners[name](1)  # compiles
    except Exception as e:  # pylint: disable=broad-except
      extra["errors"][name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
      log(f"{size_name}: {name} failed: {extra['errors'][name]}")
      del runners[name]
      continue
    extra["compile_s"][name] = time.perf_counter() - w0
    runners[name](args.warmup)
  counts = {k: calibrate(r, args.seconds) for k, r in runners.items()}
  res = measure(runners, counts, args.repeats, args.retries)
  log(f"{size_name}: steps/s per round (other-process cores):\n  " + "\n  ".join(
      f"{k:14s} n={counts[k]:<4d} " + " ".join(
          f"{r:7.2f}({l:.2f})" for r, l in zip(v[2], v[3])) for k, v in res.items()))
  return res, extra


def decode_benchmark(size_name, lengths, args, log=print):
  """{length: {variant: (median tokens/s, max load, rates, loads)}} on the size's batch."""
  size = SIZES[size_name]
  model = jax_model(size, max_len=max(max(lengths), size["src_len"]))
  batch = make_batch(size)
  params = init_params(model, batch)
  src = jnp.asarray(batch["inputs"])
  out = {}
  for length in lengths:
    runners = {k: decode_runner(k, model, params, src, length)
               for k in ("cached", "uncached", "beam4")}
    if torch is not None and args.torch:
      runners["torch greedy"] = torch_decode_runner(size, params, batch["inputs"], length)
    for k, run in runners.items():
      tokens = np.asarray(run(1))  # compiles; check every token was generated
      if tokens.shape != (size["batch"], length) or np.any(tokens == PAD):
        raise AssertionError(f"{k} at length {length}: not batch x max_len tokens")
    counts = {k: calibrate(r, args.seconds) for k, r in runners.items()}
    res = measure(runners, counts, args.repeats, args.retries)
    per_call = size["batch"] * length
    out[length] = {k: (v[0] * per_call, v[1], [r * per_call for r in v[2]], v[3])
                   for k, v in res.items()}
    log(f"decode L={length}: tokens/s per round (other-process cores):\n  " + "\n  ".join(
        f"{k:14s} n={counts[k]:<4d} " + " ".join(
            f"{r:9.0f}({l:.2f})" for r, l in zip(v[2], v[3])) for k, v in out[length].items()))
  return out


def _cell(res, name, fmt="{:.3g}"):
  return fmt.format(res[name][0]) if name in res else "n/a"


def _compile_s(extra) -> str:
  s = extra["compile_s"].get("torch.compile")
  return "n/a" if s is None else f"{s:.1f}"


def train_table(rows) -> str:
  """Markdown table of train_benchmark results [(size_name, res, extra)]."""
  lines = ["| size | params (jax / torch) | leeml steps/s | leeml target tok/s | "
           "plain-jax steps/s | torch eager steps/s | torch.compile steps/s | "
           "torch.compile 1st step s | leeml / torch eager | leeml / torch.compile |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for name, res, extra in rows:
    s = SIZES[name]
    desc = (f"{name}: d{s['width']} h{s['heads']} {s['layers']}+{s['layers']}L "
            f"mlp{s['mlp']} V{s['vocab']} B{s['batch']} len{s['src_len']}/{s['tgt_len']}")
    ratio = lambda k: (f"{res['leeml'][0] / res[k][0]:.2f}x" if k in res  # noqa: E731
                       else "n/a")
    compiled = _cell(res, "torch.compile")
    if "torch.compile" in extra["errors"]:
      compiled = f"failed: {extra['errors']['torch.compile']}"
    lines.append(
        f"| {desc} | {extra['params']:,} / {extra.get('torch_params', 0):,} | "
        f"{res['leeml'][0]:.3g} | {res['leeml'][0] * extra['target_tokens']:,.0f} | "
        f"{_cell(res, 'plain-jax')} | {_cell(res, 'torch eager')} | {compiled} | "
        f"{_compile_s(extra)} | "
        f"{ratio('torch eager')} | {ratio('torch.compile')} |")
  return "\n".join(lines)


def decode_table(results) -> str:
  """Markdown table of decode_benchmark results."""
  lines = ["| output len | greedy cached tok/s | greedy uncached tok/s | cache speed-up | "
           "beam 4 cached tok/s | torch greedy (no cache) tok/s |",
           "|---:|---:|---:|---:|---:|---:|"]
  for length, res in results.items():
    lines.append(
        f"| {length} | {res['cached'][0]:,.0f} | {res['uncached'][0]:,.0f} | "
        f"{res['cached'][0] / res['uncached'][0]:.2f}x | {res['beam4'][0]:,.0f} | "
        f"{_cell(res, 'torch greedy', '{:,.0f}')} |")
  return "\n".join(lines)


def machine_info() -> str:
  cpu = benchmarking.cpu_name()
  torch_text = (f"torch {torch.__version__} (threads={torch.get_num_threads()}, "
                f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')!r})"
                if torch is not None else "torch not installed")
  return (f"CPU: {cpu}, {os.cpu_count()} logical cores; load average "
          f"{os.getloadavg()[0]:.2f}\njax {jax.__version__} ({jax.devices()[0].device_kind}), "
          f"{torch_text}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--quick", action="store_true",
                 help="tiny sizes, 1 round, no torch.compile: a smoke run for the test")
  p.add_argument("--sizes", default="base,wide", help=f"comma list of: {', '.join(SIZES)}")
  p.add_argument("--decode-lengths", default="16,32,64")
  p.add_argument("--seconds", type=float, default=1.0, help="target time per measurement")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--retries", type=int, default=2,
                 help="re-measurements of rounds during which other processes were busy")
  p.add_argument("--no-torch", dest="torch", action="store_false")
  p.add_argument("--no-compile", dest="compile", action="store_false",
                 help="skip the torch.compile column")
  p.add_argument("--torch-threads", type=int, default=0,
                 help="torch.set_num_threads (0: torch's default, one per core)")
  p.add_argument("--malloc", default="tuned", choices=("tuned", "default"))
  args = p.parse_args(argv)
  if args.quick:
    args.sizes, args.decode_lengths, args.seconds = "tiny", "4,8", 0.02
    args.repeats, args.warmup, args.retries, args.compile = 1, 1, 0, False
  return args


def main(argv=None) -> tuple[str, str]:
  """Runs the benchmark; prints and returns (train table, decode table)."""
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.malloc == "tuned":
    print(f"allocator: {benchmarking.tune_malloc()}")
  if torch is not None and args.torch_threads:
    torch.set_num_threads(args.torch_threads)
  print(machine_info())
  w0 = time.perf_counter()
  sizes = args.sizes.split(",")
  rows = [(name, *train_benchmark(name, args)) for name in sizes]
  lengths = [int(x) for x in args.decode_lengths.split(",")]
  dec = decode_benchmark(sizes[0], lengths, args)
  train_md, decode_md = train_table(rows), decode_table(dec)
  loads = [l for _, res, _ in rows for v in res.values() for l in v[3]]
  loads += [l for res in dec.values() for v in res.values() for l in v[3]]
  print(f"\nTrain step, float32, adam, label smoothing {LABEL_SMOOTHING}; median of "
        f"{args.repeats} interleaved rounds\n\n{train_md}\n\nDecoding, size {sizes[0]}, batch "
        f"{SIZES[sizes[0]]['batch']}, every search run to max_len\n\n{decode_md}\n")
  print(f"other processes used {statistics.median(loads):.2f} cores (median over rounds), "
        f"at most {max(loads):.2f}; load average now {os.getloadavg()[0]:.2f}; "
        f"wall {time.perf_counter() - w0:.0f} s")
  return train_md, decode_md


if __name__ == "__main__":
  main()
