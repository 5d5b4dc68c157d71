"""The progress bar shown between compiled chunks (never inside the compiled loop)."""

from __future__ import annotations

import sys


class ProgressBar:
    """A tqdm bar on stderr, off when ``quiet`` or when stderr is not a terminal."""

    def __init__(self, total: int, quiet: bool, description: str = "optimising"):
        self._bar = None
        if not quiet and total > 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit="it", file=sys.stderr, leave=True)
        self._shown = 0

    def __call__(self, done: int, latest_loss: float) -> None:
        if self._bar is None:
            return
        self._bar.update(done - self._shown)
        self._shown = done
        self._bar.set_postfix_str(f"loss {latest_loss:.4g}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
