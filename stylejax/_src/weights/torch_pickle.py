"""Read a PyTorch ``.pth`` state_dict into NumPy, without torch and without running pickle code.

Why a restricted unpickler
--------------------------
A ``.pth`` file is a Python pickle, and unpickling with the default ``pickle.Unpickler``
runs whatever the file asks for: a ``GLOBAL 'os system'`` followed by ``REDUCE`` is a
shell command. A VGG19 checkpoint downloaded from the internet is untrusted input, so
this module never calls the default unpickler. :class:`_RestrictedUnpickler` overrides
``find_class`` - the only door through which a pickle can reach a Python callable or
class - and answers a short allow-list of names that a state_dict legitimately uses
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, the storage types,
...), each mapped to a tiny local stand-in that builds a description of a tensor and
nothing else. Any other global raises :class:`UserError` naming it before anything is
called. The stand-ins also refuse ``BUILD`` (``__setstate__``), so a pickle cannot
re-program them. torch itself is never imported.

Index first, then only the tensors the caller keeps
---------------------------------------------------
Unpickling yields an index, not data: for each name, a storage reference (key, element
type, element count), an offset, a size and a stride. :func:`read_state_dict` hands that
index (``{name: TensorInfo(shape, dtype)}``) to the caller's ``select``, which answers
the names it wants, each with the shape it must have (or None). Only then are storages
read, and only those of the kept tensors; for the zip format the other archive members
are never opened, let alone decompressed. A VGG19 conversion thereby never touches the
classifier (fully connected) tensors it drops, whatever they claim: torch keeps expanded
views as they are, so a classifier saved as ``torch.zeros(1).expand(4096, 25088)`` is a
one-element storage with stride (0, 0), which torch loads fine and which is never
materialised here.

Every kept tensor is checked before one byte of data is read: its shape against the
caller's, its extent against its storage, its expansion (stride-0 views) against
``_MAX_EXPANSION``. Storage reads are bounded: a zip member must declare exactly the bytes
the pickle says its storage holds (a larger one is refused before decompressing), a
compressed member may not inflate more than ``_MAX_RATIO`` times, data is read in chunks
of ``_CHUNK`` bytes and only up to the end of the last kept tensor, and a member read to
its end must stop there (one byte more is refused).

The zip format (``torch.save`` since PyTorch 1.6)
-------------------------------------------------
A zip archive whose members all live in one top-level folder, named after the file
(``archive/``, ``vgg19/``, anything)::

    <name>/data.pkl          pickle (protocol 2) of the object, e.g. an OrderedDict
    <name>/data/<key>        raw bytes of storage <key>, ``numel * itemsize`` long
    <name>/byteorder         b"little" or b"big" (absent in old files: little)
    <name>/version           format version, e.g. b"3\\n"
    <name>/.format_version, <name>/.storage_alignment, <name>/.data/serialization_id

torch stores every member uncompressed (``ZIP_STORED``). In ``data.pkl`` every tensor is
``REDUCE`` of ``GLOBAL 'torch._utils _rebuild_tensor_v2'`` with arguments ``(storage,
storage_offset, size, stride, requires_grad, backward_hooks[, metadata])``, where
``storage`` is a ``BINPERSID`` of the persistent id ``('storage', <GLOBAL 'torch
FloatStorage'>, key, location, numel)``. ``nn.Parameter`` values are wrapped in
``torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks)``.

The legacy format (``torch.save`` before 1.6, or ``_use_new_zipfile_serialization=False``)
-----------------------------------------------------------------------------------------
Five consecutive pickles, then raw storages::

    pickle  magic number 0x1950a86a20f9469cfc6c
    pickle  protocol version 1001
    pickle  sys_info dict (protocol_version, little_endian, type_sizes)
    pickle  the object; storages are persistent ids
            ('storage', StorageType, root_key, location, numel, view_metadata)
            with view_metadata None or (view_key, offset, view_numel)
    pickle  list of storage keys, in the order their data follows
    for each key: int64 little-endian element count, then count * itemsize bytes
            (little-endian; torch converts on write and read)

The storages of dropped tensors are skipped with ``seek`` (their element counts are still
checked, so a truncated download is still reported). Files from PyTorch 0.3 and earlier
(e.g. the original torchvision ``vgg19-dcbb9e9d.pth``) use
``torch._utils._rebuild_tensor(storage, offset, size, stride)`` instead of ``_v2``; both
are admitted. The even older tar format (PyTorch < 0.1.10) is refused by name.

Tensors become NumPy arrays: a strided view (``as_strided``) of the storage at the
tensor's offset with its size and stride, then copied into a C-contiguous native-endian
array. bfloat16 becomes float32 (exactly: a bfloat16 is the top half of a float32).

Not supported, because no VGG19 file needs them (a file using them is refused by the
allow-list, naming the global): complex storages, ``_rebuild_tensor_v3`` with its
``UntypedStorage`` and ``torch.<dtype>`` arguments (torch uses it only for uint16/32/64,
float8, complex32 and bits dtypes), quantized and sparse tensors.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from stylejax._src.errors import UserError
from stylejax._src.files import paths

__all__ = ["Select", "TensorInfo", "read_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# A tensor may expand its storage with zero strides (torch keeps expanded views as
# they are), but never to more than this many elements beyond the storage: a few
# hostile bytes must not be able to ask for terabytes of memory.
_MAX_EXPANSION = 1 << 24

# torch holds sizes, strides and offsets as int64: nothing in a real file is larger.
_INT64_MAX = (1 << 63) - 1

# Storage data is read (and decompressed) this many bytes at a time.
_CHUNK = 1 << 20

# torch.save never compresses; a re-zipped file of trained weights inflates a little, a
# file of zeros over a thousand times. A member inflating more than _MAX_RATIO times its
# compressed size (and to more than _RATIO_FLOOR bytes) is refused as a decompression bomb.
_MAX_RATIO = 100
_RATIO_FLOOR = 1 << 20

# Keys under which training checkpoints usually keep the model's state_dict.
_WRAPPER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "params",
    "weights",
)


class TensorInfo(NamedTuple):
    """What the file declares about one tensor, before any of its data is read."""

    shape: tuple[int, ...]
    dtype: np.dtype  # of the array it becomes (bfloat16: float32)


# ``select`` answers, for the index of a file, the names to read, each with the shape it
# must have (None: any shape). Names that are not in the index are ignored.
Selection = Mapping[str, tuple[int, ...] | None]
Select = Selection | Callable[[Mapping[str, TensorInfo]], Selection]


class _Corrupt(Exception):
    """Internal: the file is damaged or inconsistent; read_state_dict adds the path."""


class _NotTorch(Exception):
    """Internal: the file is not a PyTorch checkpoint at all."""


class _Truncated(Exception):
    """Internal: the file ends early or an archive member is missing or short."""


class _NoTensors(Exception):
    """Internal: nothing in the file is a mapping of names to tensors."""


class _ShapeMismatch(Exception):
    """Internal: a kept tensor's declared shape is not the one the caller expects."""


