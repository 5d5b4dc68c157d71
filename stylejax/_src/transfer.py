"""One style transfer in memory: RGB arrays in, the RGB result and a report dict out.

Settings come from a preset (stylejax/_src/presets.py) with the caller's changes on top,
checked by stylejax/_src/settings.py; the content is resized to ``size`` on its long
side and the style (and an init picture) to the content's shape, as in the paper. The
command line's ``stylejax transfer`` (stylejax/cli/transfer.py) reads and writes the files.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from stylejax._src import (
    balance,
    colour,
    convolution,
    guides,
    image_ops,
    losses,
    optimise,
    presets,
    tiling,
)
from stylejax._src import layers as vgg_layers
from stylejax._src import settings as settings_lib
from stylejax._src.convention import InputConvention
from stylejax._src.errors import InvalidSetting, invalid
from stylejax._src.settings import Settings
from stylejax._src.weights.weights_file import LoadedWeights
from stylejax._version import __version__


class NonFiniteLoss(FloatingPointError):
    """The objective is not finite at the initial image: nothing to optimise."""


@dataclasses.dataclass
class Resume:
    """Where a run stands after ``iteration`` iterations: the solver's whole state (the
    image, L-BFGS's memory or Adam's moments, counters; host arrays) and the objective at
    x_0 .. x_{iteration-1}. What a checkpoint holds, apart from the file's bookkeeping."""

    iteration: int
    state: Any  # an optimise.SolveState of NumPy arrays, or its flax state dict
    history: list[float]

    def state_dict(self) -> dict:
        """The state as nested dicts of arrays (flax.serialization's state dict)."""
        return self.state if isinstance(self.state, dict) else serialization.to_state_dict(self.state)


@dataclasses.dataclass
class TransferOutcome:
    report: dict
    status: str  # completed | interrupted | non-finite
    image: np.ndarray  # RGB in [0, 1]: the result, or the last finite image
    settings: Settings  # with the learning rate, chunk and balanced weights resolved
    nonfinite_at: int | None = None  # the iteration whose objective was not finite
    resume: Resume | None = None  # the solver's final state, to continue the run later


@dataclasses.dataclass(frozen=True)
class PreparedInputs:
    content: np.ndarray  # RGB [0, 1], output shape
    style: np.ndarray | tuple[np.ndarray, ...]  # one style image, or several (own shapes)
    init: np.ndarray
    original_content_shape: tuple[int, int]
    original_style_shape: tuple[int, int] | list[tuple[int, int]]
    guides: np.ndarray | None = None  # spatial control: (R, H, W) over the output
    style_guides: tuple[np.ndarray, ...] | None = None  # one (H_k, W_k) per style image


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


# Spatial control compares each style image with the content position by position.
NO_SCALE_WITH_MASK = "a content mask needs every style image at the content's shape: no style scale"


def at_content_shape(styles, shape: tuple[int, int]) -> tuple:
    """Each RGB style picture at the content's (height, width) ``shape`` (resized only where
    it differs): where the balance rule measures the content loss at a style image, and
    where init ``style`` starts."""
    return tuple(p if p.shape[:2] == tuple(shape) else image_ops.resize(p, shape) for p in styles)


def scaled_style_shape(style_shape, content_shape, style_scale: float) -> tuple[int, int]:
    """A style picture's (height, width) under ``style_scale``: its own aspect ratio, its
    longest side ``style_scale`` times the content's (at least twice the smallest side a
    picture may have).

    Raises:
      InvalidSetting: a side of the result would be under ``MIN_IMAGE_SIDE`` px.
    """
    longest = max(2 * vgg_layers.MIN_IMAGE_SIDE, round(style_scale * max(content_shape[:2])))
    return image_ops.output_shape(style_shape[0], style_shape[1], longest)


