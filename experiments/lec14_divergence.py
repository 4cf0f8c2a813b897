r"""Lecture 14: GAN — JS divergence vs Wasserstein distance.

  python experiments/lec14_divergence.py [--scale=smoke|cpu|full] [--out=report/lec14_divergence]

The same flags as experiments/reproduce.py, limited to experiment 'lec14_divergence'
(config: configs/lec14_divergence.py; library code: leeml/lectures/lec14_divergence.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec14_divergence"])
