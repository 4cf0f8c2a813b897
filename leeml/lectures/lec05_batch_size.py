"""Lecture 5 (batch): what the batch size costs in time and what it does to training.

A. Timing: one jitted SGD update of the same network at batch sizes 1 ... full batch, in
   one process, interleaved rounds, median; time per epoch = time per update × ⌈N / B⌉
   updates. The lecture: a larger batch is not slower per update until the hardware's
   parallelism saturates, so a smaller batch is slower per epoch.
B. Generalization: the same network (same initialization per seed) trained by plain SGD
   for the same number of epochs at each batch size, the learning rate picked per batch
   size from a fixed grid by validation accuracy; final training / test accuracy and the
   top Hessian eigenvalue of the training loss ("sharpness", leeml.curvature Lanczos).
   All seeds × learning rates of one batch size are one `leeml.population` (the learning
   rate traced: one compile per batch size), on the core's (seed, step) batch order.
"""

import functools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from leeml import claims, curvature, datasets, losses, models, plotting, population, steps
from leeml import data as data_lib
from leeml import timing as timing_lib  # `timing` names this lecture's part A results
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 5 (Batch and Momentum), slides 'Small Batch v.s. Large Batch' "
          "(time per update / per epoch; 'Noisy update is better for training'; 'Small "
          "batch is better on testing data?')")
KESKAR = ("Keskar et al. 2017, On Large-Batch Training for Deep Learning: Generalization "
          "Gap and Sharp Minima (Tables 2-3), as quoted in lecture 5")
_CE = losses.get_loss("softmax_cross_entropy")

# ----------------------------------------------------------------------------- A. timing


def _sgd_step(model, learning_rate: float):
  def loss_of(params, x, y):
    return jnp.mean(_CE(model.apply({"params": params}, x), y))

  def step(params, x, y):
    loss, grads = jax.value_and_grad(loss_of)(params, x, y)
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), loss
  return jax.jit(step, donate_argnums=0)