def prepare_inputs(content: np.ndarray, style, cfg: Settings,
                   init_image: np.ndarray | None = None, content_mask: np.ndarray | None = None,
                   style_masks=None) -> PreparedInputs:
    """Resizes the pictures: content to ``size`` on its longest side, style and an init
    picture to the content's exact shape (the paper resizes the style image).

    ``style`` is one RGB image or a tuple of several (the style term then blends them by
    ``cfg.style_blend``); with ``cfg.style_scale`` each style image keeps its own aspect
    ratio, its longest side ``style_scale * size`` (jcjohnson/neural-style's
    ``-style_scale``).

    Spatial control (guides.py): ``content_mask`` over the content image, (H, W) labels
    0..K-1 or (K, H, W) guides, region k styled by style image k; ``style_masks``
    optionally one (H_k, W_k) guide per style image (None for all of one).

    Raises:
      InvalidSetting: ``style_blend`` has another count than the styles, a style image
        would be under 16 px, or a mask has another aspect ratio than its image, another
        number of regions than the styles, or a region empty at the output size.
    """
    shape = image_ops.output_shape(content.shape[0], content.shape[1], cfg.size)
    content_resized = image_ops.resize(content, shape)
    styles = tuple(style) if isinstance(style, (tuple, list)) else (style,)
    if cfg.style_blend is not None and len(cfg.style_blend) != len(styles):
        raise InvalidSetting(f"{{}} gives {len(cfg.style_blend)} weights for {len(styles)} style images",
                             "style_blend")
    resized = []
    for picture in styles:
        target = shape
        if cfg.style_scale is not None:
            target = scaled_style_shape(picture.shape, shape, cfg.style_scale)
        resized.append(colour.style_target(image_ops.resize(picture, target), content_resized,
                                           cfg.color_control, cfg.histogram_match))
    if init_image is not None:
        init = image_ops.resize(init_image, shape)
    elif cfg.init == "noise":
        init = image_ops.white_noise(cfg.seed, (*shape, 3))
    elif cfg.init == "content":
        init = content_resized
    elif cfg.init == "style":
        init = image_ops.resize(resized[0], shape)
    else:
        raise ValueError(f"init must be noise, content, style or an RGB array, got {cfg.init!r}")
    region_guides, own_guides = None, None
    if content_mask is not None:
        if cfg.style_scale is not None:
            raise invalid(NO_SCALE_WITH_MASK)
        region_guides, own_guides = prepare_guides(content.shape, styles, shape, content_mask, style_masks)
    several = len(styles) > 1 or content_mask is not None
    return PreparedInputs(
        content=content_resized,
        style=tuple(resized) if several else resized[0],
        init=init,
        original_content_shape=tuple(content.shape[:2]),
        original_style_shape=[tuple(p.shape[:2]) for p in styles] if several else tuple(styles[0].shape[:2]),
        guides=region_guides,
        style_guides=own_guides,
    )


def prepare_guides(content_shape, styles, shape: tuple[int, int], content_mask, style_masks=None):
    """Spatial control's guides at the output ``shape`` (every style image then at that
    shape too): (R, H, W) region guides from ``content_mask`` ((H, W) labels 0..K-1 or
    (K, H, W) guides over a content picture of ``content_shape``), and ``style_masks``
    (None, or one (H_k, W_k) guide or None per picture of ``styles``, each checked
    against its picture's shape) as a tuple of (H, W) guides, or None. Shared by
    :func:`prepare_inputs` and sweeps (stylejax/_src/sweep.py).

    Raises:
      InvalidSetting: a mask with another aspect ratio than its image, another number of
        regions than ``styles``, or a region (or style mask) empty at ``shape``.
    """
    region_guides = guides.region_guides(content_mask, len(styles))
    guides.check_aspect(region_guides.shape[1:], content_shape, "content mask")
    region_guides = np.stack([guides.resize_guide(g, shape) for g in region_guides])
    empty = [k + 1 for k, g in enumerate(region_guides) if not g.any()]
    if empty:
        raise invalid(f"region {empty[0]} of the content mask is empty at {shape[1]}x{shape[0]} px")
    if style_masks is None:
        return region_guides, None
    if len(style_masks) != len(styles):
        raise invalid(f"{len(style_masks)} style masks for {len(styles)} style images")
    own_guides = []
    for k, (mask, picture) in enumerate(zip(style_masks, styles, strict=True)):
        if mask is None:
            own_guides.append(np.ones(shape, np.float32))
            continue
        guides.check_aspect(np.shape(mask), picture.shape, f"style mask {k + 1}")
        own = guides.resize_guide(mask, shape)
        if not own.any():
            raise invalid(f"style mask {k + 1} is empty at {shape[1]}x{shape[0]} px")
        own_guides.append(own)
    return region_guides, tuple(own_guides)


