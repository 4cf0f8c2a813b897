"""Lecture 9 (CNN): receptive field, parameter sharing, pooling, and what a CNN is not.

1. Receptive field: analytic (layer-list recursion) vs empirical (support of the gradient
   of one output unit w.r.t. the input) on CNN configs and raw layer lists
   (`leeml.receptive_field`).
2. Parameter sharing: on the real 16x16 digits, an MLP, a locally connected net (the
   CNN's receptive fields without sharing, `leeml.models.locally_connected`) and the CNN
   (fields + sharing): parameters, train and test accuracy over seeds. On MNIST-1D the
   paper's logistic / MLP / CNN table, on the regular and the shuffled-position task.
3. Pooling: the same CNN with and without 2x2 max pooling: multiply-adds (analytic and
   XLA's cost analysis), measured step time, accuracy; at 16x16 and at the native 8x8.
4. Invariance: the trained CNN on rotated and scaled test images (`leeml.transforms`),
   and the same CNN trained with random rotations/scalings (data augmentation).

All training runs on the population engine (`leeml.population`): one `classifier_program`
per model and data shape (Adam, the core's train step, the core's (seed, epoch)
permutation batches), every seed a member of it, so the seeds share one compile; on CPU
convolutions run one step per dispatch (the engine's default strategy).
"""

import functools
import math
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import claims, datasets, losses, plotting, population, runtime, steps, timing
from leeml import data as data_lib
from leeml import transforms
from leeml import receptive_field as rf
from leeml.lectures import Experiment, Figure, Section, Table, register
from leeml.models import MLP, get_model
from leeml.train_state import TrainState

SOURCE = ("Lecture 9 (Convolutional Neural Network), slides 'Receptive field', "
          "'Parameter sharing', 'Pooling', 'CNN is not invariant to scaling and rotation'")
Stat = claims.Stat


# ----------------------------------------------------------------------------- 1. fields


def _layer(spec) -> rf.Layer:
  kind, kernel, stride, padding, dilation = spec
  return rf.Layer(kind, int(kernel), int(stride), padding, int(dilation))


def receptive_fields(cfg) -> dict:
  """{arch: rf.compare(...) + 'via'}: analytic vs empirical on each listed architecture."""
  shape = (cfg.input_size, cfg.input_size, 1)
  out = {}
  for name, arch in cfg.cnn_archs.items():
    arch = arch.to_dict()
    r = rf.compare(rf.layers_from_cnn(arch), shape,
                   lambda s, u, arch=arch: rf.cnn_unit_fn(arch, s, u))
    out[name] = dict(r, via="leeml.models.CNN")
  for name, specs in cfg.layer_archs.items():
    out[name] = dict(rf.compare([_layer(s) for s in specs], shape), via="lax layer list")
  return out


