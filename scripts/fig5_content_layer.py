"""Fig. 5 of Gatys, Ecker & Bethge (CVPR 2016): matching the content on conv2_2 vs conv4_2.

    PYTHONPATH=. python scripts/fig5_content_layer.py --weights random --out out/fig5 [--style PATH]

Pictures: the 512 px copies shipped in stylejax/examples/ (credits in its README.md);
``--images DIR`` or ``$STYLEJAX_IMAGES`` takes them from another folder instead.

What it shows: the Neckarfront photo, the painting, and two results at alpha/beta 1e-3
(style conv1_1..conv5_1, 1/5 each, white-noise init) whose content is matched on conv2_2
and on conv4_2; both members run as one sweep. The paper's painting (Feininger, Jesuiten
III) is not available; the default is van Gogh's A Wheatfield with Cypresses
(``vangogh_wheat_field_with_cypresses.jpg``); ``--style`` takes another file name in
``--images`` or any image PATH. Paper: with conv2_2 the texture is merely blended over
the photo; with conv4_2 photo and painting merge.

Measured in results.json: ``ssim_to_content`` of each result and
``ssim_higher_with_conv2_2`` (the lower layer keeps more of the photo's detail, so its
SSIM to the photo is expected to be the higher one).

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

import stylejax
from stylejax.cli import figures

NAME = "fig5_content_layer"
DEFAULT_STYLE = "vangogh_wheat_field_with_cypresses.jpg"
CONTENT_LAYERS = ("conv2_2", "conv4_2")
RATIO = 1e-3


@figures.run_main
def main(argv: list[str]) -> int:
    args, needs = figures.photo_and_painting(NAME, __doc__, argv, DEFAULT_STYLE)
    run = figures.FigureRun(args, name=NAME, title="Fig. 5 content layer conv2_2 vs conv4_2",
                            paper="CVPR 2016 Fig. 5", needs=needs, argv=argv)
    members = run.adapt(stylejax.product(ratios=(RATIO,), content_layers=CONTENT_LAYERS),
                        content_layer=False)
    result = run.sweep("content layers", members)
    panels = run.sweep_panels(result, [f"content {layer}" for layer in CONTENT_LAYERS])
    content = run.images["content"]
    ssim = {}
    for layer, panel in zip(CONTENT_LAYERS, panels, strict=True):
        ssim[layer] = figures.metrics.ssim(panel.image, content)
        panel.metrics = {"ssim_to_content": ssim[layer]}
    trends = {
        "ssim_to_content": ssim,
        "ssim_higher_with_conv2_2": ssim["conv2_2"] > ssim["conv4_2"],
        "expected": "conv2_2 keeps more of the photo (higher SSIM) than conv4_2",
    }
    notes = ["the paper's painting (Feininger, Jesuiten III) is not available; "
             f"used {run.paths['style']}"]
    run.write(
        [[run.input_panel("content", "photo"), run.input_panel("style", "painting"), *panels]],
        row_labels=[f"a/b {figures.ratio_text(RATIO)}"],
        column_labels=["Neckarfront", "painting", "content conv2_2", "content conv4_2"],
        trends=trends, notes=notes,
        config={"ratio": RATIO, "content_layers": list(CONTENT_LAYERS)},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
