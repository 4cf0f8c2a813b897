"""Lecture 3 (general guidance): the training loss tells optimization from overfitting.

1. Degradation (He et al. 2016, Fig. 1, as used in the lecture): plain MLPs of a shallow
   and a deep depth, and their residual versions, on MNIST-1D with the same optimizer and
   steps; the deeper plain net's *training* loss is higher, so `leeml.diagnose` (with the
   shallower net as reference) says "optimization", not overfitting.
2. Overfitting: a big MLP on 100 training examples; training loss falls while the
   validation loss rises, and `diagnose` says "overfitting".
"""

import os
import time


from leeml import claims, diagnose, lectures, plotting, population, timing
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 3 (General Guidance), slides 'Optimization Issue' (20 vs 56 layers, He et "
          "al. 2016 Fig. 1) and 'Overfitting'")


_CURVES = {"train_loss": "eval_train_loss", "val_loss": "eval_test_loss",
           "train_accuracy": "eval_train_accuracy", "val_accuracy": "eval_test_accuracy"}


def member_curves(result: population.Result) -> list[dict]:
  """Each member's evaluation curves: the whole train split and the test split (eval
  mode) at every evaluation step."""
  curves = {name: result.curves(key) for name, key in _CURVES.items()}
  steps = curves["train_loss"][0].tolist()
  return [{"steps": steps, **{name: values[i].tolist() for name, (_, values) in curves.items()}}
          for i in range(len(result.members))]


def model_name(depth: int, residual: bool) -> str:
  return f"{'residual' if residual else 'plain'} {depth}"


def train_runs(config, workdir: str) -> dict:
  """{'degradation': {model name: [curves per seed]}, 'overfitting': [curves per seed]}.

  Two populations (`population.run_config`): the degradation nets (every seed of one
  depth/residual setting shares one compile) and the overfitting net's seeds."""
  seeds = list(config.seeds)
  members = [population.Member(s, {"model.depth": d, "model.residual": res},
                               model_name(d, res))
             for res in (False, True) for d in config.depths for s in seeds]
  out: dict = {"degradation": {}, "overfitting": []}
  with timing.phase("train"):
    deg = population.run_config(config.degradation, members, lectures.population_dir(
        workdir, "degradation", config.degradation, members))
    over_members = population.grid(seeds, arm="overfitting")
    over = population.run_config(config.overfitting, over_members, lectures.population_dir(
        workdir, "overfit", config.overfitting, over_members))
  for m, curves in zip(members, member_curves(deg)):
    out["degradation"].setdefault(m.arm, []).append(curves)
  out["overfitting"] = member_curves(over)
  return out


def verdicts(config, runs) -> dict:
  """`diagnose` for every run: the deeper nets get the same-kind shallower net's training
  loss (same seed) as reference, as in the lecture's 20- vs 56-layer comparison."""
  shallow, deep = config.depths
  kw = dict(config.diagnose)
  out = {}
  for res in (False, True):
    for depth in config.depths:
      name = model_name(depth, res)
      refs = runs["degradation"][model_name(shallow, res)] if depth == deep else None
      out[name] = [diagnose.diagnose(c, None if refs is None else refs[i]["train_loss"], **kw)
                   for i, c in enumerate(runs["degradation"][name])]
  out["overfitting"] = [diagnose.diagnose(c, **kw) for c in runs["overfitting"]]
  return out


def _final(runs, key="train_loss"):
  return [r[key][-1] for r in runs]


