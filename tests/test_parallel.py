"""Data parallelism: 8 devices == 1 device; 2 processes (4 devices) == 1 process."""

import pytest
import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO, binary_env, free_port, run_train, train_cmd
from leeml.metric_writers import read_jsonl

# Runs in a fresh interpreter: the forced host device count must be set before jax starts.
_EIGHT_VS_ONE = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, "tests")
from conftest import tiny_config
from leeml import parallel, train
from leeml.metric_writers import read_jsonl
assert jax.device_count() == 8, jax.devices()
out = {}
for name, overrides in [("mlp", {}), ("mlp_batchnorm", {"model.norm": "batch"})]:
  curves = {}
  for n in (8, 1):
    config = tiny_config(num_train_steps=40, **overrides)
    workdir = f"{sys.argv[1]}/{name}_{n}"
    train.train_and_evaluate(config, workdir, mesh=parallel.make_mesh(jax.devices()[:n]))
    curves[n] = [r["train_loss"] for r in read_jsonl(workdir + "/metrics.jsonl") if "train_loss" in r]
  out[name] = curves
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow  # 8 devices: test_trainers.py covers 8 == 1 for every trainer in the default run (classification) and the slow run
def test_eight_devices_give_the_one_device_loss_curve(tmp_path):
  proc = subprocess.run([sys.executable, "-c", _EIGHT_VS_ONE, str(tmp_path)], cwd=REPO,
                        env=binary_env(device_count=8), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.split("RESULT")[-1])
  for name, curves in result.items():
    eight, one = np.array(curves["8"]), np.array(curves["1"])
    assert len(eight) == len(one) == 40, name
    assert one[-1] < 0.7 * one[0], name  # it trained
    np.testing.assert_allclose(eight, one, atol=1e-5, rtol=0, err_msg=name)


def _losses(workdir):
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return (np.array([r["train_loss"] for r in records if "train_loss" in r]),
          [r for r in records if "eval_loss" in r])


@pytest.mark.slow  # 2-process training end to end (25 s); the default run keeps the 2-process to_host/all_rows test
def test_two_processes_give_the_one_process_losses(tmp_path):
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  run_train(one)
  port = free_port()
  procs = [subprocess.Popen(
      train_cmd(two, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                f"--process_id={i}"),
      env=binary_env(device_count=2), cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert "process 0 of 2, 4 devices" in outs[0][1]
  loss_one, eval_one = _losses(one)
  loss_two, eval_two = _losses(two)
  assert len(loss_one) == len(loss_two) == 60
  np.testing.assert_allclose(loss_two, loss_one, atol=1e-5, rtol=0)
  assert abs(eval_two[-1]["eval_loss"] - eval_one[-1]["eval_loss"]) <= 1e-5
  assert sorted(os.listdir(os.path.join(two, "checkpoints"))) == ["20", "40", "60"]


_TWO_PROCESS_FETCH = r"""
import sys
import jax, numpy as np
jax.distributed.initialize(f"127.0.0.1:{sys.argv[1]}", num_processes=2, process_id=int(sys.argv[2]))
from leeml import parallel
mesh = parallel.make_mesh()
rows = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
mine = rows[4 * jax.process_index():4 * (jax.process_index() + 1)]
x = parallel.global_batch({"x": mine}, mesh)["x"]
try:
  parallel.to_host(x)
  print("NO ERROR")
except ValueError as e:
  print("ERROR " + str(e))
print("ROWS", np.array_equal(parallel.all_rows(x), rows))
print("REPLICATED", float(parallel.to_host(jax.numpy.sum(x))))
"""


def test_to_host_refuses_an_array_sharded_across_processes():
  """Before the fix it returned this process's first shard (silently wrong)."""
  port = free_port()
  procs = [subprocess.Popen([sys.executable, "-c", _TWO_PROCESS_FETCH, str(port), str(i)],
                            env=binary_env(device_count=1), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=120) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
    lines = [l for l in out.strip().splitlines() if not l.startswith("[Gloo]")]
    assert lines[0].startswith("ERROR to_host: an array of shape (8, 3) is sharded across "
                               "processes"), lines
    assert lines[1:] == ["ROWS True", f"REPLICATED {float(np.arange(24).sum())}"], lines
