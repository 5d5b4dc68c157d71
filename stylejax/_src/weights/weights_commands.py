"""``stylejax weights fetch | convert | normalise | info``: the library side of each command."""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np

from stylejax._src import image_ops, normalise
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import UserError
from stylejax._src.files import images, paths
from stylejax._src.weights import convert as convert_lib
from stylejax._src.weights import download, sources, weights_file
from stylejax._version import __version__

CREATED_BY = f"stylejax {__version__}"
# Calibration images are centre-cropped squares of this side (VGG's training crop).
CALIBRATION_SIDE = 224
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
# scikit-image's bundled photographs of natural scenes (not its drawings or microscopy).
SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field")


def downloads_dir() -> pathlib.Path:
    return weights_file.weights_dir() / "downloads"


def fetch(source_name: str, output: str | None = None, *, progress: bool = True, log=print,
          timeout: float = 30.0) -> str:
    """Downloads a source's file, checks its published checksum, converts it.

    The download goes to ``<weights dir>/downloads/`` as ``<name>.part`` until complete
    and verified, so an interrupted fetch resumes (or restarts) on the next run and a
    partial file never looks complete. ``timeout`` bounds each socket operation (the
    connect, each read). Returns the converted file's path.

    Checked before anything is downloaded: the weights folder can be a folder (not a
    file, nor below one: ``$STYLEJAX_WEIGHTS_DIR`` may name anything), and the output
    can be written and is not the downloaded file it is converted from.
    """
    source = sources.get_source(source_name)
    if not source.url:
        raise UserError(
            f"source {source.name} has no download address ({source.description}); convert a "
            f"copy you have with: stylejax weights convert {source.filename}"
        )
    directory = weights_file.check_weights_dir()
    folder = directory / "downloads"
    local = folder / source.filename
    if output:
        paths.check_outputs({"weights file": output}, {"download": str(local)})
        destination = pathlib.Path(output)
    else:
        destination = directory / weights_file.PRETRAINED_NAME
    _make_folder(folder)
    if not output:
        paths.check_outputs({"weights file": str(destination)}, {"download": str(local)})
    if os.path.lexists(local) and not local.is_file():
        raise UserError(f"{local} is in the way of the download: it is not a regular file")
    full_sha256 = source.sha256 if source.sha256 and len(source.sha256) == 64 else None
    if local.is_file():
        log(f"using the download already in {local}")
    else:
        size = f" ({source.size_mb} MB)" if source.size_mb else ""
        log(f"downloading {source.url}{size}")
        download.download(
            source.url,
            local,
            md5=source.md5,
            sha256=full_sha256,
            progress=progress,
            timeout=timeout,
            offline_hint=(
                f"download {source.url} by other means and run: stylejax weights convert "
                f"{source.filename}"
            ),
        )
    _verify_published_checksum(source, local)
    converted, digest = convert_lib.convert(str(local), str(destination), created_by=CREATED_BY)
    log(f"wrote {destination} (sha256 {digest[:16]}..., {converted.source}, "
        f"{converted.convention.name} input convention)")
    return str(destination)


