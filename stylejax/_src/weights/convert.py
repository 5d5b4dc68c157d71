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
  top-level ``normalization``). Read by stylejax's own reader (mat_file).

Every converted file records its source, the source file's SHA-256 and its input
convention, so ``transfer`` preprocesses correctly without being told.

Hostile or damaged files
------------------------
The source is untrusted input (a download). Before anything is opened it must be a
readable regular file (paths.check_input_file: a FIFO would block the reader, a device
stream without end), and the output may not be the source under any spelling (the
source would be replaced). Every reader compares each tensor's declared shape with the
VGG19 layer it becomes before reading its data, and reads nothing else: an HDF5 dataset
of gzip-compressed zeros declaring gigabytes, a ``.pth`` storage or a ``.mat`` array
claiming as much, is refused by its shape at the cost of its header, and the layers a
conversion drops (fully connected, classifier) are never read. Decompression is
bounded (torch_pickle, mat_file). A damaged file, truncated HDF5 included, is one
UserError naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re

import h5py
import numpy as np

from stylejax._src import layers as vgg_layers
from stylejax._src.convention import CONVENTIONS, InputConvention
from stylejax._src.errors import UserError
from stylejax._src.files import paths
from stylejax._src.weights import mat_file, sources, weights_file

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
      UserError: the file is not a readable regular file (missing, a folder, a FIFO, a
        dangling symlink, ...), is empty, truncated or corrupt HDF5, or of no known format.
    """
    path = paths.check_input_file(path, "weights file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(128)
    except OSError as error:
        raise UserError(f"cannot read weights file {path}: {error.strerror or error}") from None
    if not head:
        raise UserError(f"weights file {path} is empty (0 bytes)")
    if h5py.is_hdf5(path):
        with _hdf5_errors(path), h5py.File(path, "r") as handle:
            if handle.attrs.get("format") in ("stylejax-vgg19", b"stylejax-vgg19"):
                return "stylejax"
            if "layer_names" in handle.attrs:
                return "keras"
            weights = _hdf5_group(handle, "model_weights", path)
            if weights is not None and "layer_names" in weights.attrs:
                return "keras"
            if any(_hdf5_group(handle, name, path) is not None for name in vgg_layers.CONV_NAMES):
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


@contextlib.contextmanager
def _hdf5_errors(path: str):
    """Turns what h5py raises for a damaged file (weights_file.HDF5_ERRORS) into one
    UserError naming it."""
    try:
        yield
    except weights_file.HDF5_ERRORS as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(f"{path} is a truncated or corrupt HDF5 file ({reason})") from None


def _hdf5_dataset(group: h5py.Group, name: str, where: str) -> h5py.Dataset:
    """``group[name]``, a dataset stored in this file (weights_file.stored_member)."""
    dataset = weights_file.stored_member(group, name, where)
    if dataset is None:
        raise UserError(f"{where}: no dataset {name!r}")
    if not isinstance(dataset, h5py.Dataset):
        raise UserError(f"{where}: {name!r} is not a dataset")
    return dataset


def _hdf5_group(parent: h5py.Group, name: str, where: str) -> h5py.Group | None:
    """``parent[name]`` if it is a group stored in this file, else None."""
    member = weights_file.stored_member(parent, name, where)
    return member if isinstance(member, h5py.Group) else None


def _read_checked(dataset: h5py.Dataset, expected: tuple[int, ...], label: str, path: str) -> np.ndarray:
    """The dataset's data, read only once its declared shape is ``expected``."""
    if tuple(dataset.shape) != tuple(expected):
        raise UserError(f"{path}: {label} has shape {tuple(dataset.shape)}, expected {tuple(expected)}")
    return dataset[()]


