"""``stylejax demo``: the offline main job.

Needs no download and no images from the user: the content and style pictures are
made by :func:`samples.sample_images` (or taken from the paper's images when
``STYLEJAX_IMAGES`` points at them), the weights are the pretrained file in the weights
directory when there is one and seeded random weights otherwise, announced as such.
Writes ``content.png``, ``style.png``, ``result.png``, ``loss.png``, ``summary.png`` and
``report.json`` into the output folder.

Expected: about 30 s on 2 CPU cores at the defaults (128 px, 100 L-BFGS iterations).
"""

from __future__ import annotations

import dataclasses
import os

from stylejax._src import config as config_lib
from stylejax._src import images, samples, summary, transfer, weights_file
from stylejax._src.plot import plot_history
from stylejax._src.progress import ProgressBar
from stylejax._src.weights_source import RANDOM_BANNER, is_random, resolve_weights

DEMO_SIZE = 128
DEMO_ITERATIONS = 100
# alpha/beta. Pretrained weights: the paper's 1e-3. Random weights put far more of the
# objective in the content term (measured at 128 px from noise: at 1e-3 the result after
# 100 iterations is still noise, at 1e-5 the layout and the painting's colours show).
DEMO_RATIO_PRETRAINED = 1e-3
DEMO_RATIO_RANDOM = 1e-5
# The paper's Fig. 1/3 pair, when the reference images are at hand.
REFERENCE_CONTENT = "tuebingen_neckarfront.jpg"
REFERENCE_STYLE = "vangogh_starry_night.jpg"


@dataclasses.dataclass
class DemoResult:
    out_dir: str
    status: str
    report: dict


def demo_pictures(size: int):
    """(content, style, where they came from) as RGB arrays in [0, 1]."""
    folder = os.environ.get("STYLEJAX_IMAGES")
    if folder:
        content_path = os.path.join(folder, REFERENCE_CONTENT)
        style_path = os.path.join(folder, REFERENCE_STYLE)
        if os.path.isfile(content_path) and os.path.isfile(style_path):
            content = images.load_image(content_path)
            style = images.load_image(style_path)
            shape = images.output_shape(content.shape[0], content.shape[1], size)
            return (
                images.resize(content, shape),
                images.resize(style, shape),
                f"{REFERENCE_CONTENT} (photo: Andreas Praefcke, CC BY 3.0) and {REFERENCE_STYLE} from {folder}",
            )
    content, style = samples.sample_images(size)
    return content, style, "stylejax's built-in sample pictures"


def _demo_weights(spec: str):
    if spec == "auto-or-random":
        found = weights_file.find_pretrained()
        return resolve_weights(str(found) if found else "random")
    return resolve_weights(spec)


def run_demo(out_dir: str, weights: str = "auto-or-random", size=None, iterations=None,
             quiet: bool = False, log=None) -> DemoResult:
    say = log or (lambda line: None)
    size = config_lib.count(size if size is not None else DEMO_SIZE, "--size", minimum=16)
    iterations = config_lib.count(
        iterations if iterations is not None else DEMO_ITERATIONS, "--iterations"
    )
    images.prepare_output_folder(out_dir, "demo output")

    loaded = _demo_weights(weights)
    random = is_random(loaded)
    if random:
        say(RANDOM_BANNER)
    content, style, origin = demo_pictures(size)
    say(f"demo: {origin}, {content.shape[1]}x{content.shape[0]} px, {iterations} L-BFGS iterations")
    content_path = os.path.join(out_dir, "content.png")
    style_path = os.path.join(out_dir, "style.png")
    images.save_png(content_path, content, {"stylejax:source": origin})
    images.save_png(style_path, style, {"stylejax:source": origin})

    cfg = config_lib.resolve(
        content_path,
        style_path,
        os.path.join(out_dir, "result.png"),
        {"size": size, "iterations": iterations, "report": os.path.join(out_dir, "report.json"),
         "quiet": quiet, "weights": loaded.path or "random",
         "ratio": DEMO_RATIO_RANDOM if random else DEMO_RATIO_PRETRAINED},
    )
    bar = ProgressBar(iterations, quiet)
    try:
        outcome = transfer.run_transfer(cfg, weights=loaded, progress=bar, log=None)
    finally:
        bar.close()
    report = outcome.report
    label = "RANDOM WEIGHTS (not pretrained)" if random else f"weights: {os.path.basename(loaded.path)}"
    plot_history(
        report["history"],
        os.path.join(out_dir, "loss.png"),
        f"stylejax demo, {content.shape[1]}x{content.shape[0]} px, L-BFGS, {label}",
    )
    summary.write_summary(
        os.path.join(out_dir, "summary.png"),
        [("content", content), ("style", style), ("result", outcome.image)],
        caption=label,
    )
    say(
        f"demo: wrote {out_dir}/ (content.png, style.png, result.png, loss.png, summary.png, "
        f"report.json); loss {report['initial']['total']:.4g} -> {report['final']['total']:.4g} "
        f"in {report['iterations']} iterations, {report['seconds']:.1f} s + "
        f"{report['compile_seconds']:.1f} s compile on {report['device']}"
    )
    if random:
        say("demo: made with RANDOM weights; see README 'Weights' for pretrained ones")
    return DemoResult(out_dir=out_dir, status=outcome.status, report=report)
