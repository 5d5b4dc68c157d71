"""stylejax: Gatys, Ecker & Bethge (CVPR 2016) style transfer as pure JAX functions.

The public API (weights I/O under :mod:`stylejax.weights`); the implementation lives in
``stylejax._src``, the command line in ``stylejax.cli``.
"""

from stylejax import weights
from stylejax._src import layers
from stylejax._src.losses import (
    LossSpec,
    LossTerms,
    LossWeights,
    Targets,
    compute_targets,
    content_loss,
    gram,
    loss_terms,
    objective,
    style_layer_loss,
    tv_loss,
)
from stylejax._src.optimise import SolveArgs, SolveResult, SolverSpec, solve
from stylejax._src.presets import PRESETS, balance_for_ratio
from stylejax._src.quality import quality_measures
from stylejax._src.samples import sample_images
from stylejax._src.sweep import Member, SweepResult, product, run_sweep
from stylejax._src.transfer import transfer
from stylejax._src.vgg import features
from stylejax._version import __version__


def __getattr__(name):
    # Flax is imported only by code that asks for the module view of the network.
    if name == "VGG19":
        from stylejax._src.flax_vgg import VGG19

        return VGG19
    raise AttributeError(f"module 'stylejax' has no attribute {name!r}")


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