def _text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")  # a damaged name still makes a message
    return str(value)


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
    """Params from a Keras HDF5 weights file (``weight_names`` says which dataset is which).

    Each conv layer must name two datasets: the one of four axes is the kernel, the one
    of one axis the bias; each is read only once its declared shape is VGG19's.
    """
    with _hdf5_errors(path), h5py.File(path, "r") as handle:
        root = handle
        if "layer_names" not in root.attrs:  # a full model file nests its weights
            root = _hdf5_group(handle, "model_weights", path)
        if root is None or "layer_names" not in root.attrs:
            raise UserError(f"{path} has no layer_names attribute: not a Keras weights file")
        layer_names = [_text(n) for n in np.atleast_1d(root.attrs["layer_names"])]
        wanted = {f"block{n[4]}_conv{n[6]}": n for n in vgg_layers.CONV_NAMES}
        missing = [k for k in wanted if k not in layer_names]
        extra_convs = [n for n in layer_names if re.search(r"conv", n) and n not in wanted]
        if missing or extra_convs:
            raise _not_vgg19(path, missing, extra_convs)
        params = {}
        for keras_name, name in wanted.items():
            group = _hdf5_group(root, keras_name, path)
            if group is None or "weight_names" not in group.attrs:
                raise UserError(f"{path}: layer {keras_name} is not a group with a weight_names attribute")
            datasets = [
                _hdf5_dataset(group, _text(w), f"{path}: layer {keras_name}")
                for w in np.atleast_1d(group.attrs["weight_names"])
            ]
            kernels = [d for d in datasets if d.ndim == 4]
            biases = [d for d in datasets if d.ndim == 1]
            if len(datasets) != 2 or len(kernels) != 1 or len(biases) != 1:
                shapes = ", ".join(str(d.shape) for d in datasets) or "none"
                raise UserError(
                    f"{path}: layer {keras_name} does not hold one kernel and one bias "
                    f"(datasets of shapes {shapes})"
                )
            spec = vgg_layers.CONV_BY_NAME[name]
            params[name] = {
                "kernel": _read_checked(kernels[0], spec.kernel_shape, f"{keras_name} kernel", path),
                "bias": _read_checked(biases[0], spec.bias_shape, f"{keras_name} bias", path),
            }
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
    """Params from a flaxmodels VGG19 HDF5 file, each array read only once its declared
    shape is VGG19's; the ``fc*`` groups are never read."""
    with _hdf5_errors(path), h5py.File(path, "r") as handle:
        names = [_text(n) for n in handle]  # h5py gives bytes for non-UTF-8 names
        missing = [n for n in vgg_layers.CONV_NAMES if n not in names]
        unexpected = [n for n in names if n not in vgg_layers.CONV_NAMES and not n.startswith("fc")]
        if missing or unexpected:
            raise _not_vgg19(path, missing, unexpected)
        params = {}
        for name in vgg_layers.CONV_NAMES:
            group = _hdf5_group(handle, name, path)
            if group is None:
                raise UserError(f"{path}: {name} is not a group of weight and bias")
            spec = vgg_layers.CONV_BY_NAME[name]
            where = f"{path}: layer {name}"
            params[name] = {
                "kernel": _read_checked(_hdf5_dataset(group, "weight", where), spec.kernel_shape,
                                        f"{name}/weight", path),
                "bias": _read_checked(_hdf5_dataset(group, "bias", where), spec.bias_shape, f"{name}/bias", path),
            }
        dropped = tuple(n for n in names if n.startswith("fc"))
    return params, dropped


def _mat_layers(value) -> list[dict]:
    """The layer structs of a MatConvNet ``layers`` variable: a cell of structs (SimpleNN)
    or a struct array."""
    if isinstance(value, mat_file.Struct):
        return list(value.elements)
    if isinstance(value, mat_file.Cell):
        return [e for item in value.items if isinstance(item, mat_file.Struct) for e in item.elements]
    return []


def _mat_struct_field(value, name: str):
    """Field ``name`` of the first element of a struct (None if there is none)."""
    if isinstance(value, mat_file.Struct) and value.elements:
        return value.elements[0].get(name)
    return None


def _matconvnet_role(path: tuple) -> str | None:
    """``kernel`` or ``bias`` for the path of a layer's weight array, else None."""
    if path[-1] == "filters":
        return "kernel"
    if path[-1] == "biases":
        return "bias"
    if len(path) >= 2 and path[-2] == "weights" and path[-1] in (0, 1):
        return ("kernel", "bias")[path[-1]]
    return None


def _matconvnet_fits(role: str, spec, shape: tuple[int, ...]) -> bool:
    """Whether a MatConvNet array of ``shape`` is the ``role`` of conv ``spec``: a kernel
    (w, h, in, out) = (3, 3, in, out), a bias any vector of ``out`` elements."""
    if role == "kernel":
        return shape == spec.kernel_shape
    return shape in ((spec.out_channels,), (spec.out_channels, 1), (1, spec.out_channels))


# The most elements of a mean image that is read (a 224 x 224 x 3 image has 150,528).
_MAX_MEAN_ELEMENTS = 1 << 22


