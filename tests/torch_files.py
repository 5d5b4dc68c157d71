"""Fabricated PyTorch ``.pth`` files, byte for byte in the layout ``torch.save`` writes.

torch is not installed in CI, so tests that need a ``.pth`` (the reader in
``stylejax._src.weights.torch_pickle``, the VGG19 converter) build one here::

    write_zip_checkpoint(path, {"features.0.weight": w, "features.0.bias": b})
    write_legacy_checkpoint(path, state_dict)

The pickle is produced by the pure-Python pickler with two hooks, exactly as torch's
own ``persistent_id`` and ``Tensor.__reduce_ex__`` would: a NumPy array pickles as
``REDUCE`` of ``GLOBAL 'torch._utils _rebuild_tensor_v2'`` with ``(storage, offset,
size, stride, False, OrderedDict())``, and its storage as ``BINPERSID`` of
``('storage', GLOBAL 'torch FloatStorage', key, 'cpu', numel)`` (legacy: one more
field, ``None``). Arrays that are views of one base array (``base.T``, ``base[1]``,
``base[:, ::2]``) share one storage with the view's offset and strides, like tensors
that share storage in torch. A ``dict`` whose values are all arrays is written as a
``collections.OrderedDict``, as ``Module.state_dict()`` returns one; other dicts,
lists and scalars are written as they are (for wrapped training checkpoints).
``Parameter(array)`` is written as an ``nn.Parameter`` and ``BFloat16(bits)`` as a
bfloat16 tensor. For the zip format and the reduction of a ``state_dict()``, the
output was checked to be byte-identical to torch 2.13's ``data.pkl`` (see
``tests/test_torch_pickle.py``), and torch.load(weights_only=True) reads both formats.

For hostile archives, ``rewrite_zip`` copies an archive with members replaced, dropped or
deflated (``zero_chunks`` streams gigabytes of zeros in bounded memory), and
``set_declared_size`` makes the central directory claim another uncompressed size.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class _TorchGlobal:
    """Pickles as ``GLOBAL 'module name'`` (torch is not importable to look it up)."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: Any) -> Any:  # the pickler insists a reduce function is callable
        raise TypeError(f"{self.module}.{self.name} is a stand-in for pickling only")


REBUILD_TENSOR_V2 = _TorchGlobal("torch._utils", "_rebuild_tensor_v2")
REBUILD_TENSOR_V1 = _TorchGlobal("torch._utils", "_rebuild_tensor")  # PyTorch <= 0.3
REBUILD_PARAMETER = _TorchGlobal("torch._utils", "_rebuild_parameter")
STORAGE_TYPES = {
    np.dtype(dtype): _TorchGlobal("torch", name)
    for dtype, name in (
        ("float64", "DoubleStorage"),
        ("float32", "FloatStorage"),
        ("float16", "HalfStorage"),
        ("int64", "LongStorage"),
        ("int32", "IntStorage"),
        ("int16", "ShortStorage"),
        ("int8", "CharStorage"),
        ("uint8", "ByteStorage"),
        ("bool", "BoolStorage"),
        ("complex64", "ComplexFloatStorage"),
        ("complex128", "ComplexDoubleStorage"),
    )
}
BFLOAT16_STORAGE = _TorchGlobal("torch", "BFloat16Storage")


class Parameter:
    """An array to be written as ``torch.nn.Parameter`` (``_rebuild_parameter``)."""

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        self.data = data
        self.requires_grad = requires_grad


