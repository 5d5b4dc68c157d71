"""A labelled grid of images: column headings on top, row headings on the left."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from stylejax._src.files import atomic

_PAD = 4
_LINE = 12  # PIL's default bitmap font is about 11 px high


def write_grid(path: str, cells: list[list[np.ndarray | None]], *, row_labels: list[str],
               column_labels: list[str], title: str = "",
               cell_labels: list[list[str | None]] | None = None) -> None:
    """Writes ``cells[r][c]`` (RGB in [0, 1], all one shape, None = empty) as one PNG.

    ``cell_labels[r][c]``, where given, is written in red over the cell's top edge (a
    sweep marks a member that did not finish, e.g. "non-finite at iteration 12").

    Each label is drawn in full (long labels wrap onto several lines), so a figure can
    be read without its results file.
    """
    shaped = [cell for row in cells for cell in row if cell is not None]
    if not shaped:
        raise ValueError("a grid needs at least one image")
    height, width = shaped[0].shape[:2]
    chars = max(4, width // 6)
    wrap = lambda text: [text[i : i + chars] for i in range(0, len(text), chars)] or [""]  # noqa: E731
    column_lines = [wrap(label) for label in column_labels]
    row_width = max((len(label) for label in row_labels), default=0) * 6 + 2 * _PAD
    head = _PAD + _LINE * max((len(lines) for lines in column_lines), default=1) + _PAD
    top = (_LINE + _PAD if title else 0) + head
    rows, columns = len(cells), max(len(row) for row in cells)
    canvas = Image.new("RGB", (row_width + columns * (width + _PAD) + _PAD, top + rows * (height + _PAD)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_PAD, _PAD), title, fill=(120, 0, 0))
    for c, lines in enumerate(column_lines):
        for i, line in enumerate(lines):
            draw.text((row_width + c * (width + _PAD), top - head + _PAD + i * _LINE), line, fill="black")
    for r, row in enumerate(cells):
        y = top + r * (height + _PAD)
        if r < len(row_labels):
            draw.text((_PAD, y + height // 2 - _LINE // 2), row_labels[r], fill="black")
        for c, cell in enumerate(row):
            if cell is None:
                continue
            pixels = np.clip(np.asarray(cell) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            canvas.paste(Image.fromarray(pixels), (row_width + c * (width + _PAD), y))
            mark = cell_labels[r][c] if cell_labels and c < len(cell_labels[r]) else None
            if mark:
                for i, line in enumerate(wrap(mark)):
                    draw.text((row_width + c * (width + _PAD) + 1, y + 1 + i * _LINE), line,
                              fill=(220, 0, 0))
    with atomic.atomic_path(path) as temporary:
        canvas.save(temporary, format="PNG")
