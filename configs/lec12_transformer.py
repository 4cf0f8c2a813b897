"""Lecture 12 (Transformer): an encoder-decoder Transformer translating dates, en -> de.

  python experiments/reproduce.py --only=lec12_transformer --scale=cpu
  (or experiments/lec12_transformer.py --scale=cpu). cpu: 3 seeds × 1,000 steps, the seeds
  one population of `leeml.seq2seq.program` (one compile; member i = the single run of
  its seed). Before that (one `seq2seq.train_and_evaluate` per seed): 3 min 29 s wall in
  all (about 70 s per seed, training + greedy and beam evaluation) on 2 CPU cores shared
  with other jobs (load ~3-4). smoke: seconds (12 steps: the exact-match claim FAILs there
  by design).

Task (leeml/datasets/dates.py, CLDR data from babel, characters as tokens): a date written
in English in one of 10 formats (CLDR full/long/medium/short and six other patterns, e.g.
"Wednesday, November 25, 2026", "25 Nov 2026", "11/25/26", "2026-11-25") -> the same date
in German, CLDR 'long' ("25. November 2026"). The split is by calendar date: no test date
is ever seen in training, in any format. The output length is decided by the model (it
emits EOS), as the lecture stresses for seq2seq. The German 'long' format is the target
rather than 'full' ("Mittwoch, 25. November 2026") because 6 of the 10 English formats
carry no weekday: a 'full' target would ask the model to compute the weekday from the
date (calendar arithmetic, not translation). Pilots (before this config; in `notes`).

Model: the pre-LN encoder-decoder Transformer of leeml/models/transformer.py (2+2 layers,
width 64, 4 heads, sinusoidal positions, tied embeddings), teacher forcing with label
smoothing 0.1 (Vaswani et al. 2017, sec. 5.4), Adam with linear warmup then cosine decay
(leeml/seq2seq.py through the foundation's optimizer, checkpoints and metrics).

Expected (lecture 12, slides "Seq2seq", "Encoder", "Decoder – Autoregressive",
"Cross attention", "Training"):
1. exact_match: greedy decoding reaches test exact match ≥ 0.90 for EVERY seed (the
   issue's "aim ≥ 90% at cpu scale").
2. within_budget: each seed's run (training + evaluation) takes ≤ 600 s of wall time on
   this machine (the issue: "trains to the stated exact-match in ≤ 10 min on 2 cores").
   The seeds train together, so each seed is charged the whole population's training
   time plus its own test evaluation (an upper bound on its own run; before the
   population engine: its own run's time).
Reported without a threshold: BLEU (sacrebleu, 13a) for greedy and for beam search
(beam 4, GNMT length penalty α = 0.6), and cross-attention maps (which English characters
each German character attends to: day, month and year should align across reorderings).

full: a real tfds corpus (leeml/datasets/translation.py, default ted_hrlr_translate/pt_to_en,
characters), Transformer-base-like sizes on an accelerator; needs the data prepared online
(`tfds build ted_hrlr_translate/pt_to_en --file_format=array_record`). Not run here.

Thresholds are fixed here, before running; the experiment only reads them.
"""

import ml_collections

from leeml import seq2seq


def get_config(scale: str | None = None):
  scale = scale or "cpu"
  if scale not in ("smoke", "cpu", "full"):
    raise ValueError(f"scale {scale!r} is not one of: cpu, full, smoke")
  c = ml_collections.ConfigDict()
  c.seeds = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2)}[scale]

  t = seq2seq.base_config()
  t.progress_bar = False
  t.task.name = "dates"
  t.task.target_format = "long"
  t.task.num_train = {"smoke": 256, "cpu": 8000, "full": 8000}[scale]
  t.task.num_validation = {"smoke": 32, "cpu": 256, "full": 256}[scale]
  t.task.num_test = {"smoke": 32, "cpu": 1000, "full": 1000}[scale]
  t.model.update(dict(num_layers=2, num_heads=4, width=64, mlp_dim=128, dropout=0.0,
                      norm_position="pre", positions="sinusoidal", tie_embeddings=True,
                      max_len=40))
  t.loss.label_smoothing = 0.1
  t.optimizer.update(dict(name="adam", learning_rate=2e-3, grad_clip_norm=1.0))
  t.schedule.update(dict(name="warmup_cosine", warmup_steps=100,
                         end_learning_rate_factor=0.05))
  t.num_train_steps = {"smoke": 12, "cpu": 1000, "full": 1000}[scale]
  t.batch_size = {"smoke": 16, "cpu": 64, "full": 64}[scale]
  t.eval_batch_size = {"smoke": 32, "cpu": 256, "full": 256}[scale]
  t.eval_every_steps = {"smoke": 6, "cpu": 250, "full": 250}[scale]
  t.log_every_steps = {"smoke": 6, "cpu": 50, "full": 50}[scale]
  t.checkpoint_every_steps = {"smoke": 12, "cpu": 500, "full": 500}[scale]
  t.decode.update(dict(beam_size=4, alpha=0.6))
  if scale == "smoke":
    t.model.update(dict(num_layers=1, width=32, mlp_dim=64))
    t.schedule.warmup_steps = 4
  if scale == "full":  # a real corpus, Transformer-base-like, on an accelerator
    t.task.update(dict(name="translation", tfds_name="ted_hrlr_translate/pt_to_en",
                       max_chars=128, num_train=0, num_validation=0, num_test=0))
    t.model.update(dict(num_layers=6, num_heads=8, width=512, mlp_dim=2048, dropout=0.1,
                        max_len=129))
    t.optimizer.update(dict(learning_rate=7e-4, b2=0.98, eps=1e-9))
    t.schedule.update(dict(warmup_steps=4000, end_learning_rate_factor=0.0))
    t.num_train_steps = 100_000
    t.batch_size = 256
    t.eval_batch_size = 512
    t.eval_every_steps = 10_000
    t.log_every_steps = 200
    t.checkpoint_every_steps = 5_000
  c.train = t

  # Cross-attention maps: this many test examples, one per source format family.
  c.attention_examples = 3

  # Thresholds (decided before running).
  c.thresholds = ml_collections.ConfigDict(dict(
      min_exact_match=0.90,     # 1: greedy test exact match, every seed
      max_seconds=600.0))       # 2: wall seconds per seed (train + evaluate)
  c.notes = () if scale == "smoke" else (
      "Pilots before this config (seed 0, 1,000 steps, this model, 8,000 training pairs, "
      "512 test pairs, Adam 2e-3 with 100 warmup steps, no label smoothing): all 10 "
      "English formats -> German 'long': test exact match 1.000, BLEU 100; the 4 English "
      "formats that write the weekday -> German 'full' (with the weekday): 0.998, BLEU "
      "99.95. Earlier, reverse (n ≤ 8) in 300 steps reached 0.98, checking the loop.",)
  return c
