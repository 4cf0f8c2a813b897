"""Lecture 14 (GAN): a DCGAN-style GAN and a conditional GAN on the embedded digits, judged
by an in-project classifier (Fréchet distance on its features, class histogram, IS).

The seeds of each GAN train as one population (`leeml.population.run` of
`leeml.gan.train.program`, one compile): an unconditional `ConvGenerator` /
`ConvCritic` pair and a conditional one (label embedding in G, projection critic) on the
digits' train split. A digit classifier (the lecture-9 CNN, `leeml.gan.evaluation`) is
trained once on the same split; it scores the generated samples, real held-out digits
(the reference) and trivial baselines, all on sets of the same size (the Fréchet
distance's finite-sample bias depends on it). See configs/lec14_digits.py for the claims.
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from leeml import claims, data, datasets, plotting, population, timing
from leeml.gan import conv, evaluation
from leeml.gan import train as gan_train
from leeml.lectures import Experiment, Figure, Section, Table, register, run_dir

SOURCE = ("Lecture 14 (GAN), slides 'Quality of Image', 'Diversity - Mode Collapse / Mode "
          "Dropping', 'Fréchet Inception Distance (FID)' and 'Conditional Generation'")
NUM_CLASSES = 10


def load_digits(config):
  """(train images, train labels, test images, test labels) as numpy arrays in [0, 1]."""
  ds = datasets.get_dataset(config.dataset)
  return (np.asarray(ds.train.inputs, np.float32), np.asarray(ds.train.targets, np.int32),
          np.asarray(ds.test.inputs, np.float32), np.asarray(ds.test.targets, np.int32))


def build_models(config, conditional: bool):
  n = NUM_CLASSES if conditional else 0
  g = conv.ConvGenerator(image_size=config.image_size, num_classes=n, **dict(config.generator))
  d = conv.ConvCritic(num_classes=n, **dict(config.critic))
  return g, d


def train_split(train_x, train_y) -> data.ArraySplit:
  """The GAN's training split: images as inputs, labels as targets (conditional GAN)."""
  return data.ArraySplit(np.asarray(train_x, np.float32), np.asarray(train_y, np.int32))


@functools.lru_cache(maxsize=8)
def _jit_apply(generator):
  """One jitted `generator.apply` per generator (a fresh `jax.jit` of the bound method
  at every call compiled again: 6 compiles per run for 2 generators)."""
  return jax.jit(generator.apply)


def generate(generator, g_params, key, n: int, latent_dim: int, labels=None) -> np.ndarray:
  """n samples G(z[, labels]), z ~ N(0, I) drawn from `key`."""
  z = jax.random.normal(key, (n, latent_dim))
  args = () if labels is None else (jnp.asarray(labels, jnp.int32),)
  return np.asarray(_jit_apply(generator)({"params": g_params}, z, *args))


def train_gans(config, workdir: str, conditional: bool, train_x, train_y):
  """Trains the GAN of every seed as one population (one compile; resumable in its run
  directory); returns (generator, [g_params per seed], seconds, non-finite steps)."""
  g, d = build_models(config, conditional)
  gcfg = config.gan.copy_and_resolve_references()
  program = gan_train.program(gcfg, generator=g, critic=d,
                              train=train_split(train_x, train_y),
                              batch_size=config.batch_size, conditional=conditional,
                              family="cnn", unroll_critic=config.unroll_critic)
  tag = "conditional" if conditional else "unconditional"
  run_config = gcfg.copy_and_resolve_references()
  run_config.unlock()
  del run_config["seed"]   # the members' seeds (run_dir names the directory by them)
  run_config.seed = "-".join(str(s) for s in config.seeds)
  run_config.models = dict(generator=dict(config.generator), critic=dict(config.critic),
                           image_size=config.image_size, dataset=dict(config.dataset),
                           batch_size=config.batch_size, strategy=config.strategy,
                           unroll_critic=config.unroll_critic)
  path = run_dir(workdir, tag, run_config) if config.checkpoint else None
  t0 = time.perf_counter()
  with timing.phase("train"):
    result = population.run(
        program, population.grid(config.seeds, arm=tag), num_steps=gcfg.num_train_steps,
        workdir=path, strategy=config.strategy or None,
        checkpoint_every=gcfg.checkpoint_every_steps, keep_checkpoints=gcfg.keep_checkpoints,
        progress=gcfg.progress_bar, desc=f"lec14_digits {tag}")
  seconds = time.perf_counter() - t0
  return (g, [st.g_params for st in result.states], seconds,
          {config.seeds[i]: s for i, s in result.nonfinite_steps.items()})


