"""Generated sequence-to-sequence tasks (lectures 12-13): copy, reverse, sort, addition.

Token ids (one shared vocabulary): PAD = 0, BOS = 1, EOS = 2, then `num_symbols` symbol
ids 3 … 3+num_symbols-1; addition uses the digits 0-9 as symbols and one more id for '+'.

* copy:     x_1 … x_n                     -> x_1 … x_n
* reverse:  x_1 … x_n                     -> x_n … x_1
* sort:     x_1 … x_n                     -> the symbols in ascending order
* addition: a + b (decimal, most significant digit first, each min_len … max_len digits,
            no leading zeros) -> the digits of a + b (so output lengths vary by one more).

Lengths n are uniform on [min_len, max_len]. Sources are the tokens followed by EOS, and
targets the answer followed by EOS, both PAD-padded to a fixed width (max over the task at
these lengths, so every seed gives the same shapes). The decoder input is BOS + targets
shifted right (`leeml.models.transformer.shift_right`). Deterministic in (task, sizes,
seed): numpy's PCG64 generator.
"""

import dataclasses

import numpy as np

PAD, BOS, EOS = 0, 1, 2
FIRST_SYMBOL = 3
TASKS = ("copy", "reverse", "sort", "addition")


@dataclasses.dataclass(frozen=True)
class Seq2SeqData:
  """sources [N, src_len] and targets [N, tgt_len] int32 ids, PAD-padded, EOS-terminated."""
  sources: np.ndarray
  targets: np.ndarray
  vocab_size: int
  task: str

  @property
  def source_lengths(self) -> np.ndarray:
    """Real source tokens per example, EOS included."""
    return np.sum(self.sources != PAD, axis=1)

  @property
  def target_lengths(self) -> np.ndarray:
    """Real target tokens per example, EOS included."""
    return np.sum(self.targets != PAD, axis=1)


def vocab_size(task: str, num_symbols: int = 10) -> int:
  """PAD, BOS, EOS + symbols (+ '+' for addition, whose symbols are the 10 digits)."""
  _check(task)
  return FIRST_SYMBOL + (11 if task == "addition" else num_symbols)


def plus_id() -> int:
  """The '+' token of the addition task."""
  return FIRST_SYMBOL + 10


def max_lengths(task: str, max_len: int) -> tuple[int, int]:
  """(source width, target width), EOS included, for sequences up to max_len."""
  _check(task)
  if task == "addition":
    return 2 * max_len + 2, max_len + 2
  return max_len + 1, max_len + 1


def _check(task):
  if task not in TASKS:
    raise ValueError(f"task={task!r} is not one of: {', '.join(TASKS)}")


def _pad(rows: list[list[int]], width: int) -> np.ndarray:
  out = np.full((len(rows), width), PAD, np.int32)
  for i, r in enumerate(rows):
    out[i, :len(r)] = r
  return out


def _digits(n: int) -> list[int]:
  return [FIRST_SYMBOL + int(c) for c in str(n)]


def generate(task: str, num_examples: int, min_len: int, max_len: int, seed: int,
             num_symbols: int = 10) -> Seq2SeqData:
  """`num_examples` examples of `task` with lengths (digits, for addition) in [min_len,
  max_len]; see the module docstring for the formats."""
  _check(task)
  if not 1 <= min_len <= max_len:
    raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
  if task == "addition" and max_len > 18:
    raise ValueError("addition supports at most 18 digits (int64)")
  rng = np.random.default_rng([TASKS.index(task), num_examples, min_len, max_len, seed,
                               num_symbols])
  sources, targets = [], []
  for _ in range(num_examples):
    if task == "addition":
      a, b = (int(rng.integers(10 ** (n - 1) if n > 1 else 0, 10 ** n))
              for n in rng.integers(min_len, max_len + 1, size=2))
      sources.append(_digits(a) + [plus_id()] + _digits(b) + [EOS])
      targets.append(_digits(a + b) + [EOS])
      continue
    n = int(rng.integers(min_len, max_len + 1))
    x = FIRST_SYMBOL + rng.integers(0, num_symbols, size=n)
    y = {"copy": x, "reverse": x[::-1], "sort": np.sort(x)}[task]
    sources.append(list(x) + [EOS])
    targets.append(list(y) + [EOS])
  src_w, tgt_w = max_lengths(task, max_len)
  return Seq2SeqData(_pad(sources, src_w), _pad(targets, tgt_w),
                     vocab_size(task, num_symbols), task)


def to_text(tokens: np.ndarray, task: str = "copy") -> str:
  """Readable string of one sequence up to EOS: digits/letters, '+' for addition."""
  chars = []
  for t in np.asarray(tokens).tolist():
    if t in (EOS, PAD):
      break
    if t == BOS:
      continue
    if task == "addition":
      chars.append("+" if t == plus_id() else str(t - FIRST_SYMBOL))
    else:
      s = t - FIRST_SYMBOL
      chars.append(chr(ord("a") + s) if s < 26 else f"<{s}>")
  return "".join(chars)
