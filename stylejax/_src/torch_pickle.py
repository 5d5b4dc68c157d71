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

The zip format (``torch.save`` since PyTorch 1.6)
-------------------------------------------------
A zip archive whose members all live in one top-level folder, named after the file
(``archive/``, ``vgg19/``, anything)::

    <name>/data.pkl          pickle (protocol 2) of the object, e.g. an OrderedDict
    <name>/data/<key>        raw bytes of storage <key>, ``numel * itemsize`` long
    <name>/byteorder         b"little" or b"big" (absent in old files: little)
    <name>/version           format version, e.g. b"3\\n"
    <name>/.format_version, <name>/.storage_alignment, <name>/.data/serialization_id

In ``data.pkl`` every tensor is ``REDUCE`` of ``GLOBAL 'torch._utils _rebuild_tensor_v2'``
with arguments ``(storage, storage_offset, size, stride, requires_grad, backward_hooks
[, metadata])``, where ``storage`` is a ``BINPERSID`` of the persistent id
``('storage', <GLOBAL 'torch FloatStorage'>, key, location, numel)``. Dtypes with no
legacy storage class (uint16/32/64) use ``_rebuild_tensor_v3``, an ``UntypedStorage``
of bytes and a trailing ``torch.<dtype>`` argument. ``nn.Parameter`` values are wrapped
in ``torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks)``.

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

Files from PyTorch 0.3 and earlier (e.g. the original torchvision ``vgg19-dcbb9e9d.pth``)
use ``torch._utils._rebuild_tensor(storage, offset, size, stride)`` instead of ``_v2``;
both are admitted. The even older tar format (PyTorch < 0.1.10) is refused by name.

Tensors become NumPy arrays: a strided view (``as_strided``) of the storage at the
tensor's offset with its size and stride, then copied into a C-contiguous native-endian
array. bfloat16 becomes float32 (exactly: a bfloat16 is the top half of a float32).
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import UserError

__all__ = ["read_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# A tensor may expand its storage with zero strides (torch keeps expanded views as
# they are), but never to more than this many elements beyond the storage: a few
# hostile bytes must not be able to ask for terabytes of memory.
_MAX_EXPANSION = 1 << 24

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


class _Corrupt(Exception):
    """Internal: the file is damaged or inconsistent; read_state_dict adds the path."""


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
        _StorageType("DoubleStorage", "f8", "float64"),
        _StorageType("FloatStorage", "f4", "float32"),
        _StorageType("HalfStorage", "f2", "float16"),
        _StorageType("BFloat16Storage", "u2", "float32"),
        _StorageType("LongStorage", "i8", "int64"),
        _StorageType("IntStorage", "i4", "int32"),
        _StorageType("ShortStorage", "i2", "int16"),
        _StorageType("CharStorage", "i1", "int8"),
        _StorageType("ByteStorage", "u1", "uint8"),
        _StorageType("BoolStorage", "u1", "bool"),
        _StorageType("ComplexFloatStorage", "c8", "complex64"),
        _StorageType("ComplexDoubleStorage", "c16", "complex128"),
    )
}
_UNTYPED = _StorageType("UntypedStorage", "u1", "uint8")


class _DType(_Frozen):
    """Stand-in for a ``torch.<dtype>`` object (``_rebuild_tensor_v3``'s dtype argument)."""

    __slots__ = ("name", "storage_type")

    def __init__(self, name: str, storage_type: _StorageType | None) -> None:
        self.name = name
        self.storage_type = storage_type  # None: a dtype NumPy cannot represent

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _dtypes() -> dict[str, _DType]:
    s = _STORAGE_TYPES
    known = {
        ("float64", "double"): s["DoubleStorage"],
        ("float32", "float"): s["FloatStorage"],
        ("float16", "half"): s["HalfStorage"],
        ("bfloat16",): s["BFloat16Storage"],
        ("int64", "long"): s["LongStorage"],
        ("int32", "int"): s["IntStorage"],
        ("int16", "short"): s["ShortStorage"],
        ("int8",): s["CharStorage"],
        ("uint8",): s["ByteStorage"],
        ("bool",): s["BoolStorage"],
        ("complex64", "cfloat"): s["ComplexFloatStorage"],
        ("complex128", "cdouble"): s["ComplexDoubleStorage"],
        ("uint16",): _StorageType("UInt16Storage", "u2", "uint16"),
        ("uint32",): _StorageType("UInt32Storage", "u4", "uint32"),
        ("uint64",): _StorageType("UInt64Storage", "u8", "uint64"),
    }
    out = {name: _DType(name, st) for names, st in known.items() for name in names}
    for name in (
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e5m2fnuz",
        "float8_e4m3fnuz",
        "float8_e8m0fnu",
        "float4_e2m1fn_x2",
        "complex32",
        "chalf",
        "qint8",
        "quint8",
        "qint32",
        "quint4x2",
        "quint2x4",
        "bits8",
        "bits16",
        "bits1x8",
        "bits2x4",
        "bits4x2",
    ):
        out[name] = _DType(name, None)
    return out


