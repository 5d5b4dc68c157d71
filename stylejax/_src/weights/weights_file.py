"""The stylejax weights file: VGG19's 16 convolutions in one small, self-describing HDF5 file.

Why a format of our own
-----------------------
VGG19 weights circulate in several layouts (Caffe's ``.caffemodel``, the Keras port's
``.h5`` with ``block1_conv1/block1_conv1_W_1:0`` datasets, torchvision's ``.pth`` with
(out, in, 3, 3) kernels in RGB order, Gatys' normalised net). They differ in tensor
layout, channel order and the preprocessing they expect, and a silent mix-up of any of
these still produces *an* image, just not the paper's. So every source is converted once,
by a converter that knows its quirks, into this one layout, and the rest of stylejax reads
only this layout. The file carries what is needed to use the weights correctly (the input
convention) and to say afterwards which weights produced a result (source, hashes,
whether and how they were normalised).

Layout (HDF5)
-------------
* One group per convolution, ``conv1_1`` .. ``conv5_4`` (:data:`CONV_NAMES`), each with two
  float32 datasets: ``kernel`` of shape (3, 3, in, out) (height, width, input channels,
  output channels; the layout ``flax.linen.Conv`` uses, cross-correlation as in Caffe) and
  ``bias`` of shape (out,). Nothing else: no fully connected layers, no other groups.
* Root attributes:

  ``format``          "stylejax-vgg19" (tells this file from any other HDF5 file)
  ``format_version``  1
  ``input_convention``  JSON of :meth:`InputConvention.to_dict` (channel order, scale,
                        mean, std the weights expect)
  ``source``          free text: where the numbers came from, e.g. "keras
                      vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" or
                      "random: He-normal, seed 0"
  ``source_sha256``   SHA-256 (hex) of the file converted from, or "" if none
  ``normalised``      whether the weights were rescaled (Gatys et al.: each filter's mean
                      activation over a set of images and positions is 1)
  ``normalisation``   JSON describing that rescaling (calibration images, pooling, ...) or
                      "null"
  ``created_by``      the stylejax version that wrote the file

Saving is atomic (a temporary file in the destination folder, then :func:`os.replace`),
so a crash or an invalid parameter set never leaves a partial file or clobbers a good
one. The bytes written depend only on the parameters and attributes (no timestamps are
recorded), so saving the same weights twice gives byte-identical files with the same
SHA-256.

In memory the parameters are the pytree ``{"conv1_1": {"kernel": ..., "bias": ...}, ...}``
that ``flax.linen.Conv`` layers named after the paper's layers would hold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import re
import stat
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from stylejax._src.convention import InputConvention
from stylejax._src.errors import UserError
from stylejax._src.files import paths
from stylejax._src.files.atomic import atomic_path
from stylejax._src.layers import CONV_BY_NAME, CONV_NAMES, CONV_PARAMETER_COUNT

FORMAT = "stylejax-vgg19"
FORMAT_VERSION = 1

PRETRAINED_NAME = "vgg19.h5"
NORMALISED_NAME = "vgg19_normalised.h5"
# The environment variable naming the weights folder (see weights_dir).
WEIGHTS_DIR_ENV = "STYLEJAX_WEIGHTS_DIR"

_ARRAY_NAMES = ("kernel", "bias")
# The largest file load_weights reads (it reads the whole file into memory): VGG19's
# convolutions take 80 MB as float32 and 160 MB as float64, the widest float a writer
# may use; anything larger is not a stylejax weights file.
MAX_FILE_BYTES = 256 << 20
_CHUNK = 1 << 20
_CONVERT_HINT = (
    "VGG19 weights from Keras, Caffe or torchvision must be converted to the stylejax format first"
)
# stylejax/_src -> stylejax -> the checkout root (when running from source).
_SRC_DIR = pathlib.Path(__file__).resolve().parents[1]  # stylejax/_src
_PROJECT_NAME = re.compile(r'^\s*name\s*=\s*"stylejax"\s*$', re.MULTILINE)

Params = dict[str, dict[str, np.ndarray]]

# What h5py raises for a damaged file: a truncated file, broken links or headers
# (OSError, KeyError, RuntimeError), a damaged type that maps to no NumPy type
# (ValueError, TypeError), a damaged size (OverflowError).
HDF5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, OverflowError)


# --------------------------------------------------------------------------- validation


def _is_float_dtype(dtype: np.dtype) -> bool:
    # bfloat16 (ml_dtypes, what JAX hands out) has kind "V", so check it by name.
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _shape_and_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(leaf, h5py.Dataset) or (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        return tuple(int(n) for n in leaf.shape), np.dtype(leaf.dtype)
    array = np.asarray(leaf)
    return array.shape, array.dtype


def _read_float32(leaf: Any) -> np.ndarray:
    array = leaf[()] if isinstance(leaf, h5py.Dataset) else np.asarray(leaf)
    return np.ascontiguousarray(array, dtype=np.float32)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def stored_member(group: h5py.Group, name: str, where: str) -> Any:
    """``group[name]`` (None if absent), refused unless it is stored in this file.

    Every component of ``name`` must be a hard link, and a dataset may not keep its data
    in external files or be virtual: HDF5 follows such links and mappings by opening
    other files by name, which a hostile file could point at a FIFO (blocking the read
    forever), a device or any file of the user's.

    Raises:
      UserError: naming ``where`` and the member.
    """
    shown = f"{group.name.strip('/')}/{name.strip('/')}".lstrip("/")  # its path in the file
    member = group
    for part in name.strip("/").split("/"):
        if not isinstance(member, h5py.Group):
            return None
        link = member.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise UserError(f"{where}: {shown} is {kind}, not stored in this file")
        member = member[part]
    if isinstance(member, h5py.Dataset) and (member.external or member.is_virtual):
        raise UserError(f"{where}: dataset {shown} keeps its data in other files")
    return member


def _check_tree(tree: Any, where: str) -> Params:
    """Checks a mapping (params dict or HDF5 root group) and reads it into float32 arrays.

    Every problem is collected first and reported in one line, so a user fixing a
    converter sees all that is wrong at once rather than one error per attempt.
    """
    if not isinstance(tree, Mapping):
        raise UserError(
            f"{where} does not match VGG19: expected a mapping of layer names to "
            f"{{kernel, bias}}, got {type(tree).__name__}"
        )
    keys = [str(k) for k in tree]
    missing = [name for name in CONV_NAMES if name not in tree]
    extra = sorted(k for k in keys if k not in CONV_BY_NAME)
    problems: list[str] = []
    params: Params = {}
    for name in CONV_NAMES:
        if name not in tree:
            continue
        layer = stored_member(tree, name, where) if isinstance(tree, h5py.Group) else tree[name]
        if not isinstance(layer, Mapping):
            kind = "a dataset" if isinstance(layer, h5py.Dataset) else type(layer).__name__
            problems.append(f"{name} is {kind}, expected a group of kernel and bias")
            continue
        spec = CONV_BY_NAME[name]
        expected = {"kernel": spec.kernel_shape, "bias": spec.bias_shape}
        extra.extend(sorted(f"{name}/{k}" for k in map(str, layer) if k not in expected))
        arrays = {}
        for array_name in _ARRAY_NAMES:
            label = f"{name}/{array_name}"
            if array_name not in layer:
                missing.append(label)
                continue
            leaf = (
                stored_member(layer, array_name, where) if isinstance(layer, h5py.Group) else layer[array_name]
            )
            if isinstance(leaf, Mapping):
                problems.append(f"{label} is a group, expected an array")
                continue
            shape, dtype = _shape_and_dtype(leaf)
            ok = True
            if shape != expected[array_name]:
                problems.append(
                    f"{label} has shape {_fmt_shape(shape)}, "
                    f"expected {_fmt_shape(expected[array_name])}"
                )
                ok = False
            if not _is_float_dtype(dtype):
                problems.append(f"{label} has dtype {dtype}, expected floating point")
                ok = False
            if not ok:
                continue
            array = _read_float32(leaf)
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            if bad:
                problems.append(f"{label} has {bad} non-finite values (NaN or inf)")
                continue
            arrays[array_name] = array
        params[name] = arrays
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    if extra:
        parts.append("extra " + ", ".join(extra))
    parts.extend(problems)
    if parts:
        raise UserError(f"{where} does not match VGG19: " + "; ".join(parts))
    return params


def validate_params(params: Mapping, where: str) -> Params:
    """Checks that ``params`` is exactly the VGG19 conv stack; returns it as float32 NumPy.

    Checks: every layer ``conv1_1`` .. ``conv5_4`` present with ``kernel`` (3, 3, in, out)
    and ``bias`` (out,); no other layers or arrays; floating-point dtype (any width,
    converted to float32); all values finite.

    Args:
      params: ``{"conv1_1": {"kernel": array, "bias": array}, ...}`` (NumPy or JAX arrays).
      where: what the params are, for the message, e.g. ``"weights file w.h5"``.

    Returns:
      A new dict of the same layout holding C-contiguous float32 NumPy arrays (the caller's
      arrays themselves when they already are).

    Raises:
      UserError: one line, ``"<where> does not match VGG19: ..."``, listing every missing
        layer, extra group and mis-shaped, non-float or non-finite array.
    """
    return _check_tree(params, where)


def count_parameters(params: Mapping) -> int:
    """The number of scalars in a (nested) params mapping: 20,024,384 for VGG19's convs."""
    total = 0
    for value in params.values():
        if isinstance(value, Mapping):
            total += count_parameters(value)
        else:
            total += int(np.prod(_shape_and_dtype(value)[0], dtype=np.int64))
    return total


