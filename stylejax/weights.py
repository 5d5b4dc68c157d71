"""VGG19 weights: load and save stylejax weights files, seeded random weights, input
conventions, the paper's normalisation, and fetching or converting published networks."""

from stylejax._src.convention import CAFFE, TORCHVISION, InputConvention
from stylejax._src.normalise import builtin_calibration_images, mean_activations, normalise
from stylejax._src.vgg import he_normal_params
from stylejax._src.weights.weights_commands import convert, fetch, normalise_file
from stylejax._src.weights.weights_file import LoadedWeights, load_weights, save_weights
from stylejax._src.weights.weights_source import random_weights

__all__ = [
    "CAFFE",
    "TORCHVISION",
    "InputConvention",
    "LoadedWeights",
    "builtin_calibration_images",
    "convert",
    "fetch",
    "he_normal_params",
    "load_weights",
    "mean_activations",
    "normalise",
    "normalise_file",
    "random_weights",
    "save_weights",
]
