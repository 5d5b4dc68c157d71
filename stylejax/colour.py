"""Colour control (Gatys et al., CVPR 2017, Sec. 5): YIQ conversions, luminance and
histogram matching, and the content's chroma put back. ``stylejax.transfer(...,
color_control=...)`` uses them; they are here for analysis and for scripts."""

from stylejax._src.colour import (
    COLOR_CONTROLS,
    HISTOGRAM_MODES,
    from_yiq,
    grey,
    histogram_transform,
    luminance,
    match_histogram,
    match_luminance,
    to_yiq,
    with_chroma_of,
)

__all__ = [
    "COLOR_CONTROLS",
    "HISTOGRAM_MODES",
    "from_yiq",
    "grey",
    "histogram_transform",
    "luminance",
    "match_histogram",
    "match_luminance",
    "to_yiq",
    "with_chroma_of",
]
