"""Image arrays: the output's shape, resizing, white noise.

Every pixel array here is a NumPy float32 array of shape (H, W, 3): RGB, values in
[0, 1]. Files are read and written by the command line (stylejax/_src/files/images.py).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from stylejax._src.errors import invalid
from stylejax._src.layers import MIN_IMAGE_SIDE

WHY_MIN_SIDE = (
    f"VGG19 halves the image four times before conv5_1, so each side needs at least "
    f"{MIN_IMAGE_SIDE} px"
)


# --------------------------------------------------------------------------- geometry


def output_shape(height: int, width: int, longest_side: int) -> tuple[int, int]:
    """The (height, width) of the output: the content's aspect ratio, longest side given.

    The longer side becomes exactly ``longest_side`` and the other is scaled by the same
    factor and rounded to the nearest integer (halves round up), so the output is never
    distorted by more than half a pixel.

    Raises:
      InvalidSetting (a ValueError): a side of the result would be shorter than ``MIN_IMAGE_SIDE`` pixels.
    """
    if height < 1 or width < 1:
        raise invalid(f"invalid image shape {height}x{width} (HxW)")
    longest = max(height, width)
    scale = longest_side / longest
    new_height = longest_side if height == longest else math.floor(height * scale + 0.5)
    new_width = longest_side if width == longest else math.floor(width * scale + 0.5)
    if min(new_height, new_width) < MIN_IMAGE_SIDE:
        raise invalid(
            f"size {longest_side} is too small: a {height}x{width} (HxW) image becomes "
            f"{new_height}x{new_width}; {WHY_MIN_SIDE}"
        )
    return new_height, new_width


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resizes float RGB to ``shape`` = (height, width) with Lanczos filtering.

    Each channel is resampled as a 32-bit float Pillow image (mode ``F``), so there is
    no rounding to 8 bits on the way; Pillow widens the filter when shrinking, which
    anti-aliases. Lanczos overshoots at sharp edges, so the result is clipped to [0, 1].
    Returns float32 (a copy, also when the shape is unchanged).
    """
    height, width = int(shape[0]), int(shape[1])
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    if array.shape[:2] == (height, width):
        return np.clip(array, 0.0, 1.0).astype(np.float32, copy=True)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[..., c])).resize(
                (width, height), Image.Resampling.LANCZOS
            ),
            dtype=np.float32,
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- synthesis


def white_noise(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Uniform [0, 1) RGB white noise of shape (height, width, 3), float32.

    The paper's initial image for texture synthesis and its random-init style transfer;
    ``numpy.random.default_rng(seed)`` makes it identical on every machine.
    """
    height, width = int(shape[0]), int(shape[1])
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


