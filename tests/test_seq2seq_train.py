"""Seq2seq training (leeml/seq2seq.py): the step learns, masks, resume, determinism."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, binary_env
from leeml import config as config_lib, optim, parallel, seq2seq, train
from leeml.metric_writers import read_jsonl
from leeml.models import transformer
from leeml.train_state import TrainState

pytestmark = pytest.mark.usefixtures("quick_compiles")
PAD, EOS = seq2seq.PAD, seq2seq.EOS


def tiny_config(**overrides):
  c = seq2seq.base_config()
  c.progress_bar = False
  c.task.update(dict(name="copy", num_train=64, num_validation=16, num_test=16, min_len=1,
                     max_len=4, num_symbols=5))
  c.model.update(dict(num_layers=1, num_heads=2, width=16, mlp_dim=32, max_len=8,
                      dropout=0.1))
  c.optimizer.learning_rate = 3e-3
  c.schedule.update(dict(name="constant", warmup_steps=2))  # independent of the length
  c.batch_size, c.eval_batch_size = 16, 16
  c.num_train_steps, c.log_every_steps, c.checkpoint_every_steps = 8, 2, 4
  c.loss.label_smoothing = 0.1
  c.decode.beam_size = 2
  return seq2seq.run_config(c, **overrides)


def _setup(config):
  corpus = seq2seq.load_task(config.task)
  model = seq2seq.make_model(config.model, corpus)
  tx = optim.make_optimizer(config.optimizer, config.schedule, config.num_train_steps)
  src, tgt = jnp.asarray(corpus.train.sources), jnp.asarray(corpus.train.targets)
  state = TrainState.create(model.init(jax.random.PRNGKey(0), src[:1], tgt[:1]), tx)
  return corpus, model, tx, state, src, tgt


def test_train_steps_lower_the_loss():
  config = tiny_config(**{"model.dropout": 0.0, "loss.label_smoothing": 0.0})
  _, model, tx, state, src, tgt = _setup(config)
  step = jax.jit(seq2seq.make_train_step(model, tx))
  batch = {"inputs": src[:16], "targets": tgt[:16]}
  losses = []
  for _ in range(30):
    state, metrics = step(state, batch, jax.random.PRNGKey(1))
    losses.append(float(metrics["train_loss"]))
  assert int(state.step) == 30 and np.isfinite(losses).all()
  assert losses[-1] < 0.5 * losses[0]
  assert 0.0 <= float(metrics["train_token_accuracy"]) <= 1.0
  assert float(metrics["learning_rate"]) == pytest.approx(3e-3)


def test_loss_is_the_mean_over_real_tokens_and_ignores_padding():
  config = tiny_config(**{"model.dropout": 0.0})
  _, model, _, state, src, tgt = _setup(config)
  src, tgt = src[:8], tgt[:8]
  loss, logits = seq2seq.token_loss(model, state.params, src, tgt)
  logp = jax.nn.log_softmax(logits)
  nll = -np.take_along_axis(np.asarray(logp), np.asarray(tgt)[..., None], -1)[..., 0]
  real = np.asarray(tgt) != PAD
  assert real.sum() < real.size   # the batch does have padding
  np.testing.assert_allclose(float(loss), nll[real].mean(), rtol=1e-5)
  # More padding on either side (a wider batch) changes nothing.
  wide = lambda x: jnp.pad(x, ((0, 0), (0, 3)), constant_values=PAD)  # noqa: E731
  for s, t in ((wide(src), tgt), (src, wide(tgt)), (wide(src), wide(tgt))):
    np.testing.assert_allclose(float(seq2seq.token_loss(model, state.params, s, t)[0]),
                               float(loss), rtol=1e-5)
  # The logits at padded target positions do not enter the loss (nor its gradient).
  grads = jax.grad(lambda lg: transformer.sequence_cross_entropy(
      lg, tgt, PAD, 0.1)[0].sum())(logits)
  assert np.all(np.asarray(grads)[~real] == 0.0) and np.any(np.asarray(grads)[real] != 0)


def test_evaluate_scores_decoded_outputs_against_the_targets():
  config = tiny_config(**{"model.dropout": 0.0})
  corpus, model, _, state, _, _ = _setup(config)
  mesh = parallel.make_mesh()
  eval_step = jax.jit(seq2seq.make_eval_step(model))
  out = seq2seq.evaluate(model, state.params, corpus.test, corpus, 16, mesh, eval_step)
  tokens, targets = out["greedy_tokens"], corpus.test.targets
  assert tokens.shape == targets.shape
  manual = [list(t[:list(t).index(EOS) + 1]) if EOS in t else None for t in tokens]
  want = np.mean([m == list(r[r != PAD]) for m, r in zip(manual, targets)])
  assert out["exact_match"] == pytest.approx(want)
  # Teacher-forced NLL per real token = token_loss without smoothing.
  loss, _ = seq2seq.token_loss(model, state.params, jnp.asarray(corpus.test.sources),
                               jnp.asarray(targets))
  assert out["loss"] == pytest.approx(float(loss), rel=1e-5)
  assert "bleu" not in out   # not a text task
  # Cross-attention maps (sown by the model): one per decoder layer; each row is a
  # distribution over the REAL source tokens, exactly zero on source padding.
  src = corpus.test.sources[:4]
  (weights,) = seq2seq.cross_attention(model, state.params, src, targets[:4])
  assert weights.shape == (4, 2, targets.shape[1], src.shape[1])
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  pad = np.broadcast_to((src == PAD)[:, None, None, :], weights.shape)
  assert pad.any() and np.all(weights[pad] == 0.0)


def _train_losses(workdir):
  recs = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return [r["train_loss"] for r in recs if "train_loss" in r]


def test_resume_is_bit_identical_and_seeds_are_deterministic(tmp_path):
  d = {k: str(tmp_path / k) for k in ("a", "split")}
  a = seq2seq.train_and_evaluate(tiny_config(), d["a"], final_beam=False)
  assert len(_train_losses(d["a"])) == 8
  assert set(a.test) >= {"loss", "token_accuracy", "exact_match", "greedy_tokens"}
  # N/2 steps, then the same run extended to N (resumed from its checkpoint at N/2), in
  # another directory: the same seed gives the same numbers, bit for bit.
  seq2seq.train_and_evaluate(tiny_config(num_train_steps=4), d["split"], final_beam=False)
  assert sorted(os.listdir(os.path.join(d["split"], "checkpoints"))) == ["4"]
  resumed = seq2seq.train_and_evaluate(tiny_config(), d["split"])
  for x, y in zip(jax.tree.leaves(parallel.to_host(a.state.params)),
                  jax.tree.leaves(parallel.to_host(resumed.state.params))):
    np.testing.assert_array_equal(x, y)
  assert _train_losses(d["split"]) == _train_losses(d["a"])
  assert resumed.test["exact_match"] == a.test["exact_match"]
  # Wall time adds up over the calls that trained; a finished run keeps its time.
  again = seq2seq.train_and_evaluate(tiny_config(), d["split"], final_beam=False)
  assert again.seconds == resumed.seconds > 0.0
  assert 0.0 <= resumed.test["beam_exact_match"] <= 1.0
  assert resumed.test["beam_tokens"].shape == resumed.corpus.test.targets.shape


def test_nan_stops_with_the_step_and_bad_configs_fail_early(tmp_path):
  with pytest.raises(train.NonFiniteError, match="at step"):
    seq2seq.train_and_evaluate(tiny_config(**{"optimizer.learning_rate": 1e38,
                                              "optimizer.name": "sgd"}),
                               str(tmp_path / "nan"), final_beam=False)
  bad = tiny_config()
  bad.model.widht = 8
  with pytest.raises(config_lib.ConfigError, match="did you mean 'width'"):
    seq2seq.validate(bad)
  with pytest.raises(config_lib.ConfigError, match="task.name"):
    seq2seq.validate(tiny_config(**{"task.name": "poetry"}))
  with pytest.raises(config_lib.ConfigError, match="max_len"):
    seq2seq.train_and_evaluate(tiny_config(**{"model.max_len": 3}), str(tmp_path / "short"))


_EIGHT_VS_ONE = r"""
import json, sys, tempfile
import jax, numpy as np
jax.config.update("jax_disable_most_optimizations", True)   # tiny shapes: quick compiles
sys.path.insert(0, "tests")
from test_seq2seq_train import tiny_config
from leeml import parallel, seq2seq
assert jax.device_count() == 8, jax.devices()
out = {}
for n in (8, 1):
  # SGD: Adam would turn float noise in the key bias's gradient (exactly 0 in exact
  # arithmetic: softmax ignores a constant score shift) into +-lr steps.
  config = tiny_config(num_train_steps=4, **{"optimizer.name": "sgd",
                                             "optimizer.learning_rate": 0.3})
  r = seq2seq.train_and_evaluate(config, tempfile.mkdtemp(),
                                 mesh=parallel.make_mesh(jax.devices()[:n]), final_beam=False)
  out[str(n)] = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(r.state.params)]
  out[f"{n}_devices"] = len(jax.tree.leaves(r.state.params)[0].sharding.device_set)
  out[f"{n}_loss"] = r.test["loss"]
print("RESULT" + json.dumps(out))
"""


def test_eight_devices_give_the_one_device_params():
  """The batch sharded over 8 devices (params replicated) trains like one device."""
  proc = subprocess.run([sys.executable, "-c", _EIGHT_VS_ONE], cwd=REPO,
                        env=binary_env(device_count=8), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT")[-1])
  assert out["8_devices"] == 8 and out["1_devices"] == 1
  assert len(out["8"]) == len(out["1"]) > 10
  for a, b in zip(out["8"], out["1"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert out["8_loss"] == pytest.approx(out["1_loss"], rel=1e-4)
