"""Lecture 14 (GAN): mode collapse on 2-D mixtures — vanilla GAN vs WGAN-GP vs SN-GAN.

Every (mixture, variant) is one population (`leeml.population.run` of
`leeml.gan.train.program`): its seeds train on one compile, in one run directory
(`leeml.lectures.run_dir`: a rerun reuses finished runs, a changed config starts afresh).
The real data of a mixture is a fixed sample of `pool_size` points (`real_pool`, drawn
once from `data_seed`), read in the core's (seed, step) epoch order like every other
lecture's data, so runs resume exactly. The populations checkpoint at each evaluation
(`snapshots` per run); afterwards the generator of every snapshot is restored and draws
`eval_samples` points from a fixed noise key; they are scored with `leeml.gan.mixtures`
(modes covered, high-quality share) and saved in the run directory
(`samples_<step>.npy`, one row per seed) for the scatter plots. Claims and settings:
configs/lec14_mode_collapse.py.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leeml import checkpoint, claims, data, lectures, plotting, population, timing
from leeml.gan import mixtures, models
from leeml.gan import train as gan_train
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 14 (GAN), slides 'Mode collapse' / 'Mode dropping'; the 2-D mixture "
          "benchmarks of VEEGAN (Srivastava et al. 2017, Table 1) and PacGAN (Lin et al. "
          "2018, Table 2)")
EVAL_KEY = 10_000


def _data_scale(centers) -> float:
  """Per-coordinate RMS of the centers: the networks see x / scale (≈ unit variance)."""
  return float(np.sqrt(np.mean(np.square(centers))))


def data_scale(config, mixture: str) -> float:
  """What the networks' coordinates are divided by (1 without `scale_data`)."""
  return _data_scale(mixtures.mixture(mixture)[0]) if config.scale_data else 1.0


def real_pool(config, mixture: str) -> data.ArraySplit:
  """The mixture's real data: `pool_size` points (divided by `data_scale`), drawn once by
  numpy from (data_seed, mixture). Targets are the mode indices (unused by the GAN)."""
  centers, std = mixtures.mixture(mixture)
  rng = np.random.default_rng([config.data_seed, sorted(mixtures.MIXTURES).index(mixture)])
  idx = rng.integers(0, len(centers), config.pool_size)
  x = centers[idx] + std * rng.standard_normal((config.pool_size, 2))
  return data.ArraySplit((x / data_scale(config, mixture)).astype(np.float32),
                         idx.astype(np.int32))


