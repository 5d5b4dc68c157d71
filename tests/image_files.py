"""Image files the tests fabricate."""

import io
import struct
import zlib

from PIL import Image


def png_declaring(path, width: int, height: int):
    """A valid 16x16 PNG of a few hundred bytes whose header is rewritten to declare
    ``width`` x ``height`` px: what a decompression bomb shows before its pixels are
    decoded. Returns ``path`` as a str."""
    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"IHDR")
    data[at + 4:at + 12] = struct.pack(">II", width, height)
    data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
    path.write_bytes(bytes(data))
    return str(path)
