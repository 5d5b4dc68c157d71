"""Procedural pictures for the offline demo: a landscape "photo" and a swirling "painting".

The demo must run with no images from the user and no download, and the reference
images may not be copied into the project; so stylejax draws its own pair. Both are
deterministic (fixed seeds), resolution independent (coordinates are fractions of the
width), 4:3, RGB float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np

from stylejax._src.errors import invalid
from stylejax._src.layers import MIN_IMAGE_SIDE


def sample_images(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A (content, style) pair of pictures drawn by this code, for demos and tests.

    The demo needs no user images and no downloads: the content is a landscape (sky,
    sun, clouds, layered hills, houses with windows, a river, grass texture) and the
    style a painting in the manner of a starry night (saturated blues and yellows in
    swirling brush strokes, stars, a moon, a cypress). Both are float32 RGB in [0, 1] of
    shape (size * 3 // 4, size, 3), a 4:3 landscape. The drawing is resolution
    independent (coordinates are fractions of the width) and seeded, so the same
    ``size`` gives the same bytes on every call.

    Raises:
      InvalidSetting (a ValueError): ``size * 3 // 4`` is shorter than ``MIN_IMAGE_SIDE`` pixels.
    """
    height = size * 3 // 4
    if height < MIN_IMAGE_SIDE:
        raise invalid(
            f"sample image size {size} is too small: the pictures would be {height}x{size} "
            f"(HxW); every side needs at least {MIN_IMAGE_SIDE} px for VGG19"
        )
    return _landscape(size), _starry_painting(size)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _cover(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance (negative inside)."""
    return np.clip(0.5 - signed_distance / pixel, 0.0, 1.0)


def _paint(image: np.ndarray, colour, weight: np.ndarray) -> np.ndarray:
    """Lays ``colour`` (an RGB triple or an (H, W, 3) array) over ``image`` with ``weight``."""
    weight = np.asarray(weight)[..., None]
    return image * (1.0 - weight) + np.asarray(colour) * weight


def _box(x, y, left, right, top, bottom) -> np.ndarray:
    """Signed distance (approximate, max-norm) to an axis-aligned rectangle."""
    return np.maximum.reduce([left - x, x - right, top - y, y - bottom])


def _bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Samples a 2-D grid at continuous grid coordinates, bilinearly, wrapping around."""
    rows, cols = grid.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0 = x0.astype(np.int64) % cols
    y0 = y0.astype(np.int64) % rows
    x1, y1 = (x0 + 1) % cols, (y0 + 1) % rows
    top = grid[y0, x0] * (1.0 - fx) + grid[y0, x1] * fx
    bottom = grid[y1, x0] * (1.0 - fx) + grid[y1, x1] * fx
    return top * (1.0 - fy) + bottom * fy


def _value_noise(rng: np.random.Generator, x, y, cells: int, octaves: int) -> np.ndarray:
    """Smooth fractal noise in [-1, 1]: ``octaves`` random grids, each twice as fine."""
    total = np.zeros_like(x)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        grid = rng.uniform(-1.0, 1.0, size=(n, n))
        total += amplitude * _bilinear(grid, x * n, y * n)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _canvas(size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixel-centre coordinates as fractions of the width (x in [0, 1), y in [0, 0.75))."""
    y, x = np.mgrid[0 : size * 3 // 4, 0:size].astype(np.float64)
    return (x + 0.5) / size, (y + 0.5) / size, 1.0 / size


def _ridge(x, base: float, waves) -> np.ndarray:
    """The height of a hill's outline: a base line plus a few sine waves."""
    return base + sum(a * np.sin(2.0 * np.pi * f * x + phase) for a, f, phase in waves)


# (base, waves (amplitude, frequency, phase), colour at the top, colour further down)
_HILLS = (
    (0.36, ((0.018, 3.1, 0.4), (0.010, 7.3, 1.9)), (0.50, 0.60, 0.70), (0.42, 0.52, 0.62)),
    (0.47, ((0.030, 2.3, 2.1), (0.012, 5.9, 0.3)), (0.36, 0.58, 0.30), (0.24, 0.44, 0.20)),
    (0.60, ((0.040, 1.7, 4.0), (0.015, 4.7, 1.2)), (0.30, 0.52, 0.20), (0.16, 0.34, 0.12)),
)
# (centre x, width, wall height, wall colour, roof colour), standing on the middle hill.
_HOUSES = (
    (0.16, 0.050, 0.040, (0.93, 0.88, 0.78), (0.66, 0.20, 0.14)),
    (0.25, 0.060, 0.048, (0.90, 0.82, 0.70), (0.52, 0.26, 0.18)),
    (0.60, 0.055, 0.042, (0.95, 0.92, 0.86), (0.70, 0.28, 0.16)),
    (0.70, 0.045, 0.036, (0.86, 0.78, 0.66), (0.45, 0.18, 0.16)),
)


def _landscape(size: int) -> np.ndarray:
    """The content picture: a sunny valley with a village and a river (see sample_images)."""
    rng = np.random.default_rng(20160627)
    x, y, px = _canvas(size)
    # Sky: deep blue overhead, pale towards the horizon; a sun with a glow; clouds.
    t = np.clip(y / 0.40, 0.0, 1.0)[..., None]
    image = (1.0 - t) * np.array([0.22, 0.42, 0.78]) + t * np.array([0.86, 0.90, 0.93])
    sun = np.hypot(x - 0.76, y - 0.15)
    image = _paint(image, (1.0, 0.93, 0.70), 0.45 * np.exp(-((sun / 0.16) ** 2)))
    image = _paint(image, (1.0, 0.97, 0.82), _cover(sun - 0.055, px))
    cloud = _value_noise(rng, x, y * 2.5, cells=4, octaves=4)
    image = _paint(
        image,
        (0.97, 0.97, 0.98),
        0.85 * _smoothstep(0.15, 0.55, cloud) * _smoothstep(0.36, 0.12, y),
    )
    # Hills from far to near, each greener and darker further down, with grass texture.
    grass = _value_noise(rng, x, y, cells=48, octaves=2)[..., None]
    for base, waves, top_colour, low_colour in _HILLS:
        top = _ridge(x, base, waves)
        shade = np.clip((y - top) / 0.25, 0.0, 1.0)[..., None]
        colour = ((1.0 - shade) * np.array(top_colour) + shade * np.array(low_colour)) * (
            1.0 + 0.08 * grass
        )
        image = _paint(image, colour, _cover(top - y, px))
    # A river winding from the bottom edge into the distance, wider as it comes closer.
    near = np.clip((y - 0.50) / 0.25, 0.0, 1.0)
    centre = 0.40 + 0.07 * np.sin(7.0 * near + 0.5) + 0.10 * near
    half_width = 0.006 + 0.07 * near**1.4
    river = _cover(np.abs(x - centre) - half_width, px) * _cover(0.50 - y, px)
    ripple = 0.05 * np.sin(2.0 * np.pi * (90.0 * y + 2.0 * _value_noise(rng, x, y, 24, 3)))
    far = 1.0 - near
    water = np.stack([0.30 + 0.25 * far, 0.50 + 0.22 * far, 0.78 + 0.10 * far], axis=-1)
    image = _paint(image, water + ripple[..., None], river)
    # Houses on the middle hill: a lit and a shaded wall, a pitched roof, windows, a door.
    base, waves = _HILLS[1][0], _HILLS[1][1]
    for hx, hw, hh, wall, roof in _HOUSES:
        ground = float(_ridge(np.float64(hx), base, waves)) + 0.03
        left, right, top = hx - hw / 2, hx + hw / 2, ground - hh
        lit = np.where(x < hx + 0.15 * hw, 1.0, 0.82)[..., None]
        image = _paint(
            image, np.array(wall) * lit, _cover(_box(x, y, left, right, top, ground), px)
        )
        slope = 0.8 * hh / (hw / 2 + 0.006)
        roof_distance = np.maximum(
            y - top, (top - 0.8 * hh + slope * np.abs(x - hx) - y) / np.sqrt(1.0 + slope**2)
        )
        image = _paint(image, roof, _cover(roof_distance, px))
        pane = 0.2 * hw
        for wx in (hx - 0.27 * hw, hx + 0.27 * hw):
            wy = top + 0.22 * hh
            window = _box(x, y, wx - pane / 2, wx + pane / 2, wy, wy + pane)
            image = _paint(image, (0.20, 0.25, 0.35), _cover(window, px))
        door = _box(x, y, hx - pane / 2, hx + pane / 2, ground - 0.5 * hh, ground)
        image = _paint(image, (0.35, 0.22, 0.14), _cover(door, px))
    # Fine grain, as in a photograph, so that no region is perfectly flat.
    image = image + rng.normal(0.0, 0.012, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# (centre x, centre y, radius, strength and turning direction) of the sky's two swirls.
_VORTICES = ((0.42, 0.24, 0.16, 1.0), (0.70, 0.34, 0.10, -0.8))
# (x, y, radius) of the stars.
_STARS = (
    (0.12, 0.10, 0.022),
    (0.28, 0.07, 0.018),
    (0.58, 0.10, 0.020),
    (0.92, 0.22, 0.020),
    (0.20, 0.30, 0.016),
    (0.52, 0.45, 0.014),
)
# The sky's palette, from night blue to star yellow, indexed by a swirl field in [0, 1].
_PALETTE_AT = np.array([0.0, 0.3, 0.5, 0.7, 0.85, 1.0])
_PALETTE = np.array(
    [
        [0.04, 0.08, 0.30],
        [0.10, 0.25, 0.62],
        [0.22, 0.45, 0.80],
        [0.50, 0.70, 0.88],
        [0.85, 0.85, 0.55],
        [0.98, 0.86, 0.25],
    ]
)


def _flow(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit direction of the brush strokes: a wavy drift to the right plus vortices."""
    vx = np.ones_like(x)
    vy = 0.25 * np.sin(6.0 * x + 3.0 * y)
    for cx, cy, radius, strength in _VORTICES:
        dx, dy = x - cx, y - cy
        r = np.hypot(dx, dy) + 1e-6
        swirl = 4.0 * strength * np.exp(-((r / radius) ** 2))
        vx = vx - dy / r * swirl
        vy = vy + dx / r * swirl
    norm = np.hypot(vx, vy) + 1e-9
    return vx / norm, vy / norm


def _starry_painting(size: int) -> np.ndarray:
    """The style picture: a swirling night sky in thick strokes (see sample_images)."""
    rng = np.random.default_rng(18890618)
    x, y, px = _canvas(size)
    # Brush strokes: coarse white noise smeared along the flow (a line integral
    # convolution), so every streak follows the swirls. The grid is in fractions of the
    # width, so strokes keep their look at any size.
    cells = 96
    noise = rng.uniform(-1.0, 1.0, size=(cells, cells))
    steps, step = 12, 0.004
    strokes = np.zeros_like(x)
    for direction in (1.0, -1.0):
        sx, sy = x, y
        for _ in range(steps):
            vx, vy = _flow(sx, sy)
            sx, sy = sx + direction * step * vx, sy + direction * step * vy
            strokes += _bilinear(noise, sx * cells, sy * cells)
    strokes /= strokes.std() + 1e-9
    # The sky: horizontal waves plus spiral bands around each vortex, roughened by the
    # strokes, mapped through the blue-to-yellow palette.
    field = 0.5 + 0.25 * np.sin(2.0 * np.pi * (3.0 * y + 0.3 * np.sin(9.0 * x)))
    for cx, cy, radius, strength in _VORTICES:
        r = np.hypot(x - cx, y - cy)
        spiral = np.sin(60.0 * r - 2.0 * np.sign(strength) * np.arctan2(y - cy, x - cx))
        eye = _smoothstep(0.0, 0.15 * radius, r)  # calms the spiral's singular centre
        field = field + 0.45 * np.exp(-((r / (1.3 * radius)) ** 2)) * spiral * eye
    field = np.clip(field + 0.18 * strokes, 0.0, 1.0)
    image = np.stack([np.interp(field, _PALETTE_AT, _PALETTE[:, c]) for c in range(3)], -1)
    # Stars with ringed halos, and a crescent moon with a glow.
    for cx, cy, radius in _STARS:
        d = np.hypot(x - cx, y - cy)
        rings = 0.65 + 0.35 * np.sin(6.0 * d / radius + strokes)
        halo = np.clip(np.exp(-((d / (3.0 * radius)) ** 2)) * rings, 0.0, 1.0)
        image = _paint(image, (0.92, 0.90, 0.60), 0.8 * halo)
        image = _paint(image, (1.0, 0.90, 0.30), _cover(d - radius, px))
    moon = np.hypot(x - 0.88, y - 0.09)
    shadow = np.hypot(x - 0.902, y - 0.078)
    image = _paint(image, (0.98, 0.80, 0.30), 0.6 * np.exp(-((moon / 0.125) ** 2)))
    image = _paint(image, (1.0, 0.72, 0.12), _cover(np.maximum(moon - 0.05, 0.04 - shadow), px))
    # Dark rolling hills, streaked along the same flow, darker towards the bottom.
    ridge = _ridge(x, 0.56, ((0.03, 1.3, 0.7), (0.015, 4.1, 0.0)))
    hills = np.stack([0.10 + 0.05 * strokes, 0.18 + 0.06 * strokes, 0.38 + 0.10 * strokes], -1)
    hills = hills * (1.0 - 0.5 * np.clip((y - ridge) / 0.2, 0.0, 1.0))[..., None]
    image = _paint(image, np.clip(hills, 0.0, 1.0), _cover(ridge - y, px))
    # A cypress: a tall dark-green flame on the left, streaked vertically.
    u = np.clip((y - 0.12) / 0.64, 0.0, 1.0)
    half_width = 0.05 * np.sqrt(u) * (1.0 - 0.35 * u) + 0.008 * np.sin(40.0 * y)
    tree = _cover(np.maximum(np.abs(x - 0.16) - half_width, 0.12 - y), px)
    grain = _bilinear(noise, 3.0 * cells * x, 0.3 * cells * y)
    bark = np.stack([0.06 + 0.06 * grain, 0.14 + 0.08 * grain, 0.08 + 0.05 * grain], -1)
    image = _paint(image, np.clip(bark, 0.0, 1.0), tree)
    return np.clip(image, 0.0, 1.0).astype(np.float32)