def _plot_fields(fields, path: str) -> str:
  names = list(fields)
  fig, axes = plotting.figure(ncols=len(names), size=(2.6, 2.9))
  for ax, name in zip(axes[0], names):
    r = fields[name]
    ax.imshow(r["support"], cmap="Blues", vmin=0, vmax=1.4)
    (r0, r1), (c0, c1) = r["analytic"]
    ax.add_patch(plotting.plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1,
                                        fill=False, ec="r", lw=1.5))
    ax.set_title(f"{name}\nR={r['size'][0]}, J={r['jump'][0]}, unit {r['unit']}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
  axes[0][0].set_ylabel("input (28x28)")
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- training


class CNN1D(nn.Module):
  """A 1-D CNN for MNIST-1D: conv(k5, s2) -> conv(k3, s2) -> conv(k3, s2), relu, linear.

  The size of the MNIST-1D paper's CNN (3 conv layers of 25 channels, stride 2, padding
  1; Greydanus & Steinbach 2020): the 40-vector is a 1-D signal with one channel, so the
  convolutions slide along its one axis (a 2-D CNN on a 1x40 image would waste all but
  one row of each k x k kernel on padding).
  """
  num_outputs: int
  channels: int = 25

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    x = x.reshape(x.shape[0], -1, 1)  # (N, 40, 1)
    for i, k in enumerate((5, 3, 3)):
      x = nn.relu(nn.Conv(self.channels, (k,), strides=2, padding=1, name=f"conv_{i}")(x))
    return nn.Dense(self.num_outputs, name="head")(x.reshape(x.shape[0], -1))


def num_params(params) -> int:
  return int(sum(p.size for p in jax.tree.leaves(params)))


def augment_spec(inv_cfg) -> tuple[float, float, float]:
  """(max angle, min, max content magnification) of the training augmentation."""
  lo, hi = inv_cfg.augment_magnification
  return float(inv_cfg.augment_max_angle), float(lo), float(hi)


def augment(spec, key, x):
  """Images randomly rotated by ±spec[0] degrees and magnified by U(spec[1], spec[2])."""
  max_angle, lo, hi = spec
  theta = transforms.random_affine(key, x.shape[0], max_angle=max_angle,
                                   scale_range=(1.0 / hi, 1.0 / lo))
  return transforms.warp(x, theta)


def _jit(fn=None, **kw):
  """jax.jit with leeml's CPU step options (Eigen convolutions, see leeml.runtime)."""
  if fn is None:
    return functools.partial(_jit, **kw)
  return jax.jit(fn, compiler_options=runtime.step_compiler_options(), **kw)


def classifier_program(model, data, tcfg, *, augmentation=None,
                       family: str = "cnn") -> population.Program:
  """A population Program that trains `model` with Adam on `data` (the core's pieces).

  data: (x_train, y_train, x_test, y_test); tcfg: steps, batch_size, learning_rate. The
  step is the core's `steps.make_train_step` (softmax cross-entropy, `TrainState`; the
  grad/param/update norms only at the last step), preceded, with `augmentation`
  (`augment_spec(...)`), by a random rotation/scaling of the minibatch drawn from the
  member's key folded with the step. Batches are the engine's (seed, epoch) permutation
  order. Evaluated splits: 'train' and 'test' (accuracy and loss).
  """
  x_tr, y_tr, x_te, y_te = data
  # inject_hyperparams: the core step logs the learning rate from the optimizer state.
  tx = optax.inject_hyperparams(optax.adam)(learning_rate=float(tcfg.learning_rate))
  loss_fn = losses.get_loss("softmax_cross_entropy")
  core_step = steps.make_train_step(model, tx, loss_fn, diagnostics_every=int(tcfg.steps),
                                    num_train_steps=int(tcfg.steps))
  eval_step = steps.make_eval_step(model, loss_fn)
  sample = jnp.zeros((1, *x_tr.shape[1:]), jnp.float32)

  def init(key):
    return TrainState.create(model.init(key, sample), tx)

  def train_step(state, batch, rng, hparams):
    del hparams
    if augmentation is not None:
      k_aug = jax.random.fold_in(jax.random.fold_in(rng, state.step), 1)
      batch = dict(batch, inputs=augment(augmentation, k_aug, batch["inputs"]))
    return core_step(state, batch, rng)

  def evaluate(state, batch):
    sums = dict(eval_step(state, batch))
    sums["accuracy"] = sums.pop("correct")
    return sums

  return population.Program(
      init=init, train_step=train_step, train=data_lib.ArraySplit(x_tr, y_tr),
      batch_size=int(tcfg.batch_size), evaluate=evaluate,
      splits={"train": data_lib.ArraySplit(x_tr, y_tr), "test": data_lib.ArraySplit(x_te, y_te)},
      eval_batch_size=1024, family=family)


def train_arm(program: population.Program, seeds, tcfg, *, eval_every: int = 0,
              timed: bool = False, desc: str = "") -> list[dict]:
  """Trains one member per seed of `program` for `tcfg.steps` steps; per-seed run dicts
  (seed, params, history of the evaluations, num_params, seconds_per_step, final train
  and test accuracy).

  eval_every: evaluate on the whole train and test splits every n steps (0: only at the
  end). timed: one `population.run` per seed, each timed (`seconds_per_step` = its
  training wall time less XLA compilation, over the steps; its evaluations included);
  otherwise every seed in one run (`seconds_per_step` NaN). Either way the seeds share
  one compiled step (the same Program object).
  """
  num_steps = int(tcfg.steps)
  members = [population.Member(int(s), arm=desc) for s in seeds]
  groups = [[m] for m in members] if timed else [members]
  runs = []
  for group in groups:
    with timing.record() as rec, timing.phase("train"):
      result = population.run(program, group, num_steps=num_steps, eval_every=eval_every,
                              progress=False, desc=desc)
    per_step = rec.seconds["train"] / num_steps if timed else math.nan
    steps_, train_acc = result.curves("eval_train_accuracy")
    _, test_acc = result.curves("eval_test_accuracy")
    for i, m in enumerate(group):
      params = result.params(i)
      hist = [dict(step=int(t), train_accuracy=float(a), test_accuracy=float(b))
              for t, a, b in zip(steps_, train_acc[i], test_acc[i])]
      runs.append(dict(seed=m.seed, params=params, history=hist, num_params=num_params(params),
                       seconds_per_step=per_step, train_accuracy=hist[-1]["train_accuracy"],
                       test_accuracy=hist[-1]["test_accuracy"],
                       # a member frozen at a non-finite step keeps its last finite state
                       nonfinite_step=result.nonfinite_steps.get(i)))
  return runs


@functools.lru_cache(maxsize=None)
def _digits(image_size: int):
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": "digits",
                                                      "image_size": image_size}))
  return (np.asarray(ds.train.inputs, np.float32), np.asarray(ds.train.targets, np.int32),
          np.asarray(ds.test.inputs, np.float32), np.asarray(ds.test.targets, np.int32))


