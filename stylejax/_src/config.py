"""Transfer settings: the presets, and resolving a preset plus overrides into one config.

Every setting has a value in each preset; a flag the user gives overrides it. The
resolved config is written into the report and the output PNG, so a run can be
repeated from either.
"""

from __future__ import annotations

import dataclasses
import math

from stylejax._src import layers as vgg_layers
from stylejax._src import optimise, vgg
from stylejax._src.errors import UserError
from stylejax._src.presets import BALANCED, PRESETS


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Every resolved setting of one transfer."""

    content: str
    style: str
    output: str
    preset: str
    weights: str
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
    init: str  # noise | content | style | a path
    seed: int
    pooling: str
    save_every: int
    chunk: int | None  # None: chosen per backend and optimizer
    balance: float | None = None  # alpha from the pictures (balance.py); None: as given
    tv_balance: float | None = None  # the TV weight from the pictures; None: as given
    preset_reason: str = "the default"
    report: str | None = None
    quiet: bool = False

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
        if not isinstance(self.style_layer_weights, str):
            data["style_layer_weights"] = list(self.style_layer_weights)
        data["ratio"] = self.ratio
        return data


def positive_finite(value, what: str) -> float:
    """``value`` as a float, or a UserError naming ``what`` and the value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a positive finite number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{what} must be a positive finite number, got {value!r}")
    return number


def non_negative_finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a non-negative finite number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise UserError(f"{what} must be a non-negative finite number, got {value!r}")
    return number


def count(value, what: str, minimum: int = 0) -> int:
    """A whole number >= minimum, or a UserError naming ``what`` and the value."""
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise UserError(f"{what} must be a whole number >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise UserError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return number


def _layer_weights(text_or_values, n: int) -> tuple[float, ...]:
    if isinstance(text_or_values, str):
        parts = [p for p in text_or_values.split(",") if p.strip()]
    else:
        parts = list(text_or_values)
    weights = tuple(positive_finite(p, "each style layer weight") for p in parts)
    if len(weights) != n:
        raise UserError(
            f"--style-layer-weights gives {len(weights)} weights for {n} style layers"
        )
    return weights


def resolve(content: str, style: str, output: str, overrides: dict) -> TransferConfig:
    """Merges a preset with the user's overrides (None = not given) and validates.

    Raises:
      UserError: an unknown preset, layer, optimizer, pooling, or a bad number.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    preset_name, reason = choose_preset(given)
    given.pop("preset", None)
    settings = {**PRESETS[preset_name], **given}

    weight_flags = [f for f in ("ratio", "balance") if f in given]
    if "content_weight" in given or "style_weight" in given:
        weight_flags.append("content_weight")
    if len(weight_flags) > 1:
        raise UserError("give one of --ratio, --balance or --content-weight/--style-weight")
    balance = None
    if "content_weight" in given or "style_weight" in given:
        alpha = positive_finite(settings.get("content_weight") or 1.0, "--content-weight")
        beta = positive_finite(settings.get("style_weight") or 1.0, "--style-weight")
    elif "ratio" in given or settings["balance"] is None:
        # alpha/beta = ratio with beta = 1: the style term keeps its paper scale.
        alpha = positive_finite(settings["ratio"], "--ratio")
        beta = 1.0
    else:
        alpha, beta = None, 1.0
        balance = positive_finite(settings["balance"], "--balance")
    tv_balance = None
    if "tv_weight" in given or settings["tv_balance"] is None:
        tv_weight = non_negative_finite(settings["tv_weight"], "--tv-weight")
    else:
        tv_weight = None
        tv_balance = non_negative_finite(settings["tv_balance"], "--tv-balance")

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
    if optimizer not in optimise.OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}: expected lbfgs or adam")
    lr = settings["lr"]
    if lr is not None:
        lr = positive_finite(lr, "--lr")
    chunk = settings["chunk"]
    if chunk is not None:
        chunk = count(chunk, "--chunk", minimum=1)

    return TransferConfig(
        content=content,
        style=style,
        output=output,
        preset=preset_name,
        weights=str(settings["weights"]),
        size=count(settings["size"], "--size", minimum=vgg_layers.MIN_IMAGE_SIDE),
        iterations=count(settings["iterations"], "--iterations"),
        optimizer=optimizer,
        lr=lr,
        content_weight=alpha,
        style_weight=beta,
        content_layer=vgg_layers.canonical_name(settings["content_layer"]),
        style_layers=style_layers,
        style_layer_weights=layer_weights,
        tv_weight=tv_weight,
        init=str(settings["init"]),
        seed=count(settings["seed"], "--seed"),
        pooling=vgg.check_pooling(settings["pooling"]),
        save_every=count(settings["save_every"], "--save-every"),
        chunk=chunk,
        balance=balance,
        tv_balance=tv_balance,
        preset_reason=reason,
        report=settings.get("report"),
        quiet=bool(settings.get("quiet", False)),
    )


def choose_preset(given: dict) -> tuple[str, str]:
    """The preset a run starts from, and why: ``--preset`` if given; else ``random`` for
    ``--weights random`` (the paper's numbers are for the pretrained network); else
    ``paper``.

    Raises:
      UserError: an unknown preset name.
    """
    name = given.get("preset")
    if name is not None:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
        return name, "chosen with --preset"
    if str(given.get("weights", "")) == "random":
        return "random", "the weights are random and no --preset was given"
    return "paper", "the default"