def loss_spec(cfg: Settings, convention: InputConvention | None = None) -> losses.LossSpec:
    """The static loss spec of a config (``convention``: the weights', needed for a
    luminance-only objective)."""
    luminance = None
    if cfg.color_control == "luminance":
        if convention is None:
            raise ValueError("a luminance-only objective needs the weights' input convention")
        luminance = convention
    return losses.LossSpec(
        content_layers=(cfg.content_layer,), style_layers=cfg.style_layers, pooling=cfg.pooling,
        luminance=luminance,
    )


def apply_balance(cfg: Settings, scales: balance.Scales):
    """``cfg`` with alpha, w_l and the TV weight the balance rule leaves open filled in
    from ``scales``, and the report's record of the rule."""
    fixed_layers = None if cfg.style_layer_weights == presets.BALANCED else cfg.style_layer_weights
    resolved = balance.resolve(
        scales,
        balance=cfg.balance if cfg.content_weight is None else 0.0,
        tv_balance=cfg.tv_balance if cfg.tv_weight is None else 0.0,
        style_layer_weights=fixed_layers,
    )
    cfg_out = dataclasses.replace(
        cfg,
        content_weight=resolved.content_weight if cfg.content_weight is None else cfg.content_weight,
        style_layer_weights=resolved.style_layer_weights,
        tv_weight=resolved.tv_weight if cfg.tv_weight is None else cfg.tv_weight,
    )
    record = {
        "rule": "stylejax/_src/balance.py: w_l ~ 1/E_l(content); alpha = balance * "
                "S(content) / L_content(style); tv = tv_balance * S(content) / L_tv(content)",
        "balance": cfg.balance,
        "tv_balance": cfg.tv_balance,
        "style_layers_balanced": fixed_layers is None,
        "style_at_content": dict(zip(cfg.style_layers, scales.style_at_content.tolist(), strict=True)),
        "content_at_style": float(scales.content_at_style.sum()),
        "tv_at_content": scales.tv_at_content,
    }
    return cfg_out, record


def loss_weights_of(cfg: Settings) -> losses.LossWeights:
    """The traced loss weights of a config whose weights are all resolved."""
    return losses.LossWeights(
        content_weight=jnp.asarray(cfg.content_weight, jnp.float32),
        style_weight=jnp.asarray(cfg.style_weight, jnp.float32),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.asarray(cfg.style_layer_weights, jnp.float32),
        tv_weight=jnp.asarray(cfg.tv_weight, jnp.float32),
    )


def terms_to_dict(terms: losses.LossTerms, spec: losses.LossSpec) -> dict:
    """The report's loss breakdown: unweighted terms and the weighted total."""
    content_per_layer = np.asarray(terms.content_per_layer, np.float64)
    style_per_layer = np.asarray(terms.style_per_layer, np.float64)
    return {
        "content": float(terms.content),
        "content_layers": dict(zip(spec.content_layers, map(float, content_per_layer), strict=True)),
        "style": dict(zip(spec.style_layers, map(float, style_per_layer), strict=True)),
        "style_weighted_sum": float(terms.style),
        "tv": float(terms.tv),
        "total": float(terms.total),
    }