@functools.lru_cache(maxsize=None)
def _mnist1d(shuffled: bool):
  ds = datasets.get_dataset(ml_collections.ConfigDict({"name": "mnist1d",
                                                      "shuffled": shuffled}))
  return (np.asarray(ds.train.inputs, np.float32), np.asarray(ds.train.targets, np.int32),
          np.asarray(ds.test.inputs, np.float32), np.asarray(ds.test.targets, np.int32))


def _model(model_cfg, image_size: int | None = None, **overrides):
  cfg = ml_collections.ConfigDict(dict(model_cfg.to_dict(), **overrides))
  return get_model(cfg, num_outputs=10)


# ----------------------------------------------------------------------------- 2. sharing


def _digits_arm(config, model, data, desc: str, augmentation=None) -> list[dict]:
  """A digits arm: every seed, timed, evaluated `config.digits.eval_every` steps apart."""
  family = "mlp" if isinstance(model, MLP) else "cnn"
  program = classifier_program(model, data, config.digits, augmentation=augmentation,
                               family=family)
  return train_arm(program, config.seeds, config.digits, eval_every=config.digits.eval_every,
                   timed=True, desc=desc)


def sharing_runs(config) -> dict:
  data = _digits(config.digits.image_size)
  return {name: _digits_arm(config, _model(m), data, f"digits {name}")
          for name, m in config.models.items()}


def mnist1d_runs(config) -> dict:
  """{(shuffled, model): runs} for the paper's logistic / MLP / CNN trio."""
  m = config.mnist1d
  models = {"logistic": MLP(num_outputs=10, depth=0),
            "mlp": MLP(num_outputs=10, depth=m.mlp_depth, width=m.mlp_width),
            "cnn": CNN1D(num_outputs=10, channels=m.cnn_channels)}
  families = {"logistic": "mlp", "mlp": "mlp", "cnn": "cnn"}
  out = {}
  for shuffled in m.shuffled:
    for name, model in models.items():
      # Final accuracies only (no curves are plotted): evaluated once, at the end.
      program = classifier_program(model, _mnist1d(shuffled), m, family=families[name])
      out[(shuffled, name)] = train_arm(
          program, config.seeds, m, desc=f"mnist1d{'-shuffled' if shuffled else ''} {name}")
  return out


def _final(runs, key: str) -> list[float]:
  return [r[key] for r in runs]


def _plot_sharing(sharing, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(4.8, 3.6))
  for i, (key, title) in enumerate((("train_accuracy", "train accuracy (whole split)"),
                                    ("test_accuracy", "test accuracy (300 images)"))):
    ax = axes[0][i]
    for name, runs in sharing.items():
      steps = [h["step"] for h in runs[0]["history"]]
      plotting.mean_band(ax, steps, [[h[key] for h in r["history"]] for r in runs],
                         f"{name} ({runs[0]['num_params']:,} params)")
    ax.set_xlabel("Adam step")
    ax.set_ylabel(title)
    ax.set_title(f"digits 16x16: {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  return plotting.save(fig, path)


def _plot_filters(params, path: str) -> str:
  kernel = np.asarray(params["conv_0"]["kernel"])[..., 0, :]  # (k, k, C_out)
  n = kernel.shape[-1]
  cols = min(n, 8)
  fig, axes = plotting.figure(ncols=cols, nrows=math.ceil(n / cols), size=(1.0, 1.1))
  for j, ax in enumerate(axes.ravel()):
    ax.set_xticks([])
    ax.set_yticks([])
    if j < n:
      v = np.abs(kernel[..., j]).max()
      ax.imshow(kernel[..., j], cmap="RdBu_r", vmin=-v, vmax=v)
      ax.set_title(f"filter {j}", fontsize=6)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- 3. pooling


def forward_macs(model_cfg, input_shape) -> int:
  """Multiply-adds of one forward pass (one example) of a CNN config: convs + dense."""
  layers = rf.layers_from_cnn(model_cfg)
  shapes = [tuple(input_shape)] + rf.feature_shapes(layers, input_shape)
  macs = 0
  for layer, (_, _, c_in), (h, w, c) in zip(layers, shapes[:-1], shapes[1:]):
    if layer.kind == "conv":
      macs += h * w * layer.kernel ** 2 * c_in * c
  flat = int(np.prod(shapes[-1]))
  width = dict(model_cfg).get("dense_width", 0)
  macs += flat * width + (width or flat) * 10
  return macs


def xla_flops(model, params, input_shape) -> float:
  """XLA's cost analysis of one forward pass (one example); best effort, may be nan."""
  x = jnp.zeros((1, *input_shape))
  try:
    cost = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, x).compile()
    cost = cost.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", math.nan))
  except Exception:  # pylint: disable=broad-except
    return math.nan


