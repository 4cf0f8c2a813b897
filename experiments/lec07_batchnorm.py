r"""Lecture 7: batch normalization — changing the landscape, BN paper Fig. 1/3.

  python experiments/lec07_batchnorm.py [--scale=smoke|cpu|full] [--out=report/lec07_batchnorm]

The same flags as experiments/reproduce.py, limited to experiment 'lec07_batchnorm'
(config: configs/lec07_batchnorm.py; library code: leeml/lectures/lec07_batchnorm.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec07_batchnorm"])
