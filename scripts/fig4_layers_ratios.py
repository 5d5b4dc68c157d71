"""Fig. 4 of Gatys, Ecker & Bethge (CVPR 2016; Fig. 3 on arXiv): style layers x alpha/beta.

    PYTHONPATH=. python scripts/fig4_layers_ratios.py --weights random --out out/fig4

Pictures: the 512 px copies shipped in stylejax/examples/ (credits in its README.md);
``--images DIR`` or ``$STYLEJAX_IMAGES`` takes them from another folder instead.

What it shows: the Neckarfront in the style of Kandinsky's Composition VII, with the
style matched on the first k of conv1_1..conv5_1 (rows, k = 1..5, weights 1/k) and
alpha/beta 1e-5, 1e-4, 1e-3, 1e-2 (columns); content conv4_2, white-noise init. All 20
members run as ONE sweep (one compiled program). Paper: a small alpha/beta gives a
texturised style picture, a large one little stylisation; deeper style layers give
larger, smoother structures.

Trend checks in results.json, each from the measured numbers: ``ssim_by_ratio`` (SSIM of
the result to the photo, averaged over the five layer sets) with
``ssim_rises_with_ratio`` (strictly rising), and ``gram_distance_by_ratio`` (relative
Gram distance of the result to the painting over conv1_1..conv5_1, averaged over the
layer sets) with ``gram_distance_rises_with_ratio``; the final (unweighted) content loss
per ratio, ``content_loss_falls_with_ratio``, checks the trade-off itself whatever the
weights; the full tables per layer set too. With random weights the members take the
``random`` preset's balance (each ratio r as balance 0.03 r / 1e-3, content layer conv2_2:
a random conv4_2 does not pin the photo's pixels), under which the SSIM trend holds.

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

import numpy as np

import stylejax
from stylejax.cli import figures

NAME = "fig4_layers_ratios"
RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)
NEEDS = (
    figures.Need("content", figures.CONTENT_FILE, "Neckarfront"),
    figures.Need("style", "kandinsky_composition_vii.jpg", "Composition VII"),
)


@figures.run_main
def main(argv: list[str]) -> int:
    args = figures.parser(NAME, __doc__).parse_args(argv)
    run = figures.FigureRun(args, name=NAME, title="Fig. 4 style layers x alpha/beta",
                            paper="CVPR 2016 Fig. 4 (arXiv:1508.06576 Fig. 3)", needs=NEEDS, argv=argv)
    layer_sets = [figures.PAPER_STYLE_LAYERS[:k] for k in range(1, 6)]
    members = run.adapt(stylejax.product(ratios=RATIOS, style_layer_sets=layer_sets))  # ratio-major
    result = run.sweep("layers x ratios", members)
    set_names = ["+".join(s) for s in layer_sets]
    labels = [f"{name}, {figures.ratio_text(m.ratio)}"
              for m, name in zip(members, [n for _ in RATIOS for n in set_names], strict=True)]
    panels = run.sweep_panels(result, labels)

    content, style = run.images["content"], run.images["style"]
    ssim = np.zeros((len(layer_sets), len(RATIOS)))
    gram = np.zeros_like(ssim)
    distances = run.style_distances([panel.image for panel in panels], style)
    cells: list[list[figures.Panel | None]] = [[None] * len(RATIOS) for _ in layer_sets]
    for index, (member, panel) in enumerate(zip(members, panels, strict=True)):
        row, column = index % len(layer_sets), index // len(layer_sets)
        assert member.style_layers == layer_sets[row] and member.ratio == RATIOS[column]
        ssim[row, column] = figures.metrics.ssim(panel.image, content)
        gram[row, column] = distances[index]
        panel.metrics = {"ssim_to_content": ssim[row, column], "style_gram_distance": gram[row, column]}
        cells[row][column] = panel

    content_loss = np.zeros_like(ssim)
    for index, panel in enumerate(panels):
        content_loss[index % len(layer_sets), index // len(layer_sets)] = panel.losses["final"]["content"]
    keys = [figures.ratio_text(r) for r in RATIOS]
    content_by_ratio = dict(zip(keys, map(float, content_loss.mean(axis=0)), strict=True))
    ssim_by_ratio = dict(zip(keys, map(float, ssim.mean(axis=0)), strict=True))
    gram_by_ratio = dict(zip(keys, map(float, gram.mean(axis=0)), strict=True))
    trends = {
        "ssim_by_ratio": ssim_by_ratio,
        "ssim_rises_with_ratio": figures.monotone(list(ssim_by_ratio.values()), "rising"),
        "gram_distance_by_ratio": gram_by_ratio,
        "gram_distance_rises_with_ratio": figures.monotone(list(gram_by_ratio.values()), "rising"),
        "content_loss_by_ratio": content_by_ratio,
        "content_loss_falls_with_ratio": figures.monotone(list(content_by_ratio.values()), "falling"),
        "expected": "SSIM and Gram distance rise, the content loss falls, with alpha/beta",
        "ssim_table": {name: dict(zip(keys, map(float, ssim[i]), strict=True)) for i, name in enumerate(set_names)},
        "gram_distance_table": {name: dict(zip(keys, map(float, gram[i]), strict=True))
                                for i, name in enumerate(set_names)},
    }
    run.write(
        cells,
        row_labels=["conv1_1"] + [f"conv1_1..conv{k}_1" for k in range(2, 6)],
        column_labels=[f"a/b {key}" for key in keys],
        trends=trends,
        config={"ratios": list(RATIOS), "style_layer_sets": [list(s) for s in layer_sets]},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
