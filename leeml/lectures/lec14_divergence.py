"""Lecture 14 (GAN): JS divergence vs Wasserstein distance when the supports do not overlap.

P_r = U[-w/2, w/2], P_θ = U[θ - w/2, θ + w/2] (G_θ(z) = z + θ). For each θ and seed a
critic is trained to near-optimality with G frozen, with the minimax (JS) loss and with
the WGAN-GP loss; then JS and W estimates and |∂L_G/∂θ| for the minimax, non-saturating
and WGAN generator losses are measured on held-out samples (see configs/lec14_divergence.py
for the closed forms and the thresholds). The (seed, θ) critics of a loss train as one population
(`leeml.population`, θ a traced hyperparameter: one compile per loss).
"""

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from leeml import claims, data, plotting, population, timing
from leeml.gan import losses as gan_losses
from leeml.gan.models import MLPCritic
from leeml.lectures import Experiment, Figure, Section, Table, register

SOURCE = ("Lecture 14 (GAN), theory slides 'JS divergence is not suitable' and "
          "'Wasserstein distance' (Arjovsky & Bottou 2017; Arjovsky et al. 2017)")
LOG2 = math.log(2.0)
CRITIC_LOSSES = ("minimax", "wgan_gp")


def _uniform(key, n, center, width):
  return center + width * (jax.random.uniform(key, (n, 1)) - 0.5)


def critic_program(config, loss: str) -> population.Program:
  """The critic of `loss` trained with the generator frozen, as a population Program:
  members are (seed, θ) with θ traced (one compile for every seed and θ), state
  {"params", "opt_state", "step"}.

  The samples are drawn in the step from fold_in(member key, step), fresh every step, not
  read from a training split: P_r and P_θ are known continuous distributions and the claims
  compare against their closed forms, so the critic must see them, not a finite sample of
  them (the engine's batch, one row of a 1-row placeholder split, is ignored).
  """
  critic = MLPCritic(**dict(config.critic))
  spec = gan_losses.get_gan_loss(loss)
  tx = optax.adam(config.learning_rate, b1=config.b1, b2=config.b2)
  w, n = config.width, config.batch_size

  def loss_of(params, theta, key):
    kr, kf, kgp = jax.random.split(key, 3)
    real, fake = _uniform(kr, n, 0.0, w), _uniform(kf, n, theta, w)
    f = critic.apply({"params": params}, jnp.concatenate([real, fake]))
    value = spec.critic(f[:n], f[n:])
    if spec.gradient_penalty:
      value += config.gp_weight * gan_losses.gradient_penalty(
          lambda x: critic.apply({"params": params}, x), real, fake, kgp)
    return value

  def init(key):
    params = critic.init(key, jnp.zeros((1, 1)))["params"]
    return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}

  def train_step(state, batch, rng, hparams):
    del batch
    key = jax.random.fold_in(rng, state["step"])
    value, grads = jax.value_and_grad(loss_of)(state["params"], hparams["theta"], key)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return ({"params": params, "opt_state": opt_state, "step": state["step"] + 1},
            {"d_loss": value})

  placeholder = data.ArraySplit(np.zeros((1, 1), np.float32), np.zeros((1,), np.int32))
  return population.Program(init=init, train_step=train_step, train=placeholder,
                            batch_size=1, hparams={"theta": 0.0}, family="mlp")


def train_critics(config, loss: str, program: population.Program | None = None):
  """Critic params of every (seed, θ), leaves shaped (S, T, ...): `config.train_steps`
  steps of `critic_program` (or `program`, built from the same config)."""
  program = program or critic_program(config, loss)
  seeds, thetas = list(config.seeds), [float(t) for t in config.thetas]
  members = population.grid(seeds, theta=thetas, arm=loss)   # θ outer, seed inner
  result = population.run(program, members, num_steps=config.train_steps,
                          strategy=config.strategy or None, progress=False,
                          scan_steps=config.train_steps,   # scanned: one chunk per member
                          desc=f"lec14_divergence {loss}")
  stacked = jax.tree.map(lambda *x: np.stack(x), *(st["params"] for st in result.states))
  return jax.tree.map(lambda a: np.swapaxes(
      a.reshape((len(thetas), len(seeds)) + a.shape[1:]), 0, 1), stacked)


