"""Lectures 10-11 (self-attention): self-attention vs RNN — parallel and distance.

  python experiments/reproduce.py --only=lec11_rnn_vs_attention --scale=cpu
  (or experiments/lec11_rnn_vs_attention.py). cpu: 3 min 41 s wall on 2 CPU cores (182
  CPU-seconds, other jobs' load falling from ~8 to ~1; 7.5 min under load ~9). smoke:
  ~80 s (too few steps for the distance and cost claims: they FAIL there by design).

Models (leeml/models/sequence.py), each sized to `target_params` parameters: a simple RNN,
an LSTM and a GRU (flax `nn.RNN` over SimpleCell / LSTMCell / GRUCell) and a one-layer
pre-LN self-attention encoder (leeml/models/attention.py, sinusoidal positions); all embed
the tokens and classify from the output at the last position.

Expected (lectures 10-11, slide "Self-attention v.s. RNN": parallel, distance):
A. Parallel: an RNN computes a length-L sequence in L sequential steps, self-attention in
   one (claim `sequential_steps`: read from the forward jaxpr, RNN = L, attention = 1).
   Forward+backward time per batch vs L is measured and reported whichever way it falls,
   with the length where one overtakes the other on this device (no threshold: a table).
B. Distance: recall the token at position 0 at the end of a length-L sequence
   (leeml/datasets/sequence_tasks.py; 8 values, chance 1/8). Attention reaches any position
   in one step, so it stays accurate at L = 256 (claim: mean accuracy ≥ 0.95 at every L);
   the simple RNN must carry x_0 through L tanh steps (vanishing gradients, Bengio et al.
   1994; Hochreiter & Schmidhuber 1997) and falls toward chance as L grows (claim: at the
   longest L within 0.10 of chance, and ≥ 0.30 below its accuracy at the shortest L).
   LSTM and GRU are trained the same way and reported alongside (no claim).
C. Attention's cost: the L×L weights make its memory and time quadratic in L (Vaswani et
   al. 2017, Table 1: O(n²·d) per layer); the log-log slope of the compiled temporary memory
   vs L (fit over L ≥ 256) lies in [1.8, 2.2], and of the fwd+bwd time is ≥ 1.5 (time is
   noisier: it is wall-clock on a shared CPU).

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  c = ml_collections.ConfigDict()
  c.seeds = {"smoke": (0, 1), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}[scale]
  c.kinds = ("simple", "lstm", "gru", "attention")
  c.target_params = {"smoke": 2000, "cpu": 5000, "full": 20000}[scale]
  c.attention = ml_collections.ConfigDict(dict(
      num_layers=1, num_heads=2, mlp_ratio=2, positions="sinusoidal"))
  c.task = ml_collections.ConfigDict(dict(
      num_values=8,                                  # chance = 1/8
      num_distractors=8,                             # distractor ids, apart from values
      num_train={"smoke": 256, "cpu": 4096, "full": 16384}[scale],
      num_test={"smoke": 64, "cpu": 512, "full": 2048}[scale]))

  # B. Distance: every model trained alike (Adam, clipped, the core's train step and batch
  # order: each seed's shuffled epochs), the seeds one population (vmapped members).
  # last_query: attention's last layer computed at the last position only, the one the
  # readout reads (the same parameters, logits and gradients up to float rounding; O(L)
  # instead of O(L²) for that layer). Parts A and C time the whole layer.
  c.distance = ml_collections.ConfigDict(dict(
      lengths={"smoke": (8, 16), "cpu": (16, 64, 256),
               "full": (16, 32, 64, 128, 256)}[scale],
      last_query=True))
  c.train = ml_collections.ConfigDict(dict(
      num_steps={"smoke": 30, "cpu": 400, "full": 3000}[scale],
      batch_size={"smoke": 8, "cpu": 16, "full": 64}[scale],
      learning_rate=3e-3, grad_clip_norm=1.0,
      eval_batch_size={"smoke": 32, "cpu": 64, "full": 128}[scale]))

  # A. Parallel: fwd+bwd per batch vs L, every model, one process.
  c.timing = ml_collections.ConfigDict(dict(
      lengths={"smoke": (8, 32), "cpu": (16, 64, 256, 1024),
               "full": (16, 32, 64, 128, 256, 512, 1024)}[scale],
      batch_size={"smoke": 8, "cpu": 16, "full": 32}[scale],
      warmup=2, repeats={"smoke": 2, "cpu": 5, "full": 10}[scale]))
  # C. Attention's cost vs L (reuses A's measurements at the same L and batch).
  c.cost = ml_collections.ConfigDict(dict(
      lengths={"smoke": (8, 32, 64), "cpu": (64, 256, 512, 1024),
               "full": (64, 128, 256, 512, 1024, 2048)}[scale],
      batch_size=c.timing.batch_size))

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      attention_min_accuracy=0.95,      # B: attention, mean over seeds, at every L
      rnn_chance_margin=0.10,           # B: simple RNN at the longest L ≤ 1/8 + 0.10
      rnn_min_drop=0.30,                # B: … and ≥ 0.30 below its mean at the shortest L
      slope_min_length={"smoke": 8, "cpu": 256, "full": 256}[scale],   # C: fit over L ≥
      memory_slope_range=(1.8, 2.2),    # C: compiled temp memory ∝ L^slope
      time_min_slope=1.5))              # C: fwd+bwd time ∝ L^slope
  c.notes = () if scale == "smoke" else (
      "Set after a pilot, before the first cpu run (thresholds unchanged): distractors "
      "use their own 8 ids (num_distractors=8). In the pilot they were drawn from the 8 "
      "value ids (x_0 findable only by position): at L=256, batch 16, attention with "
      "sinusoidal positions reached [0.13, 0.13, 0.84] (10k params, 150 steps) and "
      "[0.90, 0.09, 1.00] (5k params, 400 steps) over 3 seeds: locating position 0 among 256 sinusoidal codes "
      "took most of the budget, which tests position arithmetic rather than distance. "
      "target_params 10k -> 5k and batch 32 -> 16 were set for CPU time.",)
  return c
