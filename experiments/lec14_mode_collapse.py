r"""Lecture 14: GAN — mode collapse on 2-D mixtures (vanilla GAN vs WGAN-GP vs SN-GAN).

  python experiments/lec14_mode_collapse.py [--scale=smoke|cpu|full] [--out=report/lec14_mode_collapse]

The same flags as experiments/reproduce.py, limited to experiment 'lec14_mode_collapse'
(config: configs/lec14_mode_collapse.py; library code: leeml/lectures/lec14_mode_collapse.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec14_mode_collapse"])
