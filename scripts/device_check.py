"""Checks stylejax on whatever accelerator it finds, in one command of about 8 minutes.

    python scripts/device_check.py                  # all sections, budget 450 s
    python scripts/device_check.py --smoke -o out   # tiny sizes, a cut-down network (CPU)
    python scripts/device_check.py --sections lbfgs,sweep --budget-seconds 200

Runs the fast test tier, the paper preset (512 px, 500 L-BFGS and Adam iterations) per
precision with the precisions' agreement against ``highest``, one evaluation per
convolution path, a 16-ratio sweep per batch mode, peak device memory per size and the
largest size that fits, and PyTorch eager side by side where torch has CUDA. Writes
``ROOT/device/<device>/results.json`` and ``results.md`` (ROOT: ``-o``, default
bench-output) after every section, prints PASS/MISS against the targets and the README
table row. Everything is in stylejax/bench/device_check.py; docs/device-check.md
explains the sections and how to read the results.
"""

from __future__ import annotations

from stylejax.bench import device_check
from stylejax.cli import figures

if __name__ == "__main__":
    figures.leave(device_check.main())
