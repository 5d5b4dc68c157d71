"""Coarse to fine, Gatys, Ecker, Bethge, Hertzmann & Shechtman (CVPR 2017, Sec. 6).

    PYTHONPATH=. python scripts/fig2017_scale_control.py --weights random --out out/scales

What it shows: the Neckarfront in the style of The Starry Night at ``--size`` px two ways:
one run of ``--iterations`` iterations at that size, and coarse to fine as the authors'
notebooks do it (512 px for 500 iterations, then 1024 px for 200): half the size for
``--iterations``, then the full size for 2/5 of them, starting from the half-size
result upsampled. Paper: at high resolution, starting from a coarse result keeps the
large-scale structure that a single run at full size cannot reach, at less cost. The
paper's settings (alpha/beta 1e-3, conv4_2, conv1_1..conv5_1, 1/5; the random preset's
with random weights), content init; each run with ``stylejax transfer``'s code.

Measured in results.json, per result: the objective at the end (at full size, where both
end, with the same weights of the terms), its optimisation and compilation seconds, and
the iterations at full size; the trend ``coarse_to_fine_lower_objective``.

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) and the trend
checks measured: docs/figures.md.
"""

from __future__ import annotations

import math

from stylejax.cli import figures

NAME = "fig2017_scale_control"
RATIO = 1e-3


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__)
    args = parser.parse_args(argv)
    needs = (figures.Need("content", figures.CONTENT_FILE, "Neckarfront"),
             figures.Need("style", "vangogh_starry_night.jpg", "Starry Night"))
    run = figures.FigureRun(args, name=NAME, title="coarse to fine (CVPR 2017 Sec. 6)",
                            paper="CVPR 2017 Sec. 6", needs=needs, argv=argv)
    full, iterations = run.size, run.iterations
    # Half the size, but no side under VGG19's 16 px.
    coarse = max(full // 2, math.ceil(16 * max(run.shape) / min(run.shape)))
    if coarse >= full:
        raise figures.UserError(f"--size {full} leaves no smaller scale: give at least {2 * coarse}")
    scales = ((coarse, iterations), (full, max(1, 2 * iterations // 5)))
    single = run.transfer(f"one size, {iterations} iterations", style_key="style", ratio=RATIO,
                          init="content", output=run.panel_path(0, 2))
    staged = run.transfer(f"{scales[0][0]} px x {scales[0][1]}, then {full} px x {scales[1][1]}",
                          style_key="style", ratio=RATIO, init="content", output=run.panel_path(0, 3),
                          scales=scales)
    trends: dict = {}
    for name, panel in (("single", single), ("coarse_to_fine", staged)):
        panel.metrics = {"final_total": panel.losses["final"]["total"], "seconds": panel.losses["seconds"],
                         "iterations_at_full_size": iterations if panel is single else scales[1][1]}
        trends[name] = panel.metrics
    trends["coarse_to_fine_lower_objective"] = (trends["coarse_to_fine"]["final_total"]
                                                < trends["single"]["final_total"])
    trends["expected"] = "coarse to fine ends at a lower objective than one run at the full size"
    run.write(
        [[run.input_panel("content"), run.input_panel("style"), single, staged]],
        row_labels=[f"a/b {figures.ratio_text(RATIO)}, init content"],
        column_labels=["content", "style", single.label, staged.label],
        trends=trends,
        config={"ratio": RATIO, "init": "content", "scales": [list(s) for s in scales], "runner": "transfer"},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
