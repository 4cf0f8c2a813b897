"""A population on 8 devices: each device trains its own block of members, so the compiled
programs have no collectives, and the members equal those of a 1-device run.

Before the engine's shard_map, the member axis was left to sharding propagation: a vmapped
convolution was not split along it, the CNN step gathered every member's activations (6
all-gathers on 8 devices), and on XLA:CPU's simulated devices one of those rendezvous
deadlocked (benchmarks/population.py, BENCHMARKS.md).
"""

import json
import subprocess
import sys

import numpy as np

from conftest import REPO, binary_env

_SCRIPT = r"""
import json, re, sys
import jax, ml_collections, numpy as np
jax.config.update("jax_disable_most_optimizations", True)
sys.path.insert(0, "tests")
from conftest import tiny_config
from leeml import parallel, population
from leeml.population import engine
assert jax.device_count() == 8, jax.devices()
cfg = tiny_config(num_train_steps=3, eval_every_steps=0, batch_size=16, eval_batch_size=64)
cfg.dataset = ml_collections.ConfigDict(dict(name="digits", image_size=8))
cfg.model = ml_collections.ConfigDict(dict(name="cnn", channels=(4, 8), kernel_size=3,
                                           pool="avg", dense_width=0))
# SGD and average pooling: with Adam a gradient that is float noise around 0 becomes a +-lr
# step, and max pooling's ties (the digits' zero background) route gradients by the last
# bit, so the two layouts' rounding differences would not stay within a tolerance.
cfg.optimizer.name, cfg.optimizer.learning_rate = "sgd", 0.1
program = population.program_from_config(cfg)
members = population.grid(range(8))
out = {}
# The compiled step and evaluation of 8 members on 8 devices: collectives in each.
mesh = parallel.make_mesh()
eng = engine._engine(program, 8, False, mesh, 2)
hp = {k: jax.device_put(np.asarray(v), eng.sharding)
      for k, v in engine._resolve_hparams(program, members).items()}
seeds = jax.device_put(np.arange(8, dtype=np.int32), eng.sharding)
member, rng = eng.init(seeds, hp)
arrays = jax.device_put({"inputs": program.train.inputs, "targets": program.train.targets},
                        eng.replicated)
perms = eng.perms(seeds, np.int32(0))
pattern = r"\b(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)(-start)?\("
step_hlo = eng.step.lower(member, np.int32(0), arrays, perms, np.int32(0), rng, hp).compile()
out["step_collectives"] = len(re.findall(pattern, step_hlo.as_text()))
chunk_hlo = eng.chunk.lower(member, np.int32(0), arrays, perms, np.int32(0), rng, hp,
                            length=2).compile()
out["chunk_collectives"] = len(re.findall(pattern, chunk_hlo.as_text()))
out["step_shards"] = len(step_hlo.output_shardings[0]["nonfinite"].device_set)
for n in (8, 1):
  res = population.run(program, members, num_steps=3, strategy="vmap",
                       mesh=parallel.make_mesh(jax.devices()[:n]))
  out[str(n)] = [np.asarray(x).ravel().tolist() for i in range(8)
                 for x in jax.tree.leaves(res.params(i))]
print("RESULT" + json.dumps(out))
"""


def test_eight_device_population_has_no_collectives_and_equals_one_device():
  proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, env=binary_env(8),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT")[-1])
  assert out["step_collectives"] == 0
  assert out["chunk_collectives"] == 0
  assert out["step_shards"] == 8  # the members really are spread over the 8 devices
  assert len(out["8"]) == len(out["1"]) > 8
  for a, b in zip(out["8"], out["1"], strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