class _SelectFailed(Exception):
    """Internal: the caller's select raised something other than UserError (re-raised)."""


# --------------------------------------------------------------------------------------
# Stand-ins for the few torch names a state_dict pickle uses.


class _Frozen:
    """Base of all stand-ins: no instance dict, and BUILD (``__setstate__``) is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _Corrupt(f"the pickle tries to set the state of {self!r}")


class _StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` and friends: the element type of a storage.

    ``raw`` is the NumPy type code of one stored element without byte order (``"f4"``);
    ``out`` is the dtype of the arrays built from it (bool for BoolStorage, float32 for
    BFloat16Storage, which is stored as ``"u2"``).
    """

    __slots__ = ("name", "out", "raw")

    def __init__(self, name: str, raw: str, out: str) -> None:
        self.name = name
        self.raw = raw
        self.out = np.dtype(out)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.raw).itemsize

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_TYPES = {
    t.name: t
    for t in (
        # The float types VGG19 files in the wild use (float16 and bfloat16 for halved
        # downloads, float64 for some converted Caffe ports).
        _StorageType("FloatStorage", "f4", "float32"),
        _StorageType("HalfStorage", "f2", "float16"),
        _StorageType("DoubleStorage", "f8", "float64"),
        _StorageType("BFloat16Storage", "u2", "float32"),
        # Integer and bool storages: the pickle names the storage class of every tensor,
        # including the buffers a conversion drops (BatchNorm's int64 num_batches_tracked,
        # step counters, bool/uint8 masks), so these must resolve for such a file to be
        # read at all; a reader without a selection returns them as they are.
        _StorageType("LongStorage", "i8", "int64"),
        _StorageType("IntStorage", "i4", "int32"),
        _StorageType("ShortStorage", "i2", "int16"),
        _StorageType("CharStorage", "i1", "int8"),
        _StorageType("ByteStorage", "u1", "uint8"),
        _StorageType("BoolStorage", "u1", "bool"),
    )
}