def baselines(train_x, n: int, key) -> dict[str, np.ndarray]:
  """Trivial generators (no training on images beyond pixel statistics), n samples each."""
  rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
  shape = (n,) + train_x.shape[1:]
  mean, std = train_x.mean(0), train_x.std(0)
  return {
      "uniform noise": rng.uniform(size=shape).astype(np.float32),
      "mean train image": np.repeat(mean[None], n, axis=0),
      "independent pixels": np.clip(rng.normal(mean, std, size=shape), 0, 1).astype(
          np.float32),
  }


def measure(config, workdir: str) -> dict:
  train_x, train_y, test_x, test_y = load_digits(config)
  t0 = time.perf_counter()
  with timing.phase("train"):
    clf = evaluation.train_classifier(train_x, train_y, config.classifier)
  r = {"classifier_seconds": time.perf_counter() - t0,
       "classifier_test_accuracy": clf.accuracy(test_x, test_y),
       "classifier_train_accuracy": clf.accuracy(train_x, train_y)}
  with timing.phase("eval"):
    f_train = clf.features(train_x)
    r.update(_references(config, clf, f_train, train_x, test_x))
  g, g_params, secs, r["nonfinite"] = train_gans(config, workdir, False, train_x, train_y)
  gc, gc_params, cond_secs, r["cond_nonfinite"] = train_gans(config, workdir, True, train_x,
                                                             train_y)
  with timing.phase("eval"):
    r.update(_score(config, clf, f_train, (g, g_params), (gc, gc_params)))
  r["seconds"], r["cond_seconds"] = secs, cond_secs
  r["real_grid"] = train_x[:100]
  return r


def _references(config, clf, f_train, train_x, test_x) -> dict:
  """The classifier's scores of the real test digits and of the trivial baselines
  (`f_train`: the classifier's features of the train split)."""
  r = {}
  n = config.fd_samples
  fd = lambda imgs: evaluation.feature_frechet_distance(clf.features(imgs[:n]), f_train)
  r["fd_real_test"] = fd(test_x)
  r["is_real_test"] = evaluation.inception_score(clf.probabilities(test_x))
  r["shares_real_test"] = evaluation.class_histogram(clf.predict(test_x))
  r["fd_baselines"] = {name: fd(x) for name, x in
                       baselines(train_x, n, jax.random.PRNGKey(config.data_seed)).items()}
  return r


def _score(config, clf, f_train, uncond, cond) -> dict:
  """Per seed: FD, IS, class shares of the unconditional GAN; accuracy, FD, IS and the
  confusion of the conditional one (evaluation noise from 10,000 + seed)."""
  (g, g_params), (gc, gc_params) = uncond, cond
  r = {}
  n, m = config.fd_samples, config.histogram_samples
  fd = lambda imgs: evaluation.feature_frechet_distance(clf.features(imgs[:n]), f_train)
  requested = np.arange(m) % NUM_CLASSES
  per_seed = {k: [] for k in ("fd", "is", "shares", "cond_acc", "cond_fd", "cond_is",
                              "cond_confusion")}
  for i, seed in enumerate(config.seeds):
    key = jax.random.PRNGKey(10_000 + seed)   # evaluation noise, not training noise
    x = generate(g, g_params[i], key, m, config.gan.latent_dim)
    pred = clf.predict(x)
    per_seed["fd"].append(fd(x))
    per_seed["is"].append(evaluation.inception_score(clf.probabilities(x)))
    per_seed["shares"].append(evaluation.class_histogram(pred))
    xc = generate(gc, gc_params[i], key, m, config.gan.latent_dim, requested)
    pred_c = clf.predict(xc)
    per_seed["cond_acc"].append(float(np.mean(pred_c == requested)))
    per_seed["cond_fd"].append(fd(xc))
    per_seed["cond_is"].append(evaluation.inception_score(clf.probabilities(xc)))
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
    np.add.at(confusion, (requested, pred_c), 1.0)
    per_seed["cond_confusion"].append(confusion / confusion.sum(1, keepdims=True))
    if seed == config.seeds[0]:
      r["samples"] = {"unconditional": x[:100], "conditional": xc[:100],
                      "conditional_requested": requested[:100]}
  r.update({k: np.asarray(v) for k, v in per_seed.items()})
  return r