def make_measure(config):
  """Returns jitted `measure(minimax_params, wgan_params, key, thetas)` -> dict of (S, T)."""
  critic = MLPCritic(**dict(config.critic))
  w, n = config.width, config.eval_samples
  gan = gan_losses.GAN_LOSSES

  def one(p_js, p_w, key, theta):
    kr, kz = jax.random.split(key)
    real, z = _uniform(kr, n, 0.0, w), _uniform(kz, n, 0.0, w)
    f_js = lambda x: critic.apply({"params": p_js}, x)
    f_w = lambda x: critic.apply({"params": p_w}, x)
    d_loss = gan["minimax"].critic(f_js(real), f_js(z + theta))
    # Signed: ∂L_G/∂θ > 0 means gradient descent moves P_θ toward P_r (θ > 0).
    grads = {f"dgrad_{name}": jax.grad(lambda t: gan[name].generator(f(z + t)))(theta)
             for name, f in (("minimax", f_js), ("non_saturating", f_js), ("wgan_gp", f_w))}
    return dict(js=(jnp.log(4.0) - d_loss) / 2, d_loss=d_loss,
                w=jnp.mean(f_w(real)) - jnp.mean(f_w(z + theta)), **grads)

  return jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, 0, None, 0)), in_axes=(0, 0, None, None)))


def closed_form(thetas, w: float) -> dict:
  t = np.asarray(thetas, float)
  return dict(js=np.minimum(t / w, 1.0) * LOG2, w=np.abs(t),
              grad_minimax=np.where(t < w, LOG2 / w, 0.0), grad_wgan_gp=np.ones_like(t))


def measure(config) -> dict:
  thetas = jnp.asarray(config.thetas, jnp.float32)
  with timing.phase("train"):   # one population per critic loss: seeds × θ, one compile each
    params = {loss: train_critics(config, loss) for loss in CRITIC_LOSSES}
  with timing.phase("eval"):
    out = make_measure(config)(params["minimax"], params["wgan_gp"],
                               jax.random.PRNGKey(10_000), thetas)
    r = {k: np.asarray(v, np.float64) for k, v in out.items()}
  r.update({k[1:]: np.abs(v) for k, v in r.items() if k.startswith("dgrad_")})
  return r


# ----------------------------------------------------------------------------- claims


