"""Tiled against whole-image evaluation of the objective: memory, time, agreement.

For each image size (the paper preset's problem: conv4_2 content, conv1_1..conv5_1 style,
average pooling, the Neckarfront and The Starry Night from stylejax/examples/, a white
noise image), one compiled value-and-gradient program per tile size (``whole``: the
image at once). The table gives, per program:

- XLA's temporary buffers (``compiled.memory_analysis().temp_size_in_bytes``), known at
  compile time, so it is given even where the program is not run;
- seconds per evaluation (median of ``--repeats`` after a warm-up), and the ratio to the
  whole image's at the same size, measured in the same process;
- the relative difference of the value and the relative L2 distance of the gradient from
  the whole image's.

    python scripts/tiled_evaluation.py --sizes 512,1024 --tiles whole,256,512 --run-whole-up-to 1024

Rows the ``--run-whole-up-to`` limit leaves out are compiled, not run. Seeded random
weights by default (``--weights PATH`` takes a stylejax weights file). Results in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp

from stylejax._src import convolution, image_ops, losses, presets, tiling
from stylejax._src.files import images
from stylejax._src.weights.weights_source import resolve_weights
from stylejax.bench.convolution_lbfgs import device_description, paper_spec

CONTENT, STYLE = "tuebingen_neckarfront.jpg", "vangogh_starry_night.jpg"


def problem(size: int, weights):
    """(image, params, targets, loss weights) of the paper preset's problem at ``size`` px."""
    content_rgb = images.load_image(images.example_image(CONTENT))
    shape = image_ops.output_shape(content_rgb.shape[0], content_rgb.shape[1], size)
    style_rgb = images.load_image(images.example_image(STYLE))
    convention = weights.convention
    content, style, image = (jnp.asarray(convention.to_network(p), jnp.float32) for p in (
        image_ops.resize(content_rgb, shape), image_ops.resize(style_rgb, shape), image_ops.white_noise(0, shape)))
    spec = paper_spec()
    params = convolution.prepare(jax.tree.map(jnp.asarray, weights.params), "auto")
    targets = tiling.jitted_targets(spec, "simple", 512)(params, content, style)
    n_style = len(spec.style_layers)
    loss_weights = losses.LossWeights(
        content_weight=jnp.float32(presets.PRESETS["paper"]["ratio"]), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.full((n_style,), 1.0 / n_style, jnp.float32),
        tv_weight=jnp.float32(0.0))
    return image, params, targets, loss_weights


@functools.lru_cache(maxsize=16)
def _program(tile: int | None):
    spec = paper_spec()
    return jax.jit(jax.value_and_grad(functools.partial(tiling.objective, spec=spec, tile=tile)))


def measure(size: int, tiles, weights, repeats: int, run_whole_up_to: int) -> list[dict]:
    image, params, targets, loss_weights = problem(size, weights)
    arguments = (image, params, targets, loss_weights)
    rows, reference = [], None
    for tile in tiles:
        compile_start = time.perf_counter()
        compiled = _program(tile).lower(*arguments).compile()
        row = {"size": size, "shape": list(image.shape[:2]), "tile": tile or "whole",
               "compile_seconds": time.perf_counter() - compile_start,
               "temp_bytes": int(compiled.memory_analysis().temp_size_in_bytes)}
        if tile is not None and max(image.shape[:2]) > tile:  # else evaluated whole
            row["piece_shape"] = list(tiling.piece_shape(*image.shape[:2], tile, spec_layers()))
        if tile is None and size > run_whole_up_to:
            rows.append(row)
            continue
        value, gradient = jax.block_until_ready(compiled(*arguments))  # warm-up
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*arguments))
            seconds.append(time.perf_counter() - start)
        row["seconds"] = statistics.median(seconds)
        row["seconds_range"] = [min(seconds), max(seconds)]
        if tile is None:
            reference = (value, gradient, row["seconds"])
        elif reference is not None:
            row["value_difference"] = abs(float(value) / float(reference[0]) - 1.0)
            row["gradient_difference"] = float(jnp.linalg.norm(gradient - reference[1])
                                               / jnp.linalg.norm(reference[1]))
            row["time_ratio"] = row["seconds"] / reference[2]
        rows.append(row)
    return rows


def spec_layers():
    spec = paper_spec()
    return (*spec.content_layers, *spec.style_layers)


def _tiles(text: str):
    return tuple(None if part.strip() == "whole" else int(part) for part in text.split(","))


def _cell(value, form: str) -> str:
    return "-" if value is None else format(value, form)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="longest sides in px (default 512,1024)")
    parser.add_argument("--tiles", default="whole,256,512", help="tile sizes, whole for none (default whole,256,512)")
    parser.add_argument("--run-whole-up-to", dest="run_whole_up_to", type=int, default=1024,
                        help="run the whole-image program only up to this size; above it, compile only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", default="random", help="random (seeded, default) or a weights file")
    parser.add_argument("-o", "--output", help="also write every number here (JSON)")
    args = parser.parse_args()

    weights = resolve_weights(args.weights)
    tiles = _tiles(args.tiles)
    for tile in tiles:
        if tile is not None:
            tiling.check_tile(tile, spec_layers())
    print(f"device: {device_description()}, jax {jax.__version__}, weights: {args.weights}, paper preset, "
          f"convolution {convolution.resolve('auto')}, margin {tiling.halo(spec_layers())} px", flush=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += measure(size, tiles, weights, args.repeats, args.run_whole_up_to)
        print(f"  {size} px: done", flush=True)

    print("\n| image | tile | tile with margin | XLA temp | s / evaluation | vs whole | value diff | gradient diff |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        height, width = row["shape"]
        piece = "x".join(map(str, row["piece_shape"][::-1])) if "piece_shape" in row else (
            "- (whole)" if row["tile"] != "whole" else "-")
        print(f"| {width}x{height} | {row['tile']} | {piece} | {row['temp_bytes'] / 2**30:.2f} GiB "
              f"| {_cell(row.get('seconds'), '.2f')} | {_cell(row.get('time_ratio'), '.2f')} "
              f"| {_cell(row.get('value_difference'), '.1e')} | {_cell(row.get('gradient_difference'), '.1e')} |")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"device": device_description(), "jax": jax.__version__, "rows": rows}, handle, indent=1)
