"""Converting every common VGG19 file into a stylejax weights file.

Layout changes, per format, into the stylejax params (``kernel`` (3, 3, in, out), HWIO):

- Keras HDF5 (``keras``): groups ``block{b}_conv{k}``; the dataset names come from each
  group's ``weight_names`` attribute (``block1_conv1_W_1:0`` in the notop file,
  ``kernel:0`` in other Keras versions); kernels are already (kh, kw, in, out). Caffe
  convention (the port keeps BGR input).
- PyTorch state_dict (``torch``): conv weights (out, in, kh, kw) are transposed to
  (kh, kw, in, out). Keys are either torchvision's ``features.N.weight`` (N = 0, 2, 5, 7,
  10, ...) or Gatys' ``conv1_1.weight``. ``classifier.*`` (fully connected) is dropped.
  The input convention is not in the file: it follows the source (torchvision's own
  file expects RGB mean/std input; the Caffe ports expect BGR 0..255), identified by
  file name or given with ``--convention``.
- flaxmodels HDF5 (``flaxmodels``): groups ``conv1_1`` .. with ``weight`` and ``bias``,
  kernels (kh, kw, in, out), torchvision convention; ``fc*`` groups are dropped.
- MatConvNet (``matconvnet``): ``layers`` structs with ``weights`` {W, b} (or the older
  ``filters``/``biases``); W is (w, h, in, out), so its first two axes are swapped; RGB,
  0..255, minus the mean image stored in the file (``meta.normalization`` or the older
  top-level ``normalization``). Needs scipy (``pip install 'stylejax[matconvnet]'``).

Every converted file records its source, the source file's SHA-256 and its input
convention, so ``transfer`` preprocesses correctly without being told.
"""

from __future__ import annotations

import dataclasses
import os
import re

import h5py
import numpy as np

from stylejax._src import layers as vgg_layers
from stylejax._src.convention import CONVENTIONS, InputConvention
from stylejax._src.errors import UserError
from stylejax._src.weights import sources, weights_file

FORMATS = ("keras", "torch", "flaxmodels", "matconvnet", "stylejax")

_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled 0x1950a86a20f9469cfc6c
_MAT5_HEADER = b"MATLAB 5.0 MAT-file"


def _torchvision_feature_indices() -> dict[int, str]:
    """features.N -> conv name: each conv is followed by a ReLU, each pool stands alone."""
    indices, position = {}, 0
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            position += 1
        else:
            indices[position] = name
            position += 2
    return indices


FEATURE_INDEX = _torchvision_feature_indices()  # {0: conv1_1, 2: conv1_2, 5: conv2_1, ...}


@dataclasses.dataclass(frozen=True)
class Converted:
    params: dict
    convention: InputConvention
    format: str
    source: str
    source_sha256: str
    dropped: tuple[str, ...]  # names in the source that are not part of the conv stack


def detect_format(path: str) -> str:
    """The format of ``path`` from its content (not its name).

    Raises:
      UserError: the file is missing or of no known format.
    """
    if os.path.isdir(path):
        raise UserError(f"expected a weights file but found a folder: {path}")
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    with open(path, "rb") as handle:
        head = handle.read(128)
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") in ("stylejax-vgg19", b"stylejax-vgg19"):
                return "stylejax"
            if "layer_names" in handle.attrs:
                return "keras"
            if "model_weights" in handle and "layer_names" in handle["model_weights"].attrs:
                return "keras"
            if any(isinstance(handle.get(name), h5py.Group) for name in vgg_layers.CONV_NAMES):
                return "flaxmodels"
        raise UserError(
            f"unknown weights format: {path} is an HDF5 file but neither a Keras model "
            "(no layer_names attribute), a flaxmodels VGG19 (no conv1_1 group) nor a "
            "stylejax weights file"
        )
    if head.startswith(_ZIP_MAGIC) or head.startswith(_TORCH_LEGACY_MAGIC):
        return "torch"
    if head.startswith(_MAT5_HEADER):
        return "matconvnet"
    raise UserError(
        f"unknown weights format: {path} (expected a Keras or flaxmodels HDF5 file, a "
        "PyTorch .pth checkpoint or a MatConvNet .mat file)"
    )


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _not_vgg19(path: str, missing, unexpected) -> UserError:
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if unexpected:
        shown = list(unexpected)[:6]
        more = f" and {len(unexpected) - 6} more" if len(unexpected) > 6 else ""
        parts.append(f"unexpected {', '.join(shown)}{more}")
    return UserError(f"{path} is not a VGG19 conv stack: {'; '.join(parts)}")