def _claims(config) -> list[claims.Claim]:
  th, w = config.thresholds, config.width
  thetas = np.asarray(config.thetas)
  disjoint, overlap = thetas >= w, thetas <= w / 2

  def js_constant(r):
    mean = r["js"].mean(0)
    lo = float(mean[disjoint].min())
    return claims.Evidence(lo >= th.js_min_fraction * LOG2, {
        f"JS estimate at θ={t:g}": claims.Stat.of(r["js"][:, i])
        for i, t in enumerate(thetas)},
        f"min over disjoint θ of mean JS = {lo:.4f} (log 2 = {LOG2:.4f}); bar "
        f"{th.js_min_fraction} log 2 = {th.js_min_fraction * LOG2:.4f}")

  def w_grows(r):
    mean = r["w"].mean(0)
    increasing = bool(np.all(np.diff(mean) > 0))
    i0, i1 = int(np.argmax(disjoint)), len(thetas) - 1
    ratio, true = mean[i1] / mean[i0], thetas[i1] / thetas[i0]
    passed = increasing and ratio >= th.w_growth_fraction * true
    return claims.Evidence(passed, {
        f"W estimate at θ={t:g}": claims.Stat.of(r["w"][:, i]) for i, t in enumerate(thetas)},
        f"strictly increasing along θ: {increasing}; W(θ={thetas[i1]:g}) / W(θ="
        f"{thetas[i0]:g}) = {ratio:.3f} (true {true:.3f}, bar {th.w_growth_fraction} × true)")

  def minimax_vanishes(r):
    g = r["grad_minimax"].mean(0)
    hi, lo = th.overlap_fraction * LOG2 / w, th.vanish_fraction * LOG2 / w
    passed = bool(np.all(g[overlap] >= hi) and np.all(g[disjoint] <= lo))
    return claims.Evidence(passed, {
        "minimax |∂L_G/∂θ|, overlapping θ ≤ w/2":
            claims.Stat.of(r["grad_minimax"][:, overlap]),
        "minimax |∂L_G/∂θ|, disjoint θ ≥ w": claims.Stat.of(r["grad_minimax"][:, disjoint]),
        "max over disjoint θ of the mean": claims.Stat.of([g[disjoint].max()]),
        "min over overlapping θ of the mean": claims.Stat.of([g[overlap].min()]),
    }, f"overlap bar ≥ {hi:.4f}, disjoint bar ≤ {lo:.4f} (closed form: {LOG2 / w:.4f} "
       "then 0)")

  def wgan_persists(r):
    g = r["dgrad_wgan_gp"]
    return claims.Evidence(bool(np.all(g >= th.wgan_min_gradient)), {
        "WGAN-GP ∂L_G/∂θ, all θ and seeds": claims.Stat.of(g),
        "WGAN-GP ∂L_G/∂θ, disjoint θ": claims.Stat.of(g[:, disjoint]),
        "min over θ and seeds": claims.Stat.of([g.min()]),
    }, f"bar ≥ {th.wgan_min_gradient} (pointing toward P_r) at every θ and seed "
       "(closed form 1)")

  n = f"{len(config.seeds)} seeds"
  return [
      claims.Claim(
          id="lec14_divergence.js_constant",
          statement="JS divergence is always log 2 if the two distributions do not overlap",
          source=SOURCE,
          threshold=(f"at every θ ≥ w the mean ({n}) JS estimate (log 4 - L_D*)/2 of a "
                     f"trained discriminator ≥ {th.js_min_fraction} log 2"),
          check=js_constant),
      claims.Claim(
          id="lec14_divergence.wasserstein_grows",
          statement=("The Wasserstein distance keeps decreasing as the distributions move "
                     "closer, also when they do not overlap"),
          source=SOURCE,
          threshold=("mean WGAN-GP estimate strictly increasing along the θ grid, and "
                     f"W(θ_max)/W(smallest θ ≥ w) ≥ {th.w_growth_fraction} × θ_max/θ_min"),
          check=w_grows),
      claims.Claim(
          id="lec14_divergence.minimax_gradient_vanishes",
          statement=("With an (almost) optimal discriminator the original generator loss is "
                     "constant once the supports are disjoint: its gradient vanishes"),
          source=SOURCE,
          threshold=(f"mean ({n}) |∂L_G/∂θ| ≥ {th.overlap_fraction} (log 2)/w at every "
                     f"θ ≤ w/2 and ≤ {th.vanish_fraction} (log 2)/w at every θ ≥ w"),
          check=minimax_vanishes),
      claims.Claim(
          id="lec14_divergence.wgan_gradient_persists",
          statement="The WGAN critic still gives the generator a gradient at every distance",
          source=SOURCE,
          threshold=(f"WGAN-GP ∂L_G/∂θ ≥ {th.wgan_min_gradient} (descent moves P_θ toward "
                     "P_r) at every θ, every seed"),
          check=wgan_persists),
  ]


# ----------------------------------------------------------------------------- plots


