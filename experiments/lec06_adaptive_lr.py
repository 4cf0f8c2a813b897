r"""Lecture 6: adaptive learning rate — Adagrad, RMSProp, Adam, decay, warmup.

  python experiments/lec06_adaptive_lr.py [--scale=smoke|cpu|full] [--out=report/lec06]

The same flags as experiments/reproduce.py, limited to experiment 'lec06_adaptive_lr'
(config: configs/lec06_adaptive_lr.py; library code: leeml/lectures/lec06_adaptive_lr.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec06_adaptive_lr"])