def pooling_runs(config, sharing) -> dict:
  """{(image_size, channels, pool): dict(runs, macs, xla_flops)}; reuses the sharing CNN."""
  out = {}
  for size, channels in config.pooling.setups:
    data = _digits(size)
    channels = tuple(channels)
    for pool in config.pooling.pools:
      cfg = dict(config.models.cnn.to_dict(), pool=pool, channels=channels)
      model = _model(config.models.cnn, pool=pool, channels=channels)
      same = (size == config.digits.image_size and pool == config.models.cnn.pool
              and channels == tuple(config.models.cnn.channels))
      runs = sharing["cnn"] if same else _digits_arm(config, model, data,
                                                     f"digits{size} {channels} pool={pool}")
      shape = data[0].shape[1:]
      out[(size, channels, pool)] = dict(runs=runs, macs=forward_macs(cfg, shape),
                                         xla_flops=xla_flops(model, runs[0]["params"], shape))
  return out


# ----------------------------------------------------------------------------- 4. invariance


@functools.lru_cache(maxsize=None)
def _warped_predictions(model):
  @_jit
  def predict(params, x, thetas):  # -> (T, N) classes of x warped by each theta
    xs = jax.vmap(lambda t: transforms.warp(x, t))(thetas)
    logits = model.apply({"params": params}, xs.reshape(-1, *x.shape[1:]))
    return jnp.argmax(logits, -1).reshape(thetas.shape[0], x.shape[0])
  return predict


def sweep_accuracy(model, params, x, y, angles, magnifications) -> dict:
  """Test accuracy per rotation (mean over ±angle) and per content magnification."""
  thetas = jnp.stack([transforms.affine_matrix(s * a, 1.0) for a in angles for s in (1, -1)]
                     + [transforms.affine_matrix(0.0, 1.0 / m) for m in magnifications])
  with timing.phase("eval"):
    pred = _warped_predictions(model)(params, jnp.asarray(x), thetas.astype(jnp.float32))
    acc = np.asarray(pred == jnp.asarray(y)[None], np.float64).mean(1)
  rot = acc[: 2 * len(angles)].reshape(len(angles), 2).mean(1)
  return dict(rotation=rot.tolist(), scale=acc[2 * len(angles):].tolist())


def invariance_runs(config, sharing) -> dict:
  inv = config.invariance
  data = _digits(config.digits.image_size)
  model = _model(config.models.cnn)
  aug_runs = _digits_arm(config, model, data, "digits cnn + augmentation",
                         augmentation=augment_spec(inv))
  out = {}
  for name, runs in (("plain", sharing["cnn"]), ("augmented", aug_runs)):
    out[name] = [dict(sweep_accuracy(model, r["params"], data[2], data[3], inv.angles,
                                     inv.magnifications), test_accuracy=r["test_accuracy"],
                      seed=r["seed"], nonfinite_step=r["nonfinite_step"])
                 for r in runs]
  return out


def _transformed_mean(sweep, inv) -> float:
  """Mean accuracy over the sweep's transformed points (angle 0 / magnification 1 out)."""
  rot = [a for a, ang in zip(sweep["rotation"], inv.angles) if ang != 0]
  sc = [a for a, m in zip(sweep["scale"], inv.magnifications) if m != 1.0]
  return float(np.mean(rot + sc))


