r"""Lectures 10-11: CNN ⊂ self-attention (exact), CNN vs ViT as data grows.

  python experiments/lec10_cnn_vs_attention.py [--scale=smoke|cpu|full]
      [--out=report/lec10_cnn_vs_attention]

The same flags as experiments/reproduce.py, limited to experiment 'lec10_cnn_vs_attention'
(config: configs/lec10_cnn_vs_attention.py;
library code: leeml/lectures/lec10_cnn_vs_attention.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec10_cnn_vs_attention"])
