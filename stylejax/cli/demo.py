"""``stylejax demo``: the main job, offline or online.

The pictures are the paper's Fig. 1 pair shipped with stylejax (the Neckarfront, photo by
Andreas Praefcke, CC BY 3.0, and The Starry Night; ``STYLEJAX_IMAGES`` overrides the
folder). The weights are the pretrained file in the weights directory when there is one;
otherwise, unless offline (``--offline`` or ``STYLEJAX_OFFLINE=1``), the demo fetches the
Keras VGG19 (checksum-verified, a few seconds' connect timeout) and normalises it, as
torchvision and Keras fetch their weights on first use; offline, or when the fetch fails,
it uses seeded random weights with the ``random`` preset and says so everywhere.

Writes ``content.png``, ``style.png``, ``result.png``, ``loss.png``, ``summary.png`` (the
three pictures side by side with the quality measures of stylejax/_src/quality.py) and
``report.json`` into the output folder.

Expected with random weights: about 1.5 minutes on 2 CPU cores (192 px, 150 L-BFGS
iterations, compilation included); see docs/random-preset.md for the measured numbers.
"""

from __future__ import annotations

import dataclasses
import os

from stylejax._src import budget, image_ops, presets, quality
from stylejax._src.errors import UserError
from stylejax._src.files import images, paths
from stylejax._src.weights import weights_commands, weights_file
from stylejax._src.weights.weights_source import RANDOM_BANNER, is_random, resolve_weights
from stylejax.cli import config as config_lib
from stylejax.cli import summary, transfer
from stylejax.cli.plot import plot_history
from stylejax.cli.progress import ProgressBar

DEMO_SIZE = 192
# With pretrained weights the paper's preset, started from the photo so that the demo's
# iteration count suffices; with random weights the random preset's own count.
DEMO_ITERATIONS_PRETRAINED = 150
DEMO_CONTENT = "tuebingen_neckarfront.jpg"
DEMO_STYLE = "vangogh_starry_night.jpg"
OFFLINE_ENV = "STYLEJAX_OFFLINE"
# Seconds to wait for the download server's first answer before going offline.
FETCH_TIMEOUT = 5.0


@dataclasses.dataclass
class DemoResult:
    out_dir: str
    status: str
    report: dict


def demo_pictures(size: int):
    """(content, style, credit line) as RGB arrays in [0, 1] at ``size`` on the long side."""
    content = images.load_image(images.example_image(DEMO_CONTENT))
    style = images.load_image(images.example_image(DEMO_STYLE))
    shape = image_ops.output_shape(content.shape[0], content.shape[1], size)
    credit = f"{images.EXAMPLE_CREDITS[DEMO_CONTENT]}; {images.EXAMPLE_CREDITS[DEMO_STYLE]}"
    return image_ops.resize(content, shape), image_ops.resize(style, shape), credit


def is_offline(offline: bool) -> bool:
    return offline or os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def demo_weights(spec: str, offline: bool, say):
    """``auto-or-random``: the pretrained file, else a fetched one, else random weights."""
    if spec != "auto-or-random":
        return resolve_weights(spec)
    found = weights_file.find_pretrained()
    if found is None and not is_offline(offline):
        say("no pretrained VGG19 in the weights directory: fetching the Keras VGG19 "
            "(80 MB; --offline skips this)")
        try:
            weights_commands.fetch("keras", progress=True, log=say, timeout=FETCH_TIMEOUT)
        except UserError as error:
            say(f"could not fetch pretrained weights ({error}); using random weights")
        else:
            try:  # the paper's normalisation, on scikit-image's photographs if installed
                weights_commands.normalise_file(None, None, images_dir=None, log=say)
            except UserError:
                weights_commands.normalise_file(None, None, images_dir="builtin", log=say)
            found = weights_file.find_pretrained()
    elif found is None:
        say("offline: using random weights")
    return resolve_weights(str(found) if found else "random")


def run_demo(out_dir: str, weights: str = "auto-or-random", size=None, iterations=None,
             quiet: bool = False, offline: bool = False, log=None) -> DemoResult:
    say = log or (lambda line: None)
    size = config_lib.count(size if size is not None else DEMO_SIZE, "--size", minimum=16)
    if iterations is not None:
        iterations = config_lib.count(iterations, "--iterations")
    layers = ("conv4_2", *presets.PRESETS["paper"]["style_layers"])  # the deepest of both presets
    config_lib.check_memory(f"a {size} px demo", budget.estimate_bytes(size, size, layers, "lbfgs"), None)
    paths.prepare_output_folder(out_dir, "demo output")

    loaded = demo_weights(weights, offline, say)
    random = is_random(loaded)
    if random:
        say(RANDOM_BANNER)
    content, style, credit = demo_pictures(size)
    content_path = os.path.join(out_dir, "content.png")
    style_path = os.path.join(out_dir, "style.png")
    images.save_png(content_path, content, {"stylejax:source": credit})
    images.save_png(style_path, style, {"stylejax:source": credit})

    overrides = {"size": size, "iterations": iterations,
                 "report": os.path.join(out_dir, "report.json"), "quiet": quiet,
                 "weights": loaded.path or "random"}
    if not random:
        overrides["init"] = "content"
        if iterations is None:
            overrides["iterations"] = DEMO_ITERATIONS_PRETRAINED
    cfg = config_lib.resolve(content_path, style_path, os.path.join(out_dir, "result.png"), overrides)
    say(f"demo: {credit}; {content.shape[1]}x{content.shape[0]} px, preset {cfg.preset} "
        f"({cfg.preset_reason}), {cfg.iterations} L-BFGS iterations")
    bar = ProgressBar(cfg.iterations, quiet)
    try:
        outcome = transfer.run_transfer(cfg, weights=loaded, progress=bar, log=None)
    finally:
        bar.close()
    report = outcome.report
    measures = quality.quality_measures(outcome.image, style, content)
    report["quality"] = measures
    weights_label = ("RANDOM WEIGHTS (not pretrained)" if random
                     else f"weights: {os.path.basename(loaded.path)}")
    label = f"{weights_label}, preset {cfg.preset}"
    plot_history(
        report["history"],
        os.path.join(out_dir, "loss.png"),
        f"stylejax demo, {content.shape[1]}x{content.shape[0]} px, L-BFGS, {label}",
    )
    summary.write_summary(
        os.path.join(out_dir, "summary.png"),
        [("content", content), ("style", style), ("result", outcome.image)],
        caption=f"{label}. {quality.format_measures(measures)}",
        credit=credit,
    )
    # The report gets the measures too: rewritten after the transfer wrote it.
    transfer.write_report(cfg.report, report)
    say(
        f"demo: wrote {out_dir}/ (content.png, style.png, result.png, loss.png, summary.png, "
        f"report.json); loss {report['initial']['total']:.4g} -> {report['final']['total']:.4g} "
        f"in {report['iterations']} iterations, {report['seconds']:.1f} s + "
        f"{report['compile_seconds']:.1f} s compile on {report['device']}; "
        f"{quality.format_measures(measures)}"
    )
    if random:
        say("demo: made with RANDOM weights; README 'Weights' says how to get pretrained ones")
    return DemoResult(out_dir=out_dir, status=outcome.status, report=report)
