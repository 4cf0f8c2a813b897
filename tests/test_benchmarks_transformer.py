"""Smoke test of benchmarks/transformer_throughput.py: its runners run, decoding generates
every token, and the PyTorch twin of leeml's Transformer is the same model (parameter
count, logits, loss and one Adam step from copied weights). Torch parts are skipped
when torch (the `bench` extra) is not installed."""

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import transformer_throughput as tt

TINY = tt.SIZES["tiny"]


def _setup():
  model = tt.jax_model(TINY)
  batch = tt.make_batch(TINY)
  return model, batch, tt.init_params(model, batch)


def test_batch_has_padding_and_eos():
  batch = tt.make_batch(TINY)
  src, tgt = batch["inputs"], batch["targets"]
  assert src.shape == tgt.shape == (TINY["batch"], TINY["src_len"])
  assert np.all(src[:, 0] >= tt.FIRST_SYMBOL) and np.all(src < TINY["vocab"])
  lengths = np.sum(tgt != tt.PAD, axis=1)
  assert np.all(tgt[np.arange(len(tgt)), lengths - 1] == tt.EOS)
  assert np.all(np.sum(tgt == tt.EOS, axis=1) == 1)


@pytest.mark.slow  # ~20 s each
def test_leeml_and_plain_steps_agree(quick_compiles):
  model, batch, params = _setup()
  leeml, plain = tt.leeml_runner(model, params, batch), tt.plain_runner(model, params, batch)
  first = [float(leeml(1)["train_loss"]), float(plain(1))]
  second = [float(leeml(1)["train_loss"]), float(plain(1))]
  # Same weights, loss and optimizer: the same losses, and the first Adam step lowers it.
  np.testing.assert_allclose(first[0], first[1], rtol=1e-5)
  np.testing.assert_allclose(second[0], second[1], rtol=1e-4)
  assert second[0] < first[0]
  assert 0.5 * np.log(TINY["vocab"]) < first[0] < 2 * np.log(TINY["vocab"])


@pytest.mark.slow  # a benchmark script end to end (10 s)
def test_decoding_runs_to_max_len(quick_compiles):
  model, batch, params = _setup()
  src = jnp.asarray(batch["inputs"])
  out = {k: np.asarray(tt.decode_runner(k, model, params, src, 6)(1))
         for k in ("cached", "uncached", "beam4")}
  for tokens in out.values():
    assert tokens.shape == (TINY["batch"], 6)
    assert np.all(tokens >= tt.EOS) and np.all(tokens < TINY["vocab"])  # no PAD, no BOS
  np.testing.assert_array_equal(out["cached"], out["uncached"])


@pytest.mark.slow  # ~20 s each
def test_tables_from_quick_run(quick_compiles, capsys):
  train_md, decode_md = tt.main(["--quick", "--no-torch", "--decode-lengths=4",
                                 "--malloc=default"])
  rows = train_md.splitlines()
  assert len(rows) == 3 and rows[2].startswith("| tiny: d32 h2 1+1L")
  assert f"| {tt.count_params(_setup()[2]):,} / 0 |" in rows[2]
  leeml = float(rows[2].split("|")[3])
  assert leeml > 0
  cells = decode_md.splitlines()[2].split("|")
  assert cells[1].strip() == "4" and float(cells[2].replace(",", "")) > 0
  assert "other processes used" in capsys.readouterr().out


def test_torch_twin_is_the_same_model():
  torch = pytest.importorskip("torch")
  model, batch, params = _setup()
  tm = tt.torch_model(TINY)
  assert sum(p.numel() for p in tm.parameters()) == tt.count_params(params) == 22016
  tt.copy_to_torch(params, tm)
  src, tgt = batch["inputs"], batch["targets"]
  tgt_in = np.asarray(tt.shift_right(jnp.asarray(tgt), tt.BOS))
  logits = np.asarray(model.apply({"params": params}, jnp.asarray(src), jnp.asarray(tgt_in)))
  with torch.no_grad():
    t_logits = tm(torch.from_numpy(src.astype(np.int64)),
                  torch.from_numpy(tgt_in.astype(np.int64))).numpy()
  np.testing.assert_allclose(t_logits, logits, atol=1e-4)


def test_torch_step_matches_leeml_step(quick_compiles):
  pytest.importorskip("torch")
  model, batch, params = _setup()
  plain, eager = tt.plain_runner(model, params, batch), tt.torch_runner(TINY, params, batch)
  losses = [(float(plain(1)), float(eager(1))) for _ in range(3)]
  # Same loss at the copied weights, and the same after two Adam updates.
  np.testing.assert_allclose([t for _, t in losses], [j for j, _ in losses], rtol=1e-4)
  assert losses[2][0] < losses[0][0]


def test_torch_greedy_matches_leeml(quick_compiles):
  pytest.importorskip("torch")
  model, batch, params = _setup()
  ours = np.asarray(tt.decode_runner("cached", model, params, jnp.asarray(batch["inputs"]),
                                     5)(1))
  theirs = tt.torch_decode_runner(TINY, params, batch["inputs"], 5)(1)
  np.testing.assert_array_equal(theirs, ours)