def read_keras(path: str) -> tuple[dict, tuple[str, ...]]:
    """Params from a Keras HDF5 weights file (``weight_names`` says which dataset is which)."""
    with h5py.File(path, "r") as handle:
        root = handle.get("model_weights", handle)  # a full model file nests its weights
        layer_names = [_text(n) for n in root.attrs["layer_names"]]
        wanted = {f"block{n[4]}_conv{n[6]}": n for n in vgg_layers.CONV_NAMES}
        missing = [k for k in wanted if k not in layer_names]
        extra_convs = [n for n in layer_names if re.search(r"conv", n) and n not in wanted]
        if missing or extra_convs:
            raise _not_vgg19(path, missing, extra_convs)
        params = {}
        for keras_name, name in wanted.items():
            group = root[keras_name]
            arrays = [np.asarray(group[_text(w)]) for w in group.attrs["weight_names"]]
            kernels = [a for a in arrays if a.ndim == 4]
            biases = [a for a in arrays if a.ndim == 1]
            if len(kernels) != 1 or len(biases) != 1:
                raise UserError(f"{path}: layer {keras_name} does not hold one kernel and one bias")
            params[name] = {"kernel": kernels[0], "bias": biases[0]}
        dropped = tuple(n for n in layer_names if n not in wanted)
    return params, dropped


def params_from_state_dict(state: dict, path: str) -> tuple[dict, tuple[str, ...], str]:
    """Params from a VGG19 state_dict in torchvision or Gatys key layout.

    Returns (params, dropped keys, layout: ``torch-features`` or ``torch-named``).
    """
    params: dict = {}
    dropped, unexpected = [], []
    layout = None
    for key, array in state.items():
        match = re.fullmatch(r"features\.(\d+)\.(weight|bias)", key)
        named = re.fullmatch(r"(conv\d_\d)\.(weight|bias)", key)
        if match:
            layout = layout or "torch-features"
            index = int(match.group(1))
            if index not in FEATURE_INDEX:
                unexpected.append(key)
                continue
            name, kind = FEATURE_INDEX[index], match.group(2)
        elif named and named.group(1) in vgg_layers.CONV_BY_NAME:
            layout = layout or "torch-named"
            name, kind = named.group(1), named.group(2)
        elif key.startswith(("classifier.", "fc", "num_batches_tracked")):
            dropped.append(key)
            continue
        else:
            unexpected.append(key)
            continue
        if kind == "weight":
            if array.ndim != 4:
                unexpected.append(f"{key} {array.shape}")
                continue
            params.setdefault(name, {})["kernel"] = np.transpose(array, (2, 3, 1, 0))  # OIHW -> HWIO
        else:
            params.setdefault(name, {})["bias"] = array
    missing = [n for n in vgg_layers.CONV_NAMES if n not in params]
    if missing or unexpected:
        raise _not_vgg19(path, missing, unexpected)
    return params, tuple(dropped), layout


_TORCH_CONV_KEY = re.compile(r"(?:features\.(\d+)|(conv\d_\d))\.(weight|bias)")


def _torch_conv_shape(key: str) -> tuple[int, ...] | None:
    """The torch shape of a VGG19 conv key, (out, in, 3, 3) or (out,); None for other keys."""
    match = _TORCH_CONV_KEY.fullmatch(key)
    if match is None:
        return None
    name = FEATURE_INDEX.get(int(match.group(1))) if match.group(1) else match.group(2)
    spec = vgg_layers.CONV_BY_NAME.get(name)
    if spec is None:
        return None
    if match.group(3) == "weight":
        return (spec.out_channels, spec.in_channels, 3, 3)
    return (spec.out_channels,)


def _read_torch_conv_state(path: str) -> dict:
    """A .pth state_dict in which only the VGG19 conv tensors are read from the file.

    The reader hands over the file's index (declared shapes, no data) first. Its keys are
    checked by params_from_state_dict itself, on zero-memory placeholders of the declared
    shapes, so a file that is not a VGG19 is refused by name before any storage is read;
    then only the conv tensors are read, each refused unless its declared shape is the
    VGG19 one. Every other key (``classifier.*``, ...) keeps its placeholder, which
    params_from_state_dict only lists as dropped: its storage is never read.
    """
    from stylejax._src.weights import torch_pickle

    placeholders: dict = {}

    def select(index):
        for key, info in index.items():
            placeholders[key] = np.broadcast_to(np.zeros((), info.dtype), info.shape)
        params_from_state_dict(placeholders, path)  # raises on a wrong set of keys
        return {key: shape for key in index if (shape := _torch_conv_shape(key)) is not None}

    arrays = torch_pickle.read_state_dict(path, select=select)
    return {key: arrays.get(key, placeholder) for key, placeholder in placeholders.items()}


def read_flaxmodels(path: str) -> tuple[dict, tuple[str, ...]]:
    with h5py.File(path, "r") as handle:
        names = list(handle.keys())
        missing = [n for n in vgg_layers.CONV_NAMES if n not in names]
        unexpected = [n for n in names if n not in vgg_layers.CONV_NAMES and not n.startswith("fc")]
        if missing or unexpected:
            raise _not_vgg19(path, missing, unexpected)
        params = {
            name: {"kernel": np.asarray(handle[name]["weight"]), "bias": np.asarray(handle[name]["bias"])}
            for name in vgg_layers.CONV_NAMES
        }
        dropped = tuple(n for n in names if n.startswith("fc"))
    return params, dropped


def _mat_field(struct, *names):
    for name in names:
        if hasattr(struct, name):
            return getattr(struct, name)
    return None


