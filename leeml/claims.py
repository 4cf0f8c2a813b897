"""Claims: a lecture's statement as a predicate over measured results, judged honestly.

An experiment measures results over several seeds, then judges each of its claims:

  claim = Claim(
      id="lec08.ce_lower_train_loss",
      statement="Cross-entropy makes training easier than MSE",   # the lecture's words
      source="Lecture 8 (Classification), slide 'Cross-entropy v.s. MSE'",
      threshold="mean final train loss (CE) < mean final train loss (MSE) on every dataset",
      check=lambda r: ...)                                         # -> Evidence

The threshold is text copied from the config *before* running (configs hold the numbers);
`check` only reads results. A failing claim is reported as FAIL with its numbers; a check
that raises is a FAIL too, with the error, never skipped.
"""

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

PASS, FAIL = "PASS", "FAIL"


@dataclasses.dataclass(frozen=True)
class Stat:
  """A measured quantity over seeds: its values, mean and (sample) standard deviation."""
  values: tuple[float, ...]

  @classmethod
  def of(cls, values: Sequence[float]) -> "Stat":
    return cls(tuple(float(v) for v in np.ravel(values)))

  @property
  def n(self) -> int:
    return len(self.values)

  @property
  def mean(self) -> float:
    return float(np.mean(self.values)) if self.values else math.nan

  @property
  def std(self) -> float:
    if self.n < 2:
      return 0.0
    with np.errstate(invalid="ignore"):  # inf values ("never reached") give nan, quietly
      return float(np.std(self.values, ddof=1))

  def __str__(self) -> str:
    return f"{_fmt(self.mean)} ± {_fmt(self.std)} (n={self.n})"


def _fmt(x: float) -> str:
  if not math.isfinite(x):
    return str(x)
  return f"{x:.3g}" if (abs(x) >= 1e-3 or x == 0) else f"{x:.2e}"


@dataclasses.dataclass(frozen=True)
class Evidence:
  """What a check returns: the decision and the numbers that decided it."""
  passed: bool
  numbers: Mapping[str, Stat]
  detail: str = ""


@dataclasses.dataclass(frozen=True)
class Claim:
  id: str
  statement: str
  source: str
  threshold: str
  check: Callable[[Any], Evidence]


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: Claim
  verdict: str  # PASS or FAIL
  numbers: Mapping[str, Stat]
  detail: str

  @property
  def passed(self) -> bool:
    return self.verdict == PASS

  def numbers_text(self) -> str:
    return "; ".join(f"{k} = {v}" for k, v in self.numbers.items())


def judge(claim: Claim, results: Any) -> Verdict:
  """Runs the claim's check; an exception is a FAIL whose detail is the error."""
  try:
    ev = claim.check(results)
  except Exception as e:  # pylint: disable=broad-except
    return Verdict(claim, FAIL, {}, f"check raised {type(e).__name__}: {e}")
  if not isinstance(ev, Evidence):
    return Verdict(claim, FAIL, {}, f"check returned {type(ev).__name__}, not Evidence")
  return Verdict(claim, PASS if bool(ev.passed) else FAIL, dict(ev.numbers), ev.detail)


def less_than(name_a: str, a: Sequence[float], name_b: str, b: Sequence[float], *,
              margin: float = 0.0, paired: bool = False) -> Evidence:
  """mean(a) < mean(b) - margin; with `paired`, also a < b - margin for every seed."""
  sa, sb = Stat.of(a), Stat.of(b)
  passed = sa.mean < sb.mean - margin
  if paired:
    passed = passed and all(x < y - margin for x, y in zip(sa.values, sb.values))
  rel = "<" if passed else "not <"
  return Evidence(passed, {name_a: sa, name_b: sb},
                  f"{name_a} {_fmt(sa.mean)} {rel} {name_b} {_fmt(sb.mean)}"
                  + (f" - {_fmt(margin)}" if margin else "") + (" (every seed)" if paired else ""))
