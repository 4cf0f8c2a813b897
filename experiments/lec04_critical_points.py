r"""Lecture 4: critical points — Hessian spectra, saddle points, minimum ratio.

  python experiments/lec04_critical_points.py [--scale=smoke|cpu|full] [--out=report/lec04]

The same flags as experiments/reproduce.py, limited to experiment 'lec04'
(config: configs/lec04.py; library code: leeml/lectures/lec04.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec04"])
