r"""Lecture 8: classification — cross-entropy vs MSE.

  python experiments/lec08_classification.py [--scale=smoke|cpu|full] [--out=report/lec08]

The same flags as experiments/reproduce.py, limited to experiment 'lec08'
(config: configs/lec08.py; library code: leeml/lectures/lec08.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec08"])
