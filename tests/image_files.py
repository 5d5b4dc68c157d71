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


def sample_pair_files(folder, size: int = 32, third: bool = False) -> list[str]:
    """stylejax's procedural sample pair at ``size`` px written as PNGs in ``folder``
    (``c.png``, ``s.png``; with ``third``, ``t.png``, the style flipped): their paths."""
    import numpy as np

    from stylejax._src import samples
    from stylejax._src.files import images

    content, style = samples.sample_images(size)
    pictures = [("c.png", content), ("s.png", style)]
    if third:
        pictures.append(("t.png", np.ascontiguousarray(style[::-1])))
    paths = []
    for name, picture in pictures:
        images.save_png(folder / name, picture)
        paths.append(str(folder / name))
    return paths
