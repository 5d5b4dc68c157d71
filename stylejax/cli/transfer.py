"""``stylejax transfer``: the files around the in-memory transfer (stylejax/_src/transfer.py).

Everything that can fail because of the user's input is checked before any work and
before anything is written, so a bad run leaves the output path as it was. The output
PNG carries the resolved config and the weights' provenance; ``--save-every`` writes
``out.NNNNN.png`` beside it; a non-finite objective writes ``out.last-finite.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from stylejax._src import budget, colour, image_ops
from stylejax._src import transfer as transfer_lib
from stylejax._src.errors import InvalidSetting, UserError
from stylejax._src.files import atomic, checkpoint, images, paths
from stylejax._src.weights.weights_file import LoadedWeights
from stylejax._src.weights.weights_source import RANDOM_BANNER, resolve_weights
from stylejax._version import __version__
from stylejax.cli import config as config_lib
from stylejax.cli import signals


class NonFiniteLoss(UserError):
    """The objective stopped being finite; the message says where the last good image is."""


@dataclasses.dataclass
class TransferOutcome:
    report: dict
    output: str
    status: str  # completed | interrupted
    image: np.ndarray  # the saved RGB image in [0, 1]


def png_metadata(cfg: config_lib.TransferConfig, weights: LoadedWeights, status: str) -> dict:
    return {
        "Software": f"stylejax {__version__}",
        "stylejax:config": json.dumps(cfg.to_dict(), sort_keys=True),
        "stylejax:weights_sha256": weights.sha256,
        "stylejax:weights_source": weights.source,
        "stylejax:status": status,
    }


def sibling_path(output: str, suffix: str) -> str:
    """``out.png`` -> ``out.<suffix>.png``: where partial results go, beside the output."""
    stem, ext = os.path.splitext(output)
    return f"{stem}.{suffix}{ext or '.png'}"


def write_report(path: str | None, report: dict) -> None:
    """Writes the report as JSON, atomically (nothing when ``path`` is None)."""
    if path:
        atomic.atomic_write_json(path, report)


def _input_files(cfg: config_lib.TransferConfig) -> dict[str, str | None]:
    """Every file the run reads, by role."""
    init = None if cfg.init in ("noise", "content", "style") else cfg.init
    weights = None if cfg.weights in ("auto", "random") else cfg.weights
    styles = {"style image" if k == 0 else f"style image {k + 1}": path
              for k, path in enumerate(cfg.styles or (cfg.style,))}
    masks = {"content mask": cfg.content_mask,
             **{f"style mask {k + 1}": path for k, path in enumerate(cfg.style_masks)}}
    return {"content image": cfg.content, **styles, "init image": init, **masks, "weights file": weights}


def check_destinations(cfg: config_lib.TransferConfig) -> None:
    """The output is a .png name in a writable folder; no output is an input or another
    output (stylejax/_src/files/paths.py)."""
    outputs = {"output": cfg.output, "report": cfg.report,
               "last-finite image": sibling_path(cfg.output, "last-finite")}
    inputs = _input_files(cfg)
    paths.check_outputs({**outputs, "checkpoint": cfg.checkpoint}, inputs)
    # The checkpoint may be the one resumed (read whole before it is replaced), nothing else.
    paths.check_outputs(outputs, {**inputs, "checkpoint to resume": cfg.resume})
    if cfg.checkpoint_every and not cfg.checkpoint:
        raise UserError("--checkpoint-every needs --checkpoint FILE")
    if cfg.scales and (cfg.checkpoint or cfg.resume):
        raise UserError("--checkpoint and --resume work with one size, not with --scales")
    extension = os.path.splitext(cfg.output)[1]
    if extension.lower() != ".png":
        raise UserError(f"the output {cfg.output} must be named .png (got "
                        f"{extension or 'no extension'}): stylejax writes PNG files, with the "
                        "run's settings in their metadata")


def load_masks(cfg: config_lib.TransferConfig, styles: int):
    """The content mask as (H, W) labels, from its distinct colours in ascending RGB order,
    and the style masks as (H, W) guides (white: take the style from there); (None, None)
    without ``--content-mask``.

    Raises:
      UserError: a mask that is not a readable image; another number of colours than style
        images; style masks without a content mask, or another count than the styles.
    """
    if cfg.content_mask is None:
        if cfg.style_masks:
            raise UserError("--style-masks needs --content-mask")
        return None, None
    pixels = np.rint(images.load_image(cfg.content_mask) * 255).astype(np.int64)
    codes = pixels[..., 0] * 65536 + pixels[..., 1] * 256 + pixels[..., 2]
    colours, labels = np.unique(codes, return_inverse=True)  # ascending RGB value
    if len(colours) != styles:
        raise UserError(f"the content mask {cfg.content_mask} has {len(colours)} colours for {styles} "
                        "style images (one colour per region; save masks as PNG, without "
                        "antialiased edges)")
    style_masks = None
    if cfg.style_masks:
        if len(cfg.style_masks) != styles:
            raise UserError(f"--style-masks gives {len(cfg.style_masks)} masks for {styles} style images")
        style_masks = [(colour.luminance(images.load_image(path))[..., 0] > 0.5).astype(np.float32)
                       for path in cfg.style_masks]
    return labels.reshape(codes.shape), style_masks


def load_pictures(cfg: config_lib.TransferConfig):
    """The content, style and (path) init pictures at their own sizes, after checking the
    run fits in memory at its largest scale."""
    init_image = None
    if cfg.init not in ("noise", "content", "style"):
        init_image = images.load_image(cfg.init)
    content = images.load_image(cfg.content)
    styles = tuple(images.load_image(path) for path in (cfg.styles or (cfg.style,)))
    style = styles if len(styles) > 1 else styles[0]
    try:
        height, width = image_ops.output_shape(content.shape[0], content.shape[1], cfg.size)
        layers = (cfg.content_layer, *cfg.style_layers)
        needed = budget.estimate_bytes(height, width, layers, cfg.optimizer,
                                       chunk=min(cfg.chunk or 1, max(cfg.iterations, 1)), tile=cfg.tile)
        config_lib.check_memory(f"a {width}x{height} px transfer", needed, cfg.max_memory, tiles=True)
    except InvalidSetting as error:
        raise config_lib.user_error(error) from None
    return content, style, init_image


def run_transfer(
    cfg: config_lib.TransferConfig,
    *,
    weights: LoadedWeights | None = None,
    progress=None,
    log=None,
) -> TransferOutcome:
    """Runs one transfer as ``cfg`` says and writes its output (and report, if asked).

    Args:
      cfg: the resolved config.
      weights: already loaded weights (else resolved from ``cfg.weights``).
      progress: a callable ``(iterations_done, latest_loss)`` or None.
      log: a callable taking one line for the user (stderr in the CLI) or None.

    Raises:
      UserError: a bad input (nothing written), or NonFiniteLoss (the last finite
        image written beside the output).
    """
    say = log or (lambda line: None)
    check_destinations(cfg)
    content, style, init_image = load_pictures(cfg)
    content_mask, style_masks = load_masks(cfg, len(cfg.styles or (cfg.style,)))
    if weights is None:
        weights = resolve_weights(cfg.weights, seed=cfg.seed)
    signals.raise_if_interrupted()
    if weights.is_random:
        say(RANDOM_BANNER)

    def save_intermediate(iteration, rgb, resolved):
        images.save_png(sibling_path(cfg.output, f"{iteration:05d}"), rgb,
                        png_metadata(resolved, weights, f"iteration {iteration}"))

    objective, resume = None, None
    if cfg.checkpoint or cfg.resume:
        given = {**cfg.to_dict(), "init": cfg.init if cfg.init in ("noise", "content", "style") else "image"}
        files = _input_files(cfg)
        objective = checkpoint.objective_of(
            given, {role: path for role, path in files.items() if role != "weights file"}, weights.sha256)
    if cfg.resume:
        resume = checkpoint.read(cfg.resume, objective)
        if resume.iteration > cfg.iterations:
            raise UserError(f"checkpoint {cfg.resume} is at iteration {resume.iteration}, past "
                            f"--iterations {cfg.iterations} (the total, not the iterations to add)")
        say(f"resuming {cfg.resume} at iteration {resume.iteration}")

    def write_checkpoint(state: transfer_lib.Resume) -> None:
        checkpoint.write(cfg.checkpoint, state, objective, __version__)

    try:
        outcome = transfer_lib.run_scales(
            content, style, weights, cfg, init_image, progress=signals.checking(progress),
            on_save=save_intermediate, resume=resume, checkpoint_every=cfg.checkpoint_every,
            on_checkpoint=write_checkpoint if cfg.checkpoint and cfg.checkpoint_every else None,
            content_mask=content_mask, style_masks=style_masks)
    except transfer_lib.NonFiniteLoss as error:
        raise NonFiniteLoss(str(error)) from None
    except InvalidSetting as error:
        raise config_lib.user_error(error) from None
    cfg, report, status = outcome.settings, outcome.report, outcome.status

    if status == "non-finite":
        kept = sibling_path(cfg.output, "last-finite")
        images.save_png(kept, outcome.image, png_metadata(cfg, weights, status))
        report["last_finite_image"] = kept
        write_report(cfg.report, report)
        at = outcome.nonfinite_at
        raise NonFiniteLoss(
            f"the objective became non-finite at iteration {at}; the last finite "
            f"image (iteration {max(at - 1, 0)}) is in {kept}"
        )

    if cfg.checkpoint:
        write_checkpoint(outcome.resume)
        report["checkpoint"] = {"path": cfg.checkpoint, "iteration": outcome.resume.iteration}
    images.save_png(cfg.output, outcome.image, png_metadata(cfg, weights, status))
    write_report(cfg.report, report)
    return TransferOutcome(report=report, output=cfg.output, status=status, image=outcome.image)