def read_matconvnet(path: str) -> tuple[dict, tuple[str, ...], InputConvention]:
    """Params and the input convention (mean from the file) of a MatConvNet VGG19."""
    try:
        from scipy import io as scipy_io
    except ImportError:
        raise UserError(
            f"reading {path} needs scipy: pip install 'stylejax[matconvnet]'"
        ) from None
    try:
        data = scipy_io.loadmat(path, struct_as_record=False, squeeze_me=True)
    except (ValueError, TypeError, OSError) as error:
        raise UserError(f"cannot read MatConvNet file {path}: {error}") from None
    if "layers" not in data:
        raise UserError(f"{path} is a MATLAB file but has no 'layers': not a MatConvNet network")
    params, dropped = {}, []
    for layer in np.atleast_1d(data["layers"]):
        name = str(_mat_field(layer, "name"))
        kind = str(_mat_field(layer, "type"))
        if kind != "conv":
            continue
        if name not in vgg_layers.CONV_BY_NAME:
            dropped.append(name)  # fc6..fc8 are convolutions in MatConvNet
            continue
        weights = _mat_field(layer, "weights")
        if weights is not None:
            kernel, bias = weights[0], weights[1]
        else:
            kernel, bias = _mat_field(layer, "filters"), _mat_field(layer, "biases")
        kernel = np.asarray(kernel, np.float32)
        if kernel.ndim != 4:
            raise UserError(f"{path}: {name} has a kernel of shape {kernel.shape}, expected 4 axes")
        params[name] = {
            "kernel": np.transpose(kernel, (1, 0, 2, 3)),  # (w, h, in, out) -> (h, w, in, out)
            "bias": np.asarray(bias, np.float32).reshape(-1),
        }
    missing = [n for n in vgg_layers.CONV_NAMES if n not in params]
    if missing:
        raise _not_vgg19(path, missing, [])
    meta = data.get("meta")
    normalization = _mat_field(meta, "normalization") if meta is not None else data.get("normalization")
    average = _mat_field(normalization, "averageImage") if normalization is not None else None
    if average is None:
        raise UserError(f"{path} has no normalization.averageImage: the input mean is unknown")
    mean = np.asarray(average, np.float64).reshape(-1, 3).mean(axis=0)
    convention = InputConvention(
        name="matconvnet", channel_order="RGB", scale=255.0, mean=tuple(float(m) for m in mean), std=(1.0, 1.0, 1.0)
    )
    return params, tuple(dropped), convention


def read_any(path: str, fmt: str | None = None, convention: str | None = None) -> Converted:
    """Reads any supported VGG19 file into params plus its input convention.

    Args:
      path: the source file.
      fmt: one of FORMATS, or None to detect it from the content.
      convention: ``caffe`` or ``torchvision``, for a torchvision-layout .pth whose file
        name does not say which network it is; overrides what the source table says.
    """
    detected = detect_format(path)
    fmt = fmt or detected
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt != detected:
        raise UserError(f"{path} looks like a {detected} file, not {fmt}")
    if convention is not None and convention not in CONVENTIONS:
        raise UserError(f"unknown convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    digest = weights_file.file_sha256(path)
    known = sources.identify_by_filename(path)
    if fmt == "stylejax":
        loaded = weights_file.load_weights(path)
        return Converted(loaded.params, loaded.convention, fmt, loaded.source, loaded.source_sha256, ())
    if fmt == "keras":
        params, dropped = read_keras(path)
        resolved = sources.SOURCES["keras"].convention
    elif fmt == "flaxmodels":
        params, dropped = read_flaxmodels(path)
        resolved = sources.SOURCES["flaxmodels"].convention
    elif fmt == "matconvnet":
        params, dropped, resolved = read_matconvnet(path)
    else:
        state = _read_torch_conv_state(path)
        params, dropped, layout = params_from_state_dict(state, path)
        if layout == "torch-named":
            resolved = sources.SOURCES["gatys"].convention
        elif known is not None and known.layout == "torch-features":
            resolved = known.convention
        elif convention is None:
            raise UserError(
                f"{path} is a VGG19 in torchvision key layout, but its name does not say whether "
                "it is torchvision's own network (RGB, mean/std input) or a Caffe port (BGR, "
                "0..255): pass --convention torchvision or --convention caffe"
            )
        else:
            resolved = None
    if convention is not None:
        resolved = CONVENTIONS[convention]
    description = f"{known.name}: {os.path.basename(path)}" if known else f"{fmt}: {os.path.basename(path)}"
    checked = weights_file.validate_params(params, path)
    return Converted(checked, resolved, fmt, description, digest, tuple(dropped))


def convert(src: str, dst: str, *, fmt: str | None = None, convention: str | None = None,
            created_by: str = "") -> tuple[Converted, str]:
    """Converts ``src`` into a stylejax weights file at ``dst``; returns (result, dst sha256)."""
    converted = read_any(src, fmt, convention)
    digest = weights_file.save_weights(
        dst,
        converted.params,
        convention=converted.convention,
        source=converted.source,
        source_sha256=converted.source_sha256,
        created_by=created_by,
    )
    return converted, digest
