"""Fig. 6 of Gatys, Ecker & Bethge (CVPR 2016): initialising from content, style or noise.

    PYTHONPATH=. python scripts/fig6_inits.py --weights random --out out/fig6 [--style FILE_OR_PATH]

Pictures: the 512 px copies shipped in stylejax/examples/ (credits in its README.md);
``--images DIR`` or ``$STYLEJAX_IMAGES`` takes them from another folder instead.

What it shows: the Neckarfront in a Fig. 3 style (default The Starry Night; ``--style``
takes another file name in ``--images`` or any image PATH) at the paper's settings
(alpha/beta 1e-3, content conv4_2, style conv1_1..conv5_1), optimised from A the content
photo, B the style picture, C white noise with seeds 0, 1, 2, 3; the six members run as
one sweep. Paper: the fixed initialisations always give the same image, the noise seeds
give different images of equal quality.

Trend checks in results.json: ``noise_pairwise_distance`` (mean RMS pixel difference
between the four noise-initialised results; ``noise_results_differ`` when above one
8-bit level, 1/255) and ``fixed_init_rerun_distance`` (the content-initialised member run
again as a second one-member sweep, RMS difference to the first run;
``fixed_init_deterministic`` when below 1/255), plus the spread of the noise members'
final losses (``noise_final_total_relative_spread``: (max - min) / mean).

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

import numpy as np

import stylejax
from stylejax.cli import figures

NAME = "fig6_inits"
DEFAULT_STYLE = "vangogh_starry_night.jpg"
INITS = ("content", "style", "noise:0", "noise:1", "noise:2", "noise:3")
RATIO = 1e-3
THRESHOLD = 1.0 / 255.0


@figures.run_main
def main(argv: list[str]) -> int:
    args, needs = figures.photo_and_painting(NAME, __doc__, argv, DEFAULT_STYLE)
    run = figures.FigureRun(args, name=NAME, title="Fig. 6 initialisations",
                            paper="CVPR 2016 Fig. 6", needs=needs, argv=argv)
    members = run.adapt(stylejax.product(ratios=(RATIO,), inits=INITS))
    result = run.sweep("inits", members)
    labels = ["A init content", "B init style"] + [f"C noise seed {i.split(':')[1]}" for i in INITS[2:]]
    panels = run.sweep_panels(result, labels)
    rerun = run.sweep("content init, rerun", [members[0]])

    noise_images = [p.image for p in panels[2:]]
    noise_totals = [p.losses["final"]["total"] for p in panels[2:]]
    pairwise = figures.metrics.mean_pairwise_distance(noise_images)
    rerun_distance = figures.metrics.rms_distance(rerun.images[0], panels[0].image)
    content = run.images["content"]
    for panel in panels:
        panel.metrics = {"ssim_to_content": figures.metrics.ssim(panel.image, content)}
    trends = {
        "noise_pairwise_distance": pairwise,
        "noise_results_differ": pairwise > THRESHOLD,
        "fixed_init_rerun_distance": rerun_distance,
        "fixed_init_rerun_max_abs": float(np.max(np.abs(rerun.images[0] - panels[0].image))),
        "fixed_init_deterministic": rerun_distance < THRESHOLD,
        "threshold": THRESHOLD,
        "noise_final_totals": noise_totals,
        "noise_final_total_relative_spread": float((max(noise_totals) - min(noise_totals))
                                                   / np.mean(noise_totals)),
        "expected": "noise results differ (> 1/255 RMS); the content-init rerun is the same (< 1/255)",
    }
    run.write([panels], row_labels=[f"a/b {figures.ratio_text(RATIO)}"], column_labels=labels, trends=trends,
              config={"ratio": RATIO, "inits": list(INITS)})
    return 0


if __name__ == "__main__":
    figures.leave(main())