_DTYPES = _dtypes()


class _StorageRef(_Frozen):
    """A storage named by a persistent id: ``numel`` elements from ``offset`` of root ``key``.

    ``endian`` is the byte order of the stored data: ``"<"`` or ``">"``.
    """

    __slots__ = ("endian", "key", "numel", "offset", "stype")

    def __init__(
        self, stype: _StorageType, key: str, numel: int, endian: str, offset: int = 0
    ) -> None:
        self.stype = stype
        self.key = key
        self.numel = numel
        self.endian = endian
        self.offset = offset

    def __repr__(self) -> str:
        return f"<storage {self.key!r} {self.stype!r}[{self.numel}]>"


class _TensorRef(_Frozen):
    """A tensor described by the pickle, materialised only once we know we need it."""

    __slots__ = ("dtype", "offset", "size", "storage", "stride")

    def __init__(
        self,
        storage: _StorageRef,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        dtype: _DType | None,
    ) -> None:
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<tensor {self.size} of {self.storage!r}>"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) and v >= 0 for v in value):
        raise _Corrupt(f"tensor {what} {value!r} is not a tuple of non-negative ints")
    return tuple(value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: Any = None) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise _Corrupt(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    if not _is_int(offset) or offset < 0:
        raise _Corrupt(f"tensor storage offset {offset!r} is not a non-negative int")
    size_t, stride_t = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t):
        raise _Corrupt(f"tensor size {size_t} and stride {stride_t} differ in length")
    if dtype is not None and not isinstance(dtype, _DType):
        raise _Corrupt(f"tensor dtype {dtype!r} is not a torch dtype")
    return _TensorRef(storage, offset, size_t, stride_t, dtype)


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


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
    return _tensor(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, _TensorRef):
        raise _Corrupt(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch", "Size"): tuple,  # torch.Size is a tuple subclass: REDUCE (Size, (dims,))
    }
    for fn in (
        _rebuild_tensor,
        _rebuild_tensor_v2,
        _rebuild_tensor_v3,
        _rebuild_parameter,
        _rebuild_parameter_with_state,
    ):
        allowed["torch._utils", fn.__name__] = _StandIn(f"torch._utils.{fn.__name__}", fn)
    for name, stype in _STORAGE_TYPES.items():
        allowed["torch", name] = stype
    for module in ("torch", "torch.storage"):
        allowed[module, "UntypedStorage"] = _UNTYPED
    for name, dtype in _DTYPES.items():
        allowed["torch", name] = dtype
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
    if not isinstance(key, str) or not _is_int(numel) or numel < 0:
        raise _Corrupt(f"malformed storage persistent id {pid!r:.120}")
    return stype, key, numel


def _unpickle(data: Any, path: str, on_storage=None) -> Any:
    return _RestrictedUnpickler(data, path, on_storage).load()


# --------------------------------------------------------------------------------------
# Container formats. Each unpickles the object, then hands _build a fetch(storage) that
# gives the root storage's elements as a 1-D array of its raw dtype (file byte order).

_Fetch = Callable[[_StorageRef], np.ndarray]


def _read_zip(path: str) -> dict[str, np.ndarray]:
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
        order = b"little"
        if f"{prefix}byteorder" in names:
            order = archive.read(f"{prefix}byteorder").strip()
            if order not in (b"little", b"big"):
                raise _Corrupt(f"unknown byteorder {order!r:.40}")
        endian = "<" if order == b"little" else ">"
        pickled = archive.read(pickles[0])

        declared: dict[str, _StorageRef] = {}

        def on_storage(pid: tuple[Any, ...]) -> _StorageRef:
            stype, key, numel = _storage_fields(pid, 5)
            ref = declared.setdefault(key, _StorageRef(stype, key, numel, endian))
            if ref.stype is not stype or ref.numel != numel:
                raise _Corrupt(f"storage {key!r} is declared twice with different types")
            return ref

        obj = _unpickle(io.BytesIO(pickled), path, on_storage)

        loaded: dict[str, np.ndarray] = {}

        def fetch(storage: _StorageRef) -> np.ndarray:
            if storage.key not in loaded:
                name = f"{prefix}data/{storage.key}"
                try:
                    info = archive.getinfo(name)
                except KeyError:
                    raise _Truncated(f"storage entry {name} is missing") from None
                nbytes = storage.numel * storage.stype.itemsize
                if info.file_size < nbytes:
                    raise _Truncated(
                        f"storage entry {name} holds {info.file_size} bytes, "
                        f"{storage.numel} elements need {nbytes}"
                    )
                with archive.open(info) as entry:
                    raw = entry.read(nbytes)
                if len(raw) < nbytes:
                    raise _Truncated(
                        f"storage entry {name} ends after {len(raw)} of {nbytes} bytes"
                    )
                loaded[storage.key] = np.frombuffer(raw, dtype=storage.endian + storage.stype.raw)
            return loaded[storage.key]

        return _build(obj, fetch)  # inside the with: storages are read lazily


