"""Fig. 1 of Gatys, Ecker & Bethge (CVPR 2016): content and style reconstructions.

    PYTHONPATH=. python scripts/fig1_reconstructions.py --weights random --out out/fig1

Pictures: the 512 px copies shipped in stylejax/examples/ (credits in its README.md);
``--images DIR`` or ``$STYLEJAX_IMAGES`` takes them from another folder instead.

What it shows: top row, the Neckarfront photo reconstructed from white noise by matching
only its content representation at conv1_2, conv2_2, conv3_2, conv4_2, conv5_2 (``--arxiv``:
conv1_1 .. conv5_1, the arXiv version's layers); bottom row, The Starry Night's style
reconstructed from white noise by matching only its Gram matrices on the cumulative sets
conv1_1; conv1_1+conv2_1; ... conv1_1..conv5_1 (weights 1/k). Each row is one sweep (one
compiled program). Paper: low-layer content reconstructions are almost perfect, high
layers keep the layout but lose the pixels; style textures grow in scale with depth.

Trend checks in results.json: ``psnr_by_layer`` (content reconstruction vs the content
picture, dB) and ``psnr_falls_with_depth`` (strictly falling, computed); for the style
row ``style_gram_distance_by_set`` (relative Gram distance to the painting over all five
style layers) and ``style_gram_distance_falls_with_layers``.

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

import stylejax
from stylejax.cli import figures

NAME = "fig1_reconstructions"
CVPR_CONTENT_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
ARXIV_CONTENT_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
NEEDS = (
    figures.Need("content", figures.CONTENT_FILE, "Neckarfront"),
    figures.Need("style", "vangogh_starry_night.jpg", "Starry Night"),
)


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__)
    parser.add_argument("--arxiv", action="store_true",
                        help="content layers conv1_1..conv5_1 (arXiv Fig. 1) instead of conv1_2..conv5_2")
    args = parser.parse_args(argv)
    run = figures.FigureRun(args, name=NAME, title="Fig. 1 content / style reconstructions",
                            paper="CVPR 2016 Fig. 1 (arXiv:1508.06576 Fig. 1)", needs=NEEDS, argv=argv)
    content_layers = ARXIV_CONTENT_LAYERS if args.arxiv else CVPR_CONTENT_LAYERS
    style_sets = [figures.PAPER_STYLE_LAYERS[:k] for k in range(1, 6)]

    content_members = [stylejax.Member(content_layer=layer, style_layers=(), style_weight=0.0, ratio=1.0,
                                    init="noise:0") for layer in content_layers]
    style_members = [stylejax.Member(content_layer=None, style_layers=layers, ratio=1.0, init="noise:0")
                     for layers in style_sets]
    content_result = run.sweep("content reconstructions", content_members)
    style_result = run.sweep("style reconstructions", style_members)

    set_names = ["+".join(layers) for layers in style_sets]
    content_row = run.sweep_panels(content_result, [f"content {layer}" for layer in content_layers])
    style_row = run.sweep_panels(style_result, [f"style {name}" for name in set_names])

    content = run.images["content"]
    psnr_by_layer = {}
    for layer, panel in zip(content_layers, content_row, strict=True):
        panel.metrics = {"psnr_to_content": figures.metrics.psnr(panel.image, content),
                         "ssim_to_content": figures.metrics.ssim(panel.image, content)}
        psnr_by_layer[layer] = panel.metrics["psnr_to_content"]
    gram_by_set = {}
    distances = run.style_distances([panel.image for panel in style_row], run.images["style"])
    for name, panel, distance in zip(set_names, style_row, distances, strict=True):
        panel.metrics = {"style_gram_distance": distance}
        gram_by_set[name] = distance

    trends = {
        "psnr_by_layer": psnr_by_layer,
        "psnr_falls_with_depth": figures.monotone(list(psnr_by_layer.values()), "falling"),
        "psnr_expected": "falls with depth (paper: lower layers reconstruct almost perfectly)",
        "style_gram_distance_by_set": gram_by_set,
        "style_gram_distance_falls_with_layers": figures.monotone(list(gram_by_set.values()), "falling"),
        "style_gram_distance_expected": "falls as more of conv1_1..conv5_1 are matched",
    }
    run.write(
        [content_row, style_row],
        row_labels=["content at layer (Neckarfront)", "style conv1_1..convk_1 (Starry Night)"],
        column_labels=[f"{layer}, k={k}" for k, layer in enumerate(content_layers, start=1)],
        trends=trends,
        config={"content_layers": list(content_layers), "style_layer_sets": [list(s) for s in style_sets],
                "arxiv": args.arxiv},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