# --------------------------------------------------------------------------- hashing


def params_sha256(params: Mapping) -> str:
    """A canonical SHA-256 of the parameter values (identity of weights without a file).

    Hashes, in the order of :data:`CONV_NAMES`, each layer's kernel then bias as
    little-endian float32 bytes in C order. Shapes are fixed by VGG19 and names by the
    order, so two parameter sets hash alike exactly when all their float32 values are
    bit-identical. This is not the hash of a saved file (that also covers attributes and
    HDF5 structure); see :func:`file_sha256`.

    Raises:
      UserError: ``params`` is not a valid VGG19 parameter set.
    """
    checked = validate_params(params, "parameter set")
    digest = hashlib.sha256()
    for name in CONV_NAMES:
        for array_name in _ARRAY_NAMES:
            array = np.ascontiguousarray(checked[name][array_name], dtype="<f4")
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- loaded weights


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedWeights:
    """A validated VGG19 parameter set and where it came from.

    ``eq=False``: instances compare (and hash) by identity; compare ``sha256`` to ask
    whether two sets of weights are the same.

    Attributes:
      params: ``{"conv1_1": {"kernel", "bias"}, ...}`` as float32 NumPy arrays.
      path: absolute path of the file read, or None for weights made in memory.
      sha256: SHA-256 of the file's bytes, or :func:`params_sha256` for in-memory weights.
      source: free text describing the origin of the numbers.
      source_sha256: SHA-256 of the file converted from, or "".
      convention: the input preprocessing the weights expect.
      normalised: whether the weights were rescaled to unit mean activations.
      normalisation: how they were rescaled (calibration set, pooling), or None.
      created_by: the stylejax version that wrote the file ("" if unknown).
    """

    params: Params
    path: str | None
    sha256: str
    source: str
    source_sha256: str
    convention: InputConvention
    normalised: bool
    normalisation: dict | None
    created_by: str = ""

    @property
    def is_random(self) -> bool:
        """Whether these are seeded random weights (stylejax.weights.random_weights)."""
        return self.source.startswith("random:")

    def describe(self) -> dict:
        """JSON-ready provenance for run records."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "source": self.source,
            "input_convention": self.convention.to_dict(),
            "normalised": self.normalised,
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_params(
        cls,
        params: Mapping,
        *,
        convention: InputConvention,
        source: str,
        source_sha256: str = "",
        normalised: bool = False,
        normalisation: dict | None = None,
    ) -> LoadedWeights:
        """Wraps in-memory weights (e.g. random ones): validated, copied, hashed by value."""
        checked = validate_params(params, "parameter set")
        copied = {name: {k: v.copy() for k, v in layer.items()} for name, layer in checked.items()}
        return cls(
            params=copied,
            path=None,
            sha256=params_sha256(copied),
            source=source,
            source_sha256=source_sha256,
            convention=convention,
            normalised=bool(normalised),
            normalisation=normalisation,
        )


# --------------------------------------------------------------------------- save


def _check_metadata(convention, source, source_sha256, normalisation, created_by) -> str:
    if not isinstance(convention, InputConvention):
        raise TypeError(f"convention must be an InputConvention, got {type(convention).__name__}")
    for label, value in (("source", source), ("created_by", created_by)):
        if not isinstance(value, str):
            raise TypeError(f"{label} must be a str, got {type(value).__name__}")
    if not isinstance(source_sha256, str) or not re.fullmatch(r"([0-9a-f]{64})?", source_sha256):
        raise ValueError(
            f"source_sha256 must be 64 lowercase hex digits or '', got {source_sha256!r}"
        )
    if normalisation is not None and not isinstance(normalisation, Mapping):
        raise TypeError(f"normalisation must be a dict or None, got {type(normalisation).__name__}")
    # Raises TypeError now, before any file is touched, if it is not JSON-serialisable.
    return json.dumps(normalisation, sort_keys=True)


def _create_group(parent: h5py.Group, name: str) -> h5py.Group:
    try:
        return parent.create_group(name, track_times=False)
    except TypeError:  # h5py < 3.12: no track_times keyword; set it on the property list.
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def _write_hdf5(path: str, params: Params, attrs: dict[str, Any]) -> None:
    # libver "earliest" (h5py's default, pinned here) keeps the file readable by any HDF5
    # 1.8+ tool; no object timestamps are recorded, so the bytes are reproducible.
    with h5py.File(path, "w", libver="earliest") as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value
        for name in CONV_NAMES:
            group = _create_group(handle, name)
            for array_name in _ARRAY_NAMES:
                group.create_dataset(
                    array_name, data=params[name][array_name], dtype="<f4", track_times=False
                )


def save_weights(
    path: str | os.PathLike,
    params: Mapping,
    *,
    convention: InputConvention,
    source: str,
    source_sha256: str = "",
    normalised: bool = False,
    normalisation: dict | None = None,
    created_by: str = "",
) -> str:
    """Writes a stylejax weights file atomically (see the module docstring for the layout).

    The params are validated first (as :func:`load_weights` would) and written as float32
    to a temporary file in the destination folder, flushed to disk, then moved over
    ``path`` with :func:`os.replace`: ``path`` either keeps its old content or gets the
    complete new file, never a partial one. Missing parent folders are created.

    Returns:
      The SHA-256 of the written file (what :func:`load_weights` will report).

    Raises:
      UserError: the params are not VGG19's conv stack (nothing is written), ``path`` is a
        directory, or the file cannot be written.
      TypeError, ValueError: malformed metadata arguments (a programming error).
    """
    path = pathlib.Path(path)
    normalisation_json = _check_metadata(
        convention, source, source_sha256, normalisation, created_by
    )
    checked = validate_params(params, f"parameter set for {path}")
    if path.is_dir():
        raise UserError(f"cannot save weights to {path}: it is a directory")
    attrs = {
        "format": FORMAT,
        "format_version": np.int64(FORMAT_VERSION),
        "input_convention": json.dumps(convention.to_dict(), sort_keys=True),
        "source": source,
        "source_sha256": source_sha256,
        "normalised": np.bool_(normalised),
        "normalisation": normalisation_json,
        "created_by": created_by,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            _write_hdf5(temporary, checked, attrs)
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
            digest = file_sha256(temporary)
    except OSError as error:
        reason = error.strerror or str(error)
        raise UserError(f"cannot write weights file {path}: {reason}") from error
    return digest


# --------------------------------------------------------------------------- load


def _attr_str(attrs, key: str, default: str | None = None) -> str | None:
    if key not in attrs:
        return default
    value = attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    return value if isinstance(value, str) else None


def _read_metadata(attrs, where: str) -> dict[str, Any]:
    fmt = _attr_str(attrs, "format")
    if fmt is None and "format" in attrs:
        fmt = repr(attrs["format"])  # present but not a string: report it as found
    if fmt is None:
        raise UserError(
            f"{where} is an HDF5 file but not a stylejax weights file (no 'format' "
            f"attribute); {_CONVERT_HINT}"
        )
    if fmt != FORMAT:
        raise UserError(
            f"{where} is not a stylejax weights file (format {fmt!r}, expected {FORMAT!r}); "
            f"{_CONVERT_HINT}"
        )
    version = attrs.get("format_version")
    if version is None:
        raise UserError(f"{where} has no format_version attribute")
    if isinstance(version, np.ndarray) and version.size == 1:
        version = version.reshape(()).item()
    if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
        raise UserError(f"{where} has a malformed format_version {version!r}")
    if int(version) != FORMAT_VERSION:
        newer = " (written by a newer stylejax; upgrade)" if int(version) > FORMAT_VERSION else ""
        raise UserError(
            f"{where} has unsupported format_version {int(version)}{newer}; "
            f"this stylejax reads version {FORMAT_VERSION}"
        )
    convention_json = _attr_str(attrs, "input_convention")
    if convention_json is None:
        raise UserError(f"{where} has no input_convention attribute")
    try:
        convention = InputConvention.from_dict(json.loads(convention_json))
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{where} has a malformed input_convention attribute ({error})") from error
    normalisation_json = _attr_str(attrs, "normalisation", "null")
    try:
        normalisation = json.loads(normalisation_json) if normalisation_json is not None else None
    except ValueError as error:
        raise UserError(f"{where} has a malformed normalisation attribute ({error})") from error
    if normalisation is not None and not isinstance(normalisation, dict):
        raise UserError(f"{where} has a malformed normalisation attribute (not a JSON object)")
    normalised = attrs.get("normalised", False)
    if isinstance(normalised, np.ndarray) and normalised.size == 1:
        normalised = normalised.reshape(()).item()
    if not isinstance(normalised, (bool, np.bool_, int, np.integer)):
        raise UserError(f"{where} has a malformed normalised attribute {normalised!r}")
    return {
        "convention": convention,
        "source": _attr_str(attrs, "source", "") or "",
        "source_sha256": _attr_str(attrs, "source_sha256", "") or "",
        "normalised": bool(normalised),
        "normalisation": normalisation,
        "created_by": _attr_str(attrs, "created_by", "") or "",
    }


def load_weights(path: str | os.PathLike) -> LoadedWeights:
    """Reads and validates a stylejax weights file into float32 NumPy arrays.

    The file is read once into memory; the SHA-256 and the parameters come from the
    same bytes, so the hash describes exactly what was loaded.

    Raises:
      UserError (one line naming ``path``): the file is not a readable regular file
        (missing, a folder, a FIFO, a device, a dangling symlink or a loop: checked before
        it is opened), larger than ``MAX_FILE_BYTES``, not HDF5, damaged, an HDF5 file of
        another kind (e.g. an unconverted Keras VGG19), of an unsupported format version,
        holds a member stored in another file (:func:`stored_member`), or its layers do
        not match VGG19 (every missing, extra, mis-shaped, non-float or non-finite entry
        is listed; each array's declared shape is checked before its data is read).
    """
    path = pathlib.Path(paths.check_input_file(path, "weights file"))
    where = f"weights file {path}"
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UserError(
                f"{where} is {size:,} bytes, larger than any stylejax weights file "
                f"(VGG19's convolutions take {4 * CONV_PARAMETER_COUNT:,} bytes as float32)"
            )
        if not h5py.is_hdf5(path):
            raise UserError(f"{where} is not an HDF5 file")
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {where}: {error.strerror or error}") from error
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with h5py.File(io.BytesIO(data), "r") as handle:
            metadata = _read_metadata(handle.attrs, where)
            params = validate_params(handle, where)
    except HDF5_ERRORS as error:
        reason = " ".join(str(error).split())
        raise UserError(f"{where} is a damaged HDF5 file ({reason})") from error
    return LoadedWeights(params=params, path=os.path.abspath(path), sha256=sha256, **metadata)


# --------------------------------------------------------------------------- where weights live


def _checkout_root(src_dir: pathlib.Path) -> pathlib.Path | None:
    root = src_dir.parent.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return root if _PROJECT_NAME.search(text) else None


def weights_dir() -> pathlib.Path:
    """The folder where converted weights are looked for (not created here).

    In order: ``$STYLEJAX_WEIGHTS_DIR`` if set and non-empty; the ``weights/`` folder of
    the source checkout this package runs from (recognised by a ``pyproject.toml`` naming
    the project ``stylejax`` two levels above ``stylejax/_src``), so a clone keeps its
    weights next to the code; else the per-user cache ``$XDG_CACHE_HOME/stylejax/weights``
    (``~/.cache/stylejax/weights`` when ``XDG_CACHE_HOME`` is unset or, as the XDG spec
    says to treat it, not absolute).
    """
    override = os.environ.get(WEIGHTS_DIR_ENV, "")
    if override:
        return pathlib.Path(override).expanduser()
    root = _checkout_root(_SRC_DIR)
    if root is not None:
        return root / "weights"
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = pathlib.Path(cache) if cache and os.path.isabs(cache) else pathlib.Path.home() / ".cache"
    return base / "stylejax" / "weights"


def _not_a_folder(directory: pathlib.Path) -> str | None:
    """Why ``directory`` cannot be (or become) a folder, or None if it can: it, or the
    nearest existing path above it, is something other than a folder."""
    for candidate in (directory, *directory.parents):
        try:
            mode = os.stat(candidate).st_mode
        except FileNotFoundError:
            continue  # missing: a folder can be made here if the path above allows
        except NotADirectoryError:
            continue  # below a file: the loop reaches that file
        except OSError as error:
            return f"{candidate} cannot be read ({error.strerror or error})"
        except ValueError:  # a NUL character
            return f"{str(candidate)!r} is not a valid path"
        if stat.S_ISDIR(mode):
            return None
        what = "a file" if stat.S_ISREG(mode) else "not a folder"
        if candidate == directory:
            return f"{candidate} is {what}, not a folder"
        return f"{candidate}, a folder above it, is {what}"
    return None


def check_weights_dir() -> pathlib.Path:
    """:func:`weights_dir`, checked to be (or to be able to become) a folder; creates nothing.

    Raises:
      UserError: the folder, or a path above it, is a file (or another non-folder); the
        message names ``$STYLEJAX_WEIGHTS_DIR`` when the folder comes from it.
    """
    directory = weights_dir()
    problem = _not_a_folder(directory)
    if problem is None:
        return directory
    if os.environ.get(WEIGHTS_DIR_ENV, ""):
        raise UserError(
            f"{WEIGHTS_DIR_ENV}={os.environ[WEIGHTS_DIR_ENV]} cannot be the weights folder: "
            f"{problem}; point {WEIGHTS_DIR_ENV} at a folder"
        )
    raise UserError(f"the weights folder {directory} cannot be used: {problem}")


def find_pretrained(prefer_normalised: bool = True) -> pathlib.Path | None:
    """The converted pretrained weights in :func:`weights_dir`, or None if there are none.

    Preference order: ``vgg19_normalised.h5`` then ``vgg19.h5`` by default (Gatys et al.
    use the normalised network); with ``prefer_normalised=False``, ``vgg19.h5`` first,
    falling back to ``vgg19_normalised.h5``. Only regular files count; a weights folder
    that is a file (or lies below one) holds none.
    """
    directory = weights_dir()
    names = (NORMALISED_NAME, PRETRAINED_NAME)
    if not prefer_normalised:
        names = names[::-1]
    for name in names:
        candidate = directory / name
        try:
            if stat.S_ISREG(os.stat(candidate).st_mode):
                return candidate
        except (OSError, ValueError):  # missing, below a file, a loop, a NUL in the path
            continue
    return None
