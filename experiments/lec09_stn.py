r"""Lecture 9: the spatial transformer layer — ST-CNN vs CNN on distorted digits.

  python experiments/lec09_stn.py [--scale=smoke|cpu|full] [--out=report/lec09_stn]

The same flags as experiments/reproduce.py, limited to experiment 'lec09_stn'
(config: configs/lec09_stn.py; library code: leeml/lectures/lec09_stn.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec09_stn"])
