"""Fig. 3 of Gatys, Ecker & Bethge (CVPR 2016; Fig. 2 on arXiv): one photo, five styles.

    PYTHONPATH=. python scripts/fig3_styles.py \\
        --weights random --out out/fig3 [--replace E=PATH] [--arxiv]

Pictures: the 512 px copies shipped in stylejax/examples/ (credits in its README.md);
``--images DIR`` or ``$STYLEJAX_IMAGES`` takes them from another folder instead.

What it shows: A, the Neckarfront photo; B-F, it rendered in the style of B Turner's
Shipwreck of the Minotaur (alpha/beta 1e-3), C van Gogh's Starry Night (8e-4), D Munch's
Scream (5e-3), E Picasso's Femme nue assise (5e-4), F Kandinsky's Composition VII (5e-4);
``--arxiv`` uses the arXiv ratios 1e-3, 1e-3, 1e-3, 1e-4, 1e-4. Paper settings otherwise:
content conv4_2, style conv1_1..conv5_1 (1/5 each), white-noise init. The Picasso is
still under copyright and not in the reference images: pass any replacement with
``--replace E=PATH``, else panel E is left empty and results.json says so. Top row: the
pictures; bottom row: the results.

Each panel has its own style picture, so this is a loop of transfers (``stylejax
transfer``'s code); they share one loss setup and shape, so they share one compilation.
``--batch-mode`` does not apply.

Measured in results.json, per panel: SSIM of the result to the photo, and the relative
Gram distance of the result to its painting over conv1_1..conv5_1 next to the photo's own
distance to that painting (the result should be closer in style than the photo:
``closer_in_style_than_photo`` per panel, ``all_closer_in_style_than_photo`` overall).

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

import os

from stylejax.cli import figures

NAME = "fig3_styles"
# key, reference file, label, CVPR ratio, arXiv ratio
PANELS = (
    ("B", "turner_shipwreck_minotaur.jpg", "Turner", 1e-3, 1e-3),
    ("C", "vangogh_starry_night.jpg", "Starry Night", 8e-4, 1e-3),
    ("D", "munch_the_scream.jpg", "Scream", 5e-3, 1e-3),
    ("E", "picasso_femme_nue_assise.jpg", "Picasso", 5e-4, 1e-4),
    ("F", "kandinsky_composition_vii.jpg", "Kandinsky", 5e-4, 1e-4),
)
OPTIONAL = {"E"}  # not available (copyright): replaced from the command line or skipped


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__)
    parser.add_argument("--arxiv", action="store_true", help="the arXiv ratios 1e-3, 1e-3, 1e-3, 1e-4, 1e-4")
    args = parser.parse_args(argv)
    needs = [figures.Need("content", figures.CONTENT_FILE, "Neckarfront")]
    needs += [figures.Need(key, filename, label, optional=key in OPTIONAL)
              for key, filename, label, _, _ in PANELS]
    run = figures.FigureRun(args, name=NAME, title="Fig. 3 styles (ratios per panel)",
                            paper="CVPR 2016 Fig. 3 (arXiv:1508.06576 Fig. 2)", needs=needs, argv=argv)

    content = run.images["content"]
    inputs = [run.input_panel("content", "A Neckarfront")]
    results: list[figures.Panel | None] = [None]
    column_labels = ["A Neckarfront (content)"]
    notes, per_panel = [], {}
    for column, (key, filename, label, cvpr, arxiv) in enumerate(PANELS, start=1):
        ratio = arxiv if args.arxiv else cvpr
        path = run.paths[key]
        if path is None:
            inputs.append(None)
            results.append(None)
            column_labels.append(f"{key} {label}: skipped, not available")
            notes.append(f"panel {key} ({label}, {filename}) skipped: not in the images folder and no "
                         f"--replace {key}=PATH given")
            per_panel[key] = {"skipped": True}
            continue
        shown = label if os.path.basename(path) == filename else os.path.splitext(os.path.basename(path))[0]
        if shown != label:
            notes.append(f"panel {key} ({label}) uses the replacement {path}")
        title = f"{key} {shown} {figures.ratio_text(ratio)}"
        inputs.append(run.input_panel(key, f"{key} {shown}"))
        panel = run.transfer(title, style_key=key, ratio=ratio, output=run.panel_path(1, column))
        style = run.images[key]
        distance, photo_distance = run.style_distances([panel.image, content], style)
        panel.metrics = {
            "ratio": ratio,
            "ssim_to_content": figures.metrics.ssim(panel.image, content),
            "style_gram_distance": distance,
            "photo_style_gram_distance": photo_distance,
            "closer_in_style_than_photo": distance < photo_distance,
        }
        per_panel[key] = {"skipped": False, "style": shown, **panel.metrics}
        results.append(panel)
        column_labels.append(title)

    done = [v for v in per_panel.values() if not v["skipped"]]
    trends = {
        "panels": per_panel,
        "all_closer_in_style_than_photo": bool(done) and all(v["closer_in_style_than_photo"] for v in done),
        "expected": "each result closer in Gram distance to its painting than the photo is",
        "skipped_panels": [k for k, v in per_panel.items() if v["skipped"]],
    }
    run.write([inputs, results], row_labels=["pictures", "results"], column_labels=column_labels,
              trends=trends, notes=notes,
              config={"ratios": {k: (a if args.arxiv else c) for k, _, _, c, a in PANELS}, "arxiv": args.arxiv,
                      "runner": "transfer"})
    return 0


if __name__ == "__main__":
    figures.leave(main())
