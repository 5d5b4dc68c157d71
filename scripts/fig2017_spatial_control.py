"""Spatial control, Gatys, Ecker, Bethge, Hertzmann & Shechtman (CVPR 2017, Sec. 4, Fig. 2).

    PYTHONPATH=. python scripts/fig2017_spatial_control.py --weights random --out out/spatial

What it shows: the Neckarfront's town in the style of one painting (Turner's Shipwreck of
the Minotaur) and its sky in another's (The Starry Night), with the sky mask shipped in
stylejax/examples/ (made from the photo by colour: scripts/make_examples.py), against the
same two paintings blended over the whole picture without a mask. Regions come from the
mask's colours in ascending RGB order: black (town) is region 1, white (sky) region 2.
Paper: each region takes its own painting's style, with a clean boundary where the
guides meet. Settings: the paper's (alpha/beta 1e-3, conv4_2, conv1_1..conv5_1, 1/5
each; the random preset's with random weights), content init, guides ``simple``
(``--mask-method inside`` for the other); each run with ``stylejax transfer``'s code.

Measured in results.json, per result: the mean colour of the sky and of the town (RGB,
over the mask's regions at the output size) and its distance to each painting's mean
colour; the trends ``sky_nearer_sky_painting`` and ``town_nearer_town_painting`` (for
the masked result; the blend is the comparison).

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) and the trend
checks measured: docs/figures.md.
"""

from __future__ import annotations

import numpy as np

from stylejax.cli import figures

NAME = "fig2017_spatial_control"
RATIO = 1e-3
MASK = "tuebingen_neckarfront_sky_mask.png"


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__)
    parser.add_argument("--mask-method", default="simple", choices=("simple", "inside"),
                        help="masks at each layer: simple (default) or inside")
    args = parser.parse_args(argv)
    needs = (figures.Need("content", figures.CONTENT_FILE, "Neckarfront"),
             figures.Need("mask", MASK, "sky mask"),
             figures.Need("town", "turner_shipwreck_minotaur.jpg", "Turner"),
             figures.Need("sky", "vangogh_starry_night.jpg", "Starry Night"))
    run = figures.FigureRun(args, name=NAME, title="spatial control (CVPR 2017 Sec. 4)",
                            paper="CVPR 2017 Fig. 2", needs=needs, argv=argv)
    sky = run.images["mask"].mean(axis=-1) > 0.5
    masked = run.transfer("masked", style_key=("town", "sky"), ratio=RATIO, init="content",
                          output=run.panel_path(0, 4), mask_key="mask")
    blended = run.transfer("no mask (blend)", style_key=("town", "sky"), ratio=RATIO, init="content",
                           output=run.panel_path(0, 5))
    painting = {key: run.images[key].reshape(-1, 3).mean(axis=0) for key in ("town", "sky")}
    trends: dict = {"mask_method": args.mask_method}
    for name, panel in (("masked", masked), ("blended", blended)):
        record = {}
        for region, where in (("sky", sky), ("town", ~sky)):
            mean = panel.image[where].mean(axis=0)
            record[region] = {"mean_rgb": mean.tolist(),
                              **{f"distance_to_{key}_painting": float(np.linalg.norm(mean - painting[key]))
                                 for key in painting}}
        panel.metrics = record
        trends[name] = record
    trends["sky_nearer_sky_painting"] = (trends["masked"]["sky"]["distance_to_sky_painting"]
                                         < trends["masked"]["sky"]["distance_to_town_painting"])
    trends["town_nearer_town_painting"] = (trends["masked"]["town"]["distance_to_town_painting"]
                                           < trends["masked"]["town"]["distance_to_sky_painting"])
    trends["expected"] = ("in the masked result the sky's colours nearer The Starry Night's and the "
                          "town's nearer Turner's")
    run.write(
        [[run.input_panel("content"), run.input_panel("mask"), run.input_panel("town"),
          run.input_panel("sky"), masked, blended]],
        row_labels=[f"a/b {figures.ratio_text(RATIO)}, init content"],
        column_labels=["content", "mask (white: sky)", "town style", "sky style", "masked", "no mask (blend)"],
        trends=trends,
        notes=["spatial control: Gatys, Ecker, Bethge, Hertzmann, Shechtman, CVPR 2017, Sec. 4"],
        config={"ratio": RATIO, "init": "content", "mask_method": args.mask_method, "runner": "transfer"},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
