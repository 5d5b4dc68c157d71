"""The loss-curve figure: the weighted objective per iteration, on a log axis."""

from __future__ import annotations

import numpy as np

from stylejax._src.files import atomic


def plot_history(history, path: str, title: str) -> None:
    """Writes a PNG of ``history`` (objective at x_0, x_1, ...) to ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the demo and CI run headless
    from matplotlib import pyplot as plt

    values = np.asarray(history, np.float64)
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        axes.plot(np.arange(len(values)), values, color="#1f4e79", linewidth=1.6)
        if len(values) and np.all(values > 0):
            axes.set_yscale("log")
        axes.set_xlabel("iteration")
        axes.set_ylabel("total loss  alpha L_content + beta L_style")
        axes.set_title(title, fontsize=9)
        axes.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        with atomic.atomic_path(path) as temporary:
            figure.savefig(temporary, format="png")
    finally:
        plt.close(figure)