class BFloat16:
    """A bfloat16 tensor, given as its uint16 bit patterns (the top half of a float32)."""

    def __init__(self, bits: np.ndarray) -> None:
        if bits.dtype != np.uint16:
            raise TypeError("BFloat16 takes the uint16 bit patterns")
        self.bits = bits

    @classmethod
    def from_float32(cls, values: np.ndarray) -> BFloat16:
        """Round float32 values to bfloat16 (to nearest, ties to even; finite values)."""
        u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        return cls(rounded.astype(np.uint16))

    def to_float32(self) -> np.ndarray:
        return (self.bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


class _Storage:
    """One storage: a flat C-contiguous array, its pickle key and storage class."""

    def __init__(self, flat: np.ndarray, key: str, storage_type: _TorchGlobal) -> None:
        self.flat = flat
        self.key = key
        self.storage_type = storage_type


def _root(arr: np.ndarray) -> np.ndarray:
    """The array that owns arr's memory (through as_strided/broadcast_to wrappers too)."""
    root, obj = arr, arr.base
    while obj is not None:
        if isinstance(obj, np.ndarray):
            root = obj
        obj = getattr(obj, "base", None)
    return root


def _view_of(arr: np.ndarray) -> tuple[np.ndarray, int, tuple[int, ...]] | None:
    """(root, element offset, element strides) when arr is a plain view of a contiguous root."""
    root = _root(arr)
    itemsize = arr.dtype.itemsize
    start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    if (
        root.dtype != arr.dtype
        or not root.flags.c_contiguous
        or start < 0
        or start % itemsize
        or any(s < 0 or s % itemsize for s in arr.strides)
    ):
        return None
    return root, start // itemsize, tuple(s // itemsize for s in arr.strides)


def _torch_like(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        items = [(k, _torch_like(v)) for k, v in obj.items()]
        tensors = (np.ndarray, Parameter, BFloat16)
        if items and all(isinstance(v, tensors) for _, v in items):
            return collections.OrderedDict(items)
        return type(obj)(items) if isinstance(obj, dict) else dict(items)
    if isinstance(obj, list):
        return [_torch_like(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_torch_like(v) for v in obj)
    return obj


class _TorchPickler(pickle._Pickler):
    """The pure-Python pickler (protocol 2) with torch.save's tensor and storage hooks."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file: io.BytesIO, *, legacy: bool, torch03: bool = False) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.torch03 = torch03
        self.storages: dict[int, _Storage] = {}  # id(root array) -> storage

    def save_torch_global(self, obj: _TorchGlobal) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_TorchGlobal] = save_torch_global

    def _storage(self, root: np.ndarray, storage_type: _TorchGlobal) -> _Storage:
        if id(root) not in self.storages:
            n = len(self.storages)
            # zip: keys 0, 1, ... in order of appearance; legacy: torch uses the
            # storage's C pointer, a large decimal number.
            key = str(94_000_000_000_000 + 4096 * n) if self.legacy else str(n)
            self.storages[id(root)] = _Storage(root.reshape(-1), key, storage_type)
        return self.storages[id(root)]

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, _Storage):
            return None
        if self.legacy:
            # torch's legacy writer formats the key afresh for every reference
            # (str(storage._cdata)), so a shared storage's key is written twice.
            return ("storage", obj.storage_type, str(int(obj.key)), "cpu", obj.flat.size, None)
        # The zip writer keeps one key string per storage: later references BINGET it.
        return ("storage", obj.storage_type, obj.key, "cpu", obj.flat.size)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Parameter):
            hooks = collections.OrderedDict()
            return REBUILD_PARAMETER, (obj.data, obj.requires_grad, hooks)
        if isinstance(obj, BFloat16):
            bits = np.ascontiguousarray(obj.bits)
            storage = self._storage(bits, BFLOAT16_STORAGE)
            return self._tensor(storage, 0, bits.shape, _strides(bits))
        if isinstance(obj, np.ndarray):
            if obj.dtype not in STORAGE_TYPES:
                raise TypeError(f"no torch storage type for {obj.dtype}")
            view = _view_of(obj)
            if view is None:
                obj = np.ascontiguousarray(obj)
                view = (obj, 0, _strides(obj))
            root, offset, strides = view
            storage = self._storage(root, STORAGE_TYPES[obj.dtype])
            return self._tensor(storage, offset, obj.shape, strides)
        return NotImplemented

    def _tensor(
        self, storage: _Storage, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
    ):
        if self.torch03:
            return REBUILD_TENSOR_V1, (storage, offset, tuple(shape), tuple(strides))
        hooks = collections.OrderedDict()
        args = (storage, offset, tuple(shape), tuple(strides), False, hooks)
        return REBUILD_TENSOR_V2, args


def _strides(arr: np.ndarray) -> tuple[int, ...]:
    return tuple(s // arr.dtype.itemsize for s in arr.strides)


def _pickle(obj: Any, *, legacy: bool, torch03: bool = False) -> tuple[bytes, list[_Storage]]:
    buf = io.BytesIO()
    pickler = _TorchPickler(buf, legacy=legacy, torch03=torch03)
    pickler.dump(_torch_like(obj))
    return buf.getvalue(), list(pickler.storages.values())


def data_pickle(state_dict: Mapping[str, Any]) -> bytes:
    """The ``data.pkl`` that ``write_zip_checkpoint`` would store for ``state_dict``."""
    return _pickle(state_dict, legacy=False)[0]


def write_zip_checkpoint(
    path,
    state_dict: Mapping[str, Any],
    *,
    archive_name: str = "archive",
    byteorder: str = "little",
    data_pkl: bytes | None = None,
) -> None:
    """Write ``state_dict`` as ``torch.save`` (PyTorch >= 1.6) does: a zip archive.

    Members, all under ``archive_name/``, in torch's order: ``data.pkl``,
    ``.format_version``, ``.storage_alignment``, ``byteorder``, ``data/<key>`` (raw
    storage bytes in ``byteorder``), ``version``, ``.data/serialization_id``; stored,
    not compressed. ``data_pkl`` replaces the pickle (for hostile or broken files).
    """
    if byteorder not in ("little", "big"):
        raise ValueError(byteorder)
    pickled, storages = _pickle(state_dict, legacy=False)
    endian = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive_name}/data.pkl", pickled if data_pkl is None else data_pkl)
        z.writestr(f"{archive_name}/.format_version", b"1")
        z.writestr(f"{archive_name}/.storage_alignment", b"64")
        z.writestr(f"{archive_name}/byteorder", byteorder.encode())
        for storage in storages:
            raw = storage.flat.astype(storage.flat.dtype.newbyteorder(endian)).tobytes()
            z.writestr(f"{archive_name}/data/{storage.key}", raw)
        z.writestr(f"{archive_name}/version", b"3\n")
        z.writestr(f"{archive_name}/.data/serialization_id", b"0" * 40)


def write_legacy_checkpoint(path, state_dict: Mapping[str, Any], *, torch03: bool = False) -> None:
    """Write ``state_dict`` as legacy ``torch.save`` does (< 1.6, or with
    ``_use_new_zipfile_serialization=False``): pickles of the magic number, the
    protocol version 1001 and a sys_info dict, then the object, then the sorted list
    of storage keys, then per key an int64 little-endian element count and the
    storage's little-endian bytes.

    ``torch03=True`` reduces tensors as PyTorch 0.3 and earlier did (the era of the
    original torchvision VGG19 file): ``_rebuild_tensor(storage, offset, size, stride)``.
    """
    pickled, storages = _pickle(state_dict, legacy=True, torch03=torch03)
    sys_info = {
        "protocol_version": LEGACY_PROTOCOL,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    by_key = {s.key: s for s in storages}
    keys = sorted(by_key)
    with open(path, "wb") as f:
        f.write(pickle.dumps(LEGACY_MAGIC, protocol=2))
        f.write(pickle.dumps(LEGACY_PROTOCOL, protocol=2))
        f.write(pickle.dumps(sys_info, protocol=2))
        f.write(pickled)
        f.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            flat = by_key[key].flat
            f.write(struct.pack("<q", flat.size))
            f.write(flat.astype(flat.dtype.newbyteorder("<")).tobytes())


def zero_chunks(nbytes: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """``nbytes`` zero bytes, in chunks (to stream a big member without holding it)."""
    block = bytes(chunk)
    for start in range(0, nbytes, chunk):
        yield block[: min(chunk, nbytes - start)]


def rewrite_zip(
    src,
    dst,
    replace: Mapping[str, bytes | Iterable[bytes]] | None = None,
    *,
    drop: Collection[str] = (),
    deflate: Collection[str] = (),
) -> None:
    """Copy the zip archive ``src`` to ``dst`` member by member, in order.

    ``replace`` gives new data for some members (bytes, or an iterable of byte chunks
    written as they come); members in ``drop`` are left out; members in ``deflate`` are
    written compressed (ZIP_DEFLATED), the others stored as torch stores them.
    """
    replace = dict(replace or {})
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            if name in drop:
                continue
            data = replace.pop(name, None)
            if data is None:
                data = old.read(name)
            method = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            with new.open(info, "w") as out:
                for chunk in [data] if isinstance(data, bytes) else data:
                    out.write(chunk)
    if replace:
        raise KeyError(f"no such members: {sorted(replace)}")


def set_declared_size(path, member: str, size: int) -> None:
    """Make the central directory of ``path`` claim ``size`` uncompressed bytes for
    ``member`` (what zipfile believes; the local header and the data are unchanged)."""
    if not 0 <= size < 0xFFFFFFFF:
        raise ValueError(size)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    raw_name = member.encode()
    pos = blob.find(b"PK\x01\x02")
    while pos >= 0:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", blob, pos + 28)
        if bytes(blob[pos + 46 : pos + 46 + name_len]) == raw_name:
            usize = struct.unpack_from("<I", blob, pos + 24)[0]
            if usize == 0xFFFFFFFF:  # the real size is in the zip64 extra field
                extra = pos + 46 + name_len
                header_id, _ = struct.unpack_from("<HH", blob, extra)
                assert header_id == 1, "expected the zip64 extra field first"
                struct.pack_into("<Q", blob, extra + 4, size)
            else:
                struct.pack_into("<I", blob, pos + 24, size)
            with open(path, "wb") as f:
                f.write(blob)
            return
        pos = blob.find(b"PK\x01\x02", pos + 46 + name_len + extra_len + comment_len)
    raise KeyError(member)