def fd_threshold(r, th) -> float:
  """The Fréchet-distance bar: the stricter of `fd_vs_real` × FD(real test, train) and
  `fd_vs_baseline` × the smallest FD of the trivial baselines."""
  return min(th.fd_vs_real * r["fd_real_test"],
             th.fd_vs_baseline * min(r["fd_baselines"].values()))


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  n = f"{len(config.seeds)} seeds"

  def fd_low(r):
    bar = fd_threshold(r, th)
    mean = float(np.mean(r["fd"]))
    best_base = min(r["fd_baselines"], key=r["fd_baselines"].get)
    return claims.Evidence(mean <= bar, {
        "FD, unconditional GAN (per seed)": claims.Stat.of(r["fd"]),
        "FD, real test digits (reference)": claims.Stat.of([r["fd_real_test"]]),
        **{f"FD, baseline: {k}": claims.Stat.of([v]) for k, v in r["fd_baselines"].items()},
    }, f"mean FD {mean:.3g} vs bar {bar:.3g} = min({th.fd_vs_real:g} × {r['fd_real_test']:.3g} "
       f"(real test), {th.fd_vs_baseline:g} × {r['fd_baselines'][best_base]:.3g} "
       f"({best_base}))")

  def covered(r):
    mins = r["shares"].min(axis=1)
    dropped = [evaluation.dropped_classes(s, th.min_class_share) for s in r["shares"]]
    return claims.Evidence(bool(np.all(mins >= th.min_class_share)), {
        "smallest class share per seed": claims.Stat.of(mins),
        "largest class share per seed": claims.Stat.of(r["shares"].max(axis=1)),
        "classes below the bar per seed": claims.Stat.of([len(d) for d in dropped]),
    }, f"bar: every class ≥ {th.min_class_share:g} of {config.histogram_samples} samples in "
       f"every seed; dropped classes per seed: {dropped}")

  def conditional(r):
    acc = r["cond_acc"]
    return claims.Evidence(float(np.mean(acc)) >= th.conditional_accuracy, {
        "requested digit recognized (per seed)": claims.Stat.of(acc),
        "classifier test accuracy on real digits": claims.Stat.of(
            [r["classifier_test_accuracy"]]),
    }, f"mean {np.mean(acc):.3f} (min {np.min(acc):.3f}) vs bar {th.conditional_accuracy:g}")

  return [
      claims.Claim(
          id="lec14_digits.fd_below_threshold",
          statement=("A DCGAN-style generator trained on the digits produces images whose "
                     "classifier features are close to real digits' (FID-style Fréchet "
                     "distance, on an in-project classifier — not Inception-v3 FID)"),
          source=SOURCE,
          threshold=(f"mean ({n}) FD of {config.fd_samples} samples to the train set ≤ "
                     f"min({th.fd_vs_real:g} × FD(real test set), {th.fd_vs_baseline:g} × "
                     "FD(best trivial baseline: noise, mean image, independent pixels)), "
                     "all measured in the same run on sets of the same size"),
          check=fd_low),
      claims.Claim(
          id="lec14_digits.all_classes_covered",
          statement=("The unconditional GAN covers all 10 digit classes (no mode dropped)"),
          source=SOURCE,
          threshold=(f"in every seed, every class holds ≥ {th.min_class_share:g} of "
                     f"{config.histogram_samples} samples as labelled by the classifier "
                     f"(uniform: 0.1)"),
          check=covered),
      claims.Claim(
          id="lec14_digits.conditional_generates_requested_digit",
          statement="A conditional GAN generates the digit it is asked for",
          source=SOURCE,
          threshold=(f"mean ({n}) share of samples the classifier labels as the requested "
                     f"digit ≥ {th.conditional_accuracy:g} ({config.histogram_samples} "
                     "samples, every digit requested equally often)"),
          check=conditional),
  ]


