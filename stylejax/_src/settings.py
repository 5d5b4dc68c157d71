"""The settings of one transfer: a preset plus the caller's changes, checked and resolved.

Library code: errors are :class:`InvalidSetting` (a ``ValueError``) naming the setting,
e.g. "ratio must be a positive finite number, got -1"; the command line names the flag
instead (``--ratio``) through :meth:`InvalidSetting.named`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from stylejax._src import colour, guides, tiling, vgg
from stylejax._src import convolution as convolution_lib
from stylejax._src import layers as vgg_layers
from stylejax._src import precision as precision_lib
from stylejax._src.errors import InvalidSetting, quote
from stylejax._src.optimise import OPTIMIZERS
from stylejax._src.presets import BALANCED, PRESETS

# Every setting a preset holds that the method reads (a preset's ``weights`` entry is
# the command line's: which weights file a run starts from).
NAMES = (
    "size", "iterations", "optimizer", "lr", "ratio", "content_weight", "style_weight",
    "balance", "content_layer", "style_layers", "style_layer_weights", "tv_weight",
    "tv_balance", "init", "seed", "pooling", "save_every", "chunk", "color_control",
    "histogram_match", "scales", "style_blend", "style_scale", "mask_method", "convolution",
    "precision", "tile",
)


# The largest float32: every weight becomes a float32 in the compiled program, so a larger
# value would turn into infinity there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The largest count: the compiled loops count iterations in int32.
COUNT_MAX = 2**31 - 1


def _finite(value, name: str, *, zero_allowed: bool) -> float:
    try:
        # A JSON true is not the number 1.
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    kind = "non-negative" if zero_allowed else "positive"
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_allowed):
        raise InvalidSetting(f"{{}} must be a {kind} finite number, got " + quote(value), name)
    if number > FLOAT32_MAX:
        raise InvalidSetting(f"{{}} must be a {kind} number at most {FLOAT32_MAX:.4g} "
                             "(float32's largest), got " + quote(value), name)
    return number


def positive_finite(value, name: str) -> float:
    """``value`` as a float > 0, or InvalidSetting naming ``name`` and the value."""
    return _finite(value, name, zero_allowed=False)


def non_negative_finite(value, name: str) -> float:
    """``value`` as a float >= 0, or InvalidSetting naming ``name`` and the value."""
    return _finite(value, name, zero_allowed=True)


def count(value, name: str, minimum: int = 0) -> int:
    """A whole number in [minimum, COUNT_MAX], or InvalidSetting naming ``name`` and the value."""
    try:
        number = minimum - 1 if isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise InvalidSetting(f"{{}} must be a whole number >= {minimum}, got " + quote(value), name)
    if number > COUNT_MAX:
        raise InvalidSetting(f"{{}} must be a whole number at most {COUNT_MAX} (int32's largest), got "
                             + quote(value), name)
    return number


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every resolved setting of one transfer."""

    preset: str
    size: int
    iterations: int
    optimizer: str
    lr: float | None  # None until the weights' input convention fixes Adam's default
    content_weight: float | None  # alpha (Eq. 7); None until the balance rule sets it
    style_weight: float  # beta (Eq. 7)
    content_layer: str
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...] | str  # or "balanced", until the rule sets them
    tv_weight: float | None  # None until the TV balance sets it
    init: str  # noise | content | style | a path or "image" (the caller's picture)
    seed: int
    pooling: str
    save_every: int
    chunk: int | None  # None: chosen per backend and optimizer
    balance: float | None = None  # alpha from the pictures (balance.py); None: as given
    tv_balance: float | None = None  # the TV weight from the pictures; None: as given
    preset_reason: str = "the default"
    color_control: str = "none"  # colour.COLOR_CONTROLS (CVPR 2017 Sec. 5)
    histogram_match: str = "pca"  # colour.HISTOGRAM_MODES, for color_control "histogram"
    # Coarse to fine (CVPR 2017 Sec. 6): the sizes, increasing, and the iterations at each;
    # ``size`` is then the last and ``iterations`` their sum. Empty: one scale.
    scales: tuple[int, ...] = ()
    scale_iterations: tuple[int, ...] = ()
    # Several styles: b_k of each style's term, summing to 1 (None: 1/K each), and each
    # style image's longest side relative to the output's (None: resized to the content's
    # shape, as the paper does with its one style image).
    style_blend: tuple[float, ...] | None = None
    style_scale: float | None = None
    mask_method: str = "simple"  # spatial control: guides.GUIDE_METHODS
    # How the objective is computed (not part of it): convolution.ALGORITHMS or auto, and
    # precision.PRECISIONS.
    convolution: str = "auto"
    precision: str = precision_lib.DEFAULT_PRECISION
    # The objective tile by tile, tiles of this many px (stylejax/_src/tiling.py); None:
    # the whole image at once. Also how it is computed, not what.
    tile: int | None = None

    @property
    def ratio(self) -> float | None:
        if self.content_weight is None:
            return None
        return self.content_weight / self.style_weight

    @property
    def needs_balance(self) -> bool:
        """Whether a setting is still to be computed from the pictures."""
        return (self.content_weight is None or self.tv_weight is None
                or self.style_layer_weights == BALANCED)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["style_layers"] = list(self.style_layers)
        data["scales"], data["scale_iterations"] = list(self.scales), list(self.scale_iterations)
        if self.style_blend is not None:
            data["style_blend"] = list(self.style_blend)
        if not isinstance(self.style_layer_weights, str):
            data["style_layer_weights"] = list(self.style_layer_weights)
        data["ratio"] = self.ratio
        return data


