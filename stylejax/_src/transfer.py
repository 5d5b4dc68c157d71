"""One style transfer end to end: inputs checked, losses set up, image optimised, saved.

Everything that can fail because of the user's input is checked before any work and
before anything is written, so a bad run leaves the output path as it was.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import atomic, balance, convolution, images, losses, optimise
from stylejax._src import config as config_lib
from stylejax._src.errors import UserError
from stylejax._src.weights_file import LoadedWeights
from stylejax._src.weights_source import RANDOM_BANNER, is_random, resolve_weights
from stylejax._version import __version__


class NonFiniteLoss(UserError):
    """The objective stopped being finite; the message says where the last good image is."""


@dataclasses.dataclass
class TransferOutcome:
    report: dict
    output: str
    status: str  # completed | interrupted
    image: np.ndarray  # the saved RGB image in [0, 1]


@dataclasses.dataclass(frozen=True)
class PreparedInputs:
    content: np.ndarray  # RGB [0, 1], output shape
    style: np.ndarray
    init: np.ndarray
    original_content_shape: tuple[int, int]
    original_style_shape: tuple[int, int]


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def prepare_inputs(cfg: config_lib.TransferConfig) -> PreparedInputs:
    """Loads and resizes the images: content to ``size`` on its longest side, style and
    a path init to the content's exact shape (the paper resizes the style image)."""
    content = images.load_image(cfg.content)
    style = images.load_image(cfg.style)
    shape = images.output_shape(content.shape[0], content.shape[1], cfg.size)
    content_resized = images.resize(content, shape)
    style_resized = images.resize(style, shape)
    if cfg.init == "noise":
        init = images.white_noise(cfg.seed, (*shape, 3))
    elif cfg.init == "content":
        init = content_resized
    elif cfg.init == "style":
        init = style_resized
    else:
        init = images.resize(images.load_image(cfg.init), shape)
    return PreparedInputs(
        content=content_resized,
        style=style_resized,
        init=init,
        original_content_shape=tuple(content.shape[:2]),
        original_style_shape=tuple(style.shape[:2]),
    )


def loss_spec(cfg: config_lib.TransferConfig) -> losses.LossSpec:
    """The static loss spec of a config."""
    return losses.LossSpec(
        content_layers=(cfg.content_layer,), style_layers=cfg.style_layers, pooling=cfg.pooling
    )


def apply_balance(cfg: config_lib.TransferConfig, scales: balance.Scales):
    """``cfg`` with alpha, w_l and the TV weight the balance rule leaves open filled in
    from ``scales``, and the report's record of the rule."""
    fixed_layers = None if cfg.style_layer_weights == config_lib.BALANCED else cfg.style_layer_weights
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


def loss_weights_of(cfg: config_lib.TransferConfig) -> losses.LossWeights:
    """The traced loss weights of a config whose weights are all resolved."""
    return losses.LossWeights(
        content_weight=jnp.asarray(cfg.content_weight, jnp.float32),
        style_weight=jnp.asarray(cfg.style_weight, jnp.float32),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.asarray(cfg.style_layer_weights, jnp.float32),
        tv_weight=jnp.asarray(cfg.tv_weight, jnp.float32),
    )


@functools.lru_cache(maxsize=8)
def _jitted_targets(spec: losses.LossSpec):
    return jax.jit(functools.partial(losses.compute_targets, spec=spec))


@functools.lru_cache(maxsize=8)
def _jitted_terms(spec: losses.LossSpec):
    return jax.jit(functools.partial(losses.loss_terms, spec=spec))


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


def check_destinations(cfg: config_lib.TransferConfig) -> None:
    images.check_output_path(cfg.output, "output")
    if cfg.report:
        images.check_output_path(cfg.report, "report")
        if os.path.abspath(cfg.report) == os.path.abspath(cfg.output):
            raise UserError(f"the report and the output are the same file: {cfg.output}")


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
    inputs = prepare_inputs(cfg)
    if weights is None:
        weights = resolve_weights(cfg.weights, seed=cfg.seed)
    if is_random(weights):
        say(RANDOM_BANNER)
    convention = weights.convention
    lr = cfg.lr if cfg.lr is not None else config_lib.ADAM_STEP_FRACTION * convention.unit
    backend = jax.default_backend()
    chunk = cfg.chunk or config_lib.default_chunk(backend, cfg.optimizer)
    cfg = dataclasses.replace(cfg, lr=lr, chunk=chunk)

    spec = loss_spec(cfg)
    params = jax.tree.map(jnp.asarray, weights.params)
    content = jnp.asarray(convention.to_network(inputs.content))
    style = jnp.asarray(convention.to_network(inputs.style))
    init = jnp.asarray(convention.to_network(inputs.init))

    compile_start = time.perf_counter()
    targets_fn = _jitted_targets(spec).lower(params, content, style).compile()
    targets = targets_fn(params, content, style)
    unit = balance.unit_weights(spec)
    terms_fn = _jitted_terms(spec).lower(init, params, targets, unit).compile()
    compile_seconds = time.perf_counter() - compile_start
    balance_report = None
    if cfg.needs_balance:
        cfg, balance_report = apply_balance(
            cfg, balance.scales_from_terms(terms_fn(content, params, targets, unit),
                                           terms_fn(style, params, targets, unit)))
    loss_weights = loss_weights_of(cfg)
    initial = terms_fn(init, params, targets, loss_weights)
    if not np.isfinite(float(initial.total)):
        raise NonFiniteLoss(
            f"the objective is not finite at the initial image (total {float(initial.total)}); "
            "check the weights file and the loss weights"
        )

    solver_spec = optimise.SolverSpec(optimizer=cfg.optimizer, loss=spec)
    args = optimise.SolveArgs(params, targets, loss_weights, jnp.asarray(lr, jnp.float32))

    def save_intermediate(iteration, network_image):
        path = sibling_path(cfg.output, f"{iteration:05d}")
        rgb = np.asarray(convention.to_rgb01(network_image))
        images.save_png(path, rgb, png_metadata(cfg, weights, f"iteration {iteration}"))

    result = optimise.solve(
        init,
        args,
        solver_spec,
        cfg.iterations,
        chunk_size=chunk,
        on_progress=progress,
        save_every=cfg.save_every,
        on_save=save_intermediate,
    )
    compile_seconds += result.compile_seconds

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
    history = list(result.values) if status == "non-finite" else [*result.values, float(final.total)]
    report = {
        "stylejax_version": __version__,
        "status": status,
        "config": cfg.to_dict(),
        "preset": {"name": cfg.preset, "why": cfg.preset_reason},
        "balance": balance_report,
        "weights": {**weights.describe(), "random": is_random(weights)},
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
    rgb = np.clip(np.asarray(convention.to_rgb01(final_image), np.float32), 0.0, 1.0)

    if status == "non-finite":
        kept = sibling_path(cfg.output, "last-finite")
        images.save_png(kept, rgb, png_metadata(cfg, weights, status))
        report["last_finite_image"] = kept
        write_report(cfg.report, report)
        raise NonFiniteLoss(
            f"the objective became non-finite at iteration {nonfinite_at}; the last finite "
            f"image (iteration {max(nonfinite_at - 1, 0)}) is in {kept}"
        )

    images.save_png(cfg.output, rgb, png_metadata(cfg, weights, status))
    write_report(cfg.report, report)
    return TransferOutcome(report=report, output=cfg.output, status=status, image=rgb)