# ----------------------------------------------------------------------------- plots


def _grid(ax, images, rows: int, title: str):
  imgs = np.asarray(images)[: rows * 10, ..., 0]
  h, w = imgs.shape[1:3]
  pad = np.ones((rows, 10, h + 1, w + 1))
  pad[:, :, :h, :w] = imgs.reshape(rows, 10, h, w)
  ax.imshow(pad.transpose(0, 2, 1, 3).reshape(rows * (h + 1), 10 * (w + 1)), cmap="gray_r",
            vmin=0, vmax=1, interpolation="nearest")
  ax.set_title(title, fontsize=9)
  ax.set_xticks([])
  ax.set_yticks([])


def _plot_samples(r, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(3.6, 3.8))
  _grid(axes[0][0], r["real_grid"], 10, "real train digits")
  _grid(axes[0][1], r["samples"]["unconditional"], 10, "unconditional GAN (seed 0)")
  # Conditional: requested digit k in row k (sample i requested i % 10, so regroup).
  xc, req = r["samples"]["conditional"], r["samples"]["conditional_requested"]
  rows = np.concatenate([xc[req == k][:10] for k in range(NUM_CLASSES)])
  _grid(axes[0][2], rows, 10, "conditional GAN: row k = requested digit k")
  return plotting.save(fig, path)