def _read_legacy(path: str, f: io.BufferedReader, size: int) -> dict[str, np.ndarray]:
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
        if not (
            isinstance(view, tuple)
            and len(view) == 3
            and isinstance(view[0], (str, bytes))
            and all(_is_int(v) and v >= 0 for v in view[1:])
        ):
            raise _Corrupt(f"malformed storage view {view!r:.100}")
        view_key = view[0].decode("ascii") if isinstance(view[0], bytes) else view[0]
        return views.setdefault(view_key, _StorageRef(stype, key, view[2], "<", offset=view[1]))

    obj = _unpickle(f, path, on_storage)
    keys = _unpickle(f, path)
    if not isinstance(keys, list) or not all(isinstance(k, (str, bytes)) for k in keys):
        raise _Corrupt("the legacy storage key list is not a list of strings")

    data: dict[str, np.ndarray] = {}
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
            raise _Corrupt(f"storage {key!r} holds {count} elements, the pickle says {root.numel}")
        nbytes = count * root.stype.itemsize
        if nbytes > size - f.tell():
            raise _Truncated(f"storage {key!r} needs {nbytes} bytes, only {size - f.tell()} remain")
        data[key] = np.frombuffer(f.read(nbytes), dtype=root.endian + root.stype.raw)

    def fetch(storage: _StorageRef) -> np.ndarray:
        if storage.key not in data:
            raise _Truncated(f"the data of storage {storage.key!r} is missing")
        return data[storage.key]

    return _build(obj, fetch)


class _NotTorch(Exception):
    """Internal: the file is not a PyTorch checkpoint at all."""


class _Truncated(Exception):
    """Internal: the file ends early or an archive member is missing or short."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# --------------------------------------------------------------------------------------
# From unpickled object to {name: array}.


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


class _NoTensors(Exception):
    """Internal: nothing in the file is a mapping of names to tensors."""


def _materialise(name: str, t: _TensorRef, fetch: _Fetch) -> np.ndarray:
    storage = t.storage
    stype = storage.stype
    if t.dtype is not None:  # _rebuild_tensor_v3: bytes reinterpreted as t.dtype
        if t.dtype.storage_type is None:
            raise _Corrupt(f"tensor {name!r} has dtype {t.dtype!r}, which NumPy cannot hold")
        stype = t.dtype.storage_type
    root = fetch(storage)
    if root.size < storage.offset + storage.numel:
        raise _Truncated(f"storage {storage.key!r} is shorter than its declared view")
    elements = root[storage.offset : storage.offset + storage.numel]
    if stype is not storage.stype:  # reinterpret the bytes, keeping the file's byte order
        usable = elements.nbytes - elements.nbytes % stype.itemsize
        elements = elements.view(np.uint8)[:usable].view(storage.endian + stype.raw)
    numel = math.prod(t.size)
    if numel == 0:
        return np.zeros(t.size, dtype=stype.out)
    needed = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True)) + 1
    if needed > elements.size:
        raise _Truncated(
            f"tensor {name!r} {t.size} needs {needed} elements of storage "
            f"{storage.key!r}, which holds {elements.size}"
        )
    if numel > elements.size + _MAX_EXPANSION:
        raise _Corrupt(f"tensor {name!r} expands {elements.size} stored elements to {numel}")
    itemsize = elements.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        elements[t.offset :],
        shape=t.size,
        strides=tuple(s * itemsize for s in t.stride),
        writeable=False,
    )
    if stype.name == "BFloat16Storage":
        widened = np.array(view, dtype=np.uint32, order="C") << np.uint32(16)
        return widened.view(np.float32)
    return np.array(view, dtype=stype.out, order="C")


def _strip_module_prefix(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    prefix = "module."
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch ``.pth`` checkpoint, as ``{name: np.ndarray}`` in file order.

    Reads both ``torch.save`` formats (the zip archive of PyTorch >= 1.6 and the legacy
    pickle stream) without importing torch and without executing any code the file
    names: only the globals a state_dict needs are resolved, to local stand-ins.

    If the file holds a training checkpoint that wraps the state_dict (``{"state_dict":
    ...}``, ``{"model": ...}``, ...), the one mapping of names to tensors inside is
    returned. A ``module.`` prefix (from ``nn.DataParallel``) shared by every key is
    removed. Arrays are C-contiguous, native-endian copies in the tensor's dtype
    (bfloat16 becomes float32, bool stays bool).

    Raises:
        UserError: one line naming ``path`` when the file is missing, empty, not a
            PyTorch checkpoint, truncated or corrupt, asks for a global outside the
            allow-list, or holds no mapping of names to tensors.
    """
    shown = os.fspath(path)
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
                return _read_legacy(shown, f, size)
        return _read_zip(shown)
    except UserError:
        raise
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


def _build(obj: Any, fetch: _Fetch) -> dict[str, np.ndarray]:
    chosen = _choose(obj)
    state = {name: _materialise(name, t, fetch) for name, t in _items(chosen)}
    return _strip_module_prefix(state)
