"""Read a MATLAB 5 ``.mat`` file, reading only the arrays the caller asks for.

Why not ``scipy.io.loadmat``
----------------------------
``loadmat`` reads every array of the file into memory, whatever its size: a few
kilobytes of compressed zeros that declare a gigabyte array become a gigabyte, and a
MatConvNet VGG19 file's fully connected layers (400 MB, dropped by the conversion) are
read all the same. This reader walks the file's structure, hands each numeric array's
declared shape to the caller's ``want`` before one byte of its data is read, and skips
the data of every array not wanted (a ``seek`` in an uncompressed file; inflated in
bounded chunks and discarded in a compressed one).

Bounds, all checked before the bytes they govern are read:

* a compressed element (``miCOMPRESSED``) may not declare more than ``_MAX_RATIO`` times
  its compressed size (and more than ``_RATIO_FLOOR`` bytes): trained weights barely
  compress, so anything beyond is a decompression bomb;
* an element may not declare more bytes than its parent holds, nor than remain in the
  file; an array's data must be exactly its declared shape times its element size;
* at most ``_MAX_NODES`` arrays, nested at most ``_MAX_DEPTH`` deep, and at most
  ``_MAX_TEXT`` characters of text in all.

The format (MATLAB's "MAT-File Format", level 5)
------------------------------------------------
A 128-byte header (text beginning ``MATLAB 5.0 MAT-file``, the subsystem offset, the
version 0x0100, and ``IM`` or ``MI``: the byte order of everything after), then one data
element per variable: an ``miMATRIX`` (type 14), or an ``miCOMPRESSED`` (15) whose bytes
are a zlib stream of one ``miMATRIX``. A data element is a tag (type, byte count: two
uint32) followed by its bytes, padded to a multiple of 8; a "small" element of at most 4
bytes packs type and count into the first uint32 (count in the high 16 bits) and its
bytes into the second. An ``miMATRIX`` holds, as sub-elements: array flags (class in
the low byte; 0x0800 complex, 0x0200 logical), dimensions (int32), the name (empty
inside cells and structs), then by class: for a numeric or char array its real part
(and imaginary part), stored in any numeric type (MATLAB stores small integers of a
double array as uint8, say); for a cell, one ``miMATRIX`` per element, in column-major
order; for a struct, the field name length, the field names (null-padded to that
length), then one ``miMATRIX`` per element and field; an object adds its class name
before the struct part. Sparse, function-handle and opaque (class) arrays are skipped.

What comes back: a numeric array as a NumPy array of its declared shape (column-major,
as MATLAB holds it) in its class's dtype (bool for logical); a char array as a str (a
list of its rows when it has several); a cell as :class:`Cell`; a struct or object as
:class:`Struct`; anything not read as :class:`Unread`, which keeps the kind and the
declared shape for messages.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import zlib
from collections.abc import Callable, Collection
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from stylejax._src.errors import UserError
from stylejax._src.files import paths

__all__ = ["Cell", "Struct", "Unread", "Want", "read_mat"]

HEADER = b"MATLAB 5.0 MAT-file"
_HEADER_SIZE = 128

# Data element types (miINT8 ...) and the NumPy type of their bytes.
_MI_UINT32, _MI_INT32, _MI_MATRIX, _MI_COMPRESSED = 6, 5, 14, 15
_MI_DTYPES = {
    1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8",
    16: "u1", 17: "u2", 18: "u4",  # miUTF8, miUTF16, miUTF32 (char data)
}
_TEXT_CODECS = {1: "utf-8", 2: "utf-8", 16: "utf-8", 3: "utf-16", 4: "utf-16", 17: "utf-16",
                5: "utf-32", 6: "utf-32", 18: "utf-32"}

# Array classes (mxCELL_CLASS ...).
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE = 1, 2, 3, 4, 5
_NUMERIC = {6: "float64", 7: "float32", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16",
            12: "int32", 13: "uint32", 14: "int64", 15: "uint64"}
_KINDS = {_CELL: "cell", _STRUCT: "struct", _OBJECT: "object", _CHAR: "char", _SPARSE: "sparse",
          16: "function handle", 17: "opaque object", 6: "double", 7: "single"}
_COMPLEX, _LOGICAL = 0x0800, 0x0200

# The same rule as for PyTorch zip members (torch_pickle): refuse an element inflating
# more than _MAX_RATIO times its compressed size, once past _RATIO_FLOOR bytes.
_MAX_RATIO = 100
_RATIO_FLOOR = 1 << 20
_MAX_NODES = 1 << 16  # arrays in the file: a MatConvNet VGG19 holds about 3,000
_MAX_DEPTH = 32
_MAX_TEXT = 1 << 22  # characters read in all; a longer text is left unread
_MAX_CHARS = 1 << 12  # characters of one char array that is read
_MAX_META = 1 << 16  # bytes of one flags, dimensions, name or field-name element
_CHUNK = 1 << 20


class Unread(NamedTuple):
    """An array left unread: its kind ("single", "cell", "sparse", ...) and declared shape."""

    kind: str
    shape: tuple[int, ...]


@dataclasses.dataclass
class Cell:
    """A cell array: its shape and its items in column-major order."""

    shape: tuple[int, ...]
    items: list[Any]


@dataclasses.dataclass
class Struct:
    """A struct (or object) array: its shape, field names, and one dict per element."""

    shape: tuple[int, ...]
    fields: tuple[str, ...]
    elements: list[dict[str, Any]]


# want(path, shape, structs) -> read this numeric array? ``path`` names it from the
# variable down: ("layers", 3, 0, "weights", 0) is item 3 of cell ``layers``, element 0
# of the struct there, field ``weights``, item 0 of that cell. ``structs`` holds the
# fields read so far of each enclosing struct element, innermost last.
Want = Callable[[tuple, tuple[int, ...], list[dict[str, Any]]], bool]


class _Corrupt(Exception):
    """Internal: the file is damaged or inconsistent; read_mat adds the path."""


class _Bomb(Exception):
    """Internal: a compressed element declares far more than it could hold honestly."""


class _FileStream:
    """The uncompressed bytes of the file, up to ``end``; a skip is a seek."""

    def __init__(self, f: BinaryIO, end: int) -> None:
        self._f = f
        self._end = end

    def read(self, n: int) -> bytes:
        if n > self._end - self._f.tell():
            raise _Corrupt(f"the file ends before the {n} bytes an element declares")
        data = self._f.read(n)
        if len(data) < n:
            raise _Corrupt("the file ends early")
        return data

    def skip(self, n: int) -> None:
        if n > self._end - self._f.tell():
            raise _Corrupt(f"the file ends before the {n} bytes an element declares")
        self._f.seek(n, os.SEEK_CUR)


class _InflatedStream:
    """The inflated bytes of a zlib stream of ``size`` compressed bytes at the file's
    current position, produced at most ``_CHUNK`` at a time."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._left = size
        self._z = zlib.decompressobj()
        self._pending = b""

    def _inflate(self, limit: int) -> bytes:
        while True:
            if not self._pending and self._left and not self._z.eof:
                chunk = self._f.read(min(_CHUNK, self._left))
                if not chunk:
                    raise _Corrupt("the file ends inside a compressed element")
                self._left -= len(chunk)
                self._pending = chunk
            try:
                out = self._z.decompress(self._pending, limit)
            except zlib.error as error:
                raise _Corrupt(f"a compressed element is damaged ({error})") from None
            self._pending = self._z.unconsumed_tail
            if out or self._z.eof or not (self._pending or self._left):
                return out

    def read(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            out = self._inflate(min(_CHUNK, n - got))
            if not out:
                raise _Corrupt("a compressed element ends before the bytes it declares")
            parts.append(out)
            got += len(out)
        return b"".join(parts)

    def skip(self, n: int) -> None:
        while n > 0:
            out = self._inflate(min(_CHUNK, n))
            if not out:
                raise _Corrupt("a compressed element ends before the bytes it declares")
            n -= len(out)


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


class _Reader:
    def __init__(self, endian: str, want: Want) -> None:
        self.endian = endian
        self.want = want
        self.nodes = 0
        self.text = 0

    # ------------------------------------------------------------------ data elements

    def tag(self, stream, limit: int) -> tuple[int, int, bytes | None, int]:
        """(type, byte count, the bytes of a small element or None, bytes it occupies)."""
        if limit < 8:
            raise _Corrupt("an element overruns the array that holds it")
        raw = stream.read(8)
        word, count = struct.unpack(self.endian + "II", raw)
        if word >> 16:
            small = word >> 16
            if small > 4:
                raise _Corrupt(f"a small data element declares {small} bytes")
            return word & 0xFFFF, small, raw[4 : 4 + small], 8
        size = 8 + _pad8(count)
        if size > limit:
            raise _Corrupt(f"an element of {count} bytes overruns the {limit - 8} its array holds")
        return word, count, None, size

    def small_data(self, stream, limit: int) -> tuple[int, bytes, int]:
        """A metadata element (flags, dimensions, names): (type, bytes, bytes occupied)."""
        mtype, count, small, size = self.tag(stream, limit)
        if small is not None:
            return mtype, small, size
        if count > _MAX_META:
            raise _Corrupt(f"a header element declares {count} bytes")
        data = stream.read(count)
        stream.skip(size - 8 - count)
        return mtype, data, size

    def numbers(self, mtype: int, data: bytes, what: str) -> np.ndarray:
        if mtype not in _MI_DTYPES or len(data) % np.dtype(_MI_DTYPES[mtype]).itemsize:
            raise _Corrupt(f"malformed {what} element")
        return np.frombuffer(data, self.endian + _MI_DTYPES[mtype])

    # ------------------------------------------------------------------ arrays

    def matrix(self, stream, count: int, path: tuple, structs: list, names=None) -> tuple[str, Any]:
        """The name and value of an miMATRIX of ``count`` bytes (its tag already read).

        With ``names``, a variable whose name is not among them is not read: (name, None),
        with the rest of its bytes left in the stream for the caller to skip.
        """
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise _Corrupt(f"it holds more than {_MAX_NODES} arrays")
        if len(structs) > _MAX_DEPTH or len(path) > 4 * _MAX_DEPTH:
            raise _Corrupt(f"arrays are nested more than {_MAX_DEPTH} deep")
        if count == 0:  # an empty array
            return "", np.zeros((0, 0))
        left = count
        mtype, flags_data, used = self.small_data(stream, left)
        left -= used
        flags = self.numbers(mtype, flags_data, "array flags")
        if mtype != _MI_UINT32 or flags.size < 1:
            raise _Corrupt("malformed array flags")
        cls, complex_, logical = int(flags[0]) & 0xFF, int(flags[0]) & _COMPLEX, int(flags[0]) & _LOGICAL
        mtype, dims_data, used = self.small_data(stream, left)
        left -= used
        dims = self.numbers(mtype, dims_data, "dimensions")
        if mtype != _MI_INT32 or dims.size > 64 or (dims < 0).any():
            raise _Corrupt("malformed dimensions")
        shape = tuple(int(d) for d in dims)
        mtype, name_data, used = self.small_data(stream, left)
        left -= used
        name = name_data.decode("utf-8", "replace").rstrip("\0")
        if names is not None and name not in names:
            return name, None  # the caller skips the rest
        if not path:
            path = (name,)
        if cls in _NUMERIC:
            value, left = self.numeric(stream, left, cls, shape, complex_, logical, path, structs)
        elif cls == _CHAR:
            value, left = self.chars(stream, left, shape)
        elif cls == _CELL:
            items = []
            for i in range(math.prod(shape)):
                item, used = self.element(stream, left, (*path, i), structs)
                left -= used
                items.append(item)
            value = Cell(shape, items)
        elif cls in (_STRUCT, _OBJECT):
            value, left = self.structure(stream, left, cls, shape, path, structs)
        else:
            value = Unread(_KINDS.get(cls, f"class {cls}"), shape)
        stream.skip(left)  # whatever the array holds beyond what is read (padding, parts)
        return name, value

    def element(self, stream, limit: int, path: tuple, structs: list) -> tuple[Any, int]:
        """The value of the miMATRIX element of a cell item or struct field, and the bytes
        the element occupies."""
        mtype, count, small, size = self.tag(stream, limit)
        if mtype != _MI_MATRIX or small is not None:
            raise _Corrupt(f"a cell or struct holds an element of type {mtype}, not an array")
        value = self.matrix(stream, count, path, structs)[1]
        stream.skip(size - 8 - count)
        return value, size

    def numeric(self, stream, left, cls, shape, complex_, logical, path, structs):
        mtype, count, small, size = self.tag(stream, left)
        if mtype not in _MI_DTYPES or mtype in (16, 17, 18):
            raise _Corrupt(f"numeric data of type {mtype}")
        stored = np.dtype(self.endian + _MI_DTYPES[mtype])
        if count != math.prod(shape) * stored.itemsize:
            raise _Corrupt(
                f"an array of shape {shape} holds {count} bytes, not "
                f"{math.prod(shape)} elements of {stored.itemsize} bytes"
            )
        kind = "logical" if logical else _KINDS.get(cls, _NUMERIC[cls])
        if complex_ or not self.want(path, shape, structs):
            if small is None:
                stream.skip(size - 8)
            return Unread(f"complex {kind}" if complex_ else kind, shape), left - size
        data = small if small is not None else stream.read(count)
        if small is None:
            stream.skip(size - 8 - count)
        flat = np.frombuffer(data, stored)
        out = np.dtype(bool) if logical else np.dtype(_NUMERIC[cls])
        return flat.astype(out).reshape(shape, order="F"), left - size

    def chars(self, stream, left, shape):
        mtype, count, small, size = self.tag(stream, left)
        n = math.prod(shape)
        if mtype not in _TEXT_CODECS:
            raise _Corrupt(f"char data of type {mtype}")
        if n > _MAX_CHARS or self.text + n > _MAX_TEXT or count > 4 * n:
            if small is None:
                stream.skip(size - 8)
            return Unread("char", shape), left - size
        self.text += n
        data = small if small is not None else stream.read(count)
        if small is None:
            stream.skip(size - 8 - count)
        codec = _TEXT_CODECS[mtype]
        if codec != "utf-8":
            codec += "-le" if self.endian == "<" else "-be"
        text = data.decode(codec, "replace")
        if len(shape) == 2 and shape[0] > 1 and len(text) == n:
            rows, cols = shape
            return [text[r::rows][:cols] for r in range(rows)], left - size
        return text, left - size

    def structure(self, stream, left, cls, shape, path, structs):
        if cls == _OBJECT:
            _, _, used = self.small_data(stream, left)  # the class name
            left -= used
        mtype, length_data, used = self.small_data(stream, left)
        left -= used
        lengths = self.numbers(mtype, length_data, "field name length")
        if lengths.size != 1 or not 0 < int(lengths[0]) <= 4096:
            raise _Corrupt("malformed field name length")
        length = int(lengths[0])
        _, names_data, used = self.small_data(stream, left)
        left -= used
        fields = tuple(
            names_data[i : i + length].split(b"\0", 1)[0].decode("utf-8", "replace")
            for i in range(0, len(names_data) - length + 1, length)
        )
        elements = []
        for index in range(math.prod(shape)):
            element: dict[str, Any] = {}
            elements.append(element)
            for field in fields:
                element[field], used = self.element(
                    stream, left, (*path, index, field), [*structs, element]
                )
                left -= used
        return Struct(shape, fields, elements), left


def read_mat(path: str, want: Want, names: Collection[str] | None = None) -> dict[str, Any]:
    """The variables of a MATLAB 5 file, reading only the numeric arrays ``want`` accepts.

    Args:
      path: the file; refused before it is opened unless it is a readable regular file.
      want: called with each numeric array's path, declared shape and enclosing struct
        elements (see :data:`Want`) before its data is read; arrays it refuses come back
        as :class:`Unread`. Char arrays of at most 4,096 characters are always read.
      names: the variables to read (None: all); the others are skipped unread (a
        compressed one is not even inflated past its name).

    Raises:
      UserError: one line naming ``path``: not a MATLAB 5 file, truncated or corrupt, or
        a compressed element that would inflate past the ratio limit.
    """
    path = paths.check_input_file(path, "MATLAB file")  # a FIFO would block open()
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header = f.read(_HEADER_SIZE)
            if len(header) < _HEADER_SIZE or not header.startswith(HEADER):
                raise _Corrupt("no MATLAB 5 header")
            if header[126:128] == b"IM":
                endian = "<"
            elif header[126:128] == b"MI":
                endian = ">"
            else:
                raise _Corrupt(f"unknown byte order mark {header[126:128]!r}")
            reader = _Reader(endian, want)
            variables: dict[str, Any] = {}
            while size - f.tell() >= 8:
                start = f.tell()
                mtype, count = struct.unpack(endian + "II", f.read(8))
                end = start + 8 + count
                if end > size:
                    raise _Corrupt(f"a variable declares {count} bytes, only {size - start - 8} remain")
                if mtype == _MI_COMPRESSED:
                    stream = _InflatedStream(f, count)
                    mtype, inner, small, _ = reader.tag(stream, 1 << 62)
                    if mtype != _MI_MATRIX or small is not None:
                        raise _Corrupt(f"a compressed element holds type {mtype}, not an array")
                    if inner > max(_RATIO_FLOOR, _MAX_RATIO * count):
                        raise _Bomb(count, inner)
                    name, value = reader.matrix(stream, inner, (), [], names)
                elif mtype == _MI_MATRIX:
                    name, value = reader.matrix(_FileStream(f, end), count, (), [], names)
                else:
                    name, value = "", None  # other top-level data (e.g. a subsystem block)
                if name and value is not None:
                    variables[name] = value
                f.seek(end)
            return variables
    except UserError:
        raise
    except _Bomb as error:
        compressed, inflated = error.args
        raise UserError(
            f"{path}: a compressed variable would inflate {compressed} bytes to {inflated}, "
            f"over {_MAX_RATIO} times (a decompression bomb): refusing to decompress it"
        ) from None
    except _Corrupt as error:
        raise UserError(f"{path} is a truncated or corrupt MATLAB file: {error}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
