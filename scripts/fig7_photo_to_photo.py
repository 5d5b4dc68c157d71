"""Fig. 7 of Gatys, Ecker & Bethge (CVPR 2016): photo-realistic style transfer.

    PYTHONPATH=. python scripts/fig7_photo_to_photo.py --content DAY.jpg --style NIGHT.jpg \\
        --weights random --out out/fig7

What it shows: the style of one photograph (the paper: New York by night) transferred onto
another (London by day) at alpha/beta 1e-2, content conv4_2, style conv1_1..conv5_1 (1/5
each), initialised from the content photo. The paper's photographs are not available, so
both are required on the command line; any pair works. Paper: the result keeps the
content photo's layout with the style photo's colours and lighting; low-level noise is
the method's weak spot when both pictures are photographs. Runs with ``stylejax
transfer``'s code (``--batch-mode`` does not apply).

Measured in results.json: ``ssim_to_content`` of the result, and the relative Gram distance
to the style photo over conv1_1..conv5_1 of the result (``style_gram_distance``) and of
the content photo it started from (``initial_style_gram_distance``), with
``style_gram_distance_fell`` when the first is the smaller.

Runtime at the defaults (64 px, 20 L-BFGS iterations, --weights random) on a 2-core AMD
EPYC CPU, and the trend checks measured with them: docs/figures.md.
"""

from __future__ import annotations

from stylejax.cli import figures

NAME = "fig7_photo_to_photo"
RATIO = 1e-2


@figures.run_main
def main(argv: list[str]) -> int:
    parser = figures.parser(NAME, __doc__, images=False)
    parser.add_argument("--content", required=True, metavar="PATH", help="the content photograph")
    parser.add_argument("--style", required=True, metavar="PATH", help="the style photograph")
    args = parser.parse_args(argv)
    needs = (figures.Need("content", None, "content photo", path=args.content),
             figures.Need("style", None, "style photo", path=args.style))
    run = figures.FigureRun(args, name=NAME, title="Fig. 7 photo to photo",
                            paper="CVPR 2016 Fig. 7", needs=needs, argv=argv)
    result = run.transfer(f"a/b {figures.ratio_text(RATIO)}, init content", style_key="style",
                          ratio=RATIO, init="content", output=run.panel_path(0, 2))
    content, style = run.images["content"], run.images["style"]
    final, initial = run.style_distance(result.image, style), run.style_distance(content, style)
    result.metrics = {"ssim_to_content": figures.metrics.ssim(result.image, content),
                      "style_gram_distance": final}
    trends = {
        "ssim_to_content": result.metrics["ssim_to_content"],
        "style_gram_distance": final,
        "initial_style_gram_distance": initial,
        "style_gram_distance_fell": final < initial,
        "expected": "the result is closer in style (Gram distance) to the style photo than the content photo was",
    }
    run.write(
        [[run.input_panel("content"), run.input_panel("style"), result]],
        row_labels=[f"a/b {figures.ratio_text(RATIO)}"],
        column_labels=["content photo", "style photo", "result (init content)"],
        trends=trends, config={"ratio": RATIO, "init": "content", "runner": "transfer"},
    )
    return 0


if __name__ == "__main__":
    figures.leave(main())