def time_updates(cfg, progress: bool = True) -> list[dict]:
  """Median wall time of one jitted SGD update per batch size (`cfg`: config.timing).

  Its own timing loop, not `leeml.loop` / `leeml.population`: the quantity measured is one
  update dispatched from Python (what a training loop pays per step), with nothing else in
  the timed span (no batch gathering, metrics, records or evaluations).

  Every batch size gets its own compiled step and a resident batch of random data; after
  `warmup` updates, each measurement runs k updates (k chosen once so that it lasts
  ≥ `min_seconds`) and blocks on the result. Rounds are interleaved over batch sizes (so
  a burst of load from other processes hits all sizes alike); the median of `repeats`
  rounds is reported with the spread. Epoch time is derived: ms/update × ⌈N / B⌉.
  """
  model = models.get_model(cfg.model, num_outputs=cfg.num_classes)
  rng = np.random.default_rng(0)
  runners = {}
  for b in cfg.batch_sizes:
    x = jnp.asarray(rng.standard_normal((b, cfg.input_dim), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, cfg.num_classes, b).astype(np.int32))
    params = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    step = _sgd_step(model, cfg.learning_rate)
    box = [params]

    def run(n, step=step, box=box, x=x, y=y):
      p = box[0]
      with timing_lib.phase("train"):
        for _ in range(n):
          p, _ = step(p, x, y)
        jax.block_until_ready(p)
      box[0] = p
    run(cfg.warmup)  # compile + warm up
    k = 1
    while True:   # calibrate: k updates last at least min_seconds
      t0 = time.perf_counter()
      run(k)
      if time.perf_counter() - t0 >= cfg.min_seconds or k >= 2 ** 16:
        break
      k *= 2
    runners[b] = (run, k)
  samples = {b: [] for b in cfg.batch_sizes}
  for _ in tqdm(range(cfg.repeats), desc="lec05 timing rounds", disable=not progress):
    for b, (run, k) in runners.items():
      t0 = time.perf_counter()
      run(k)
      samples[b].append((time.perf_counter() - t0) / k)
  out = []
  for b in cfg.batch_sizes:
    ms = statistics.median(samples[b]) * 1e3
    updates = -(-cfg.num_examples // b)
    out.append(dict(batch=b, ms_update=ms, ms_rounds=[s * 1e3 for s in samples[b]],
                    updates_per_epoch=updates, s_epoch=ms * updates / 1e3,
                    examples_per_s=b / (ms / 1e3), reps=runners[b][1]))
  return out


def parallel_batch(timing: list[dict], flat_ratio: float) -> int:
  """The largest batch whose time per update is ≤ flat_ratio × batch 1's, counting only
  the sizes before the first one that exceeds it (where parallelism has saturated)."""
  t1 = next(r["ms_update"] for r in timing if r["batch"] == 1)
  best = 1
  for r in sorted(timing, key=lambda r: r["batch"]):
    if r["ms_update"] > flat_ratio * t1:
      break
    best = r["batch"]
  return best


def _plot_timing(timing, cfg, b_par: int, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(4.2, 3.4))
  b = np.array([r["batch"] for r in timing])
  for ax, key, label in ((axes[0][0], "ms_update", "ms per update"),
                         (axes[0][1], "s_epoch", f"s per epoch (N = {cfg.num_examples})"),
                         (axes[0][2], "examples_per_s", "examples / s")):
    ax.plot(b, [r[key] for r in timing], "o-", label="median of rounds")
    if key == "ms_update":
      for r in timing:
        ax.plot([r["batch"]] * len(r["ms_rounds"]), r["ms_rounds"], "k.", ms=2, alpha=0.4)
      ax.axvline(b_par, color="r", ls=":", label=f"last 'flat' batch ({b_par})")
      ax.legend(fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_title(f"{jax.devices()[0].platform}: one jitted SGD update")
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- B. training


def load_split(net, split_seed: int = 0) -> dict:
  """Train / validation / test arrays: `num_val` training examples (a fixed random choice,
  `split_seed`) are held out for choosing the learning rate."""
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": net.dataset}))
  x = np.asarray(ds.train.inputs, np.float32)
  y = np.asarray(ds.train.targets, np.int32)
  perm = np.random.default_rng(split_seed).permutation(len(x))
  val, tr = perm[: net.num_val], perm[net.num_val:]
  return dict(x=x[tr], y=y[tr], x_val=x[val], y_val=y[val],
              x_test=np.asarray(ds.test.inputs, np.float32),
              y_test=np.asarray(ds.test.targets, np.int32), num_classes=ds.num_classes)


def _accuracy_and_loss(model, params, x, y):
  logits = model.apply({"params": params}, x)
  return jnp.mean(jnp.argmax(logits, -1) == y), jnp.mean(_CE(logits, y))


def sgd_program(model, data, batch_size: int) -> population.Program:
  """Plain SGD θ ← θ − lr ∇L_batch(θ) of `model` on `data` as a population Program.

  The learning rate is traced (every lr of one batch size shares one compile); batches
  are the core's (seed, step) epoch permutation (`population.run`), so B = N is exact
  gradient descent. Evaluations: accuracy and mean cross-entropy on the whole training
  part ('train') and on the held-out 'validation' part, each in one batch.
  """
  x, y = np.asarray(data["x"], np.float32), np.asarray(data["y"], np.int32)
  sample = jnp.zeros((1, *x.shape[1:]), jnp.float32)

  def loss_of(params, inputs, targets):
    return jnp.mean(_CE(model.apply({"params": params}, inputs), targets))

  def init(key):
    return {"params": model.init(key, sample)["params"]}

  def train_step(state, batch, rng, hparams):
    del rng  # plain SGD: the only randomness is the batch order
    loss, grads = jax.value_and_grad(loss_of)(state["params"], batch["inputs"],
                                              batch["targets"])
    lr = hparams["learning_rate"]
    params = jax.tree.map(lambda p, g: p - lr * g, state["params"], grads)
    finite = jnp.isfinite(loss) & steps.tree_finite(grads)
    return {"params": params}, {"train_loss": loss,
                                "nonfinite": (~finite).astype(jnp.float32)}

  def evaluate(state, batch):
    logits = model.apply({"params": state["params"]}, batch["inputs"])
    w = batch["weights"]
    return {"accuracy": jnp.sum(w * (jnp.argmax(logits, -1) == batch["targets"])),
            "loss": jnp.sum(w * _CE(logits, batch["targets"])), "count": jnp.sum(w)}

  val = data_lib.ArraySplit(np.asarray(data["x_val"], np.float32),
                            np.asarray(data["y_val"], np.int32))
  return population.Program(
      init=init, train_step=train_step, train=data_lib.ArraySplit(x, y),
      batch_size=batch_size, hparams={"learning_rate": 0.1}, evaluate=evaluate,
      splits={"train": data_lib.ArraySplit(x, y), "validation": val},
      eval_batch_size=max(len(x), len(val)), family="mlp")


def _curve(result: population.Result, key: str) -> np.ndarray:
  """(members, evaluations) of `key`; NaN from a member's first non-finite step on (its
  state is frozen there, the run it stands for has diverged)."""
  steps_, values = result.curves(key)
  for i, bad in result.nonfinite_steps.items():
    values[i, steps_ >= bad] = np.nan
  return values


@functools.lru_cache(maxsize=4)
def _test_accuracy_fn(model):
  return jax.jit(jax.vmap(lambda p, x, y: _accuracy_and_loss(model, p, x, y)[0],
                          in_axes=(0, None, None)))


def train_batch_size(model, data, batch_size: int, seeds, lr_grid, epochs: int, *,
                     strategy: str | None = None, progress: bool = False) -> dict:
  """Every (seed, learning rate) run at one batch size, as one population (one compile);
  arrays indexed [seed, lr, ...], params stacked with run i * len(lr_grid) + j.

  `epochs` × ⌊N/B⌋ updates (the same update count as epochs of ⌊N/B⌋ disjoint batches);
  the training / validation numbers are read after every ⌊N/B⌋ updates ("epoch"), the
  test accuracy once at the end.
  """
  n = len(data["x"])
  per_epoch = n // batch_size
  members = [population.Member(int(s), {"learning_rate": float(lr)}, arm=f"B={batch_size}")
             for s in seeds for lr in lr_grid]
  program = sgd_program(model, data, batch_size)
  with timing_lib.phase("train"):  # the per-epoch evaluations run inside `population.run`
    res = population.run(program, members, num_steps=epochs * per_epoch,
                         eval_every=per_epoch, strategy=strategy, progress=progress,
                         desc=f"lec05 B={batch_size}")
  params = jax.tree.map(lambda *a: np.stack(a), *[res.params(i) for i in range(len(members))])
  with timing_lib.phase("eval"):
    test_acc = np.asarray(_test_accuracy_fn(model)(params, data["x_test"], data["y_test"]))
  for i in res.nonfinite_steps:
    test_acc[i] = np.nan  # a diverged run has no final parameters to test
  shape = (len(seeds), len(lr_grid))
  return dict(params=params, shape=shape, steps=epochs * per_epoch,
              train_acc=_curve(res, "eval_train_accuracy").reshape(shape + (epochs,)),
              train_loss=_curve(res, "eval_train_loss").reshape(shape + (epochs,)),
              val_acc=_curve(res, "eval_validation_accuracy").reshape(shape + (epochs,)),
              test_acc=test_acc.reshape(shape))


def choose_learning_rate(val_acc_final: np.ndarray) -> int:
  """Index of the learning rate with the best mean final validation accuracy over seeds
  ([seed, lr]; a diverged run's NaN counts as 0); ties go to the smaller rate."""
  return int(np.argmax(np.nan_to_num(val_acc_final, nan=0.0).mean(axis=0)))


def hessian_operator(model, params, x, y, cfg) -> curvature.FlatOperator:
  """The Hessian of the mean training cross-entropy over (x, y), in batches of
  `cfg.batch_size` (leeml.curvature.dataset_operator)."""
  batch_loss = curvature.model_batch_loss(model, {"params": params}, _CE)
  batches = curvature.stack_batches(x, y, min(cfg.batch_size, len(x)))
  return curvature.dataset_operator(batch_loss, params, batches)


def sharpness(model, params_list, x, y, cfg, op=None) -> list[float]:
  """Top Hessian eigenvalue of the mean training cross-entropy at each params (Lanczos).

  `op` (from `hessian_operator`) can be passed in to be reused: its matvec is the static
  argument of the jitted Lanczos loop, so one operator means one compilation."""
  op = op or hessian_operator(model, params_list[0], x, y, cfg)
  return [float(curvature.top_eigenvalues(op.matvec, (p, op.operand[1]), op.dim, k=1,
                                          num_iters=cfg.num_iters)[0]) for p in params_list]


def train_network(net, config, progress: bool = True) -> dict:
  """For each batch size: all (seed, lr) runs, the chosen lr, its runs' numbers."""
  data = load_split(net, config.split_seed)
  model = models.get_model(net.model, num_outputs=data["num_classes"])
  n = len(data["x"])
  op = None   # one Hessian operator per network (one Lanczos compilation)
  out = {"name": net.name, "num_train": n, "num_val": len(data["x_val"]),
         "num_test": len(data["x_test"]), "batches": []}
  for b in tqdm(net.batch_sizes, desc=f"lec05 {net.name} batch sizes", disable=not progress):
    batch = b or n
    r = train_batch_size(model, data, batch, config.seeds, config.lr_grid, config.epochs,
                         strategy=config.strategy or None)
    li = choose_learning_rate(r["val_acc"][:, :, -1])
    chosen = [jax.tree.map(lambda a, i=i: a[i * len(config.lr_grid) + li], r["params"])
              for i in range(len(config.seeds))]
    op = op or hessian_operator(model, chosen[0], data["x"], data["y"], config.hessian)
    out["batches"].append(dict(
        batch=batch, full=(b == 0), steps=r["steps"], lr_index=li, lr=config.lr_grid[li],
        val_grid=r["val_acc"][:, :, -1], train_acc_curve=r["train_acc"][:, li],
        train_acc=r["train_acc"][:, li, -1], train_loss=r["train_loss"][:, li, -1],
        val_acc=r["val_acc"][:, li, -1], test_acc=r["test_acc"][:, li],
        sharpness=np.asarray(sharpness(model, chosen, data["x"], data["y"],
                                       config.hessian, op))))
  return out


def _plot_generalization(nets, path: str) -> str:
  fig, axes = plotting.figure(ncols=len(nets), nrows=2, size=(4.6, 3.4))
  for col, net in enumerate(nets):
    b = np.array([r["batch"] for r in net["batches"]])
    ax = axes[0][col]
    for key, label in (("train_acc", "training accuracy"), ("test_acc", "test accuracy")):
      v = np.array([r[key] for r in net["batches"]])
      ax.errorbar(b, v.mean(1), yerr=v.std(1, ddof=1), marker="o", capsize=3,
                  label=f"{label} (n={v.shape[1]} seeds)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (same epochs; lr chosen on validation)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{net['name']} (N_train = {net['num_train']})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1][col]
    v = np.array([r["sharpness"] for r in net["batches"]])
    ax.errorbar(b, v.mean(1), yerr=v.std(1, ddof=1), marker="s", color="C3", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("top Hessian eigenvalue λmax")
    ax.set_title("sharpness at the end (training loss)")
    ax.grid(alpha=0.3, which="both")
  return plotting.save(fig, path)


def _plot_curves(nets, path: str) -> str:
  fig, axes = plotting.figure(ncols=len(nets), size=(4.6, 3.4))
  for ax, net in zip(axes[0], nets):
    for r in net["batches"]:
      epochs = np.arange(1, r["train_acc_curve"].shape[1] + 1)
      plotting.mean_band(ax, epochs, r["train_acc_curve"],
                         f"B={r['batch']}, lr={r['lr']:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training accuracy (whole training part)")
    ax.set_title(f"{net['name']}: equal epochs, fewer updates for large B")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _timing_claims(config) -> list[claims.Claim]:
  th, tc = config.thresholds, config.timing
  lo, hi = th.saturation_pair
  full = max(tc.batch_sizes)

  def ms(r, b):
    return next(x["ms_update"] for x in r["timing"] if x["batch"] == b)

  def flat(r):
    b_par = parallel_batch(r["timing"], th.flat_ratio)
    t1 = ms(r, 1)
    return claims.Evidence(b_par >= th.min_parallel_batch, {
        "largest batch within the ratio": claims.Stat.of([b_par]),
        "ms/update at batch 1 (median)": claims.Stat.of([t1]),
        f"ms/update at batch {b_par} (median)": claims.Stat.of([ms(r, b_par)]),
    }, f"batch {b_par} costs {ms(r, b_par) / t1:.2f}× batch 1 per update "
       f"({b_par}× the examples)")

  def saturates(r):
    ratio = ms(r, hi) / ms(r, lo)
    return claims.Evidence(ratio >= th.saturation_ratio, {
        f"t({hi}) / t({lo})": claims.Stat.of([ratio]),
        f"ms/update at batch {lo}": claims.Stat.of([ms(r, lo)]),
        f"ms/update at batch {hi}": claims.Stat.of([ms(r, hi)]),
    }, f"{hi / lo:.1f}× the batch costs {ratio:.2f}× the time per update")

  def epoch(r):
    e = {x["batch"]: x["s_epoch"] for x in r["timing"]}
    ratio = e[1] / e[full]
    return claims.Evidence(ratio >= th.epoch_ratio, {
        "s/epoch at batch 1": claims.Stat.of([e[1]]),
        f"s/epoch at batch {full} (full)": claims.Stat.of([e[full]]),
        "ratio": claims.Stat.of([ratio]),
    }, f"an epoch at batch 1 takes {ratio:.1f}× the full-batch epoch")

  dev = "on this run's device (median of interleaved rounds)"
  return [
      claims.Claim(
          id="lec05.timing.parallel_until_saturation",
          statement=("Larger batch size does not require longer time to compute the gradient "
                     "(unless the batch size is too large): parallel computing"),
          source=SOURCE,
          threshold=(f"the largest batch with ms/update ≤ {th.flat_ratio:g} × batch 1's "
                     f"is ≥ {th.min_parallel_batch} {dev}"),
          check=flat),
      claims.Claim(
          id="lec05.timing.saturates",
          statement="... until parallelism saturates: then time per update grows with B",
          source=SOURCE,
          threshold=f"ms/update(B={hi}) / ms/update(B={lo}) ≥ {th.saturation_ratio:g} {dev}",
          check=saturates),
      claims.Claim(
          id="lec05.timing.small_batch_slower_per_epoch",
          statement="Smaller batch requires longer time for one epoch",
          source=SOURCE,
          threshold=(f"s/epoch(B=1) ≥ {th.epoch_ratio:g} × s/epoch(B={full}, full batch), "
                     f"N = {tc.num_examples}, s/epoch = ms/update × ⌈N/B⌉"),
          check=epoch),
  ]


def _generalization_claims(config) -> list[claims.Claim]:
  th = config.thresholds
  out = []
  for net in config.networks:
    def ends(r, name=net.name):
      rows = next(n for n in r["networks"] if n["name"] == name)["batches"]
      return rows[0], rows[-1]

    def train_better(r, ends=ends):
      sb, lb = ends(r)
      return claims.less_than(f"LB (B={lb['batch']}) train accuracy", lb["train_acc"],
                              f"SB (B={sb['batch']}) train accuracy", sb["train_acc"],
                              margin=th.train_accuracy_margin, paired=True)

    def test_better(r, ends=ends):
      sb, lb = ends(r)
      s, l = claims.Stat.of(sb["test_acc"]), claims.Stat.of(lb["test_acc"])
      return claims.Evidence(s.mean >= l.mean - th.test_accuracy_slack, {
          f"SB (B={sb['batch']}) test accuracy": s,
          f"LB (B={lb['batch']}) test accuracy": l,
      }, f"SB − LB = {s.mean - l.mean:+.3f}")

    def sharper(r, ends=ends):
      sb, lb = ends(r)
      s, l = claims.Stat.of(sb["sharpness"]), claims.Stat.of(lb["sharpness"])
      return claims.Evidence(l.mean > th.sharpness_ratio * s.mean, {
          f"SB (B={sb['batch']}) λmax": s, f"LB (B={lb['batch']}) λmax": l,
      }, f"λmax LB / SB = {l.mean / s.mean:.3g}")

    sb_b, lb_b = net.batch_sizes[0], net.batch_sizes[-1] or "full"
    setting = (f"{net.name}, B={sb_b} vs B={lb_b}, {config.epochs} epochs, lr per batch "
               f"size from {tuple(config.lr_grid)} by mean validation accuracy, "
               f"{len(config.seeds)} seeds")
    out += [
        claims.Claim(
            id=f"lec05.noisy_update_better_for_training.{net.name}",
            statement=("Noisy update is better for training: at equal epochs the small "
                       "batch reaches higher training accuracy"),
            source=SOURCE,
            threshold=(f"SB final train accuracy > LB's + {th.train_accuracy_margin:g} on "
                       f"every seed ({setting})"),
            check=train_better),
        claims.Claim(
            id=f"lec05.small_batch_better_on_test.{net.name}",
            statement="Small batch is better on testing data",
            source=KESKAR,
            threshold=(f"mean SB test accuracy ≥ mean LB test accuracy − "
                       f"{th.test_accuracy_slack:g} ({setting})"),
            check=test_better),
        claims.Claim(
            id=f"lec05.large_batch_sharper.{net.name}",
            statement="Large batch ends in a sharper minimum (small batch: flat minimum)",
            source=KESKAR,
            threshold=(f"mean top Hessian eigenvalue of the training loss at the end: "
                       f"LB > {th.sharpness_ratio:g} × SB ({setting}; Lanczos "
                       f"{config.hessian.num_iters} steps)"),
            check=sharper),
    ]
  return out


# ----------------------------------------------------------------------------- run


def _generalization_table(net) -> Table:
  def ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"
  rows = tuple((str(r["batch"]) + (" (full)" if r["full"] else ""), str(r["steps"]),
                f"{r['lr']:g}", ms(r["val_acc"]), ms(r["train_acc"]), ms(r["test_acc"]),
                ms(r["sharpness"]), ms(r["train_loss"])) for r in net["batches"])
  return Table(f"B. {net['name']}: chosen runs (N_train = {net['num_train']}, validation "
               f"{net['num_val']}, test {net['num_test']}; mean ± std over seeds)",
               ("batch", "updates", "chosen lr", "val acc", "train acc", "test acc",
                "λmax", "train loss"), rows)


def _selection_table(nets, lr_grid) -> Table:
  rows = []
  for net in nets:
    for r in net["batches"]:
      v = np.nan_to_num(r["val_grid"], nan=0.0).mean(0)
      rows.append((net["name"], str(r["batch"])) + tuple(
          f"{x:.3f}" + (" *" if i == r["lr_index"] else "") for i, x in enumerate(v)))
  return Table("B. Learning-rate selection: mean final validation accuracy per lr "
               "(* = chosen; the test split is not used)",
               ("network", "batch") + tuple(f"lr {x:g}" for x in lr_grid), tuple(rows))


def run(config, workdir: str, progress: bool = True) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  th = config.thresholds
  timing = time_updates(config.timing, progress)
  nets = [train_network(net, config, progress) for net in config.networks]
  results = {"timing": timing, "networks": nets}
  section = Section(name="lec05_batch_size", title="Lecture 5: batch size — time per "
                    "update / epoch, small vs large batch", command="")
  section.verdicts = [claims.judge(c, results)
                      for c in _timing_claims(config) + _generalization_claims(config)]
  b_par = parallel_batch(timing, th.flat_ratio)
  dev = jax.devices()[0]
  section.figures = [
      Figure(_plot_timing(timing, config.timing, b_par, os.path.join(workdir, "timing.png")),
             f"A. One jitted SGD update of an MLP {config.timing.input_dim}-"
             f"{config.timing.model.width}-{config.timing.model.width}-"
             f"{config.timing.num_classes} vs batch size on {dev.platform} "
             f"({dev.device_kind}): ms/update (dots: the {config.timing.repeats} rounds; "
             "line: median), s/epoch (= ms/update × ⌈N/B⌉) and examples/s."),
      Figure(_plot_generalization(nets, os.path.join(workdir, "batch_size_accuracy.png")),
             f"B. Same network, same {config.epochs} epochs, plain SGD with the lr chosen "
             "per batch size on validation accuracy: final training and test accuracy "
             "(top) and top Hessian eigenvalue of the training loss (bottom) vs batch size; "
             f"mean ± std over {len(config.seeds)} seeds."),
      Figure(_plot_curves(nets, os.path.join(workdir, "train_curves.png")),
             "B. Training accuracy per epoch for each batch size (chosen lr), mean ± std."),
  ]
  section.tables = [
      Table(f"A. Time vs batch size on {dev.platform} ({dev.device_kind}), N = "
            f"{config.timing.num_examples} (median of {config.timing.repeats} rounds)",
            ("batch", "ms/update", "min–max ms over rounds", "updates/epoch", "s/epoch",
             "examples/s"),
            tuple((str(r["batch"]), f"{r['ms_update']:.4g}",
                   f"{min(r['ms_rounds']):.3g}–{max(r['ms_rounds']):.3g}",
                   str(r["updates_per_epoch"]), f"{r['s_epoch']:.4g}",
                   f"{r['examples_per_s']:.4g}") for r in timing)),
  ] + [_generalization_table(n) for n in nets] + [_selection_table(nets, config.lr_grid)]
  section.notes = [
      "Timing: one jitted SGD update per Python call, as a training loop runs it "
      "(dispatch included), compilation and warm-up excluded; rounds interleave all batch "
      "sizes in one process and the median is reported. This machine's 2 cores are "
      "shared with other jobs, so absolute times are inflated and noisy; the claims use "
      "ratios of medians. s/epoch is derived (ms/update × ⌈N/B⌉), not timed separately.",
      "Generalization: plain SGD (no momentum), same initialization per seed for every "
      "batch size and lr; each epoch reshuffles and takes ⌊N/B⌋ updates (B = full: one "
      "gradient-descent step per epoch). The learning rate of each batch size is the grid "
      "entry with the best mean final validation accuracy (validation = held-out part of "
      "the training split); training / test accuracy are then read off those runs. "
      "λmax: Lanczos on the Hessian of the mean training cross-entropy over the whole "
      "training part, at the final parameters.",
      "Reading λmax (caveats, written after the first cpu run, no setting changed): at equal "
      "epochs the full-batch runs are far from converged (see 'train loss'), so their "
      "λmax belongs to a point still being trained, not to a minimum as in Keskar et al. "
      "(who train both batch sizes to ~100% training accuracy); and stable (S)GD keeps "
      "λmax ≲ 2 / lr, while the chosen lr differs between batch sizes, so the sharpness "
      "comparison mixes the batch size with the lr choice. Where the grid's largest lr was "
      "chosen, the grid did not bracket that batch size's best lr.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec05_batch_size", title="Lecture 5: batch size (time per "
                    "update / epoch; small vs large batch: training, testing, sharpness)",
                    config_file="configs/lec05_batch_size.py", run=run))
