r"""Lectures 1-2: piecewise-linear functions, exact linear regions of ReLU networks.

  python experiments/lec01_piecewise_linear.py [--scale=smoke|cpu|full] [--out=report/lec01_piecewise]

The same flags as experiments/reproduce.py, limited to experiment 'lec01_piecewise'
(config: configs/lec01_piecewise.py; library code: leeml/lectures/lec01_piecewise.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec01_piecewise"])
