"""Colour control, Gatys, Ecker, Bethge, Hertzmann & Shechtman (CVPR 2017, Sec. 5, Fig. 3).

    PYTHONPATH=. python scripts/fig2017_colour_control.py --weights random --out out/colour

What it shows: the Neckarfront in the style of The Starry Night four ways: no colour
control, luminance-only transfer, colour histogram matching (``pca``, the authors'
notebooks' default; ``--histogram-match`` picks another), and jcjohnson/neural-style's
post-hoc ``original_colors`` for comparison (stylejax/_src/colour.py has the definitions).
Paper: luminance-only transfer keeps the photo's colours exactly while taking the
painting's brush strokes; histogram matching keeps them approximately, with the style's
colour variation inside the photo's palette; without control the painting's blues and
yellows take over. Each result runs with ``stylejax transfer``'s code at the paper's
settings (alpha/beta 1e-3, conv4_2, conv1_1..conv5_1, 1/5 each; the random preset's
with random weights), ``--batch-mode`` does not apply.

Measured in results.json, per result: ``chroma_error_to_content``, the mean absolute
difference of its I and Q (YIQ) from the photo's, and ``style_gram_distance`` to the
painting; with the trends ``luminance_keeps_chroma`` (under 1/255, 8-bit rounding),
``original_keeps_chroma`` and ``histogram_nearer_photo_colours_than_none``.

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) and at 192 px,
100 iterations (the README's picture), with the trend checks measured: docs/figures.md.
"""

from __future__ import annotations

import numpy as np

from stylejax import colour
from stylejax.cli import figures

NAME = "fig2017_colour_control"
RATIO = 1e-3
CONTROLS = ("none", "luminance", "histogram", "original")


def chroma_error(image: np.ndarray, content: np.ndarray) -> float:
    """Mean |I - I_c| + |Q - Q_c| / 2 over the pixels (YIQ, RGB in [0, 1])."""
    difference = colour.to_yiq(image.astype(np.float64)) - colour.to_yiq(content.astype(np.float64))
    return float(np.abs(difference[..., 1:]).mean())


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__)
    parser.add_argument("--histogram-match", default="pca", choices=colour.HISTOGRAM_MODES,
                        help="A of the histogram matching: pca (default), cholesky or sym")
    args = parser.parse_args(argv)
    needs = (figures.Need("content", figures.CONTENT_FILE, "Neckarfront"),
             figures.Need("style", "vangogh_starry_night.jpg", "Starry Night"))
    run = figures.FigureRun(args, name=NAME, title="colour control (CVPR 2017 Sec. 5)",
                            paper="CVPR 2017 Fig. 3", needs=needs, argv=argv)
    content, style = run.images["content"], run.images["style"]
    panels, per_control = [], {}
    for column, control in enumerate(CONTROLS, start=2):
        label = control if control != "histogram" else f"histogram ({args.histogram_match})"
        panel = run.transfer(label, style_key="style", ratio=RATIO, init="content",
                             output=run.panel_path(0, column), color_control=control,
                             histogram_match=args.histogram_match)
        panel.metrics = {"chroma_error_to_content": chroma_error(panel.image, content),
                         "style_gram_distance": run.style_distance(panel.image, style)}
        per_control[control] = panel.metrics
        panels.append(panel)
    errors = {control: metrics["chroma_error_to_content"] for control, metrics in per_control.items()}
    trends = {
        "controls": per_control,
        "luminance_keeps_chroma": errors["luminance"] < 1 / 255,
        "original_keeps_chroma": errors["original"] < 1 / 255,
        "histogram_nearer_photo_colours_than_none": errors["histogram"] < errors["none"],
        "expected": "luminance and original keep the photo's I and Q (under 1/255); histogram "
                    "matching nearer the photo's colours than no control",
    }
    run.write(
        [[run.input_panel("content"), run.input_panel("style"), *panels]],
        row_labels=[f"a/b {figures.ratio_text(RATIO)}, init content"],
        column_labels=["content", "style", *(p.label for p in panels)],
        trends=trends,
        config={"ratio": RATIO, "init": "content", "histogram_match": args.histogram_match,
                "runner": "transfer"},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
