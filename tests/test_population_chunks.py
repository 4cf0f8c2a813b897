"""How the population engine cuts training into chunks: scanned chunks of one length."""

import numpy as np
import pytest

from leeml.population import engine


@pytest.mark.parametrize("num_steps,every,scan_steps,length", [
    (1500, 150, 100, 75),   # lec03: evaluations every 150 -> 75 + 75, not 100 + 50
    (1000, 50, 100, 50),
    (1000, 0, 100, 100),
    (1003, 0, 100, 59),     # 1003 = 17 x 59
    (37, 0, 100, 37),
])
def test_scanned_chunks_share_one_length(num_steps, every, scan_steps, length):
  ends = engine._boundaries(0, num_steps, (every, 0), scan_steps)  # pylint: disable=protected-access
  assert ends[-1] == num_steps
  assert set(np.diff([0] + ends)) == {length}
  if every:
    assert set(range(every, num_steps, every)) <= set(ends)


def test_without_a_long_common_length_chunks_are_scan_steps_and_a_remainder():
  # intervals of 101 (prime): a common length of 1 would mean 101 compiled scans of 1 step
  ends = engine._boundaries(0, 202, (101, 0), 100)  # pylint: disable=protected-access
  assert ends == [100, 101, 201, 202]
