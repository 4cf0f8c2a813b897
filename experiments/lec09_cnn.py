r"""Lecture 9: CNN — receptive field, parameter sharing, pooling, invariance.

  python experiments/lec09_cnn.py [--scale=smoke|cpu|full] [--out=report/lec09_cnn]

The same flags as experiments/reproduce.py, limited to experiment 'lec09_cnn'
(config: configs/lec09_cnn.py; library code: leeml/lectures/lec09_cnn.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec09_cnn"])