def run(
    inputs: PreparedInputs,
    weights: LoadedWeights,
    cfg: Settings,
    *,
    progress: Callable[[int, float], None] | None = None,
    on_save: Callable[[int, np.ndarray, Settings], None] | None = None,
    resume: Resume | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[Resume], None] | None = None,
) -> TransferOutcome:
    """Optimises one image as ``cfg`` says; writes nothing.

    Args:
      inputs: the pictures at the output shape (:func:`prepare_inputs`).
      weights: the network: its ``params`` and input ``convention``.
      cfg: the settings (:class:`Settings`, or the command line's config built on it).
      progress: ``(iterations_done, latest_loss)`` between compiled chunks, or None.
      on_save: ``(iteration, rgb, settings)`` every ``cfg.save_every`` iterations, or None.
      resume: the solver's state and history after k iterations of this same run (from
        ``on_checkpoint`` or ``TransferOutcome.resume``): the run continues with
        iterations k+1..``cfg.iterations`` and ends as the uninterrupted run would.
      checkpoint_every, on_checkpoint: ``on_checkpoint(resume)`` every
        ``checkpoint_every`` iterations (host copies; nothing written here).

    Raises:
      NonFiniteLoss: the objective is not finite at the initial image. A run that turns
        non-finite later returns status ``non-finite`` and the last finite image.
    """
    convention = weights.convention
    lr = cfg.lr if cfg.lr is not None else presets.ADAM_STEP_FRACTION * convention.unit
    backend = jax.default_backend()
    default_chunk = presets.default_chunk(backend, cfg.optimizer)
    chunk = optimise.chunk_length(cfg.chunk or default_chunk, cfg.iterations, default_chunk)
    cfg = dataclasses.replace(cfg, lr=lr, chunk=chunk)

    spec = loss_spec(cfg, convention)
    params = jax.tree.map(jnp.asarray, weights.params)
    content = jnp.asarray(convention.to_network(inputs.content))
    several = isinstance(inputs.style, tuple)
    style = (tuple(jnp.asarray(convention.to_network(p)) for p in inputs.style) if several
             else jnp.asarray(convention.to_network(inputs.style)))
    init = jnp.asarray(convention.to_network(inputs.init))
    blend = None
    if several:
        count = len(inputs.style)
        cfg = dataclasses.replace(cfg, style_blend=cfg.style_blend or (1.0 / count,) * count)
        blend = jnp.asarray(cfg.style_blend, jnp.float32)

    guide_arrays = None if inputs.guides is None else jnp.asarray(inputs.guides)
    style_guide_arrays = (None if inputs.style_guides is None
                          else tuple(jnp.asarray(g) for g in inputs.style_guides))
    compile_start = time.perf_counter()
    guide_kwargs = {"content_guides": guide_arrays, "style_guides": style_guide_arrays}
    targets_fn = tiling.jitted_targets(spec, cfg.mask_method, cfg.tile).lower(
        params, content, style, **guide_kwargs).compile()
    targets = targets_fn(params, content, style, **guide_kwargs)
    unit = balance.unit_weights(spec)._replace(style_blend=blend)
    terms_fn = tiling.jitted_terms(spec, cfg.tile).lower(init, params, targets, unit).compile()
    compile_seconds = time.perf_counter() - compile_start
    balance_report = None
    if cfg.needs_balance:
        at_content = terms_fn(content, params, targets, unit)
        # The content loss at a style image is defined at the output's shape: a style
        # image of another size (style_scale) is measured resized to the content's shape;
        # its target keeps the scaled image.
        at_shape = [jnp.asarray(convention.to_network(p)) for p in
                    at_content_shape(inputs.style if several else (inputs.style,), inputs.content.shape[:2])]
        if several:  # the content loss at the styles: blended as their style terms are
            at_styles = [terms_fn(p, params, targets, unit) for p in at_shape]
            at_style = at_styles[0]._replace(content_per_layer=sum(
                b * t.content_per_layer for b, t in zip(np.asarray(blend), at_styles, strict=True)))
        else:
            at_style = terms_fn(at_shape[0], params, targets, unit)
        cfg, balance_report = apply_balance(cfg, balance.scales_from_terms(at_content, at_style))
    loss_weights = loss_weights_of(cfg)._replace(style_blend=blend)
    initial = terms_fn(init, params, targets, loss_weights)
    if not np.isfinite(float(initial.total)):
        raise NonFiniteLoss(
            f"the objective is not finite at the initial image (total {float(initial.total)}); "
            "check the weights file and the loss weights"
        )

    solver_spec = optimise.SolverSpec(optimizer=cfg.optimizer, loss=spec, convolution=cfg.convolution,
                                      precision=cfg.precision, tile=cfg.tile)
    args = optimise.SolveArgs(params, targets, loss_weights, jnp.asarray(lr, jnp.float32))

    def save_intermediate(iteration, network_image):
        rgb = colour.finish(convention.to_rgb01(network_image), inputs.content, cfg.color_control)
        on_save(iteration, rgb, cfg)

    earlier = [] if resume is None else list(resume.history)

    def checkpoint(iteration, state, values):
        on_checkpoint(Resume(iteration, jax.device_get(state), [*earlier, *optimise.finite_history(values)]))

    initial_state = None
    if resume is not None:
        target = jax.eval_shape(functools.partial(optimise.init_state, spec=solver_spec), init, args)
        initial_state = jax.tree.map(jnp.asarray, serialization.from_state_dict(target, resume.state_dict()))
    result = optimise.solve(
        init,
        args,
        solver_spec,
        cfg.iterations,
        chunk_size=chunk,
        on_progress=progress,
        save_every=cfg.save_every,
        on_save=save_intermediate if on_save is not None else None,
        initial_state=initial_state,
        checkpoint_every=checkpoint_every,
        on_checkpoint=checkpoint if on_checkpoint is not None else None,
    )
    compile_seconds += result.compile_seconds
    values = [*earlier, *result.values]

    final_image = result.state.image
    final = terms_fn(final_image, params, targets, loss_weights)
    status = result.status
    if status != "non-finite" and not np.isfinite(float(final.total)):
        status = "non-finite"
    nonfinite_at = None
    if status == "non-finite":
        # The solver stopped at x_i, whose objective is not finite; x_{i-1} is the last
        # image known to be finite.
        nonfinite_at = int(result.state.iteration)
        final_image = result.state.previous_image
        final = terms_fn(final_image, params, targets, loss_weights)

    # values[i] is the objective at x_i for the iterations taken; the final image's
    # objective closes the curve unless the run stopped on a non-finite value.
    history = list(values) if status == "non-finite" else [*values, float(final.total)]
    report = {
        "stylejax_version": __version__,
        "status": status,
        "config": cfg.to_dict(),
        "preset": {"name": cfg.preset, "why": cfg.preset_reason},
        "balance": balance_report,
        "weights": {**weights.describe(), "random": weights.is_random},
        "images": {
            "content_original_shape": list(inputs.original_content_shape),
            "style_original_shape": list(inputs.original_style_shape),
            "output_shape": list(inputs.content.shape[:2]),
        },
        "initial": terms_to_dict(initial, spec),
        "final": terms_to_dict(final, spec),
        "history": history,
        "iterations": result.iterations,
        "evaluations": result.evaluations,
        "seconds": result.seconds,
        "compile_seconds": compile_seconds,
        "device": device_description(),
        "convolution": convolution.resolve(solver_spec.convolution),
        "jax_version": jax.__version__,
    }
    if resume is not None:
        report["resumed_at"] = resume.iteration
    rgb = colour.finish(convention.to_rgb01(final_image), inputs.content, cfg.color_control)
    return TransferOutcome(report=report, status=status, image=rgb, settings=cfg,
                           nonfinite_at=nonfinite_at,
                           resume=Resume(result.iterations, jax.device_get(result.state), values))


