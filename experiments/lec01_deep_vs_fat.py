r"""Lectures 1-2: deep vs fat networks at equal parameter counts (Telgarsky sawtooth).

  python experiments/lec01_deep_vs_fat.py [--scale=smoke|cpu|full] [--out=report/lec01_deep_vs_fat]

The same flags as experiments/reproduce.py, limited to experiment 'lec01_deep_vs_fat'
(config: configs/lec01_deep_vs_fat.py; library code: leeml/lectures/lec01_deep_vs_fat.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec01_deep_vs_fat"])
