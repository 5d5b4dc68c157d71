"""stylejax: Gatys, Ecker & Bethge (CVPR 2016) style transfer as pure JAX functions.

The public API (weights I/O under :mod:`stylejax.weights`); the implementation lives in
``stylejax._src``, the command line in ``stylejax.cli``.
"""

import importlib

from stylejax._version import __version__

# Each public name and the module that defines it. Imported on first use (PEP 562): the
# ``stylejax`` command installs its signal handlers before JAX loads, which takes seconds,
# and ``stylejax --help`` answers at once. Flax is imported only for VGG19.
_EXPORTS = {
    "weights": "stylejax.weights",
    "colour": "stylejax.colour",
    "layers": "stylejax._src.layers",
    **dict.fromkeys(("LossSpec", "LossTerms", "LossWeights", "Targets", "compute_targets",
                     "content_loss", "gram", "loss_terms", "objective", "style_layer_loss",
                     "tv_loss"), "stylejax._src.losses"),
    **dict.fromkeys(("SolveArgs", "SolveResult", "SolverSpec", "solve"), "stylejax._src.optimise"),
    **dict.fromkeys(("PRESETS", "balance_for_ratio"), "stylejax._src.presets"),
    "quality_measures": "stylejax._src.quality",
    "sample_images": "stylejax._src.samples",
    **dict.fromkeys(("Member", "SweepResult", "product", "run_sweep"), "stylejax._src.sweep"),
    **dict.fromkeys(("transfer", "combine_styles"), "stylejax._src.transfer"),
    "features": "stylejax._src.vgg",
    "VGG19": "stylejax._src.flax_vgg",
}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stylejax' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name in ("weights", "colour", "layers") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "PRESETS",
    "VGG19",
    "LossSpec",
    "LossTerms",
    "LossWeights",
    "Member",
    "SolveArgs",
    "SolveResult",
    "SolverSpec",
    "SweepResult",
    "Targets",
    "__version__",
    "balance_for_ratio",
    "colour",
    "combine_styles",
    "compute_targets",
    "content_loss",
    "features",
    "gram",
    "layers",
    "loss_terms",
    "objective",
    "product",
    "quality_measures",
    "run_sweep",
    "sample_images",
    "solve",
    "style_layer_loss",
    "transfer",
    "tv_loss",
    "weights",
]