_STAGE_FIELDS = ("status", "iterations", "evaluations", "seconds", "compile_seconds", "history")


def run_scales(
    content: np.ndarray,
    style: np.ndarray,
    weights: LoadedWeights,
    cfg: Settings,
    init_image: np.ndarray | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
    on_save: Callable[[int, np.ndarray, Settings], None] | None = None,
    resume: Resume | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[Resume], None] | None = None,
    content_mask: np.ndarray | None = None,
    style_masks=None,
) -> TransferOutcome:
    """:func:`run` from the pictures at their own sizes: at ``cfg.size``, or coarse to fine
    over ``cfg.scales`` (CVPR 2017 Sec. 6, the authors' notebooks: 512 px for 500
    iterations, then 1024 px for 200), each scale starting from the previous result
    upsampled, with its own ``cfg.scale_iterations``; writes nothing.

    The report is the last scale's, with ``iterations``, ``evaluations``, ``seconds`` and
    ``compile_seconds`` summed over the scales, ``config`` the whole run's, and ``scales``
    one record per scale run (its size, output shape, status, counts, times, history and
    final total). A scale that is interrupted or turns non-finite ends the run there.
    Progress and ``on_save`` count iterations over the whole run. ``resume`` and the
    checkpoint hooks are :func:`run`'s, for one size only; the masks
    :func:`prepare_inputs`'s, at every size.
    """
    masks = {"content_mask": content_mask, "style_masks": style_masks}
    if not cfg.scales:
        return run(prepare_inputs(content, style, cfg, init_image, **masks), weights, cfg, progress=progress,
                   on_save=on_save, resume=resume, checkpoint_every=checkpoint_every,
                   on_checkpoint=on_checkpoint)
    if resume is not None or on_checkpoint is not None:
        raise invalid("checkpoints and resuming work with one size, not with scales")
    stages, done, image, outcome = [], 0, init_image, None
    for size, iterations in zip(cfg.scales, cfg.scale_iterations, strict=True):
        stage = dataclasses.replace(cfg, size=size, iterations=iterations, scales=(), scale_iterations=(),
                                    init="image" if image is not None else cfg.init)

        def stage_progress(count, latest, offset=done):
            progress(offset + count, latest)

        def stage_save(iteration, rgb, settings, offset=done):
            on_save(offset + iteration, rgb, settings)

        outcome = run(prepare_inputs(content, style, stage, image, **masks), weights, stage,
                      progress=stage_progress if progress is not None else None,
                      on_save=stage_save if on_save is not None else None)
        resolved = outcome.settings
        record = {"size": size, "output_shape": outcome.report["images"]["output_shape"],
                  **{key: outcome.report[key] for key in _STAGE_FIELDS},
                  "final_total": outcome.report["final"]["total"],
                  "content_weight": resolved.content_weight, "tv_weight": resolved.tv_weight,
                  "style_layer_weights": list(resolved.style_layer_weights)}
        stages.append(record)
        offset = done
        done += outcome.report["iterations"]
        image = outcome.image
        if outcome.status != "completed":
            break
    # The whole run's settings, with the last scale's resolved values (lr, chunk, weights).
    whole = dataclasses.replace(outcome.settings, size=cfg.size, iterations=cfg.iterations, init=cfg.init,
                                scales=cfg.scales, scale_iterations=cfg.scale_iterations)
    report = dict(outcome.report)
    report.update(config=whole.to_dict(), scales=stages, iterations=done,
                  **{key: sum(r[key] for r in stages) for key in ("evaluations", "seconds", "compile_seconds")})
    at = None if outcome.nonfinite_at is None else offset + outcome.nonfinite_at
    return dataclasses.replace(outcome, report=report, settings=whole, nonfinite_at=at)