class _StorageRef(_Frozen):
    """A storage named by a persistent id: ``numel`` elements from ``offset`` of root ``key``.

    The root storage (the zip member or legacy data block) holds ``root_numel`` elements;
    only legacy storage views have ``offset`` > 0 or ``numel`` < ``root_numel``.
    ``endian`` is the byte order of the stored data: ``"<"`` or ``">"``.
    """

    __slots__ = ("endian", "key", "numel", "offset", "root_numel", "stype")

    def __init__(
        self,
        stype: _StorageType,
        key: str,
        numel: int,
        endian: str,
        offset: int = 0,
        root_numel: int | None = None,
    ) -> None:
        self.stype = stype
        self.key = key
        self.numel = numel
        self.endian = endian
        self.offset = offset
        self.root_numel = numel if root_numel is None else root_numel

    def __repr__(self) -> str:
        return f"<storage {self.key!r} {self.stype!r}[{self.numel}]>"


class _TensorRef(_Frozen):
    """A tensor described by the pickle, materialised only once we know we need it."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(
        self, storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def __repr__(self) -> str:
        return f"<tensor {self.size} of {self.storage!r}>"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        _is_int(v) and 0 <= v <= _INT64_MAX for v in value
    ):
        raise _Corrupt(f"tensor {what} {value!r:.200} is not a tuple of non-negative int64s")
    return tuple(value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise _Corrupt(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    if not _is_int(offset) or not 0 <= offset <= _INT64_MAX:
        raise _Corrupt(f"tensor storage offset {offset!r:.60} is not a non-negative int64")
    size_t, stride_t = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t):
        raise _Corrupt(f"tensor size {size_t} and stride {stride_t} differ in length")
    # As NumPy counts an array's bytes (zero-length axes aside), so that every declared
    # shape, kept or not, can be given a (zero-memory) array of its shape.
    if math.prod(n for n in size_t if n) * storage.stype.itemsize > _INT64_MAX:
        raise _Corrupt(f"tensor size {size_t} is larger than any array can be")
    return _TensorRef(storage, offset, size_t, stride_t)


class _StandIn(_Frozen):
    """A callable stand-in for one torch function, with a readable repr."""

    __slots__ = ("fn", "qualname")

    def __init__(self, qualname: str, fn: Callable[..., Any]) -> None:
        self.qualname = qualname
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        try:
            return self.fn(*args)
        except TypeError as exc:  # wrong number of arguments
            raise _Corrupt(f"{self.qualname}{args!r:.200}: {exc}") from None

    def __repr__(self) -> str:
        return self.qualname


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None
):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, _TensorRef):
        raise _Corrupt(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        # torch.Size is a tuple subclass: REDUCE (Size, (dims,)). Tensors pickle their
        # size as a plain tuple, but checkpoints may record shapes elsewhere, and the
        # stand-in is the builtin tuple, which runs no code.
        ("torch", "Size"): tuple,
    }
    for fn in (
        # _rebuild_tensor: PyTorch <= 0.3, the era of the original torchvision VGG19 file.
        _rebuild_tensor,
        _rebuild_tensor_v2,
        _rebuild_parameter,
        # A Parameter carrying attributes (set by a training framework) pickles this way;
        # the state is discarded.
        _rebuild_parameter_with_state,
    ):
        allowed["torch._utils", fn.__name__] = _StandIn(f"torch._utils.{fn.__name__}", fn)
    for name, stype in _STORAGE_TYPES.items():
        allowed["torch", name] = stype
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


# --------------------------------------------------------------------------------------
# The unpickler.


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the allow-listed names, to local stand-ins.

    ``find_class`` is consulted for every GLOBAL, STACK_GLOBAL, INST, OBJ and EXT
    opcode, so a pickle can call nothing but these stand-ins, ``OrderedDict`` and
    ``tuple``. ``persistent_load`` turns storage persistent ids into ``_StorageRef``s
    via ``on_storage`` (None: persistent ids are themselves an error).
    """

    def __init__(
        self,
        file: Any,
        path: str,
        on_storage: Callable[[tuple[Any, ...]], _StorageRef] | None = None,
    ) -> None:
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._on_storage = on_storage

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            shown = f"{module}.{name}".replace("\n", "\\n")[:200]
            if module.startswith(("torch.nn.", "torchvision.")):
                raise UserError(
                    f"refusing to load {self._path}: the pickle asks for GLOBAL {shown}, so it "
                    "holds a whole pickled model (torch.save(model)), not a state_dict; "
                    "re-save it with torch.save(model.state_dict(), path)"
                )
            raise UserError(
                f"refusing to load {self._path}: the pickle asks for GLOBAL {shown}, "
                "which a VGG19 state_dict never needs (possibly malicious)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        if self._on_storage is None:
            raise _Corrupt("unexpected persistent id outside the tensor pickle")
        if not isinstance(pid, tuple) or not pid:
            raise _Corrupt(f"persistent id {pid!r:.100} is not a tuple")
        typename = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if typename == "module":
            raise _Corrupt(
                "it pickles a whole nn.Module (torch.save(model)) rather than its state_dict"
            )
        if typename != "storage":
            raise _Corrupt(f"unknown persistent id type {typename!r:.60}")
        return self._on_storage(pid)


def _storage_fields(pid: tuple[Any, ...], n: int) -> tuple[_StorageType, str, int]:
    if len(pid) != n:
        raise _Corrupt(f"storage persistent id has {len(pid)} fields, expected {n}")
    stype, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(stype, _StorageType):
        raise _Corrupt(f"storage type {stype!r:.60} is not a torch storage class")
    if isinstance(key, bytes):
        key = key.decode("ascii")
    if not isinstance(key, str) or not _is_int(numel) or not 0 <= numel <= _INT64_MAX:
        raise _Corrupt(f"malformed storage persistent id {pid!r:.120}")
    return stype, key, numel


def _unpickle(data: Any, path: str, on_storage=None) -> Any:
    return _RestrictedUnpickler(data, path, on_storage).load()


# --------------------------------------------------------------------------------------
# Container formats. Each unpickles the object, then hands _build a load(needs) that
# reads, for each root storage key in needs, only the elements [lo, hi) the kept tensors
# use, as a 1-D array of the storage's raw dtype in the file's byte order.


@dataclasses.dataclass
class _Need:
    """The part of one root storage that the kept tensors use: elements [lo, hi)."""

    root: _StorageRef
    lo: int
    hi: int
    tensor: str  # the first kept tensor on it, for messages

    def where(self, member: str) -> str:
        return f"{member} (tensor {self.tensor!r})"


_Load = Callable[[dict[str, _Need]], dict[str, np.ndarray]]


def _read_exactly(stream: Any, start: int, count: int, where: str, total: int) -> bytearray:
    """Bytes [start, start + count) of a stream read from its current position (byte 0).

    Bytes before ``start`` are read and discarded; everything is read in chunks of at
    most ``_CHUNK`` bytes, so memory never exceeds ``count`` plus one chunk whatever the
    stream holds. ``total`` (the size the stream should have) only words the message.
    """
    skipped = 0
    while skipped < start:
        chunk = stream.read(min(_CHUNK, start - skipped))
        if not chunk:
            raise _Truncated(f"{where} ends after {skipped} of {total} bytes")
        skipped += len(chunk)
    out = bytearray(count)
    view = memoryview(out)
    got = 0
    while got < count:
        chunk = stream.read(min(_CHUNK, count - got))
        if not chunk:
            raise _Truncated(f"{where} ends after {start + got} of {total} bytes")
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return out


def _read_zip(path: str, select: Select | None) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise _Truncated(f"the zip archive cannot be read ({_one_line(exc)})") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if len(pickles) != 1:
            found = "none" if not pickles else ", ".join(pickles[:4])
            raise _NotTorch(f"a zip archive but not a torch.save checkpoint (*/data.pkl: {found})")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
            raise _NotTorch(
                "a TorchScript archive (torch.jit.save), not a torch.save state_dict checkpoint"
            )
        # torch writes the saving machine's byte order; big-endian support is this one
        # character, and keeps files saved on s390x or POWER hosts readable.
        order = b"little"
        if f"{prefix}byteorder" in names:
            order = _read_small(archive, f"{prefix}byteorder", 16).strip()
            if order not in (b"little", b"big"):
                raise _Corrupt(f"unknown byteorder {order!r:.40}")
        endian = "<" if order == b"little" else ">"
        pickled = _read_small(archive, pickles[0], 256 << 20)

        declared: dict[str, _StorageRef] = {}

        def on_storage(pid: tuple[Any, ...]) -> _StorageRef:
            stype, key, numel = _storage_fields(pid, 5)
            ref = declared.setdefault(key, _StorageRef(stype, key, numel, endian))
            if ref.stype is not stype or ref.numel != numel:
                raise _Corrupt(f"storage {key!r} is declared twice with different types")
            return ref

        obj = _unpickle(io.BytesIO(pickled), path, on_storage)

        def load(needs: dict[str, _Need]) -> dict[str, np.ndarray]:
            loaded: dict[str, np.ndarray] = {}
            for key, need in needs.items():
                loaded[key] = _read_zip_storage(archive, f"{prefix}data/{key}", need)
            return loaded

        return _build(obj, select, load)  # inside the with: storages are read lazily


def _read_small(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A metadata member (the pickle, the byte order), refused if it inflates past limit."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise _Corrupt(f"{name} declares {info.file_size} bytes, more than {limit}")
    with archive.open(info) as entry:
        data = entry.read(limit + 1)
    if len(data) > limit:
        raise _Corrupt(f"{name} holds more than {limit} bytes")
    return data


def _read_zip_storage(archive: zipfile.ZipFile, name: str, need: _Need) -> np.ndarray:
    """Elements [need.lo, need.hi) of storage member ``name``, checked before inflating."""
    root = need.root
    where = need.where(f"storage entry {name}")
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _Truncated(f"{where} is missing") from None
    itemsize = root.stype.itemsize
    total = root.root_numel * itemsize  # what the pickle says the member holds
    if info.file_size < total:
        raise _Truncated(
            f"{where} holds {info.file_size} bytes, {root.root_numel} elements need {total}"
        )
    if info.file_size > total:
        raise _Corrupt(
            f"{where} declares {info.file_size} bytes uncompressed, but its storage holds "
            f"{total} ({root.root_numel} elements): refusing to decompress it"
        )
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
        _RATIO_FLOOR, _MAX_RATIO * info.compress_size
    ):
        raise _Corrupt(
            f"{where} would inflate {info.compress_size} compressed bytes to "
            f"{info.file_size}, over {_MAX_RATIO} times (a decompression bomb; "
            "torch.save never compresses): refusing to decompress it"
        )
    start, stop = need.lo * itemsize, need.hi * itemsize
    with archive.open(info) as entry:
        raw = _read_exactly(entry, start, stop - start, where, total)
        # Read to its end, the member must end there: zipfile stops at the declared size,
        # this is the belt to its braces (and reaching the end checks the CRC).
        if stop == total and entry.read(1):
            raise _Corrupt(f"{where} holds more than the {total} bytes it declares")
    return np.frombuffer(raw, dtype=root.endian + root.stype.raw)


def _read_legacy(
    path: str, f: io.BufferedReader, size: int, select: Select | None
) -> dict[str, np.ndarray]:
    head = f.read(256)
    magic_stream = io.BytesIO(head)
    try:
        magic = _unpickle(magic_stream, path)
    except UserError:
        raise
    except Exception:
        magic = None
    if not (_is_int(magic) and magic == LEGACY_MAGIC):
        raise _NotTorch("neither a torch.save zip archive nor a legacy torch.save file")
    f.seek(magic_stream.tell())
    protocol = _unpickle(f, path)
    if protocol != LEGACY_PROTOCOL:
        raise _Corrupt(f"legacy protocol version {protocol!r:.40}, expected {LEGACY_PROTOCOL}")
    sys_info = _unpickle(f, path)
    if not isinstance(sys_info, dict):
        raise _Corrupt("the legacy sys_info record is not a dict")

    roots: dict[str, _StorageRef] = {}
    views: dict[str, _StorageRef] = {}

    def on_storage(pid: tuple[Any, ...]) -> _StorageRef:
        stype, key, numel = _storage_fields(pid, 6)
        root = roots.setdefault(key, _StorageRef(stype, key, numel, "<"))
        if root.stype is not stype:
            raise _Corrupt(f"storage {key!r} is declared with two element types")
        view = pid[5]
        if view is None:
            return root
        # Storage views (a storage sliced from a bigger one) come from PyTorch <= 0.4, the
        # era of the older VGG19 files; they are an offset into the root's data.
        if not (
            isinstance(view, tuple)
            and len(view) == 3
            and isinstance(view[0], (str, bytes))
            and all(_is_int(v) and 0 <= v <= _INT64_MAX for v in view[1:])
        ):
            raise _Corrupt(f"malformed storage view {view!r:.100}")
        view_key = view[0].decode("ascii") if isinstance(view[0], bytes) else view[0]
        return views.setdefault(
            view_key, _StorageRef(stype, key, view[2], "<", view[1], root.numel)
        )

    obj = _unpickle(f, path, on_storage)
    keys = _unpickle(f, path)
    if not isinstance(keys, list) or not all(isinstance(k, (str, bytes)) for k in keys):
        raise _Corrupt("the legacy storage key list is not a list of strings")
    data_start = f.tell()

    def load(needs: dict[str, _Need]) -> dict[str, np.ndarray]:
        # Walk every storage's element count (so a truncated file is still reported), but
        # read only the needed part of the needed ones and seek past the rest.
        f.seek(data_start)
        loaded: dict[str, np.ndarray] = {}
        for key in keys:
            key = key.decode("ascii") if isinstance(key, bytes) else key
            if key not in roots:
                raise _Corrupt(f"storage {key!r} has data but no tensor refers to it")
            root = roots[key]
            count_bytes = f.read(8)
            if len(count_bytes) < 8:
                raise _Truncated(f"the file ends before the data of storage {key!r}")
            (count,) = struct.unpack("<q", count_bytes)
            if count != root.numel:
                raise _Corrupt(
                    f"storage {key!r} holds {count} elements, the pickle says {root.numel}"
                )
            nbytes = count * root.stype.itemsize
            start = f.tell()
            if nbytes > size - start:
                raise _Truncated(
                    f"storage {key!r} needs {nbytes} bytes, only {size - start} remain"
                )
            need = needs.get(key)
            if need is not None:
                itemsize = root.stype.itemsize
                f.seek(start + need.lo * itemsize)
                where = need.where(f"storage {key!r}")
                raw = _read_exactly(f, 0, (need.hi - need.lo) * itemsize, where, nbytes)
                loaded[key] = np.frombuffer(raw, dtype=root.endian + root.stype.raw)
            f.seek(start + nbytes)
        for key, need in needs.items():
            if key not in loaded:
                raise _Truncated(f"the data of storage {key!r} (tensor {need.tensor!r}) is missing")
        return loaded

    return _build(obj, select, load)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# --------------------------------------------------------------------------------------
# From unpickled object to index, selection, and {name: array}.


def _items(obj: dict) -> list[tuple[Any, Any]]:
    # type(obj) is dict or OrderedDict (nothing else can be built); use the type's
    # method so instance attributes a hostile BUILD may have set are never consulted.
    return list(type(obj).items(obj))


def _tensor_mappings(root: Any) -> list[tuple[str, dict]]:
    """Every str-keyed dict in the object whose values are all tensors, with its path."""
    found: list[tuple[str, dict]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", root)]
    while stack:
        where, obj = stack.pop()
        if id(obj) in seen or len(seen) > 1_000_000:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            items = _items(obj)
            if items and all(isinstance(k, str) and isinstance(v, _TensorRef) for k, v in items):
                found.append((where, obj))
                continue
            children = [(f"{where}[{k!r:.40}]", v) for k, v in items]
        elif isinstance(obj, (list, tuple)):
            children = [(f"{where}[{i}]", v) for i, v in enumerate(obj)]
        else:
            continue
        stack.extend(reversed(children))
    return found


def _choose(root: Any) -> dict:
    found = _tensor_mappings(root)
    if not found:
        raise _NoTensors()
    if len(found) == 1:
        return found[0][1]
    for key in _WRAPPER_KEYS:
        preferred = [m for where, m in found if where.endswith(f"[{key!r}]")]
        if len(preferred) == 1:
            return preferred[0]
    shown = ", ".join(where or "<top>" for where, _ in found[:5])
    raise _Corrupt(f"it holds several mappings of names to tensors ({shown}); which is the model?")


def _strip_module_prefix(tensors: dict[str, _TensorRef]) -> dict[str, _TensorRef]:
    prefix = "module."
    if tensors and all(k.startswith(prefix) for k in tensors):
        return {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def _selection(select: Select | None, index: dict[str, TensorInfo]) -> dict[str, Any]:
    """{name: expected shape or None} for the names of ``index`` that ``select`` keeps."""
    if select is None:
        return dict.fromkeys(index)
    try:
        wanted = select(dict(index)) if callable(select) else select
        return {
            name: None if wanted[name] is None else tuple(wanted[name])
            for name in index
            if name in wanted
        }
    except UserError:
        raise
    except Exception as exc:  # a bug in the caller, not a broken file
        raise _SelectFailed() from exc


def _span(name: str, t: _TensorRef) -> tuple[int, int] | None:
    """The elements [lo, hi) of the root storage that tensor ``t`` reads (None: none).

    Checks, before anything is read, that the tensor lies within its storage and does
    not expand it (zero strides) by more than ``_MAX_EXPANSION`` elements.
    """
    storage = t.storage
    if storage.offset + storage.numel > storage.root_numel:
        raise _Truncated(f"storage {storage.key!r} is shorter than its declared view")
    numel = math.prod(t.size)
    if numel == 0:
        return None
    needed = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True)) + 1
    if needed > storage.numel:
        raise _Truncated(
            f"tensor {name!r} {t.size} needs {needed} elements of storage "
            f"{storage.key!r}, which holds {storage.numel}"
        )
    if numel > storage.numel + _MAX_EXPANSION:
        raise _Corrupt(f"tensor {name!r} expands {storage.numel} stored elements to {numel}")
    return storage.offset + t.offset, storage.offset + needed


def _materialise(name: str, t: _TensorRef, elements: np.ndarray | None, lo: int) -> np.ndarray:
    """Tensor ``t`` as a C-contiguous native array, from root elements [lo, ...)."""
    stype = t.storage.stype
    if elements is None:  # no element is read: an empty tensor
        return np.zeros(t.size, dtype=stype.out)
    itemsize = elements.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        elements[t.storage.offset + t.offset - lo :],
        shape=t.size,
        strides=tuple(s * itemsize for s in t.stride),
        writeable=False,
    )
    if stype.name == "BFloat16Storage":
        widened = np.array(view, dtype=np.uint32, order="C") << np.uint32(16)
        return widened.view(np.float32)
    return np.array(view, dtype=stype.out, order="C")