def _plot(r, config, path: str) -> str:
  thetas, w = np.asarray(config.thetas), config.width
  ref = closed_form(np.linspace(thetas.min(), thetas.max(), 400), w)
  x_ref = np.linspace(thetas.min(), thetas.max(), 400)
  fig, axes = plotting.figure(ncols=2, size=(5.2, 3.8))
  ax = axes[0][0]
  plotting.mean_band(ax, thetas, r["js"], "JS estimate (trained D)", color="C0")
  ax.plot(x_ref, ref["js"], "C0--", lw=1, label="JS, closed form")
  ax.set_ylabel("JS divergence (nats)")
  ax2 = ax.twinx()
  plotting.mean_band(ax2, thetas, r["w"], "W estimate (WGAN-GP critic)", color="C3")
  ax2.plot(x_ref, ref["w"], "C3--", lw=1, label="W1 = θ, closed form")
  ax2.set_ylabel("Wasserstein-1")
  ax.axvline(w, color="k", lw=0.6, ls=":")
  ax.set_xlabel("θ (shift of the generated distribution; supports disjoint for θ ≥ w)")
  ax.set_title("Divergence estimates vs distance")
  lines = ax.get_legend_handles_labels(), ax2.get_legend_handles_labels()
  ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize=7, loc="center right")
  ax = axes[0][1]
  floor = 1e-13
  for key, label, color in (("grad_minimax", "minimax  E log(1 - D(G))", "C0"),
                            ("grad_non_saturating", "non-saturating  -E log D(G)", "C2"),
                            ("grad_wgan_gp", "WGAN-GP  -E f(G)", "C3")):
    plotting.mean_band(ax, thetas, np.maximum(r[key], floor), label, color=color)
  ax.plot(x_ref, np.maximum(ref["grad_minimax"], floor), "C0--", lw=1,
          label="minimax with D*, closed form")
  ax.plot(x_ref, ref["grad_wgan_gp"], "C3--", lw=1, label="W1, closed form")
  ax.axvline(w, color="k", lw=0.6, ls=":")
  ax.set_yscale("log")
  ax.set_xlabel("θ")
  ax.set_ylabel("|∂L_G/∂θ|")
  ax.set_title(f"Generator gradient ({len(config.seeds)} seeds, mean ± std)")
  ax.legend(fontsize=7)
  return plotting.save(fig, path)


def run(config, workdir: str) -> Section:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  r = measure(config)
  section = Section(name="lec14_divergence", title="Lecture 14: GAN — JS divergence vs "
                    "Wasserstein distance on disjoint supports", command="")
  section.verdicts = [claims.judge(c, r) for c in _claims(config)]
  section.figures = [Figure(
      _plot(r, config, os.path.join(workdir, "js_vs_wasserstein.png")),
      "Left: JS estimate from a trained minimax discriminator and W estimate from a "
      "trained WGAN-GP critic vs the shift θ of P_θ = U[θ - w/2, θ + w/2] from P_r = "
      "U[-w/2, w/2] (dashed: closed forms; dotted: θ = w, where the supports separate). "
      "Right: |∂L_G/∂θ| of three generator losses (log scale, floored at 1e-13).")]
  cf = closed_form(config.thetas, config.width)
  fmt = lambda a: f"{a.mean():.3g} ± {a.std(ddof=1) if len(a) > 1 else 0:.2g}"
  section.tables = [Table(
      f"Per θ, mean ± std over {len(config.seeds)} seeds (closed forms in brackets)",
      ("θ", "JS est. [closed]", "W est. [closed]", "|∂L_G/∂θ| minimax [D*]",
       "|∂L_G/∂θ| non-saturating", "|∂L_G/∂θ| WGAN-GP [W1]", "L_D (minimax)"),
      tuple((f"{t:g}", f"{fmt(r['js'][:, i])} [{cf['js'][i]:.3f}]",
             f"{fmt(r['w'][:, i])} [{cf['w'][i]:g}]",
             f"{fmt(r['grad_minimax'][:, i])} [{cf['grad_minimax'][i]:.3f}]",
             fmt(r["grad_non_saturating"][:, i]),
             f"{fmt(r['grad_wgan_gp'][:, i])} [1]", fmt(r["d_loss"][:, i]))
            for i, t in enumerate(config.thetas)))]
  section.notes = [
      "The discriminators are trained, not set in closed form: "
      f"{config.train_steps} Adam steps (lr {config.learning_rate}, β = ({config.b1}, "
      f"{config.b2})), batch {config.batch_size} + {config.batch_size}, fresh samples every "
      f"step, generator frozen; measured on {config.eval_samples} held-out samples of each.",
      "The critics of one loss train as one population (members: seed × θ); a member's "
      "keys come from its seed, so the θ of one seed share the critic's initialization "
      "and noise (common random numbers along θ).",
      "WGAN's Lipschitz constraint here is the gradient penalty (λ = "
      f"{config.gp_weight:g}); its optimum is not exactly the W1 critic (the penalty trades "
      "slope against E_r f - E_θ f), so W estimates may exceed θ for large θ.",
  ]
  section.seconds = time.perf_counter() - t0
  return section


register(Experiment(name="lec14_divergence", title="Lecture 14: GAN — JS divergence vs "
                    "Wasserstein distance", config_file="configs/lec14_divergence.py", run=run))
