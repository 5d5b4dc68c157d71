"""What the Winograd path's inexact gradient does to L-BFGS, against the exact ``lax`` path.

    python scripts/convolution_lbfgs.py --size 128 --iterations 500 -o out.json

Everything is in stylejax/bench/convolution_lbfgs.py; results in docs/convolution.md.
"""

from __future__ import annotations

from stylejax.bench import convolution_lbfgs
from stylejax.cli import figures

if __name__ == "__main__":
    figures.leave(convolution_lbfgs.main())
