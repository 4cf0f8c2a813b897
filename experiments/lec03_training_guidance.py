r"""Lecture 3: training guidance — diagnose() and optimization vs overfitting.

  python experiments/lec03_training_guidance.py [--scale=smoke|cpu|full] [--out=report/lec03]

The same flags as experiments/reproduce.py, limited to experiment 'lec03'
(config: configs/lec03.py; library code: leeml/lectures/lec03.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec03"])
