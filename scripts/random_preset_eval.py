"""Measures recipes for seeded random VGG19 weights: variants x image pairs x quality.

    python scripts/random_preset_eval.py --out out/random-eval            # about 35 min on 2 CPU cores
    python scripts/random_preset_eval.py --out out/quick --variants random --pairs neckarfront-starry-night

Every variant runs ``stylejax transfer``'s code on random weights at ``--size`` (192 px)
for ``--iterations`` (150) L-BFGS iterations,
and each result is scored by the four measures of stylejax/_src/quality.py, which need
no network: palette (lower is better), layout (higher), noise (near 1), texture (lower).
Pairs: the paper's Neckarfront with three of the paper's paintings (the pictures the
``random`` preset was tuned on) and held-out pairs the tuning never saw: scikit-image's
photographs (astronaut, coffee, chelsea the cat) as contents, with Hokusai's Great Wave,
Van Gogh's Wheat Field and stylejax's procedural painting as styles.

Writes ``results.json`` (every number), ``results.md`` (the table, per pair and the mean
over the tuning and the held-out pairs) and ``sheet.PAIR.png`` (content, style and each
variant's result) into ``--out``. The measured table and its reading are in
docs/random-preset.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import stylejax
from stylejax._src import grid, images, quality, samples

# name -> transfer overrides (on random weights). ``random`` is the preset as shipped.
VARIANTS = {
    "paper": {"preset": "paper"},
    "fixed-1e-9": {"preset": "paper", "init": "content", "ratio": 1e-9},
    "random-conv4_2": {"preset": "random", "content_layer": "conv4_2"},
    "random-balanced-w": {"preset": "random", "style_layer_weights": "balanced"},
    "random-balance-0.01": {"preset": "random", "balance": 0.01},
    "random-balance-0.1": {"preset": "random", "balance": 0.1},
    "random-no-tv": {"preset": "random", "tv_balance": 0.0},
    "random": {"preset": "random"},
}
HELD_OUT = ("astronaut-great-wave", "coffee-wheat-field", "chelsea-procedural")
PAIRS = {
    "neckarfront-starry-night": ("tuebingen_neckarfront.jpg", "vangogh_starry_night.jpg"),
    "neckarfront-kandinsky": ("tuebingen_neckarfront.jpg", "kandinsky_composition_vii.jpg"),
    "neckarfront-turner": ("tuebingen_neckarfront.jpg", "turner_shipwreck_minotaur.jpg"),
    "astronaut-great-wave": ("skimage:astronaut", "hokusai_great_wave.jpg"),
    "coffee-wheat-field": ("skimage:coffee", "vangogh_wheat_field_with_cypresses.jpg"),
    "chelsea-procedural": ("skimage:chelsea", "procedural"),
}


def picture(name: str, folder: str, size: int) -> np.ndarray:
    """An RGB [0, 1] picture: a shipped example, a scikit-image photo or the procedural painting."""
    if name.startswith("skimage:"):
        from skimage import data

        return np.asarray(getattr(data, name.split(":", 1)[1])(), np.float32)[..., :3] / 255.0
    if name == "procedural":
        return samples.sample_images(size)[1]
    return images.load_image(os.path.join(folder, name))


def run_pair(pair: str, variants: list[str], size: int, iterations: int, out: str,
             folder: str) -> list[dict]:
    content_name, style_name = PAIRS[pair]
    content_full = picture(content_name, folder, size)
    shape = images.output_shape(content_full.shape[0], content_full.shape[1], size)
    content = images.resize(content_full, shape)
    style = images.resize(picture(style_name, folder, size), shape)
    content_path = os.path.join(out, f"{pair}.content.png")
    style_path = os.path.join(out, f"{pair}.style.png")
    images.save_png(content_path, content)
    images.save_png(style_path, style)
    rows = []
    for variant in variants:
        output = os.path.join(out, f"{pair}.{variant}.png")
        overrides = {"weights": "random", "size": size, "iterations": iterations, "quiet": True,
                     **VARIANTS[variant]}
        cfg = stylejax.resolve_config(content_path, style_path, output, overrides)
        start = time.perf_counter()
        outcome = stylejax.run_transfer(cfg, weights=stylejax.random_weights(0))
        wall = time.perf_counter() - start
        measures = quality.quality_measures(outcome.image, style, content)
        report = outcome.report
        rows.append({"pair": pair, "variant": variant, "held_out": pair in HELD_OUT,
                     "wall_seconds": wall, "seconds": report["seconds"],
                     "compile_seconds": report["compile_seconds"],
                     "iterations": report["iterations"], "evaluations": report["evaluations"],
                     "config": report["config"], **measures})
        print(f"{pair:26s} {variant:22s} {quality.format_measures(measures)}  {wall:.0f} s",
              file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], variants: list[str]) -> str:
    lines = ["| pair | variant | palette | layout | noise | texture | wall s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['pair']} | {row['variant']} | {row['palette']:.2f} | "
                     f"{row['layout']:.2f} | {row['noise']:.2f} | {row['texture']:.2f} | "
                     f"{row['wall_seconds']:.0f} |")
    for group, held in (("tuning pairs", False), ("held-out pairs", True)):
        for variant in variants:
            chosen = [r for r in rows if r["variant"] == variant and r["held_out"] == held]
            if chosen:
                mean = {k: float(np.mean([r[k] for r in chosen]))
                        for k in ("palette", "layout", "noise", "texture", "wall_seconds")}
                lines.append(f"| **mean, {group}** | {variant} | {mean['palette']:.2f} | "
                             f"{mean['layout']:.2f} | {mean['noise']:.2f} | {mean['texture']:.2f} | "
                             f"{mean['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=150, help="every variant's (150)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--images", default=None, help="folder of the paper's pictures (default: shipped)")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    pairs = [p for p in args.pairs.split(",") if p]
    unknown = [v for v in variants if v not in VARIANTS] + [p for p in pairs if p not in PAIRS]
    if unknown:
        parser.error(f"unknown variant or pair: {', '.join(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    folder = args.images or images.example_images_dir()
    rows = []
    for pair in pairs:
        rows.extend(run_pair(pair, variants, args.size, args.iterations, args.out, folder))
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"size": args.size, "iterations": args.iterations, "rows": rows}, handle, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(table(rows, variants))
    for pair in pairs:  # one sheet per pair: the pairs' shapes differ
        names = ["content", "style", *variants]
        cells = [[images.load_image(os.path.join(args.out, f"{pair}.{n}.png")) for n in names]]
        grid.write_grid(os.path.join(args.out, f"sheet.{pair}.png"), cells, row_labels=[pair],
                        column_labels=names,
                        title="RANDOM WEIGHTS: recipe variants (measures in results.md)")
    print(table(rows, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
