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

PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# ``--style-layer-weights balanced``: w_l from the pictures (stylejax/_src/balance.py).
BALANCED = "balanced"

# name -> every setting. ``paper``: Gatys, Ecker & Bethge, CVPR 2016 (Sec. 2-3; the
# iteration count is the authors' code's, the papers give none).
PRESETS: dict[str, dict] = {
    "paper": {
        "size": 512,
        "iterations": 500,
        "optimizer": "lbfgs",
        "lr": None,
        "ratio": 1e-3,
        "content_weight": None,
        "style_weight": None,
        "content_layer": "conv4_2",
        "style_layers": PAPER_STYLE_LAYERS,
        "style_layer_weights": None,
        "tv_weight": 0.0,
        "init": "noise",
        "seed": 0,
        "pooling": "avg",
        "save_every": 0,
        "chunk": None,
        "weights": "auto",
        "balance": None,
        "tv_balance": None,
    },
    # Seeded random VGG19 weights (``--weights random``; chosen automatically for them).
    # Tuned on the paper's Neckarfront x Starry Night and Kandinsky, checked on held-out
    # pairs (docs/random-preset.md): a random network's conv4_2 does not keep a photo's
    # layout (its Fig. 1 reconstruction is noise), conv2_2 does; its loss scales differ
    # from the pretrained network's by orders of magnitude and from pair to pair, so
    # alpha and the TV weight come from the pictures (stylejax/_src/balance.py). The
    # paper's w_l = 1/n measured better than He et al.'s balanced w_l (``balanced``).
    "random": {
        "size": 256,
        "iterations": 150,
        "optimizer": "lbfgs",
        "lr": None,
        "ratio": None,
        "content_weight": None,
        "style_weight": None,
        "content_layer": "conv2_2",
        "style_layers": PAPER_STYLE_LAYERS,
        "style_layer_weights": None,
        "tv_weight": None,
        "init": "content",
        "seed": 0,
        "pooling": "avg",
        "save_every": 0,
        "chunk": None,
        "weights": "random",
        "balance": 0.03,
        "tv_balance": 0.003,
    },
}

# Compiled chunk length per (backend, optimizer), measured on the 2-core CPU. First by
# scripts/bench_chunks.py (README, "Measured"), then, with Winograd convolutions, by
# `stylejax bench` (README, "Performance"; 128 px, ms per evaluation): L-BFGS chunks of
# 10: 77, one step per call: 87, the whole solve in one program: 79; Adam 81 / 80 / 81.
# Accelerators: not yet measured.
DEFAULT_CHUNKS = {("cpu", "lbfgs"): 10, ("cpu", "adam"): 10}
ACCELERATOR_CHUNK = 50

# Adam's default step: 2% of the RGB range, in the weights' input space.
ADAM_STEP_FRACTION = 0.02


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


def balance_for_ratio(ratio: float, preset: str = "random") -> float:
    """A ratio on the paper's scale as the ``preset``'s balance: balance = b0 * ratio / 1e-3.

    The paper's default alpha/beta = 1e-3 maps to the preset's own balance b0, and every
    other ratio keeps its factor from that default, so a grid over the paper's ratios
    (Fig. 4: 1e-5 .. 1e-2) spans the same relative range around the preset's balance.
    """
    return PRESETS[preset]["balance"] * ratio / PRESETS["paper"]["ratio"]


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


def default_chunk(backend: str, optimizer: str) -> int:
    """The compiled chunk length for a backend ("cpu", "gpu", "tpu") and optimizer."""
    return DEFAULT_CHUNKS.get((backend, optimizer), ACCELERATOR_CHUNK)
