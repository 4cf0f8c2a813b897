r"""Lecture 13: Transformer ablations (positions, residual, pre/post-LN and warmup).

  python experiments/lec13_transformer_ablations.py [--scale=smoke|cpu|full] [--out=report/lec13_transformer_ablations]

The same flags as experiments/reproduce.py, limited to experiment 'lec13_transformer_ablations'
(config: configs/lec13_transformer_ablations.py; library code: leeml/lectures/lec13_transformer_ablations.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec13_transformer_ablations"])
