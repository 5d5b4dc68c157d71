"""Image files in and out, and resizing.

Every pixel array here is a NumPy float32 array of shape (H, W, 3): RGB, values in
[0, 1]. Files are decoded on the host with Pillow; nothing touches an accelerator.

Reading accepts whatever Pillow can decode and converts it to that one form (greyscale,
palette, alpha, CMYK, 16-bit, float, YCbCr, LAB, HSV), so the optimisation code never
sees a mode. Everything the user can get wrong (a missing file, a folder, a file that is
not an image, a truncated download, an image too small for VGG19) is a ``UserError``
with a one-line message that names the file.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from stylejax._src.errors import UserError
from stylejax._src.files import paths
from stylejax._src.files.atomic import atomic_path
from stylejax._src.image_ops import WHY_MIN_SIDE
from stylejax._src.layers import MIN_IMAGE_SIDE

# The largest image read: Pillow's own decompression-bomb threshold (about 89 MP, a
# 0.25 GiB RGBA frame), as an error rather than its warning. A 48 MP camera photo fits.
MAX_INPUT_PIXELS = 1024 * 1024 * 1024 // 4 // 3
# Host memory per pixel while decoding: the decoded frame, its float32 RGB copy and a
# converted copy (e.g. RGBA -> RGB), 3-4 + 12 + 12 bytes, rounded up.
DECODE_BYTES_PER_PIXEL = 32

# Modes holding 16-bit (or 32-bit integer) samples; scaled by the 16-bit range.
_INTEGER_16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Modes whose pixels carry an alpha channel or premultiplied alpha.
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


# --------------------------------------------------------------------------- reading


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an image file as float32 RGB in [0, 1], shape (H, W, 3).

    The EXIF orientation is applied first, so a portrait photo from a phone is portrait
    here too. Then the pixels are converted, never rejected:

    - greyscale (``1``, ``L``) is repeated into three channels;
    - anything with transparency (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a
      transparency key) is composited over white, as a viewer would show it;
    - 16-bit greyscale (``I;16*``, and ``I`` as Pillow opens 16-bit PNGs) is divided by
      65535, its true range, so no precision is lost to an 8-bit detour;
    - 32-bit float (``F``) is taken as [0, 1] when its maximum is at most 1, as 16-bit
      data when its maximum exceeds 255, and as 8-bit data otherwise; then clipped;
    - every other mode (``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``, ...) goes
      through Pillow's own conversion to RGB.

    Only the first frame of an animated file is read. Embedded ICC profiles are ignored
    (the pixels are taken as sRGB).

    Raises:
      UserError: not a readable regular file (missing, a folder, a FIFO, a device: see
        stylejax/_src/files/paths.py); more than ``MAX_INPUT_PIXELS`` pixels declared;
        not an image Pillow can read; truncated or corrupt data; a side shorter than
        ``MIN_IMAGE_SIDE`` pixels.
    """
    path = paths.check_input_file(path, "image")
    # A truncated file must fail loudly rather than load with grey padding. The flag is
    # Pillow's global; it is off unless some other code switched it on.
    restore_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # Pillow warns past its pixel threshold; the size is checked here instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_pixels(image.size, path)
                image.load()
                oriented = ImageOps.exif_transpose(image)
                rgb = _to_rgb01(oriented)
    except UnidentifiedImageError:
        raise UserError(f"not an image file (Pillow cannot identify it): {path}") from None
    except Image.DecompressionBombError:
        raise UserError(f"image too large to read safely: {path}") from None
    except PermissionError:
        raise UserError(f"permission denied reading image: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UserError(f"truncated or corrupt image: {path} ({error})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = restore_truncated
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise UserError(f"image too small: {path} is {width}x{height} px (WxH); {WHY_MIN_SIDE}")
    return rgb


def _check_pixels(size: tuple[int, int], path: str) -> None:
    """Refuses an image whose header declares more than ``MAX_INPUT_PIXELS``, before its
    pixels are decoded: a few KB of compressed data can declare gigabytes."""
    width, height = size
    if width * height > MAX_INPUT_PIXELS:
        raise UserError(
            f"image too large to read safely: {path} is {width}x{height} px "
            f"({width * height / 1e6:.0f} MP, the limit is {MAX_INPUT_PIXELS / 1e6:.0f} MP; "
            "decoding it would take about "
            f"{width * height * DECODE_BYTES_PER_PIXEL / 2**30:.1f} GiB)")


def _to_rgb01(image: Image.Image) -> np.ndarray:
    """Converts a decoded Pillow image of any mode to float32 RGB in [0, 1] (see load_image)."""
    mode = image.mode
    if mode in _INTEGER_16_MODES:
        grey = np.asarray(image).astype(np.float32) / np.float32(65535.0)
        return _grey_to_rgb(np.clip(grey, 0.0, 1.0))
    if mode == "F":
        grey = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        peak = float(grey.max()) if grey.size else 0.0
        if peak > 255.0:
            grey = grey / np.float32(65535.0)
        elif peak > 1.0:
            grey = grey / np.float32(255.0)
        return _grey_to_rgb(np.clip(grey, 0.0, 1.0))
    if mode in ("1", "L") and "transparency" not in image.info:
        grey = np.asarray(image.convert("L"), dtype=np.float32) / np.float32(255.0)
        return _grey_to_rgb(grey)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        if mode == "La":  # Pillow has no La -> RGBA path; unpremultiply via LA first.
            image = image.convert("LA")
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / np.float32(255.0)
        alpha = rgba[..., 3:4]
        # Over white: alpha * colour + (1 - alpha) * 1.
        return np.clip(rgba[..., :3] * alpha + (np.float32(1.0) - alpha), 0.0, 1.0)
    rgb = image if mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / np.float32(255.0)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1), dtype=np.float32)


