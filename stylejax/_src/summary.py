"""A labelled side-by-side panel of images (content | style | result) with a caption."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from stylejax._src import atomic

_MARGIN = 6
_LABEL_HEIGHT = 14


def write_summary(path: str, panels: list[tuple[str, np.ndarray]], caption: str,
                  credit: str = "") -> None:
    """Writes the panels side by side, each titled, with ``caption`` (and the pictures'
    ``credit`` line, when given) underneath."""
    height = max(image.shape[0] for _, image in panels)
    width = sum(image.shape[1] for _, image in panels) + _MARGIN * (len(panels) + 1)
    lines = 2 if credit else 1
    canvas = Image.new("RGB", (width, height + (1 + lines) * _LABEL_HEIGHT + 3 * _MARGIN), "white")
    draw = ImageDraw.Draw(canvas)
    x = _MARGIN
    for title, image in panels:
        pixels = np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(pixels), (x, _MARGIN + _LABEL_HEIGHT))
        draw.text((x, _MARGIN // 2), title, fill="black")
        x += image.shape[1] + _MARGIN
    draw.text((_MARGIN, height + _LABEL_HEIGHT + 2 * _MARGIN), caption, fill=(160, 0, 0))
    if credit:
        draw.text((_MARGIN, height + 2 * _LABEL_HEIGHT + 2 * _MARGIN), credit, fill=(90, 90, 90))
    with atomic.atomic_path(path) as temporary:
        canvas.save(temporary, format="PNG")
