#!/usr/bin/env python3
"""Run (or resume) the search, as in the classic sample: ``python3 hyperopt_optimize.py``.

Same as ``python -m hks search``; every option also reads its environment variable
(``HKS_MAX_EVALS``, ``HKS_EPOCHS``, ``EXPERIMENT_NAME``, ...): see ``--help``.
"""

import sys

from hks.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