def _layer_weights(text_or_values, n: int) -> tuple[float, ...]:
    if isinstance(text_or_values, str):
        parts = [p for p in text_or_values.split(",") if p.strip()]
    else:
        parts = list(text_or_values)
    weights = tuple(positive_finite(p, "each style layer weight") for p in parts)
    if len(weights) != n:
        raise InvalidSetting(f"{{}} gives {len(weights)} weights for {n} style layers",
                             "style_layer_weights")
    return weights


def _counts(value, name: str, minimum: int) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    if not parts:
        raise InvalidSetting("{} is empty", name)
    return tuple(count(p, name, minimum) for p in parts)


def _blend(value) -> tuple[float, ...]:
    """Blend weights, each >= 0 and not all 0, normalised to sum to 1 (jcjohnson's rule)."""
    parts = [p for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value)
    weights = tuple(non_negative_finite(p, "each style_blend value") for p in parts)
    if not weights or sum(weights) == 0:
        raise InvalidSetting("{} needs a positive weight, got " + quote(value), "style_blend")
    return tuple(w / sum(weights) for w in weights)


def _sizes_and_iterations(settings: dict, given: dict):
    """(size, iterations, scales, scale_iterations): one scale, or coarse to fine when
    ``scales`` is given (sizes increasing, one iteration count per scale or one for all)."""
    if settings.get("scales") in (None, "", ()):
        return (count(settings["size"], "size", minimum=vgg_layers.MIN_IMAGE_SIDE),
                count(settings["iterations"], "iterations"), (), ())
    if "size" in given:
        raise InvalidSetting("give {} or {}, not both: the last scale is the size", "size", "scales")
    scales = _counts(settings["scales"], "scales", vgg_layers.MIN_IMAGE_SIDE)
    if any(b <= a for a, b in itertools.pairwise(scales)):
        raise InvalidSetting("{} must increase, got " + quote(",".join(map(str, scales))), "scales")
    per_scale = _counts(settings["iterations"], "iterations", 0)
    if len(per_scale) == 1:
        per_scale = per_scale * len(scales)
    if len(per_scale) != len(scales):
        raise InvalidSetting(f"{{}} gives {len(per_scale)} counts for {len(scales)} {{}}",
                             "iterations", "scales")
    if sum(per_scale) > COUNT_MAX:
        raise InvalidSetting(f"{{}} add up to more than {COUNT_MAX}", "iterations")
    return scales[-1], sum(per_scale), scales, per_scale


def compute_options(convolution: str | None, precision: str | None) -> tuple[str, str]:
    """(convolution path, precision), checked; None takes the default (``auto``,
    precision.DEFAULT_PRECISION). How the objective is computed, for a transfer or a sweep."""
    convolution = convolution or "auto"
    if convolution != "auto" and convolution not in convolution_lib.ALGORITHMS:
        raise InvalidSetting(f"unknown {{}} {quote(convolution)}: expected auto or one of "
                             f"{', '.join(convolution_lib.ALGORITHMS)}", "convolution")
    precision = precision or precision_lib.DEFAULT_PRECISION
    if precision not in precision_lib.PRECISIONS:
        raise InvalidSetting(f"unknown {{}} {quote(precision)}: expected one of "
                             f"{', '.join(precision_lib.PRECISIONS)}", "precision")
    return convolution, precision