def _plot_histogram(r, config, path: str) -> str:
  fig, axes = plotting.figure(ncols=2, size=(4.6, 3.4))
  ax = axes[0][0]
  k = np.arange(NUM_CLASSES)
  shares = r["shares"]
  ax.bar(k - 0.2, shares.mean(0), 0.4, yerr=shares.std(0, ddof=1) if len(shares) > 1 else None,
         label=f"unconditional GAN (n={len(shares)} seeds)", color="C0")
  ax.bar(k + 0.2, r["shares_real_test"], 0.4, label="real test digits", color="C7")
  ax.axhline(config.thresholds.min_class_share, color="C3", ls="--", lw=1,
             label=f"dropped below {config.thresholds.min_class_share:g}")
  ax.set_xticks(k)
  ax.set_xlabel("class assigned by the digit classifier")
  ax.set_ylabel("share of samples")
  ax.set_title("Class histogram (mode dropping)")
  ax.legend(fontsize=7)
  ax = axes[0][1]
  conf = r["cond_confusion"].mean(0)
  im = ax.imshow(conf, vmin=0, vmax=1, cmap="Blues")
  ax.set_xticks(k)
  ax.set_yticks(k)
  ax.set_xlabel("class assigned by the classifier")
  ax.set_ylabel("requested digit")
  ax.set_title("Conditional GAN: requested vs recognized")
  fig.colorbar(im, ax=ax, fraction=0.046)
  return plotting.save(fig, path)


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  r = measure(config, workdir)
  section = Section(name="lec14_digits", title="Lecture 14: GAN — DCGAN and conditional GAN "
                    "on the digits, judged by a classifier", command="")
  section.verdicts = [claims.judge(c, r) for c in _claims(config)]
  section.figures = [
      Figure(_plot_samples(r, os.path.join(workdir, "digits_samples.png")),
             "Real digits vs 100 samples of the unconditional GAN and of the conditional "
             "GAN (row k: the digit k was requested), first seed."),
      Figure(_plot_histogram(r, config, os.path.join(workdir, "digits_classes.png")),
             "Left: share of generated samples per class as labelled by the digit "
             "classifier (mean ± std over seeds), real test digits for comparison. Right: "
             "conditional GAN, share of samples recognized as each class per requested "
             "digit (mean over seeds).")]
  fmt = lambda a: claims.Stat.of(a).__str__()
  rows = [("real test digits (reference)", f"{r['fd_real_test']:.3g}",
           f"{r['is_real_test']:.3g}", f"{r['shares_real_test'].min():.3f}", "—")]
  rows += [(f"baseline: {k}", f"{v:.3g}", "—", "—", "—") for k, v in r["fd_baselines"].items()]
  rows += [("unconditional GAN", fmt(r["fd"]), fmt(r["is"]), fmt(r["shares"].min(1)), "—"),
           ("conditional GAN", fmt(r["cond_fd"]), fmt(r["cond_is"]), "—",
            fmt(r["cond_acc"]))]
  section.tables = [
      Table(f"Classifier scores ({len(config.seeds)} seeds; Fréchet distance of "
            f"{config.fd_samples} samples to the {config.image_size}x{config.image_size} "
            "train digits on the classifier's penultimate features; IS and shares on "
            f"{config.histogram_samples} samples)",
            ("images", "Fréchet distance (not Inception FID)", "Inception Score (ours)",
             "smallest class share", "requested digit recognized"), tuple(rows)),
      Table("Class shares of the unconditional GAN's samples, per seed",
            ("seed",) + tuple(str(k) for k in range(NUM_CLASSES)),
            tuple((str(s),) + tuple(f"{v:.3f}" for v in sh)
                  for s, sh in zip(config.seeds, r["shares"]))),
  ]
  g = config.gan
  section.notes = [
      "The Fréchet distance here is FID's formula on the penultimate (ReLU, "
      f"{config.classifier.dense_width}-d) features of an in-project digit classifier (the "
      "lecture-9 CNN), NOT Inception-v3 features: it is on another scale and not comparable "
      "to published FIDs. All distances are to the train split, from sets of "
      f"{config.fd_samples} images (the test set's size), because the estimate's bias "
      "depends on the sample size.",
      f"Classifier: trained once ({config.classifier.steps} Adam steps, seed "
      f"{config.classifier.seed}, {r['classifier_seconds']:.1f} s) on the train split; test "
      f"accuracy {r['classifier_test_accuracy']:.3f}, train accuracy "
      f"{r['classifier_train_accuracy']:.3f}.",
      f"GANs: loss {g.loss}, {g.num_train_steps} generator steps × {g.critic_steps} critic steps, "
      f"batch {config.batch_size}, Adam G lr {g.g_optimizer.learning_rate:g} / D lr "
      f"{g.d_optimizer.learning_rate:g}, β = ({g.g_optimizer.b1:g}, {g.g_optimizer.b2:g}); "
      f"generator {dict(config.generator)}, critic {dict(config.critic)}; images "
      f"{config.image_size}x{config.image_size}. Conditional samples take the real batch's "
      "labels during training (leeml.gan.step).",
      f"Training seconds (the {len(config.seeds)} seeds of a GAN as one population, one "
      f"compile): unconditional {r['seconds']:.0f}, conditional {r['cond_seconds']:.0f} "
      "(0-ish when a finished run is reused).",
  ]
  if config.unroll_critic:
    section.notes.append(
        "The critic step runs outside lax.scan (leeml.gan.step unroll_critic; 1.8x faster "
        "on XLA:CPU): the same operations fused differently, so the round-off, and through "
        "the GAN's dynamics the numbers, differ slightly from the scanned step's run (the "
        "unconditional FD was 7.97 ± 0.22, the conditional accuracy 0.926 ± 0.006 at "
        "commit 1e5070c).")
  frozen = [f"{kind} seed {seed} (step {step})" for kind, key in
            (("unconditional", "nonfinite"), ("conditional", "cond_nonfinite"))
            for seed, step in r[key].items()]
  if frozen:
    section.notes.append("GANs whose loss or gradient went NaN/inf, scored with their last "
                         "finite state: " + "; ".join(frozen) + ".")
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec14_digits", title="Lecture 14: GAN — DCGAN and conditional GAN "
                    "on the digits", config_file="configs/lec14_digits.py", run=run))