def _claims(config) -> list[claims.Claim]:
  th = config.thresholds
  shallow, deep = config.depths
  ps, pd, rd = (model_name(shallow, False), model_name(deep, False), model_name(deep, True))

  def degrade(r):
    d = r["runs"]["degradation"]
    return claims.less_than(f"{ps} final train loss", _final(d[ps]),
                            f"{pd} final train loss", _final(d[pd]),
                            margin=th.degradation_margin, paired=True)

  def says(name, verdict):
    def check(r):
      got = [v.verdict for v in r["verdicts"][name]]
      return claims.Evidence(all(g == verdict for g in got), {
          "final train loss": claims.Stat.of([v.numbers["final train loss"] for v in r["verdicts"][name]]),
          **({"final val loss": claims.Stat.of([v.numbers["final val loss"]
                                                for v in r["verdicts"][name]])}
             if all("final val loss" in v.numbers for v in r["verdicts"][name]) else {}),
      }, f"verdicts per seed: {got}")
    return check

  def residual(r):
    d = r["runs"]["degradation"]
    a, b = claims.Stat.of(_final(d[rd])), claims.Stat.of(_final(d[ps]))
    ok = a.mean <= b.mean + th.residual_margin
    return claims.Evidence(ok, {f"{rd} final train loss": a, f"{ps} final train loss": b},
                           f"{a.mean:.4g} {'<=' if ok else '>'} {b.mean:.4g} + {th.residual_margin}")

  return [
      claims.Claim(
          id="lec03.deeper_plain_has_higher_train_loss",
          statement=(f"The deeper plain network ({deep} layers) has a higher loss on the "
                     f"training data than the shallower one ({shallow} layers): not overfitting"),
          source=SOURCE,
          threshold=(f"final train loss (whole train split) of plain {deep} > plain {shallow} "
                     f"+ {th.degradation_margin}, in the mean and on every seed"),
          check=degrade),
      claims.Claim(
          id="lec03.diagnose_says_optimization",
          statement=("Comparing with the shallower network, the deeper one's failure is an "
                     "optimization issue"),
          source=SOURCE,
          threshold=(f"diagnose(plain {deep} curves, reference = plain {shallow} train loss, "
                     f"{dict(config.diagnose)}) == 'optimization' on every seed"),
          check=says(pd, diagnose.OPTIMIZATION)),
      claims.Claim(
          id="lec03.residual_deep_trains_as_well_as_shallow",
          statement=("With residual connections the deeper network reaches a training loss no "
                     "higher than the shallower one"),
          source=SOURCE,
          threshold=(f"mean final train loss of residual {deep} <= plain {shallow}'s + "
                     f"{th.residual_margin}"),
          check=residual),
      claims.Claim(
          id="lec03.diagnose_says_overfitting",
          statement=("Small loss on training data but large on validation data: overfitting"),
          source=SOURCE,
          threshold=(f"on {config.overfitting.dataset.num_train} training examples: "
                     f"diagnose({dict(config.diagnose)}) == 'overfitting' on every seed "
                     "(train loss <= 0.1 x its initial value; validation loss ends > (1 + "
                     "rise) x its minimum or > 0.1 x its initial value)"),
          check=says("overfitting", diagnose.OVERFITTING)),
  ]


def _plot(config, runs, path: str) -> str:
  fig, axes = plotting.figure(ncols=3, size=(4.6, 3.6))
  for ax, res in zip(axes[0][:2], (False, True)):
    for depth in config.depths:
      rs = runs["degradation"][model_name(depth, res)]
      plotting.mean_band(ax, rs[0]["steps"], [r["train_loss"] for r in rs], f"{depth} layers (train)")
      plotting.mean_band(ax, rs[0]["steps"], [r["val_loss"] for r in rs], f"{depth} layers (val)")
    ax.set_yscale("log")
    ax.set_title(f"{'Residual' if res else 'Plain'} MLPs on {config.degradation.dataset.name}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  ax = axes[0][2]
  rs = runs["overfitting"]
  plotting.mean_band(ax, rs[0]["steps"], [r["train_loss"] for r in rs], "train")
  plotting.mean_band(ax, rs[0]["steps"], [r["val_loss"] for r in rs], "validation")
  ax.set_yscale("log")
  ax.set_title(f"Overfitting: {config.overfitting.dataset.num_train} examples, "
               f"MLP {config.overfitting.model.depth}x{config.overfitting.model.width}")
  ax.set_xlabel("step")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return plotting.save(fig, path)


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  runs = train_runs(config, workdir)
  results = {"runs": runs, "verdicts": verdicts(config, runs)}
  section = Section(name="lec03", title="Lecture 3: general guidance (optimization vs overfitting)",
                    command="")
  section.verdicts = [claims.judge(c, results) for c in _claims(config)]
  section.figures = [Figure(
      _plot(config, runs, os.path.join(workdir, "training_guidance.png")),
      "Loss on the whole training split (eval mode) and on the validation split, mean ± std "
      "over seeds. Left/middle: plain vs residual MLPs of two depths, same optimizer and "
      "steps. Right: a big MLP on a small training set.")]
  rows = []
  for name, vs in results["verdicts"].items():
    rs = runs["overfitting"] if name == "overfitting" else runs["degradation"][name]
    verdict_counts = {v: sum(d.verdict == v for d in vs) for v in diagnose.VERDICTS}
    rows.append((name, str(claims.Stat.of(_final(rs))), str(claims.Stat.of(_final(rs, "val_loss"))),
                 str(claims.Stat.of(_final(rs, "train_accuracy"))),
                 ", ".join(f"{v} x{n}" for v, n in verdict_counts.items() if n),
                 vs[0].remedy))
  section.tables = [Table(
      "Final losses and diagnose() verdicts (deeper nets: reference = same-kind shallower net)",
      ("run", "train loss", "val loss", "train accuracy", "diagnose (per seed)", "remedy"),
      tuple(rows))]
  d = config.degradation
  section.notes = [
      f"Degradation runs: MLP width {d.model.width}, norm {d.model.norm}, {d.optimizer.name} "
      f"lr {d.optimizer.learning_rate}, {d.num_train_steps} steps, batch {d.batch_size}; "
      f"seeds {tuple(config.seeds)}.",
      "Model selection helpers (leeml.diagnose.validation_split / k_fold / select_model) "
      "implement the lecture's N-fold cross validation; they are unit-tested, not used here.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec03", title="Lecture 3: general guidance",
                    config_file="configs/lec03.py", run=run))
