r"""Lectures 10-11: self-attention vs RNN (parallel, distance).

  python experiments/lec11_rnn_vs_attention.py [--scale=smoke|cpu|full] [--out=report/lec11]

The same flags as experiments/reproduce.py, limited to experiment 'lec11_rnn_vs_attention'
(config: configs/lec11_rnn_vs_attention.py;
library code: leeml/lectures/lec11_rnn_vs_attention.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec11_rnn_vs_attention"])
