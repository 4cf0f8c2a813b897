"""Seq2seq training (leeml/seq2seq.py): the step learns, masks, evaluation (also over two
processes), Result and config validation. Resume after kill -9, the NaN stop and 8 devices
== 1 are tests/test_trainers.py's, for every trainer."""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import REPO, binary_env, free_port
from leeml import config as config_lib, optim, parallel, population, seq2seq, seq2seq_metrics
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
  """(corpus, model, tx, initial state, train sources, train targets); built once per
  config (the tests share them rather than re-initialising eagerly)."""
  return _setup_cached(config.to_json(sort_keys=True))


@functools.lru_cache(maxsize=4)
def _setup_cached(config_json: str):
  config = ml_collections.ConfigDict(json.loads(config_json))
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


def test_on_device_exact_match_is_the_host_metric_on_greedy_outputs():
  """Greedy outputs carry PAD after EOS and never PAD before it; on such rows the device
  check (all positions equal) is `seq2seq_metrics.exact_match_per_example`."""
  targets = np.array([[5, 6, EOS, PAD], [5, 6, EOS, PAD], [7, EOS, PAD, PAD],
                      [7, EOS, PAD, PAD], [3, 4, 5, EOS], [3, 4, 5, EOS], [3, 4, 5, EOS]])
  greedy = np.array([[5, 6, EOS, PAD],    # equal
                     [5, 7, EOS, PAD],    # a wrong token
                     [7, 8, EOS, PAD],    # too long
                     [EOS, PAD, PAD, PAD],  # too short
                     [3, 4, 5, EOS],      # equal, EOS at the last position
                     [3, 4, 5, 6],        # no EOS within the width
                     [3, 4, EOS, PAD]])
  want = seq2seq_metrics.exact_match_per_example(greedy, targets, EOS, PAD)
  np.testing.assert_array_equal(want, [True, False, False, False, True, False, False])
  np.testing.assert_array_equal(seq2seq.exact_match_rows(jnp.asarray(greedy),
                                                         jnp.asarray(targets)), want)


@pytest.mark.slow  # two compiled trainers (~20 s); the slow run (.ci/run-slow) covers it
def test_population_member_equals_the_single_run(tmp_path):
  """seq2seq.program: member i of a population (one compile) trains exactly what
  train_and_evaluate with its seed trains (init, batches, dropout keys), and its
  validation numbers equal the loop's."""
  config = tiny_config(num_train_steps=4, log_every_steps=2, eval_every_steps=2)
  program = seq2seq.program(config, splits=("validation",))
  result = population.run(program, population.grid([0, 1]), num_steps=4, eval_every=2,
                          progress=False)
  single = seq2seq.train_and_evaluate(seq2seq.run_config(config, seed=1), str(tmp_path),
                                      final_beam=False)
  records = read_jsonl(os.path.join(str(tmp_path), "metrics.jsonl"))
  _, loss = result.curves("train_loss")
  np.testing.assert_array_equal(loss[1], [r["train_loss"] for r in records
                                          if "train_loss" in r])
  assert not np.array_equal(loss[0], loss[1])   # the seeds differ
  for a, b in zip(jax.tree.leaves(result.params(1)), jax.tree.leaves(single.state.params)):
    np.testing.assert_array_equal(a, np.asarray(b))
  evals = [r for r in result.records if r["member"] == 1 and "eval_validation_nll" in r]
  loop_evals = [r for r in records if "eval_exact_match" in r]
  assert [r["step"] for r in evals] == [r["step"] for r in loop_evals] == [2, 4]
  for mine, theirs in zip(evals, loop_evals):
    got = seq2seq.population_eval_metrics(mine, "validation")
    for k in ("loss", "token_accuracy", "exact_match"):
      assert got[k] == pytest.approx(theirs[f"eval_{k}"], rel=1e-6)
  # evaluate_states: the same numbers after training, outside the engine.
  (after,) = seq2seq.evaluate_states(_model_of(config), [result.states[1]],
                                     seq2seq.load_task(config.task).validation, 16)
  assert after["loss"] == pytest.approx(loop_evals[-1]["eval_loss"], rel=1e-6)


def _model_of(config):
  return seq2seq.make_model(config.model, seq2seq.load_task(config.task))