def _matconvnet_want():
    """The ``want`` of mat_file.read_mat for a MatConvNet VGG19: each conv layer's kernel
    and bias when its declared shape is the VGG19 one (another shape is refused there and
    then), and the mean image; no more than VGG19's conv parameters in all."""
    budget = [vgg_layers.CONV_PARAMETER_COUNT]

    def want(path, shape, structs) -> bool:
        if path[-1] == "averageImage" and path[0] in ("meta", "normalization"):
            return math.prod(shape) <= _MAX_MEAN_ELEMENTS
        role = _matconvnet_role(path) if path[0] == "layers" and structs else None
        if role is None:
            return False
        layer = structs[-1]
        name, kind = layer.get("name"), layer.get("type")
        if isinstance(name, str) and isinstance(kind, str):
            spec = vgg_layers.CONV_BY_NAME.get(name) if kind == "conv" else None
            if spec is None:
                return False  # not a VGG19 convolution (fc6, ...): dropped unread
            fits = _matconvnet_fits(role, spec, shape)
            if not fits:  # refused at once: nothing of it (or after it) is read
                expected = spec.kernel_shape if role == "kernel" else (spec.out_channels,)
                raise UserError(f"the {role} of {name} has shape {shape}, expected {expected}")
        else:  # the layer's name is stored after its weights: any VGG19 conv shape
            fits = any(_matconvnet_fits(role, spec, shape) for spec in vgg_layers.CONVS)
        if fits:
            budget[0] -= math.prod(shape)
            if budget[0] < 0:
                raise UserError(
                    "it holds more convolution weights of VGG19 shapes than VGG19 has "
                    "(duplicate layers?)"
                )
        return fits

    return want


def read_matconvnet(path: str) -> tuple[dict, tuple[str, ...], InputConvention]:
    """Params and the input convention (mean from the file) of a MatConvNet VGG19.

    Only the conv layers' kernels and biases and the mean image are read, each after its
    declared shape has been checked (see mat_file): a layer's weights of another shape
    are refused without being read, and the fully connected layers are never read.
    """
    try:
        data = mat_file.read_mat(path, _matconvnet_want(), names=("layers", "meta", "normalization"))
    except UserError as error:
        message = str(error)
        raise UserError(message if path in message else f"{path}: {message}") from None
    if "layers" not in data:
        raise UserError(f"{path} is a MATLAB file but has no 'layers': not a MatConvNet network")
    params, dropped = {}, []
    for layer in _mat_layers(data["layers"]):
        name, kind = layer.get("name"), layer.get("type")
        if not (isinstance(kind, str) and isinstance(name, str)) or kind != "conv":
            continue
        if name not in vgg_layers.CONV_BY_NAME:
            dropped.append(name)  # fc6..fc8 are convolutions in MatConvNet
            continue
        spec = vgg_layers.CONV_BY_NAME[name]
        if "weights" in layer:
            pair = layer["weights"]
            items = pair.items if isinstance(pair, mat_file.Cell) else []
            kernel, bias = items if len(items) == 2 else (None, None)
        else:
            kernel, bias = layer.get("filters"), layer.get("biases")
        for role, array, expected in (("kernel", kernel, spec.kernel_shape), ("bias", bias, (spec.out_channels,))):
            if not isinstance(array, np.ndarray):
                found = f"of shape {array.shape}" if isinstance(array, mat_file.Unread) else "missing"
                raise UserError(f"{path}: the {role} of {name} is {found}, expected {expected}")
        params[name] = {
            "kernel": np.transpose(kernel.astype(np.float32), (1, 0, 2, 3)),  # (w, h, in, out) -> (h, w, in, out)
            "bias": bias.astype(np.float32).reshape(-1),
        }
    missing = [n for n in vgg_layers.CONV_NAMES if n not in params]
    if missing:
        raise _not_vgg19(path, missing, [])
    meta = data.get("meta")
    normalization = _mat_struct_field(meta, "normalization") if meta is not None else data.get("normalization")
    average = _mat_struct_field(normalization, "averageImage")
    if not isinstance(average, np.ndarray) or average.size == 0 or average.size % 3:
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
    # Hashed once the file is accepted: a refused file (a bomb, a wrong shape) costs its
    # headers, not a pass over all of its bytes.
    digest = weights_file.file_sha256(path)
    return Converted(checked, resolved, fmt, description, digest, tuple(dropped))


def convert(src: str, dst: str, *, fmt: str | None = None, convention: str | None = None,
            created_by: str = "") -> tuple[Converted, str]:
    """Converts ``src`` into a stylejax weights file at ``dst``; returns (result, dst sha256).

    Checked before anything is read: ``src`` is a readable regular file, and ``dst`` can
    be written and is not ``src`` (by name, another spelling, a symlink or a hard link),
    so a refused conversion leaves every file as it was.
    """
    src = paths.check_input_file(src, "weights file")
    paths.check_outputs({"weights file": dst}, {"source": src})
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