# --------------------------------------------------------------------------- writing


def save_png(
    path: str | os.PathLike[str], rgb01: np.ndarray, metadata: dict[str, str] | None = None
) -> None:
    """Writes float RGB in [0, 1] as an 8-bit PNG, atomically, with text metadata.

    Values are clipped to [0, 1] (NaN becomes 0) and rounded to the nearest of the 256
    levels. Each ``metadata`` item becomes an iTXt chunk (UTF-8, so non-ASCII values such
    as JSON with accented file names survive); keys must be 1-79 Latin-1 characters, as
    the PNG format requires. The file is written to a temporary name and renamed, so
    ``path`` is never left half-written.
    """
    array = np.asarray(rgb01, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    array = np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0)
    pixels = np.rint(array * np.float32(255.0)).astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        if not (isinstance(key, str) and 1 <= len(key) <= 79 and key.isprintable()):
            raise ValueError(f"PNG text keys must be 1-79 printable characters, got {key!r}")
        try:
            key.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"PNG text keys must be Latin-1, got {key!r}") from None
        if not isinstance(value, str):
            raise TypeError(f"PNG text values must be str, got {type(value).__name__} for {key!r}")
        info.add_itxt(key, value)
    image = Image.fromarray(pixels)
    with atomic_path(path) as temp:
        image.save(temp, format="PNG", pnginfo=info)


def read_png_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG file, as a dict of str to str.

    Raises:
      UserError: no such file, or not a PNG file.
    """
    path = paths.check_input_file(path, "PNG file")
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise UserError(f"not a PNG file: {path}")
            # .text reads to the end of the file: chunks after the pixel data count too.
            return {str(key): str(value) for key, value in image.text.items()}
    except UnidentifiedImageError:
        raise UserError(f"not a PNG file: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UserError(f"truncated or corrupt PNG file: {path} ({error})") from None


# --------------------------------------------------------------------------- example images

# The folder of the paper's pictures: the user's override of the shipped copies.
IMAGES_ENV = "STYLEJAX_IMAGES"
# The shipped copies: stylejax/examples/ (package data), 512 px on the long side.
_PACKAGED_EXAMPLES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")

# file name -> the credit line to show wherever the picture, or a result made from it, is
# shown. The Neckarfront photograph's CC BY 3.0 licence requires its author's name.
EXAMPLE_CREDITS = {
    "tuebingen_neckarfront.jpg": "Neckarfront, Tuebingen: photo by Andreas Praefcke (CC BY 3.0)",
    "turner_shipwreck_minotaur.jpg": "J. M. W. Turner, The Shipwreck of the Minotaur (public domain)",
    "vangogh_starry_night.jpg": "Vincent van Gogh, The Starry Night (public domain)",
    "munch_the_scream.jpg": "Edvard Munch, The Scream (public domain)",
    "kandinsky_composition_vii.jpg": "Wassily Kandinsky, Composition VII (public domain)",
    "vangogh_wheat_field_with_cypresses.jpg": "Vincent van Gogh, A Wheatfield with Cypresses (public domain)",
    "hokusai_great_wave.jpg": "Katsushika Hokusai, The Great Wave off Kanagawa (public domain)",
    "tuebingen_neckarfront_sky_mask.png": "sky mask of the Neckarfront photo by Andreas Praefcke (CC BY 3.0)",
}


def packaged_examples_dir() -> str:
    """The example images shipped inside the package (``stylejax/examples``).

    Downscaled copies (512 px on the long side) of the paper's pictures, listed in
    ``EXAMPLE_CREDITS``; ``stylejax/examples/README.md`` gives their sources and licences.
    A path beside this module, so it is the source tree under an editable install and
    site-packages under a normal one.
    """
    return _PACKAGED_EXAMPLES


def example_images_dir() -> str:
    """Where the paper's pictures are: ``$STYLEJAX_IMAGES`` when set (and not empty), else
    the copies shipped with stylejax (:func:`packaged_examples_dir`).

    The override is returned as given, whether or not it exists: the caller says what is
    wrong with it, naming the folder.
    """
    return os.environ.get(IMAGES_ENV) or packaged_examples_dir()


def example_image(name: str) -> str:
    """The path of the example picture ``name`` (a file name such as
    ``"tuebingen_neckarfront.jpg"``): the file in :func:`example_images_dir`, or, when a
    ``$STYLEJAX_IMAGES`` folder lacks it, the shipped copy.

    Raises:
      UserError: neither has it.
    """
    path = os.path.join(example_images_dir(), name)
    if os.path.isfile(path):
        return path
    packaged = os.path.join(packaged_examples_dir(), name)
    if os.path.isfile(packaged):
        return packaged
    folders = dict.fromkeys((example_images_dir(), packaged_examples_dir()))
    shipped = ", ".join(sorted(EXAMPLE_CREDITS))
    raise UserError(f"no example image {name!r} in {' or '.join(folders)} (shipped: {shipped})")