@pytest.mark.slow  # end to end / subprocess; the slow run (.ci/run-slow) covers it
def test_extended_run_logs_every_step_once_and_adds_up_its_seconds(tmp_path):
  workdir = str(tmp_path / "split")
  seq2seq.train_and_evaluate(tiny_config(num_train_steps=4), workdir, final_beam=False)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  resumed = seq2seq.train_and_evaluate(tiny_config(), workdir)  # extended to 8 steps
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in records if "train_loss" in r] == list(range(1, 9))
  assert [r["step"] for r in records if "eval_exact_match" in r] == [4, 8]
  tests = [r for r in records if "test_exact_match" in r]
  assert [r["step"] for r in tests] == [4, 8]
  assert tests[-1]["test_exact_match"] == resumed.test["exact_match"]
  assert tests[-1]["test_beam_exact_match"] == resumed.test["beam_exact_match"]
  # Wall time adds up over the calls that trained; a finished run keeps its time.
  again = seq2seq.train_and_evaluate(tiny_config(), workdir, final_beam=False)
  assert again.seconds == resumed.seconds > 0.0
  assert 0.0 <= resumed.test["beam_exact_match"] <= 1.0
  assert resumed.test["beam_tokens"].shape == resumed.corpus.test.targets.shape
  assert len(read_jsonl(os.path.join(workdir, "metrics.jsonl"))) == len(records)


def test_bad_configs_fail_early(tmp_path):
  bad = tiny_config()
  bad.model.widht = 8
  with pytest.raises(config_lib.ConfigError, match="did you mean 'width'"):
    seq2seq.validate(bad)
  with pytest.raises(config_lib.ConfigError, match="task.name"):
    seq2seq.validate(tiny_config(**{"task.name": "poetry"}))
  with pytest.raises(config_lib.ConfigError, match="max_len"):
    seq2seq.train_and_evaluate(tiny_config(**{"model.max_len": 3}), str(tmp_path / "short"))
  # A missing key is one line naming it (before: skipped, then a crash mid-run).
  for section, key in (("", "eval_every_steps"), ("decode.", "alpha"), ("task.", "min_len")):
    config = tiny_config()
    del (config[section[:-1]] if section else config)[key]
    with pytest.raises(config_lib.ConfigError, match=rf"^config\.{section}{key} is missing"):
      seq2seq.validate(config)


# Two processes (2 CPU devices each) joined by jax.distributed evaluate the same params:
# every process must read only its part of each eval batch and get ALL decoded rows back.
_TWO_PROCESSES = r"""
import json, sys
import jax, numpy as np
jax.config.update("jax_disable_most_optimizations", True)
sys.path.insert(0, "tests")
from leeml import runtime
runtime.initialize_distributed(f"127.0.0.1:{sys.argv[1]}", 2, int(sys.argv[2]))
from test_seq2seq_train import evaluate_untrained
print("RESULT" + json.dumps(evaluate_untrained()))
"""


def evaluate_untrained() -> dict:
  """The test-split evaluation of the PRNGKey(0) init over all devices: 20 examples in
  batches of 8 (the last one padded)."""
  config = tiny_config(**{"model.dropout": 0.0, "task.num_test": 20})
  corpus, model, _, state, _, _ = _setup(config)
  mesh = parallel.make_mesh()
  replicated = parallel.replicated(mesh)
  params = jax.tree.map(lambda x: jax.make_array_from_callback(
      x.shape, replicated, lambda idx, x=np.asarray(x): x[idx]), state.params)
  out = seq2seq.evaluate(model, params, corpus.test, corpus, 8, mesh,
                         jax.jit(seq2seq.make_eval_step(model)))
  return {"loss": out["loss"], "token_accuracy": out["token_accuracy"],
          "exact_match": out["exact_match"], "tokens": out["greedy_tokens"].tolist(),
          "devices": jax.device_count(), "processes": jax.process_count()}


@pytest.mark.slow  # end to end / subprocess; the slow run (.ci/run-slow) covers it
def test_two_processes_evaluate_like_one():
  port = free_port()
  procs = [subprocess.Popen([sys.executable, "-c", _TWO_PROCESSES, str(port), str(i)],
                            cwd=REPO, env=binary_env(device_count=2), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  two = [json.loads(out.split("RESULT")[-1]) for out, _ in outs]
  one = evaluate_untrained()
  assert one["devices"] == 1 and two[0]["devices"] == 4 and two[0]["processes"] == 2
  assert len(one["tokens"]) == 20
  for got in two:  # every process gets the whole split's numbers
    assert got["tokens"] == one["tokens"]
    assert got["exact_match"] == one["exact_match"]
    assert got["loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert got["token_accuracy"] == pytest.approx(one["token_accuracy"], rel=1e-6)
