"""Tiled against whole-image evaluation of the objective: memory, time, agreement.

    python scripts/tiled_evaluation.py --sizes 512,1024 --tiles whole,256,512 --run-whole-up-to 1024

Everything is in stylejax/bench/tiles.py; results in docs/performance.md.
"""

from __future__ import annotations

from stylejax.bench import tiles
from stylejax.cli import figures

if __name__ == "__main__":
    figures.leave(tiles.main())
