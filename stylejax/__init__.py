"""stylejax: Gatys, Ecker & Bethge (CVPR 2016) style transfer as pure JAX functions.

The public API; the implementation lives in ``stylejax._src``.
"""

from stylejax._src import layers
from stylejax._src.config import PRESETS, TransferConfig
from stylejax._src.config import resolve as resolve_config
from stylejax._src.convention import CAFFE, TORCHVISION, InputConvention
from stylejax._src.errors import UserError
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
from stylejax._src.normalise import builtin_calibration_images, mean_activations, normalise
from stylejax._src.optimise import SolveArgs, SolverSpec, solve
from stylejax._src.transfer import run_transfer
from stylejax._src.vgg import features, he_normal_params
from stylejax._src.weights_file import LoadedWeights, load_weights, save_weights
from stylejax._src.weights_source import random_weights, resolve_weights
from stylejax._version import __version__


def __getattr__(name):
    # Flax is imported only by code that asks for the module view of the network.
    if name == "VGG19":
        from stylejax._src.flax_vgg import VGG19

        return VGG19
    raise AttributeError(f"module 'stylejax' has no attribute {name!r}")


__all__ = [
    "CAFFE",
    "PRESETS",
    "TORCHVISION",
    "VGG19",
    "InputConvention",
    "LoadedWeights",
    "LossSpec",
    "LossTerms",
    "LossWeights",
    "SolveArgs",
    "SolverSpec",
    "Targets",
    "TransferConfig",
    "UserError",
    "__version__",
    "builtin_calibration_images",
    "compute_targets",
    "content_loss",
    "features",
    "gram",
    "he_normal_params",
    "layers",
    "load_weights",
    "loss_terms",
    "mean_activations",
    "normalise",
    "objective",
    "random_weights",
    "resolve_config",
    "resolve_weights",
    "run_transfer",
    "save_weights",
    "solve",
    "style_layer_loss",
    "tv_loss",
]
