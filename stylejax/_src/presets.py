"""The paper's defaults, in one place: the presets, Adam's default step, the compiled
chunk length per backend, and the mapping of the paper's ratios onto a balance rule.

Every other module (the library, the command line, the figure scripts and the
benchmark) takes these numbers from here.
"""

from __future__ import annotations

from stylejax._src.precision import DEFAULT_PRECISION

PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# ``--style-layer-weights balanced``: w_l from the pictures (stylejax/_src/balance.py).
BALANCED = "balanced"

# name -> every setting. ``paper``: Gatys, Ecker & Bethge, CVPR 2016 (Sec. 2-3; the
# iteration count is the authors' code's, the papers give none).
# The CVPR 2017 controls and the other extensions, off in every preset: no colour control,
# one scale, one style (blend and scale unset), masks taken to each layer the simple way.
_CONTROLS_OFF = {
    "color_control": "none",
    "histogram_match": "pca",
    "scales": None,
    "style_blend": None,
    "style_scale": None,
    "mask_method": "simple",
    # How the objective is computed, not what it is: the backend's convolution path
    # (stylejax/_src/convolution.py) and float32 products at full precision
    # (stylejax/_src/precision.py).
    "convolution": "auto",
    "precision": DEFAULT_PRECISION,
    # The whole image at once; a tile size evaluates the objective tile by tile, with the
    # same value and gradient in less memory (stylejax/_src/tiling.py).
    "tile": None,
}

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
        **_CONTROLS_OFF,
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
        **_CONTROLS_OFF,
    },
}

# Compiled chunk length per (backend, optimizer), measured on the 2-core CPU. First by
# scripts/bench_chunks.py (docs/performance.md), then, with Winograd convolutions, by
# `stylejax bench` (docs/performance.md; 128 px, ms per evaluation): L-BFGS chunks of
# 10: 77, one step per call: 87, the whole solve in one program: 79; Adam 81 / 80 / 81.
# Accelerators: not yet measured.
DEFAULT_CHUNKS = {("cpu", "lbfgs"): 10, ("cpu", "adam"): 10}
ACCELERATOR_CHUNK = 50

# Adam's default step: 2% of the RGB range, in the weights' input space.
ADAM_STEP_FRACTION = 0.02


def balance_for_ratio(ratio: float, preset: str = "random") -> float:
    """A ratio on the paper's scale as the ``preset``'s balance: balance = b0 * ratio / 1e-3.

    The paper's default alpha/beta = 1e-3 maps to the preset's own balance b0, and every
    other ratio keeps its factor from that default, so a grid over the paper's ratios
    (Fig. 4: 1e-5 .. 1e-2) spans the same relative range around the preset's balance.
    """
    return PRESETS[preset]["balance"] * ratio / PRESETS["paper"]["ratio"]


def default_chunk(backend: str, optimizer: str) -> int:
    """The compiled chunk length for a backend ("cpu", "gpu", "tpu") and optimizer."""
    return DEFAULT_CHUNKS.get((backend, optimizer), ACCELERATOR_CHUNK)
