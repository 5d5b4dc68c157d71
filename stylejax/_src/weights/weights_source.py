"""Which VGG19 weights a run uses: ``auto``, ``random`` or a stylejax weights file.

``random`` is a seeded He-initialised VGG19 rescaled by the paper's normalisation on the
built-in calibration set, in the Caffe input convention: deterministic, well scaled and
needing no download. It is never chosen silently: ``auto`` without a pretrained file is
an error that says how to get one.
"""

from __future__ import annotations

import functools

from stylejax._src import normalise, vgg
from stylejax._src.convention import CAFFE
from stylejax._src.errors import UserError
from stylejax._src.weights import weights_file
from stylejax._src.weights.weights_file import LoadedWeights

RANDOM_BANNER = (
    "RANDOM WEIGHTS: seeded He-initialised VGG19, normalised on a built-in calibration set, "
    "not a pretrained network. Results show the method runs, not what it looks like with "
    "ImageNet features."
)


def random_source(seed: int) -> str:
    return (
        f"random: He-normal VGG19 (NumPy PCG64 seed {seed}), biases centred and "
        "normalised on "
        f"{normalise.CALIBRATION_ID}"
    )


def is_random(weights: LoadedWeights) -> bool:
    return weights.is_random


@functools.lru_cache(maxsize=2)
def random_weights(seed: int = 0) -> LoadedWeights:
    """The seeded random VGG19, normalised so each filter's mean activation is 1.

    Cached: a process that runs several transfers (tests, sweeps) builds it once.
    """
    calibration = normalise.builtin_calibration_images()
    centred = normalise.centre_biases(vgg.he_normal_params(seed), calibration, CAFFE, pooling="max")
    params, info = normalise.normalise(centred, calibration, CAFFE, pooling="max")
    return LoadedWeights.from_params(
        params,
        source=random_source(seed),
        convention=CAFFE,
        normalised=True,
        normalisation={
            "calibration": normalise.CALIBRATION_ID,
            "images": normalise.CALIBRATION_COUNT,
            "side": normalise.CALIBRATION_SIDE,
            **info,
        },
    )


def resolve_weights(spec: str, *, seed: int = 0) -> LoadedWeights:
    """``auto``: the pretrained file in the weights directory; ``random``; else a path.

    Raises:
      UserError: ``auto`` finds no pretrained file (or the weights folder is a file), or
        the file does not load (not a readable regular file, damaged, not VGG19).
    """
    if spec == "random":
        return random_weights(seed)
    if spec == "auto":
        found = weights_file.find_pretrained()
        if found is None:
            directory = weights_file.check_weights_dir()  # a weights folder that is a file: say so
            raise UserError(
                f"no pretrained VGG19 weights in {directory} (looked for "
                f"{weights_file.NORMALISED_NAME} and {weights_file.PRETRAINED_NAME}): run "
                "`stylejax weights fetch` (Keras VGG19, 80 MB), or `stylejax weights convert "
                "FILE -o ...` for a file you have, pass --weights PATH, or use --weights random "
                "for seeded random weights"
            )
        return weights_file.load_weights(found)
    return weights_file.load_weights(spec)