def run_config(config, mixture: str, variant: str, seed: int = 0) -> ml_collections.ConfigDict:
  """The GAN config of one (mixture, variant): `config.train` with this variant's fields
  (`seed` only for `train_gan`; a population's members carry their own)."""
  v = config.variants[variant]
  c = ml_collections.ConfigDict(config.train.to_dict())
  for name in ("g_optimizer", "d_optimizer"):
    c[name].learning_rate = v.learning_rate
  c.seed = seed
  c.loss = v.loss
  c.critic_steps = v.critic_steps
  c.num_train_steps = v.num_train_steps[mixture]
  c.eval_every_steps = max(1, c.num_train_steps // config.snapshots)
  c.log_every_steps = min(c.log_every_steps, c.num_train_steps)
  # A checkpoint at every evaluation: the snapshots are restored from them afterwards.
  c.checkpoint_every_steps = c.eval_every_steps
  c.keep_checkpoints = len(eval_steps(c))
  c.progress_bar = config.progress_bar
  return c


def eval_steps(train_config) -> list[int]:
  """The steps evaluated: every `eval_every_steps` and the last."""
  n, every = train_config.num_train_steps, train_config.eval_every_steps
  return sorted(set(range(every, n + 1, every)) | {n})


def _run_key(config, mixture, variant, train_config) -> ml_collections.ConfigDict:
  """Everything a population's result depends on (hashed into its directory name)."""
  return ml_collections.ConfigDict(dict(
      seed="-".join(str(s) for s in config.seeds), mixture=mixture,
      train=train_config.to_dict(), generator=config.generator.to_dict(),
      critic=config.critic.to_dict(), weight_param=config.variants[variant].weight_param,
      batch_size=config.batch_size, scale_data=config.scale_data,
      eval_samples=config.eval_samples, pool_size=config.pool_size,
      data_seed=config.data_seed, strategy=config.strategy))


def train_variant(config, workdir: str, mixture: str, variant: str, generate) -> list[dict]:
  """Trains (or reuses) the seeds of one (mixture, variant); per seed its evaluations
  and snapshot samples. `generate(g_params (P, ...), scale) -> (P, n, 2)`."""
  centers, std = mixtures.mixture(mixture)
  scale = data_scale(config, mixture)
  tc = run_config(config, mixture, variant)
  run_dir = lectures.run_dir(workdir, f"{mixture}_{variant}",
                             _run_key(config, mixture, variant, tc))
  generator = models.MLPGenerator(out_dim=2, **config.generator.to_dict())
  critic = models.MLPCritic(weight_param=config.variants[variant].weight_param,
                            **config.critic.to_dict())
  program = gan_train.program(tc, generator=generator, critic=critic,
                              train=real_pool(config, mixture),
                              batch_size=config.batch_size, family="mlp")
  members = population.grid(config.seeds, arm=f"{mixture}/{variant}")
  with timing.phase("train"):
    result = population.run(
        program, members, num_steps=tc.num_train_steps, workdir=run_dir,
        strategy=config.strategy or None, eval_every=tc.eval_every_steps,
        checkpoint_every=tc.checkpoint_every_steps, keep_checkpoints=tc.keep_checkpoints,
        # Scanned strategies: one chunk per evaluation interval, so one chunk length and
        # one compile per population.
        scan_steps=tc.eval_every_steps, progress=config.progress_bar,
        desc=f"{mixture} {variant}")
  with timing.phase("eval"):
    final = jax.tree.map(lambda *x: jnp.stack(x), *result.states)
    target = {"state": final, "nonfinite": jnp.zeros(len(members), jnp.int32)}
    manager = checkpoint.make_manager(run_dir, keep=tc.keep_checkpoints)
    runs = [{"steps": [], "modes": [], "high_quality": [], "samples": []} for _ in members]
    for step in eval_steps(tc):
      state = final if step == tc.num_train_steps else checkpoint.restore(
          manager, target, step)["state"]
      samples = np.asarray(generate(state.g_params, scale))
      np.save(os.path.join(run_dir, f"samples_{step:07d}.npy"), samples)
      for run, s in zip(runs, samples):
        run["steps"].append(step)
        run["samples"].append(s)
        run["modes"].append(mixtures.modes_covered(
            s, centers, std, min_count=config.min_count, num_std=config.num_std))
        run["high_quality"].append(mixtures.high_quality_fraction(
            s, centers, std, num_std=config.num_std))
    manager.close()
  for i, run in enumerate(runs):
    run["nonfinite_step"] = result.nonfinite_steps.get(i)
  return runs


def measure(config, workdir: str) -> dict:
  """{mixture: {variant: [per-seed run results]}}."""
  generator = models.MLPGenerator(out_dim=2, **config.generator.to_dict())
  z = jax.random.normal(jax.random.PRNGKey(EVAL_KEY),
                        (config.eval_samples, config.train.latent_dim))
  generate = jax.jit(jax.vmap(lambda p, scale: scale * generator.apply({"params": p}, z),
                              in_axes=(0, None)))
  return {m: {v: train_variant(config, workdir, m, v, generate) for v in config.variants}
          for m in config.mixtures}


def final(r: dict, mixture: str, variant: str, key: str) -> np.ndarray:
  """Per-seed value of `key` ('modes' or 'high_quality') at the end of training."""
  return np.array([run[key][-1] for run in r[mixture][variant]], float)


def best_variant(r: dict, mixture: str) -> str:
  """The variant with the most modes covered on average (ties: higher quality share)."""
  return max(r[mixture], key=lambda v: (final(r, mixture, v, "modes").mean(),
                                        final(r, mixture, v, "high_quality").mean()))


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  n = f"{len(config.seeds)} seeds"

  def best_covers(mixture, bar):
    num_modes = len(mixtures.mixture(mixture)[0])

    def check(r):
      best = best_variant(r, mixture)
      modes = final(r, mixture, best, "modes")
      numbers = {}
      for v in r[mixture]:
        numbers[f"{v}: modes covered (of {num_modes})"] = claims.Stat.of(
            final(r, mixture, v, "modes"))
        numbers[f"{v}: high-quality share"] = claims.Stat.of(
            final(r, mixture, v, "high_quality"))
      return claims.Evidence(bool(modes.mean() >= bar), numbers,
                             f"best variant: {best}, mean modes covered {modes.mean():.2f} "
                             f"of {num_modes} (bar ≥ {bar}); its high-quality share "
                             f"{100 * final(r, mixture, best, 'high_quality').mean():.1f}%")
    return check

  def claim(mixture, bar):
    num_modes = len(mixtures.mixture(mixture)[0])
    return claims.Claim(
        id=f"lec14_mode_collapse.best_covers_{mixture}",
        statement=(f"The best of the GAN variants (vanilla, WGAN-GP, spectral norm) covers "
                   f"(almost) all {num_modes} modes of {mixture}: no mode collapse"),
        source=SOURCE,
        threshold=(f"the best of {', '.join(config.variants)} (most modes on average) "
                   f"covers ≥ {bar} of {num_modes} modes on average over {n} "
                   f"(a mode is covered when ≥ {config.min_count} of {config.eval_samples} "
                   f"samples lie within {config.num_std:g}σ of it; at the end of training)"),
        check=best_covers(mixture, bar))

  return [claim("ring8", th.ring8_best_modes), claim("grid25", th.grid25_best_modes)]


# ----------------------------------------------------------------------------- plots


def _plot_snapshots(r, config, mixture: str, path: str) -> str:
  centers, std = mixtures.mixture(mixture)
  variants = list(r[mixture])
  runs = {v: r[mixture][v][0] for v in variants}   # the first seed
  ncols = max(len(run["steps"]) for run in runs.values())
  fig, axes = plotting.figure(ncols=ncols, nrows=len(variants), size=(2.3, 2.3))
  lim = 1.35 * float(np.abs(centers).max()) + 0.5
  for i, v in enumerate(variants):
    run = runs[v]
    for j in range(ncols):
      ax = axes[i][j]
      ax.set_xlim(-lim, lim)
      ax.set_ylim(-lim, lim)
      ax.set_aspect("equal")
      ax.tick_params(labelsize=6)
      if j >= len(run["steps"]):
        ax.axis("off")
        continue
      s = run["samples"][j]
      ax.scatter(s[:, 0], s[:, 1], s=0.6, alpha=0.35, color="C0", rasterized=True)
      ax.scatter(centers[:, 0], centers[:, 1], s=8, marker="x", color="C3", lw=0.8)
      ax.set_title(f"step {run['steps'][j]}: {run['modes'][j]:.0f} modes, "
                   f"{100 * run['high_quality'][j]:.0f}% hq", fontsize=7)
      if j == 0:
        ax.set_ylabel(v, fontsize=9)
  fig.suptitle(f"{mixture}: generated samples over training (seed {config.seeds[0]}; "
               "x = mode centers)", fontsize=9)
  return plotting.save(fig, path)


def _plot_coverage(r, config, path: str) -> str:
  fig, axes = plotting.figure(ncols=len(r), nrows=2, size=(4.4, 2.8))
  for j, mixture in enumerate(r):
    num_modes = len(mixtures.mixture(mixture)[0])
    for v, runs in r[mixture].items():
      # Variants may run different step counts: x is the fraction of training.
      frac = np.asarray(runs[0]["steps"], float) / runs[0]["steps"][-1]
      plotting.mean_band(axes[0][j], frac, [run["modes"] for run in runs], v)
      plotting.mean_band(axes[1][j], frac, [100 * np.asarray(run["high_quality"])
                                            for run in runs], v)
    axes[0][j].axhline(num_modes, color="k", lw=0.6, ls=":")
    axes[0][j].set_title(f"{mixture}: modes covered (of {num_modes})", fontsize=9)
    axes[1][j].set_title(f"{mixture}: high-quality samples (%)", fontsize=9)
    for ax in axes[:, j]:
      ax.set_xlabel("fraction of training")
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
  return plotting.save(fig, path)


# ----------------------------------------------------------------------------- section


def _fmt(a, pct=False) -> str:
  a = np.asarray(a, float) * (100 if pct else 1)
  std = a.std(ddof=1) if len(a) > 1 else 0.0
  return f"{a.mean():.{1 if pct else 2}f} ± {std:.{1 if pct else 2}f}"


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  r = measure(config, workdir)
  section = Section(name="lec14_mode_collapse", title="Lecture 14: GAN — mode collapse on "
                    "2-D mixtures (vanilla GAN vs WGAN-GP vs spectral norm)", command="")
  section.verdicts = [claims.judge(c, r) for c in _claims(config)]
  section.figures = [Figure(
      _plot_snapshots(r, config, m, os.path.join(workdir, f"samples_{m}.png")),
      f"{m}: {config.eval_samples} generated samples at each evaluation (columns) for "
      f"each variant (rows), seed {config.seeds[0]}; titles give modes covered and the "
      f"high-quality share ({config.num_std:g}σ, ≥ {config.min_count} samples per mode).")
      for m in r]
  section.figures.append(Figure(
      _plot_coverage(r, config, os.path.join(workdir, "coverage.png")),
      f"Modes covered and high-quality share over training (mean ± std over "
      f"{len(config.seeds)} seeds)."))
  rows = []
  for m in r:
    num_modes = len(mixtures.mixture(m)[0])
    for v in r[m]:
      vc = config.variants[v]
      modes, hq = final(r, m, v, "modes"), final(r, m, v, "high_quality")
      rows.append((m, v, f"{vc.loss}, {vc.weight_param}, k={vc.critic_steps}, "
                   f"{vc.num_train_steps[m]} steps", f"{_fmt(modes)} / {num_modes}",
                   " ".join(f"{x:.0f}" for x in modes), _fmt(hq, pct=True)))
  section.tables = [Table(
      f"At the end of training, mean ± std over {len(config.seeds)} seeds",
      ("mixture", "variant", "loss, critic, critic steps, G steps", "modes covered",
       "per seed", "high-quality %"), tuple(rows))]
  vanilla = [f"{m}: {_fmt(final(r, m, 'vanilla', 'modes'))} of "
             f"{len(mixtures.mixture(m)[0])}" for m in r if "vanilla" in r[m]]
  section.notes = [
      "Vanilla GAN (non-saturating loss, standard critic) coverage measured here: "
      + "; ".join(vanilla) + ". VEEGAN (Table 1) reports about 1 of 8 (ring) and 3 of 25 "
      "(grid) for its GAN; the count depends on the architecture and the training length; "
      "no threshold is set on it.",
      "Which variant is best is measured, not assumed: at this budget the variants meant to "
      "counter mode collapse may do worse than the vanilla GAN (WGAN-GP gets fewer "
      "generator steps for its k critic steps; a spectrally normalized critic is "
      "1-Lipschitz per layer, a strong restriction on 2-D data; the settings were piloted "
      "mostly on the vanilla GAN).",
      f"Settings: generator MLP {config.generator.depth}×{config.generator.width} "
      f"(z ~ N(0, I_{config.train.latent_dim})), critic MLP {config.critic.depth}×"
      f"{config.critic.width} ({config.critic.activation}); batch {config.batch_size}; "
      f"Adam β = ({config.train.g_optimizer.b1}, {config.train.g_optimizer.b2}), learning "
      "rates per variant in the config"
      + ("; both networks see x / (RMS of the centers) and samples are scaled back"
         if config.scale_data else "") + ".",
      "Metrics as in VEEGAN/PacGAN: σ of the mixture (ring 0.02, grid 0.05), a sample is "
      f"high quality within {config.num_std:g}σ of its nearest center, a mode is covered "
      f"with ≥ {config.min_count} of {config.eval_samples} samples.",
      f"Real data: a fixed sample of {config.pool_size} points per mixture (numpy, data seed "
      f"{config.data_seed}), read in the core's (seed, step) epoch order; the seeds of a "
      "variant train as one population (one compile).",
  ]
  frozen = [f"{m} {v} seed {config.seeds[i]} (step {run['nonfinite_step']})"
            for m in r for v in r[m] for i, run in enumerate(r[m][v])
            if run.get("nonfinite_step")]
  if frozen:
    section.notes.append("Runs whose loss or gradient went NaN/inf, scored with their last "
                         "finite state: " + "; ".join(frozen) + ".")
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec14_mode_collapse", title="Lecture 14: GAN — mode collapse on "
                    "2-D mixtures", config_file="configs/lec14_mode_collapse.py", run=run))
