r"""Lecture 12: the encoder-decoder Transformer translates dates (en -> de).

  python experiments/lec12_transformer.py [--scale=smoke|cpu|full] [--out=report/lec12_transformer]

The same flags as experiments/reproduce.py, limited to experiment 'lec12_transformer'
(config: configs/lec12_transformer.py; library code: leeml/lectures/lec12_transformer.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec12_transformer"])