def _plot_invariance(inv_runs, inv, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(4.8, 3.6))
  for name, runs in inv_runs.items():
    plotting.mean_band(axes[0][0], inv.angles, [r["rotation"] for r in runs], name)
    plotting.mean_band(axes[0][1], inv.magnifications, [r["scale"] for r in runs], name)
  lo, hi = inv.augment_magnification
  axes[0][0].axvspan(0, inv.augment_max_angle, color="g", alpha=0.08,
                     label="augmentation range")
  axes[0][1].axvspan(lo, hi, color="g", alpha=0.08, label="augmentation range")
  for ax, xlabel in zip(axes[0], ("rotation of the test images (degrees, ±)",
                                  "magnification of the test images' content")):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.axhline(0.1, color="k", ls=":", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  axes[0][1].set_xscale("log", base=2)
  return plotting.save(fig, path)


def _plot_examples(data, inv, path: str) -> str:
  x = jnp.asarray(data[2][:1])
  thetas = ([transforms.affine_matrix(a, 1.0) for a in inv.angles]
            + [transforms.affine_matrix(0.0, 1.0 / m) for m in inv.magnifications])
  labels = [f"{a}°" for a in inv.angles] + [f"x{m:g}" for m in inv.magnifications]
  fig, axes = plotting.figure(ncols=len(thetas), size=(0.9, 1.1))
  for ax, t, lab in zip(axes[0], thetas, labels):
    ax.imshow(np.asarray(transforms.warp(x, t))[0, ..., 0], cmap="gray_r")
    ax.set_title(lab, fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, inv = config.thresholds, config.invariance
  out = []

  def fields_agree(r):
    f = r["fields"]
    bad = [n for n, v in f.items() if not v["agree"]]
    return claims.Evidence(len(bad) <= th.rf_mismatch, {
        "architectures": Stat.of([len(f)]),
        "analytic == empirical": Stat.of([sum(v["agree"] for v in f.values())]),
    }, "mismatch: " + ", ".join(bad) if bad else "all spans equal")
  out.append(claims.Claim(
      id="lec09.receptive_field.analytic_equals_empirical",
      statement=("The receptive field implied by kernel size, stride and padding is the set "
                 "of input pixels one output unit depends on"),
      source=SOURCE,
      threshold=(f"on all {len(config.rf.cnn_archs) + len(config.rf.layer_archs)} "
                 "architectures: analytic span (rows, columns) == support of the gradient"),
      check=fields_agree))

  def fewer(r):
    p = {n: r["sharing"][n][0]["num_params"] for n in r["sharing"]}
    passed = all(p["cnn"] * th.param_ratio <= p[n] for n in p if n != "cnn")
    return claims.Evidence(passed, {f"{n} parameters": Stat.of([v]) for n, v in p.items()},
                           ", ".join(f"{n}/cnn = {v / p['cnn']:.1f}" for n, v in p.items()))
  out.append(claims.Claim(
      id="lec09.sharing.fewer_parameters",
      statement="Receptive fields + parameter sharing: far fewer parameters than an MLP",
      source=SOURCE,
      threshold=f"CNN parameters x {th.param_ratio:g} <= MLP's and locally connected net's",
      check=fewer))

  def best_test(r):
    t = {n: _final(runs, "test_accuracy") for n, runs in r["sharing"].items()}
    passed = all(np.mean(t["cnn"]) > np.mean(v) for n, v in t.items() if n != "cnn")
    return claims.Evidence(passed, {f"{n} test accuracy": Stat.of(v) for n, v in t.items()},
                           "CNN mean test accuracy is " + ("" if passed else "not ") + "the best")
  out.append(claims.Claim(
      id="lec09.sharing.cnn_best_test",
      statement="Larger model bias, less overfitting: the CNN tests best (16x16 digits)",
      source=SOURCE,
      threshold="mean test accuracy: CNN > MLP and CNN > locally connected",
      check=best_test))

  def mlp_overfits(r):
    s = r["sharing"]
    tr = {n: _final(s[n], "train_accuracy") for n in ("mlp", "cnn")}
    gap = {n: [a - b for a, b in zip(tr[n], _final(s[n], "test_accuracy"))] for n in tr}
    passed = (np.mean(tr["mlp"]) >= np.mean(tr["cnn"]) - th.train_tolerance
              and np.mean(gap["mlp"]) > np.mean(gap["cnn"]))
    return claims.Evidence(passed, {
        "MLP train accuracy": Stat.of(tr["mlp"]), "CNN train accuracy": Stat.of(tr["cnn"]),
        "MLP train-test gap": Stat.of(gap["mlp"]), "CNN train-test gap": Stat.of(gap["cnn"]),
    }, "")
  out.append(claims.Claim(
      id="lec09.sharing.mlp_fits_train_but_tests_worse",
      statement="The flexible MLP fits the training set as well but overfits more",
      source=SOURCE,
      threshold=(f"mean train accuracy MLP >= CNN - {th.train_tolerance}; mean train-test "
                 "gap MLP > CNN"),
      check=mlp_overfits))

  def paper_order(r):
    m = r["mnist1d"]
    acc = {n: _final(m[(False, n)], "test_accuracy") for n in ("logistic", "mlp", "cnn")}
    ok = all(a < b < c for a, b, c in zip(acc["logistic"], acc["mlp"], acc["cnn"]))
    return claims.Evidence(ok, {f"{n} test accuracy": Stat.of(v) for n, v in acc.items()}, "")
  out.append(claims.Claim(
      id="lec09.mnist1d.logistic_mlp_cnn_order",
      statement=("MNIST-1D, paper table shape (logistic 32% < MLP 68% < CNN 94%, "
                 "arXiv:2011.14439)"),
      source="Greydanus & Steinbach 2020, 'Scaling down deep learning', MNIST-1D table",
      threshold="every seed: test accuracy logistic < MLP < CNN",
      check=paper_order))

  def shuffled(r):
    m = r["mnist1d"]
    acc = {n: _final(m[(True, n)], "test_accuracy") for n in ("mlp", "cnn")}
    ev = claims.less_than("shuffled CNN test accuracy", acc["cnn"],
                          "shuffled MLP test accuracy", acc["mlp"], paired=True)
    return ev
  out.append(claims.Claim(
      id="lec09.mnist1d.shuffled_cnn_below_mlp",
      statement=("With the positions shuffled the CNN's locality bias is wrong and it falls "
                 "below the MLP (paper: CNN 56% < MLP 68%)"),
      source="Greydanus & Steinbach 2020, 'Scaling down deep learning', MNIST-1D table",
      threshold="every seed: shuffled CNN test accuracy < shuffled MLP test accuracy",
      check=shuffled))

  ch = tuple(config.models.cnn.channels)

  def pool_cheaper(r):
    size = config.digits.image_size
    p, n = r["pooling"][(size, ch, "max")], r["pooling"][(size, ch, "none")]
    ratio = n["macs"] / p["macs"]
    t_p, t_n = _final(p["runs"], "seconds_per_step"), _final(n["runs"], "seconds_per_step")
    passed = ratio >= th.pool_mac_ratio and np.median(t_p) < np.median(t_n)
    return claims.Evidence(passed, {
        "MACs no pool / max pool": Stat.of([ratio]),
        "XLA flops no pool / max pool": Stat.of([n["xla_flops"] / p["xla_flops"]]),
        "ms per step, max pool": Stat.of(np.multiply(t_p, 1e3)),
        "ms per step, no pool": Stat.of(np.multiply(t_n, 1e3)),
    }, "")
  out.append(claims.Claim(
      id="lec09.pooling.cuts_computation",
      statement="Pooling decreases computation",
      source=SOURCE,
      threshold=(f"{config.digits.image_size}x{config.digits.image_size} digits CNN: forward "
                 f"MACs without pooling >= {th.pool_mac_ratio:g}x with; median step time "
                 "with pooling < without (timings on a shared CPU)"),
      check=pool_cheaper))

  def pool_accuracy(r):
    size = config.digits.image_size
    a_p = _final(r["pooling"][(size, ch, "max")]["runs"], "test_accuracy")
    a_n = _final(r["pooling"][(size, ch, "none")]["runs"], "test_accuracy")
    loss = float(np.mean(a_n) - np.mean(a_p))
    return claims.Evidence(loss <= th.pool_max_acc_loss, {
        "test accuracy, max pool": Stat.of(a_p), "test accuracy, no pool": Stat.of(a_n),
        "accuracy loss from pooling": Stat.of([loss])}, "")
  out.append(claims.Claim(
      id="lec09.pooling.little_accuracy_loss",
      statement="Subsampling the pixels will not change the object (little accuracy lost)",
      source=SOURCE,
      threshold=(f"mean test accuracy (no pool) - (max pool) <= {th.pool_max_acc_loss} "
                 f"on {config.digits.image_size}x{config.digits.image_size} digits"),
      check=pool_accuracy))

  angles = list(inv.angles)
  mags = list(inv.magnifications)
  i90, i1 = angles.index(90), mags.index(1.0)

  def rotation(r):
    rot = np.mean([s["rotation"] for s in r["invariance"]["plain"]], axis=0)
    rise = float(np.max(np.diff(rot[: i90 + 1])))
    drop = float(rot[0] - rot[i90])
    return claims.Evidence(rise <= th.monotone_tolerance and drop >= th.rotation_drop, {
        "accuracy at 0°": Stat.of([rot[0]]), "accuracy at 90°": Stat.of([rot[i90]]),
        "largest rise along 0..90°": Stat.of([rise])},
        "mean accuracy by angle: " + ", ".join(f"{a}°:{v:.3f}" for a, v in zip(angles, rot)))
  out.append(claims.Claim(
      id="lec09.invariance.rotation_hurts",
      statement="CNN is not invariant to rotation: accuracy drops as rotation grows",
      source=SOURCE,
      threshold=(f"mean over seeds: accuracy non-increasing over 0..90° (rises <= "
                 f"{th.monotone_tolerance}) and acc(0°) - acc(90°) >= {th.rotation_drop}"),
      check=rotation))

  def scaling(r):
    sc = np.mean([s["scale"] for s in r["invariance"]["plain"]], axis=0)
    down, up = sc[: i1 + 1][::-1], sc[i1:]   # moving away from magnification 1
    rise = float(max(np.max(np.diff(down)), np.max(np.diff(up))))
    drops = (float(sc[i1] - sc[0]), float(sc[i1] - sc[-1]))
    passed = rise <= th.monotone_tolerance and min(drops) >= th.scale_drop
    return claims.Evidence(passed, {
        f"drop at x{mags[0]:g}": Stat.of([drops[0]]), f"drop at x{mags[-1]:g}": Stat.of([drops[1]]),
        "largest rise moving away from x1": Stat.of([rise])},
        "mean accuracy by magnification: " + ", ".join(f"x{m:g}:{v:.3f}"
                                                        for m, v in zip(mags, sc)))
  out.append(claims.Claim(
      id="lec09.invariance.scaling_hurts",
      statement="CNN is not invariant to scaling: accuracy drops as the scale moves from 1",
      source=SOURCE,
      threshold=(f"mean over seeds: non-increasing moving away from x1 (rises <= "
                 f"{th.monotone_tolerance}); drop >= {th.scale_drop} at x{mags[0]:g} and "
                 f"x{mags[-1]:g}"),
      check=scaling))

  def augmentation(r):
    plain = [_transformed_mean(s, inv) for s in r["invariance"]["plain"]]
    aug = [_transformed_mean(s, inv) for s in r["invariance"]["augmented"]]
    ev = claims.less_than("plain CNN, mean over transformed tests", plain,
                          "augmented CNN, mean over transformed tests", aug,
                          margin=th.augment_gain, paired=True)
    clean = {n: _final(r["invariance"][n], "test_accuracy") for n in ("plain", "augmented")}
    return claims.Evidence(ev.passed, dict(ev.numbers, **{
        f"{n} CNN, untransformed test accuracy": Stat.of(v) for n, v in clean.items()}),
        ev.detail)
  out.append(claims.Claim(
      id="lec09.invariance.augmentation_recovers",
      statement="We need data augmentation: training on rotated/scaled images recovers part",
      source=SOURCE,
      threshold=(f"every seed: mean accuracy over the transformed test points, augmented >= "
                 f"plain + {th.augment_gain} (augmentation ±{inv.augment_max_angle:g}°, "
                 f"x{inv.augment_magnification[0]:g}..{inv.augment_magnification[1]:g})"),
      check=augmentation))
  return out


# ----------------------------------------------------------------------------- run


def _all_runs(results) -> list[tuple[str, list[dict]]]:
  """(label, runs) of every trained arm in `results`."""
  out = [(f"digits {n}", r) for n, r in results["sharing"].items()]
  out += [(f"mnist1d {'shuffled' if sh else 'regular'} {n}", r)
          for (sh, n), r in results["mnist1d"].items()]
  out += [(f"pooling {k}", p["runs"]) for k, p in results["pooling"].items()]
  out.append(("digits cnn + augmentation", results["invariance"]["augmented"]))
  return out


def _acc_row(name, runs, extra=()):
  return (name, f"{runs[0]['num_params']:,}", *extra,
          str(Stat.of(_final(runs, "train_accuracy"))),
          str(Stat.of(_final(runs, "test_accuracy"))))


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  results = {"fields": receptive_fields(config.rf)}
  results["sharing"] = sharing_runs(config)
  results["mnist1d"] = mnist1d_runs(config)
  results["pooling"] = pooling_runs(config, results["sharing"])
  results["invariance"] = invariance_runs(config, results["sharing"])

  section = Section(name="lec09_cnn", title="Lecture 9: CNN — receptive field, parameter "
                    "sharing, pooling, (no) invariance", command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  join = lambda f: os.path.join(workdir, f)  # pylint: disable=unnecessary-lambda-assignment
  n_seeds = len(config.seeds)
  section.figures = [
      Figure(_plot_fields(results["fields"], join("receptive_fields.png")),
             "Receptive field of the centre unit of the last layer on a 28x28 input: blue, "
             "the pixels where its gradient is nonzero (empirical); red box, the analytic "
             "span. R = size, J = jump (pixels between neighbouring units' fields)."),
      Figure(_plot_sharing(results["sharing"], join("sharing_curves.png")),
             f"MLP vs locally connected vs CNN on 16x16 digits, mean ± std over {n_seeds} "
             "seeds: train (left) and test (right) accuracy during training."),
      Figure(_plot_filters(results["sharing"]["cnn"][0]["params"], join("cnn_filters.png")),
             "The first-layer 3x3 filters of the trained CNN (seed 0): the shared pattern "
             "detectors."),
      Figure(_plot_invariance(results["invariance"], config.invariance,
                              join("invariance.png")),
             f"Test accuracy on rotated (left) and scaled (right) test digits, mean ± std "
             f"over {n_seeds} seeds; plain CNN vs the same CNN trained with augmentation. "
             "Dotted: chance."),
      Figure(_plot_examples(_digits(config.digits.image_size), config.invariance,
                            join("sweep_examples.png")),
             "One test digit at each rotation and magnification of the sweep (bilinear "
             "warp, zero fill: leeml.transforms)."),
  ]
  f = results["fields"]
  field_rows = tuple((n, v["via"], str(v["unit"]), str(v["size"][0]), str(v["jump"][0]),
                      str(v["analytic"]), str(v["empirical"]), "yes" if v["agree"] else "NO",
                      "yes" if v["rectangle"] else "no (holes)") for n, v in f.items())
  m1d = results["mnist1d"]
  paper = config.paper_mnist1d
  m1d_rows = tuple(
      (("shuffled" if sh else "regular"), name, f"{runs[0]['num_params']:,}",
       str(Stat.of(_final(runs, "train_accuracy"))), str(Stat.of(_final(runs, "test_accuracy"))),
       f"{paper[name][int(sh)]:.2f}") for (sh, name), runs in m1d.items())
  pool_rows = []
  for (size, channels, pool), p in results["pooling"].items():
    side = [size]
    for _ in channels:
      side.append(side[-1] // 2 if pool != "none" else side[-1])
    pool_rows.append((f"{size}x{size}", str(channels), pool,
                      " -> ".join(f"{v}x{v}" for v in side),
                      f"{p['runs'][0]['num_params']:,}",
                      f"{p['macs']:,}", f"{p['xla_flops']:,.0f}",
                      str(Stat.of(np.multiply(_final(p["runs"], "seconds_per_step"), 1e3))),
                      str(Stat.of(_final(p["runs"], "train_accuracy"))),
                      str(Stat.of(_final(p["runs"], "test_accuracy")))))
  inv = config.invariance
  inv_rows = []
  for name, runs in results["invariance"].items():
    inv_rows += [(name, f"rotate {a}°", str(Stat.of([r["rotation"][i] for r in runs])))
                 for i, a in enumerate(inv.angles)]
    inv_rows += [(name, f"magnify x{m:g}", str(Stat.of([r["scale"][i] for r in runs])))
                 for i, m in enumerate(inv.magnifications)]
  section.tables = [
      Table("Receptive field: analytic vs empirical (centre unit, 28x28 input)",
            ("architecture", "empirical via", "unit", "R", "J", "analytic (rows, cols)",
             "empirical (rows, cols)", "equal", "support = rectangle"), field_rows),
      Table(f"Parameter sharing on digits {config.digits.image_size}x"
            f"{config.digits.image_size} ({config.digits.steps} Adam steps, lr "
            f"{config.digits.learning_rate}, batch {config.digits.batch_size})",
            ("model", "parameters", "train accuracy", "test accuracy"),
            tuple(_acc_row(n, r) for n, r in results["sharing"].items())),
      Table(f"MNIST-1D ({config.mnist1d.steps} Adam steps, lr {config.mnist1d.learning_rate},"
            f" batch {config.mnist1d.batch_size}) vs the paper's test accuracy",
            ("task", "model", "parameters", "train accuracy", "test accuracy",
             "paper test accuracy"), m1d_rows),
      Table("Pooling: computation and accuracy (digits CNN, 2x2 max pool after each conv "
            "vs none)", ("image", "channels", "pool", "feature maps", "parameters",
                         "forward MACs / example", "XLA flops / example",
                         "ms / train step (shared CPU)", "train accuracy", "test accuracy"),
            tuple(pool_rows)),
      Table("Invariance sweep: test accuracy of the CNN on transformed test images",
            ("training", "test transform", "test accuracy"), tuple(inv_rows)),
  ]
  section.notes = [
      "Empirical receptive field: the support of ∂(unit)/∂(input) with all conv weights 1, "
      "biases 0 and a constant input, so no path cancels and no ReLU is dead; max pooling "
      "is replaced by average pooling over the same windows for this measurement (max "
      "routes the gradient to one pixel per window). Layer lists the CNN model cannot "
      "express (dilation, explicit padding) are run through lax directly.",
      "MNIST-1D: logistic = MLP of depth 0; MLP = 2 x 100 ReLU; CNN = the 1-D CNN of the "
      "paper's size (3 conv layers, 25 channels, kernels 5/3/3, stride 2, padding 1) "
      "sliding along the 40-vector (a 1x40 image with k x k kernels would waste k-1 kernel "
      "rows on padding). Paper numbers are from its table (6,000 steps); fewer steps here.",
      "Rotations are averaged over ±angle; magnification m shows the content m times "
      "larger (affine scale 1/m), cropped or zero-filled at the border.",
      "Step time of a seed: the wall time of its population run (one member, the "
      "arm's periodic evaluations on the train and test splits included, XLA compilation "
      "excluded via leeml.timing) over its steps, measured on a shared CPU; MACs are counted per layer (conv: H'W'k²C_in C_out, "
      "dense: in x out) and XLA flops come from jit(...).lower().compile().cost_analysis().",
      "On the 16x16 digits (upsampled 8x8 images, 1,497 training examples) the three "
      "models' test accuracies differ by about one of the 300 test images, within a seed's "
      "std: the sharing claims there are decided by small margins. MNIST-1D (translated, "
      "sheared 1-D patterns) separates the models clearly.",
      "Pooling probes (no claim): after a first cpu-scale run showed no accuracy loss from "
      "two poolings on the native 8x8 digits, a third conv + pool setup (8 -> 4 -> 2 -> 1 "
      "maps) was added to look further for where pooling hurts; thresholds unchanged.",
      f"Seeds {tuple(config.seeds)}; a seed fixes the initialization and the minibatch "
      "order (the core's (seed, epoch) permutations: every epoch sees each training "
      "example once) and the augmentation draws.",
  ]
  frozen = [f"{desc}: seed {r['seed']} at step {r['nonfinite_step']}"
            for desc, runs in _all_runs(results) for r in runs if r["nonfinite_step"]]
  if frozen:
    section.notes.append("Non-finite loss (member frozen at its last finite state): "
                         + "; ".join(frozen))
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec09_cnn", title="Lecture 9: CNN (receptive field, parameter "
                    "sharing, pooling, invariance)", config_file="configs/lec09_cnn.py",
                    run=run))