def _build(obj: Any, select: Select | None, load: _Load) -> dict[str, np.ndarray]:
    tensors = _strip_module_prefix(dict(_items(_choose(obj))))
    index = {name: TensorInfo(t.size, t.storage.stype.out) for name, t in tensors.items()}
    wanted = _selection(select, index)
    kept = [(name, t) for name, t in tensors.items() if name in wanted]
    # Every check on what is kept, before one byte of storage data is read.
    spans: dict[str, tuple[int, int] | None] = {}
    needs: dict[str, _Need] = {}
    for name, t in kept:
        expected = wanted[name]
        if expected is not None and expected != t.size:
            raise _ShapeMismatch(name, t.size, expected)
        spans[name] = span = _span(name, t)
        if span is None:
            continue
        key = t.storage.key
        if key in needs:
            need = needs[key]
            need.lo, need.hi = min(need.lo, span[0]), max(need.hi, span[1])
        else:
            needs[key] = _Need(_root_of(t.storage), span[0], span[1], name)
    loaded = load(needs)
    out = {}
    for name, t in kept:
        need = needs.get(t.storage.key)
        if spans[name] is None or need is None:
            out[name] = _materialise(name, t, None, 0)
        else:
            out[name] = _materialise(name, t, loaded[t.storage.key], need.lo)
    return out