def _make_folder(folder: pathlib.Path) -> None:
    """Creates ``folder`` and the folders above it that are missing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder {folder}: {error.strerror or error}") from None


def _verify_published_checksum(source: sources.WeightSource, path: pathlib.Path) -> None:
    """Checks md5 and the (possibly prefix) sha256; a bad file is removed."""
    problems = []
    if source.md5:
        actual_md5 = download.file_digest(path, "md5")
        if actual_md5 != source.md5:
            problems.append(f"md5 {actual_md5} is not the published {source.md5}")
    if source.sha256:
        actual = download.file_digest(path, "sha256")
        if not actual.startswith(source.sha256):
            problems.append(f"sha256 {actual} does not start with the published {source.sha256}")
    if problems:
        path.unlink(missing_ok=True)
        raise UserError(f"checksum mismatch for {path} (removed): {'; '.join(problems)}")


def convert(src: str, dst: str, *, fmt: str | None = None, convention: str | None = None, log=print) -> str:
    """``stylejax weights convert``: ``src`` (any supported VGG19 file) into ``dst``.

    Refused before the source is read: a source that is not a readable regular file, an
    output that cannot be written or that is the source itself (by any name, a symlink or
    a hard link), and a source that already is a stylejax weights file.
    """
    src = paths.check_input_file(src, "weights file")
    paths.check_outputs({"weights file": dst}, {"source": src})
    if convert_lib.detect_format(src) == "stylejax":
        raise UserError(f"{src} is already a stylejax weights file")
    converted, digest = convert_lib.convert(src, dst, fmt=fmt, convention=convention, created_by=CREATED_BY)
    dropped = f"; dropped {len(converted.dropped)} non-conv entries" if converted.dropped else ""
    log(f"wrote {dst}: {converted.format} file, {converted.convention.name} input convention, "
        f"source sha256 {converted.source_sha256[:16]}..., file sha256 {digest[:16]}...{dropped}")
    return dst


def _crop_square(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / min(height, width)
    resized = image_ops.resize(image, (max(side, round(height * scale)), max(side, round(width * scale))))
    top = (resized.shape[0] - side) // 2
    left = (resized.shape[1] - side) // 2
    return resized[top : top + side, left : left + side]


def calibration_files(folder: str) -> list[str]:
    """The image files of a calibration folder (by suffix), sorted by name, each checked
    to be a readable regular file before anything reads it (a FIFO named ``x.png`` would
    block the reader forever).

    Raises:
      UserError: the folder is missing, not a folder or unreadable, holds no images, or
        one of its image names is not a readable regular file.
    """
    if not os.path.lexists(folder):
        raise UserError(f"calibration folder not found: {folder}")
    if not os.path.isdir(folder):
        raise UserError(f"calibration folder {folder} is not a folder")
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise UserError(f"cannot list calibration folder {folder}: {error.strerror or error}") from None
    files = sorted(os.path.join(folder, name) for name in names if name.lower().endswith(_IMAGE_SUFFIXES))
    if not files:
        raise UserError(f"no images in calibration folder {folder}")
    return [paths.check_input_file(name, "calibration image") for name in files]


def calibration_images(folder: str | None) -> tuple[np.ndarray, dict]:
    """(B, 224, 224, 3) calibration images and their identity for the file's metadata.

    ``folder``: every image in it; ``builtin``: stylejax's 1/f noise set; None: the
    natural photographs bundled with scikit-image (``pip install 'stylejax[calibration]'``).
    """
    if folder == "builtin":
        return normalise.builtin_calibration_images(), {"calibration": normalise.CALIBRATION_ID}
    if folder is not None:
        files = calibration_files(folder)
        crops = [_crop_square(images.load_image(p), CALIBRATION_SIDE) for p in files]
        identity = {
            "calibration": "folder",
            "files": [
                {"name": os.path.basename(p), "sha256": hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()}
                for p in files
            ],
        }
        return np.stack(crops), identity
    try:
        import skimage
        from skimage import data as skimage_data
    except ImportError:
        raise UserError(
            "no calibration images: install scikit-image for its bundled photographs "
            "(pip install 'stylejax[calibration]'), pass --images DIR, or --images builtin"
        ) from None
    crops = []
    for name in SKIMAGE_PHOTOS:
        picture = np.asarray(getattr(skimage_data, name)(), np.float32)
        if picture.ndim == 2:
            picture = np.repeat(picture[..., None], 3, axis=-1)
        crops.append(_crop_square(picture[..., :3] / 255.0, CALIBRATION_SIDE))
    identity = {"calibration": f"scikit-image {skimage.__version__} data", "files": list(SKIMAGE_PHOTOS)}
    return np.stack(crops), identity


def normalise_file(src: str | None, dst: str | None, *, images_dir: str | None = None,
                   pooling: str = "max", log=print) -> str:
    """The paper's normalisation of a weights file, on a calibration set, as a new file.

    ``src`` and ``dst`` default to the weights folder's ``vgg19.h5`` and
    ``vgg19_normalised.h5``. Checked before anything is read: the source (and each
    calibration image of a folder) is a readable regular file, and the output can be
    written and is none of them.
    """
    if not (src and dst):
        directory = weights_file.check_weights_dir()
        src = src or str(directory / weights_file.PRETRAINED_NAME)
        dst = dst or str(directory / weights_file.NORMALISED_NAME)
    src = paths.check_input_file(src, "weights file")
    inputs = {"source": src}
    if images_dir not in (None, "builtin"):
        inputs.update({f"calibration image {os.path.basename(p)}": p for p in calibration_files(images_dir)})
    paths.check_outputs({"weights file": dst}, inputs)
    loaded = weights_file.load_weights(src)
    if loaded.normalised:
        raise UserError(f"{src} is already normalised")
    calibration, identity = calibration_images(images_dir)
    log(f"normalising {src} on {len(calibration)} calibration images ({identity['calibration']})")
    params, info = normalise.normalise(loaded.params, calibration, loaded.convention, pooling=pooling)
    digest = weights_file.save_weights(
        dst,
        params,
        convention=loaded.convention,
        source=f"{loaded.source} (normalised)",
        source_sha256=loaded.source_sha256,
        normalised=True,
        normalisation={**identity, "images": len(calibration), "side": CALIBRATION_SIDE,
                       "normalised_from_sha256": loaded.sha256, **info},
        created_by=CREATED_BY,
    )
    dead = sum(info["dead_filters"].values())
    log(f"wrote {dst} (sha256 {digest[:16]}...); {dead} filters never fired on the calibration set")
    return dst


def info(path: str) -> list[str]:
    """The lines ``stylejax weights info`` prints."""
    loaded = weights_file.load_weights(path)
    convention = loaded.convention
    lines = [
        f"file:        {loaded.path}",
        f"sha256:      {loaded.sha256}",
        f"source:      {loaded.source}",
        f"source sha256: {loaded.source_sha256 or '(none)'}",
        f"convention:  {convention.name}: {convention.channel_order}, x{convention.scale:g}, "
        f"mean {list(convention.mean)}, std {list(convention.std)}",
        f"normalised:  {'yes' if loaded.normalised else 'no'}",
        f"parameters:  {weights_file.count_parameters(loaded.params):,}",
    ]
    normalisation = loaded.normalisation or {}
    if loaded.normalised:
        lines.append(f"calibration: {normalisation.get('calibration')}, {normalisation.get('images')} images, "
                     f"pooling {normalisation.get('pooling')}")
    dead = normalisation.get("dead_filters", {})
    before = normalisation.get("mean_activation_before", {})
    lines.append("layer     kernel               bias    " + ("mean activation before (min..max), dead" if before else ""))
    for name in vgg_layers.CONV_NAMES:
        kernel = loaded.params[name]["kernel"].shape
        bias = loaded.params[name]["bias"].shape
        stats = ""
        if name in before:
            low, high = before[name]
            stats = f"{low:.3g}..{high:.3g}, {dead.get(name, 0)}"
        lines.append(f"{name:<9} {kernel!s:<20} {bias!s:<7} {stats}")
    return lines
