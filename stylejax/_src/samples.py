"""Procedural pictures for the offline demo: a landscape "photo" and a swirling "painting".

The demo must run with no images from the user and no download, and the reference
images may not be copied into the project; so stylejax draws its own pair. Both are
deterministic (fixed NumPy seeds), 4:3, RGB float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np

_SEED = 1508  # arXiv:1508.06576


def _smooth_noise(rng, height, width, scale):
    """Band-limited noise: white noise low-passed in Fourier space, unit std."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    spectrum = np.fft.fft2(rng.standard_normal((height, width))) * np.exp(-((radius * scale) ** 2))
    field = np.real(np.fft.ifft2(spectrum))
    return field / (field.std() + 1e-12)


def landscape(size: int = 128) -> np.ndarray:
    """A photo substitute: sky, sun, hills, a river, a row of houses with windows."""
    width, height = size, size * 3 // 4
    rng = np.random.default_rng(_SEED)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    image = np.empty((height, width, 3))
    # Sky: deep blue at the top to pale near the horizon.
    sky = np.stack([0.35 + 0.45 * v, 0.55 + 0.35 * v, 0.85 + 0.1 * v], axis=-1)
    image[:] = sky
    # Sun.
    sun = (u - 0.78) ** 2 + ((v - 0.2) * 0.75) ** 2 < 0.006
    image[sun] = (1.0, 0.93, 0.6)
    # Far and near hills with ragged ridges.
    column = u[0]
    ridge_far = 0.45 + 0.06 * np.sin(6.0 * column + 1.0) + 0.015 * _smooth_noise(rng, 1, width, 8)[0]
    ridge_near = 0.58 + 0.05 * np.sin(3.5 * column + 2.5) + 0.02 * _smooth_noise(rng, 1, width, 6)[0]
    image[v > ridge_far[None, :]] = (0.35, 0.5, 0.45)
    near = v > ridge_near[None, :]
    image[near] = (0.25, 0.5, 0.2)
    # River across the bottom, with a lighter reflection band.
    river = v > 0.84 + 0.03 * np.sin(9 * u)
    image[river] = (0.2, 0.35, 0.55)
    image[river & (np.abs(v - 0.9) < 0.01)] = (0.5, 0.65, 0.8)
    # Houses: coloured walls, dark roofs, windows.
    palette = [(0.9, 0.8, 0.45), (0.85, 0.5, 0.4), (0.95, 0.95, 0.9), (0.7, 0.75, 0.85), (0.95, 0.7, 0.75)]
    left = 0.06
    for index in range(7):
        house_width = 0.09 + 0.03 * rng.random()
        top = 0.5 + 0.1 * rng.random()
        wall = (u > left) & (u < left + house_width) & (v > top) & (v < 0.84)
        image[wall] = palette[index % len(palette)]
        roof = (v > top - 0.08) & (v <= top) & (np.abs(u - (left + house_width / 2)) < (v - top + 0.08) * house_width / 0.16)
        image[roof] = (0.45, 0.2, 0.15)
        for row in np.arange(top + 0.04, 0.8, 0.08):
            for window_left in np.arange(left + 0.015, left + house_width - 0.02, 0.035):
                window = (u > window_left) & (u < window_left + 0.015) & (v > row) & (v < row + 0.035)
                image[window] = (0.2, 0.25, 0.35)
        left += house_width + 0.02 * rng.random()
    # Fine texture, as grain and foliage in a photo.
    grain = 0.04 * _smooth_noise(rng, height, width, 0.5)[..., None]
    foliage = 0.08 * _smooth_noise(rng, height, width, 2.0)[..., None] * near[..., None]
    return np.clip(image + grain + foliage, 0.0, 1.0).astype(np.float32)


def painting(size: int = 128) -> np.ndarray:
    """A painting substitute: swirling strokes in a Starry-Night palette."""
    width, height = size, size * 3 // 4
    rng = np.random.default_rng(_SEED + 1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    # A flow field from a few vortices; strokes run along it.
    angle = np.zeros_like(u)
    # 3 * strength is a whole number, so the strokes meet seamlessly across atan2's cut.
    for cx, cy, strength in ((0.3, 0.3, 1.0), (0.7, 0.25, -1.0), (0.55, 0.65, 2.0 / 3.0)):
        angle += strength * np.arctan2(v - cy, u - cx)
    radius = np.sqrt((u - 0.3) ** 2 + (v - 0.3) ** 2)
    strokes = np.sin(16.0 * radius + 3.0 * angle + 0.8 * _smooth_noise(rng, height, width, 6.0))
    detail = _smooth_noise(rng, height, width, 1.5)
    tone = 0.5 + 0.38 * strokes + 0.08 * detail
    deep, mid, light = np.array((0.08, 0.15, 0.45)), np.array((0.25, 0.45, 0.75)), np.array((0.95, 0.85, 0.35))
    t = np.clip(tone, 0.0, 1.0)[..., None]
    image = np.where(t < 0.5, deep + (mid - deep) * (t / 0.5), mid + (light - mid) * ((t - 0.5) / 0.5))
    # Stars: bright yellow discs with halos.
    for cx, cy in ((0.15, 0.12), (0.45, 0.18), (0.85, 0.1), (0.65, 0.45)):
        distance = np.sqrt((u - cx) ** 2 + ((v - cy) * 0.75) ** 2)
        halo = np.exp(-((distance / 0.045) ** 2))[..., None]
        image = image * (1 - halo) + np.array((1.0, 0.95, 0.55)) * halo
    # A dark cypress-like flame on the left.
    flame = (np.abs(u - 0.12 - 0.02 * np.sin(12 * v)) < 0.09 * (v - 0.2)) & (v > 0.2)
    image[flame] = image[flame] * 0.3 + np.array((0.05, 0.12, 0.05)) * 0.7
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def sample_images(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(content, style), each (size * 3 // 4, size, 3)."""
    return landscape(size), painting(size)
