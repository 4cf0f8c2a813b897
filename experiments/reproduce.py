r"""Reproduces the lectures: runs every registered experiment and writes the report.

  python experiments/reproduce.py                       # all experiments, scale cpu
  python experiments/reproduce.py --scale=smoke --only=lec08,lec11 --out=/tmp/report
  python experiments/reproduce.py --scale=full --strict # exit 1 if any claim FAILs

Writes <out>/index.html and <out>/REPORT.md (default out: report/); experiments run in
<workdir>/<scale>/<name> (default workdir: <out>/runs). Same as the `leeml-reproduce`
console script; the logic lives in leeml/reproduce.py.
"""

import os
import sys

# Run from a checkout without installing: the repository root holds leeml/ and configs/.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leeml import reproduce  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  reproduce.run()