def transfer(content_rgb, style_rgb, weights: LoadedWeights, *, preset: str = "paper",
             progress: Callable[[int, float], None] | None = None,
             content_mask: np.ndarray | None = None, style_masks=None,
             **settings) -> tuple[np.ndarray, dict]:
    """Renders ``content_rgb`` in the style of ``style_rgb``; returns (RGB result, report).

    Args:
      content_rgb, style_rgb: (H, W, 3) RGB arrays in [0, 1]. The content is resized to
        ``size`` on its long side, the style to the content's shape. ``style_rgb`` may be a
        tuple of several styles, blended by ``style_blend`` (one weight each; default
        equal), each resized by ``style_scale`` if given (:func:`prepare_inputs`).
      content_mask, style_masks: spatial control (CVPR 2017 Sec. 4): region k of
        ``content_mask`` ((H, W) labels 0..K-1, or (K, H, W) guides) in the style of
        style image k, optionally from the part of it ``style_masks[k]`` marks;
        ``mask_method`` "simple" or "inside" (stylejax/_src/guides.py).
      weights: the network (:func:`stylejax.weights.load_weights` or ``random_weights``).
      preset: the settings to start from, ``paper`` or ``random`` (stylejax.PRESETS).
      progress: ``(iterations_done, latest_loss)`` between compiled chunks, or None.
      **settings: changes to the preset: size, iterations, optimizer, lr, ratio or
        content_weight/style_weight or balance, content_layer, style_layers,
        style_layer_weights (or "balanced"), tv_weight or tv_balance, init ("noise",
        "content", "style" or an RGB array), seed, pooling, chunk, save_every,
        color_control ("none", "luminance", "histogram", "original": CVPR 2017 Sec. 5,
        stylejax/_src/colour.py), histogram_match ("pca", "cholesky", "sym"), scales
        (coarse to fine, e.g. (256, 512), with iterations one count per scale, e.g.
        (150, 50): :func:`run_scales`), style_blend, style_scale, convolution, precision,
        tile (the objective in tiles of this many px, the same value and gradient in less
        memory: stylejax/_src/tiling.py).

    The report's ``status`` is ``completed``, ``interrupted`` (Ctrl-C) or ``non-finite``
    (the result is then the last finite image).

    Raises:
      ValueError: a bad setting (the message names it) or picture.
      TypeError: an unknown setting.
      NonFiniteLoss: the objective is not finite at the initial image.
    """
    init_image = None
    if not isinstance(settings.get("init", "noise"), str | None):
        settings = dict(settings)
        init_image = _rgb(settings.pop("init"), "init")
    cfg = Settings(**settings_lib.resolve(preset, settings))
    if init_image is not None:
        cfg = dataclasses.replace(cfg, init="image")
    elif cfg.init not in ("noise", "content", "style"):
        raise ValueError(f"init must be noise, content, style or an RGB array, got {cfg.init!r}")
    styles = (tuple(_rgb(p, f"style_rgb[{k}]") for k, p in enumerate(style_rgb))
              if isinstance(style_rgb, (tuple, list)) else _rgb(style_rgb, "style_rgb"))
    if content_mask is not None and not isinstance(styles, tuple):
        styles = (styles,)
    outcome = run_scales(_rgb(content_rgb, "content_rgb"), styles, weights, cfg, init_image,
                         progress=progress, content_mask=content_mask, style_masks=style_masks)
    return outcome.image, outcome.report


def combine_styles(coarse_rgb, fine_rgb, weights: LoadedWeights, *, preset: str = "paper",
                   fine_layers: tuple[str, ...] = ("conv1_1", "conv2_1"),
                   progress: Callable[[int, float], None] | None = None,
                   **settings) -> tuple[np.ndarray, dict]:
    """A new style image from two (CVPR 2017 Sec. 6): the fine scales of ``fine_rgb`` (its
    Gram matrices at ``fine_layers``, up to conv2_1 as in the paper) transferred onto
    ``coarse_rgb``, which keeps its large-scale structure; ``fine_rgb``'s colours are
    first matched to ``coarse_rgb``'s (histogram matching, ``pca``), as the authors do.
    Use the result as the style image of a transfer. Returns (RGB, report) as
    :func:`transfer`, whose ``settings`` it accepts (size, iterations, ...)."""
    return transfer(coarse_rgb, fine_rgb, weights, preset=preset, progress=progress,
                    **{"init": "content", "style_layers": tuple(fine_layers), "style_layer_weights": None,
                       "color_control": "histogram", "histogram_match": "pca", **settings})


def _rgb(image, name: str) -> np.ndarray:
    array = np.asarray(image, np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array
