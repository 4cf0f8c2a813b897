r"""Lecture 14: GAN — DCGAN and conditional GAN on the digits.

  python experiments/lec14_digits.py [--scale=smoke|cpu|full] [--out=report/lec14_digits]

The same flags as experiments/reproduce.py, limited to experiment 'lec14_digits'
(config: configs/lec14_digits.py; library code: leeml/lectures/lec14_digits.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec14_digits"])
