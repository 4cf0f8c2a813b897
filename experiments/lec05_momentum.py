r"""Lecture 5: momentum — gradient descent vs gradient descent + momentum.

  python experiments/lec05_momentum.py [--scale=smoke|cpu|full] [--out=report/lec05]

The same flags as experiments/reproduce.py, limited to experiment 'lec05_momentum'
(config: configs/lec05_momentum.py; library code: leeml/lectures/lec05_momentum.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec05_momentum"])