def _root_of(view: _StorageRef) -> _StorageRef:
    """The root storage of a legacy storage view: same key and type, offset 0, all elements."""
    return _StorageRef(view.stype, view.key, view.root_numel, view.endian)


# --------------------------------------------------------------------------------------


def read_state_dict(
    path: str | os.PathLike[str], *, select: Select | None = None
) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch ``.pth`` checkpoint, as ``{name: np.ndarray}`` in file order.

    Reads both ``torch.save`` formats (the zip archive of PyTorch >= 1.6 and the legacy
    pickle stream) without importing torch and without executing any code the file
    names: only the globals a state_dict needs are resolved, to local stand-ins.

    If the file holds a training checkpoint that wraps the state_dict (``{"state_dict":
    ...}``, ``{"model": ...}``, ...), the one mapping of names to tensors inside is
    returned. A ``module.`` prefix (from ``nn.DataParallel``) shared by every key is
    removed. Arrays are C-contiguous, native-endian copies in the tensor's dtype
    (bfloat16 becomes float32, bool stays bool).

    Args:
        path: the ``.pth`` file.
        select: which tensors to read. None reads all. Otherwise ``{name: shape}`` (shape
            None: any), or a function given the file's index ``{name: TensorInfo(shape,
            dtype)}`` (names after the ``module.`` prefix is removed, in file order) that
            returns such a mapping, or raises UserError to refuse the file; it is called
            before any storage is read. Names it returns that the file lacks are ignored.
            Only the selected tensors are read: the storages of the others are never read
            (zip: never decompressed), and their sizes, strides and expansions are not
            checked.

    Returns:
        The selected tensors, in file order.

    Raises:
        UserError: one line naming ``path`` when the file is not a readable regular file
            (missing, a folder, a FIFO, a device: refused before it is opened), empty, not a
            PyTorch checkpoint, truncated or corrupt, asks for a global outside the
            allow-list, holds no mapping of names to tensors, when a selected tensor's
            declared shape is not the expected one (naming the tensor and both shapes), or
            when reading a selected storage would inflate more than the file declares.
    """
    shown = paths.check_input_file(path, "PyTorch checkpoint")  # a FIFO would block open()
    try:
        size = os.path.getsize(shown)
        with open(shown, "rb") as f:
            head = f.read(512)
            if not head:
                raise _NotTorch("the file is empty")
            if head[257:262] == b"ustar":
                raise _NotTorch("a tar file (the pre-0.1.10 torch.save format, not supported)")
            if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
                f.seek(0)
                return _read_legacy(shown, f, size, select)
        return _read_zip(shown, select)
    except UserError:
        raise
    except _SelectFailed as exc:
        raise exc.__cause__ from None  # the caller's own exception, unchanged
    except _ShapeMismatch as exc:
        name, found, expected = exc.args
        raise UserError(
            f"{shown} does not hold the expected network: tensor {name!r} has shape "
            f"{found}, expected {expected}"
        ) from None
    except FileNotFoundError:
        raise UserError(f"cannot read {shown}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"cannot read {shown}: it is a directory") from None
    except PermissionError:
        raise UserError(f"cannot read {shown}: permission denied") from None
    except _NotTorch as exc:
        raise UserError(f"{shown} is not a PyTorch checkpoint: {exc}") from None
    except (_Truncated, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"{shown} is truncated or corrupt: {_one_line(exc)}; download it again"
        ) from None
    except _NoTensors:
        raise UserError(
            f"no tensors found in {shown}: it holds no mapping of names to tensors"
        ) from None
    except _Corrupt as exc:
        raise UserError(f"cannot read {shown} as a PyTorch checkpoint: {_one_line(exc)}") from None
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {_one_line(exc)}") from None
    except Exception as exc:  # any malformed pickle: UnpicklingError, ValueError, ...
        raise UserError(
            f"cannot read {shown} as a PyTorch checkpoint: corrupt pickle "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from None