def resolve(preset: str, given: dict, reason: str = "the default") -> dict:
    """The keyword arguments of :class:`Settings`: ``preset``'s values with ``given``
    (None = not given) on top, checked.

    Raises:
      InvalidSetting: an unknown preset, layer, optimizer or pooling, a bad number, or
        two ways of setting alpha.
      TypeError: a name that is not a setting.
    """
    if preset not in PRESETS:
        raise InvalidSetting(f"unknown {{}} {quote(preset)}: expected one of {', '.join(PRESETS)}",
                             "preset")
    given = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(given) - set(NAMES))
    if unknown:
        raise TypeError(f"unknown settings {unknown}: expected some of {', '.join(NAMES)}")
    settings = {**PRESETS[preset], **given}

    weight_flags = [f for f in ("ratio", "balance") if f in given]
    if "content_weight" in given or "style_weight" in given:
        weight_flags.append("content_weight")
    if len(weight_flags) > 1:
        raise InvalidSetting("give one of {}, {} or {}/{}", "ratio", "balance", "content_weight",
                             "style_weight")
    balance = None
    if "content_weight" in given or "style_weight" in given:
        alpha = positive_finite(settings.get("content_weight") or 1.0, "content_weight")
        beta = positive_finite(settings.get("style_weight") or 1.0, "style_weight")
    elif "ratio" in given or settings["balance"] is None:
        # alpha/beta = ratio with beta = 1: the style term keeps its paper scale.
        alpha = positive_finite(settings["ratio"], "ratio")
        beta = 1.0
    else:
        alpha, beta = None, 1.0
        balance = positive_finite(settings["balance"], "balance")
    tv_balance = None
    if "tv_weight" in given or settings["tv_balance"] is None:
        tv_weight = non_negative_finite(settings["tv_weight"], "tv_weight")
    else:
        tv_weight = None
        tv_balance = non_negative_finite(settings["tv_balance"], "tv_balance")

    style_layers = settings["style_layers"]
    if isinstance(style_layers, str):
        style_layers = vgg_layers.parse_layer_list(style_layers)
    else:
        style_layers = tuple(vgg_layers.canonical_name(n) for n in style_layers)
    layer_weights = settings["style_layer_weights"]
    if layer_weights is None:
        # "one divided by the number of active layers" (Sec. 3)
        layer_weights = tuple(1.0 / len(style_layers) for _ in style_layers)
    elif isinstance(layer_weights, str) and layer_weights.strip() == BALANCED:
        layer_weights = BALANCED
    else:
        layer_weights = _layer_weights(layer_weights, len(style_layers))

    optimizer = settings["optimizer"]
    if optimizer not in OPTIMIZERS:
        raise InvalidSetting(f"unknown {{}} {quote(optimizer)}: expected lbfgs or adam", "optimizer")
    lr = settings["lr"]
    if lr is not None:
        lr = positive_finite(lr, "lr")
    chunk = settings["chunk"]
    if chunk is not None:
        chunk = count(chunk, "chunk", minimum=1)
    color_control = settings["color_control"]
    if color_control not in colour.COLOR_CONTROLS:
        raise InvalidSetting(f"unknown {{}} {quote(color_control)}: expected one of "
                             f"{', '.join(colour.COLOR_CONTROLS)}", "color_control")
    histogram_match = settings["histogram_match"]
    if histogram_match not in colour.HISTOGRAM_MODES:
        raise InvalidSetting(f"unknown {{}} {quote(histogram_match)}: expected one of "
                             f"{', '.join(colour.HISTOGRAM_MODES)}", "histogram_match")

    size, iterations, scales, scale_iterations = _sizes_and_iterations(settings, given)
    style_blend = settings.get("style_blend")
    if style_blend is not None:
        style_blend = _blend(style_blend)
    style_scale = settings.get("style_scale")
    if style_scale is not None:
        style_scale = positive_finite(style_scale, "style_scale")
    mask_method = settings.get("mask_method") or "simple"
    if mask_method not in guides.GUIDE_METHODS:
        raise InvalidSetting(f"unknown {{}} {quote(mask_method)}: expected one of "
                             f"{', '.join(guides.GUIDE_METHODS)}", "mask_method")
    convolution_path, precision = compute_options(settings.get("convolution"), settings.get("precision"))
    content_layer = vgg_layers.canonical_name(settings["content_layer"])
    tile = settings.get("tile")
    if tile is not None:
        tile = tiling.check_tile(tile, (content_layer, *style_layers))
    return dict(
        preset=preset,
        size=size,
        iterations=iterations,
        optimizer=optimizer,
        lr=lr,
        content_weight=alpha,
        style_weight=beta,
        content_layer=content_layer,
        style_layers=style_layers,
        style_layer_weights=layer_weights,
        tv_weight=tv_weight,
        init=str(settings["init"]),
        seed=count(settings["seed"], "seed"),
        pooling=vgg.check_pooling(settings["pooling"]),
        save_every=count(settings["save_every"], "save_every"),
        chunk=chunk,
        balance=balance,
        tv_balance=tv_balance,
        preset_reason=reason,
        color_control=color_control,
        histogram_match=histogram_match,
        scales=scales,
        scale_iterations=scale_iterations,
        style_blend=style_blend,
        style_scale=style_scale,
        mask_method=mask_method,
        convolution=convolution_path,
        precision=precision,
        tile=tile,
    )
