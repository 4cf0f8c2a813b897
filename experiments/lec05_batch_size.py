r"""Lecture 5: batch size — time per update / epoch, small vs large batch.

  python experiments/lec05_batch_size.py [--scale=smoke|cpu|full] [--out=report/lec05_batch_size]

The same flags as experiments/reproduce.py, limited to experiment 'lec05_batch_size'
(config: configs/lec05_batch_size.py; library code: leeml/lectures/lec05_batch_size.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run(only=["lec05_batch_size"])
