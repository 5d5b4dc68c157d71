"""Style-transfer quality measures that need no neural network.

The project runs offline with random VGG weights, so perceptual metrics computed through
VGG (LPIPS, Gram distances on trained features) mean nothing here. These four measures
use only pixels. Everything is NumPy on the host, float64 internally, with no SciPy.
Images are RGB in [0, 1], shape (H, W, 3). The three images of a measurement have one
shape: the content (the photo), the style (the painting) and the result (the stylised
image). Each measure is relative, so it can be compared across image pairs and sizes.

- ``palette``: how far the result's colour distribution is from the style's, relative
  to the content's:

      palette = SW(result, style) / SW(content, style)

  SW is the sliced Wasserstein-1 distance between the two sets of RGB pixels:

      SW(a, b) = (1 / D) sum_d W1(<theta_d, a>, <theta_d, b>)

  over the ``D = 13`` fixed unit directions ``SW_DIRECTIONS``: the cube's 13 axes of
  symmetry in RGB, i.e. the 3 colour axes, the 6 face diagonals (1, +-1, 0) / sqrt 2 (the
  opponent pairs such as red - green) and the 4 body diagonals (1, +-1, +-1) / sqrt 3 (the
  grey axis among them). They spread evenly over the sphere (a direction and its opposite
  give the same W1; no two of them are closer than 35 degrees, where a random draw
  clusters), and the sorting, the measure's whole cost, stays at 13 sorts per image
  (about 0.1 s for a 512x384 picture). W1 is the 1-D Wasserstein-1 distance
  between the empirical distributions of the projected pixels, the integral over
  p in (0, 1) of |F_a^-1(p) - F_b^-1(p)|. For equal pixel counts that is the mean of
  |sort(a) - sort(b)|; for different counts it is computed exactly on the merged
  quantile breakpoints i/n and j/m. 0 = exactly the style's palette; 1 = as far from it
  as the content's. Lower is better.
- ``layout``: the structural similarity of result and content at low spatial frequency.
  Both become luminance Y = 0.299 R + 0.587 G + 0.114 B, are blurred by a Gaussian of
  sigma = max(1, L / 64) px (L the longest side, reflect-padded, truncated at 3 sigma),
  and are resampled by area averaging to 64 px on the long side (left as they are when
  L <= 64; never upsampled); then ``metrics.ssim`` of the two greyscale pictures.
  Low frequency because the result is *meant* to carry the style's texture: at full
  resolution, brush strokes replacing the photo's fine detail would lower SSIM even
  when every object is where it was. Only the arrangement of light and dark at the
  scale of L / 64 counts. 1 = the content's layout. Higher is better.
- ``noise``: the high-frequency energy of the result relative to the style's:

      E_hf(x) = mean over pixels and channels of (x - G_1 x)^2,   noise = E_hf(result) / E_hf(style)

  G_1 is the Gaussian blur with sigma 1 px over 7 taps (``metrics.gaussian_window(7,
  1.0)``, outer product in 2-D), evaluated on the valid region only (the 3-px border is
  dropped rather than padded, so no padding choice leaks into the statistic and, for
  white noise of variance v, E[E_hf] = v sum_k (delta_k - g_k)^2 over the 49 taps
  exactly). ~1 = as much fine detail as the painting; >> 1 = pixel noise. Closer to 1 is
  better (below 1 is over-smoothed).
- ``texture``: oriented band-energy statistics of the luminance. A pyramid of
  ``TEXTURE_LEVELS = 4`` levels (level 0 the luminance; each next level the 2x2 block
  mean of the previous, an odd last row or column dropped) is filtered at each level by
  four 5x5 first-derivative-of-Gaussian kernels (sigma 1 px) at 0, 45, 90 and 135 degrees,
  reflect-padded so every level keeps its size:

      k_theta(i, j) = c (j cos theta + i sin theta) exp(-(i^2 + j^2) / 2),   i, j in -2..2

  (i the row offset, downwards; j the column offset, rightwards; c makes the response
  to a unit ramp along theta exactly 1, so each filter is a directional derivative:
  0 degrees differentiates along the row, i.e. responds to vertical stripes and edges).
  E[l, o] is the mean squared response of level l and orientation o, and

      t(x) = log(E + eps),   eps = 1e-6,
      texture = ||t(result) - t(style)|| / ||t(content) - t(style)||

  (the Euclidean norm over the 16 statistics). Unnormalised log-energies: since
  log E[l, o] = log(level total) + log(orientation share), the distribution over scales,
  the distribution over orientations and the overall contrast all count. eps (an RMS
  gradient of 0.001 per px, below 8-bit quantisation) keeps flat bands finite. 0 = the
  style's statistics; 1 = as far as the content's. Lower is better.

The ratios guard a zero reference as ``metrics._relative_distance`` does: 0.0 when the
numerator is zero too, else ``inf``.
"""

from __future__ import annotations

import math

import numpy as np

from stylejax._src.metrics import SSIM_WINDOW, _filter_valid, gaussian_window, ssim

MEASURES = {
    "palette": "colour distribution's sliced Wasserstein distance to the style's, relative to "
               "the content's (0 = style palette, 1 = content's distance; lower is better)",
    "layout": "SSIM of result and content luminance at low spatial frequency (64 px on the "
              "long side; 1 = content's layout; higher is better)",
    "noise": "high-frequency energy (minus a sigma-1 blur) relative to the style's (~1 = the "
             "painting's fine detail, >> 1 = pixel noise; closest to 1 is best)",
    "texture": "distance of oriented band log-energies to the style's, relative to the "
               "content's (0 = style texture, 1 = content's distance; lower is better)",
}

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

def _directions() -> np.ndarray:
    axes = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    faces = [(1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1), (0, 1, -1)]
    bodies = [(1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1)]
    directions = np.array(axes + faces + bodies, dtype=np.float64)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    directions.setflags(write=False)
    return directions


SW_DIRECTIONS = _directions()

LAYOUT_SIDE = 64

NOISE_SIGMA = 1.0
NOISE_TAPS = 7

TEXTURE_LEVELS = 4
TEXTURE_ORIENTATIONS = (0.0, 45.0, 90.0, 135.0)  # degrees
TEXTURE_SIGMA = 1.0
TEXTURE_TAPS = 5
TEXTURE_EPS = 1e-6
# Sides of the coarsest level: at least 3, so the 2-px reflect padding fits.
_TEXTURE_MIN_SIDE = 3 * 2 ** (TEXTURE_LEVELS - 1)


def _image(x, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values")
    return array


def _images(**named) -> list[np.ndarray]:
    arrays = [_image(value, name) for name, value in named.items()]
    shapes = {name: a.shape for name, a in zip(named, arrays, strict=True)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"images differ in shape: {listed}")
    return arrays


def _ratio(numerator: float, denominator: float) -> float:
    if numerator == 0.0:
        return 0.0
    if denominator == 0.0:
        return math.inf
    return numerator / denominator


def luminance(image) -> np.ndarray:
    """Rec. 601 luma of an (H, W, 3) RGB image: 0.299 R + 0.587 G + 0.114 B, (H, W)."""
    return _image(image, "image") @ LUMA_WEIGHTS


# --- palette -----------------------------------------------------------------------------


def _unit_directions(directions) -> np.ndarray:
    if directions is None:
        return SW_DIRECTIONS
    array = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise ValueError(f"directions must be (D, 3) with D >= 1, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0.0) or not np.all(np.isfinite(array)):
        raise ValueError("directions must be finite and non-zero")
    return array / norms


def _pixels(x, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim < 2 or array.shape[-1] != 3 or array.size == 0:
        raise ValueError(f"{name} must hold RGB pixels, shape (..., 3), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values")
    return array.reshape(-1, 3)


def _sorted_projections(pixels: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(D, N): each row the pixels' projections on one direction, ascending."""
    projections = directions @ np.ascontiguousarray(pixels.T)
    projections.sort(axis=1)
    return projections


def _w1_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row 1-D Wasserstein-1 of (D, n) and (D, m) rows sorted ascending: (D,).

    The integral over p in (0, 1) of |F_a^-1(p) - F_b^-1(p)|: both quantile functions
    are constant between the merged breakpoints i / n and j / m.
    """
    n, m = a.shape[1], b.shape[1]
    if n == m:
        return np.mean(np.abs(a - b), axis=1)
    edges = np.unique(np.concatenate([np.arange(n + 1) / n, np.arange(m + 1) / m]))
    middles = 0.5 * (edges[:-1] + edges[1:])
    index_a = np.minimum((middles * n).astype(np.int64), n - 1)
    index_b = np.minimum((middles * m).astype(np.int64), m - 1)
    return np.abs(a[:, index_a] - b[:, index_b]) @ np.diff(edges)


def sliced_wasserstein(a, b, directions=None) -> float:
    """Sliced Wasserstein-1 distance between two sets of RGB pixels.

    SW(a, b) = (1 / D) sum_d W1(<theta_d, a>, <theta_d, b>), with W1 the 1-D
    Wasserstein-1 distance of the empirical distributions (the mean |sort(a) - sort(b)|
    for equal pixel counts; exact on the merged quantile breakpoints otherwise).

    Args:
      a, b: pixels of shape (..., 3), e.g. (H, W, 3) images; the counts may differ.
      directions: (D, 3) directions theta_d, normalised here; ``SW_DIRECTIONS`` (the
        cube's 13 axes of symmetry) by default.
    """
    theta = _unit_directions(directions)
    sorted_a = _sorted_projections(_pixels(a, "a"), theta)
    sorted_b = _sorted_projections(_pixels(b, "b"), theta)
    return float(np.mean(_w1_sorted(sorted_a, sorted_b)))


def _palette(result: np.ndarray, style: np.ndarray, content: np.ndarray) -> float:
    theta = SW_DIRECTIONS
    style_sorted = _sorted_projections(style.reshape(-1, 3), theta)
    distance = float(np.mean(_w1_sorted(_sorted_projections(result.reshape(-1, 3), theta),
                                        style_sorted)))
    reference = float(np.mean(_w1_sorted(_sorted_projections(content.reshape(-1, 3), theta),
                                         style_sorted)))
    return _ratio(distance, reference)


def palette_distance(result, style, content) -> float:
    """SW(result, style) / SW(content, style), ``sliced_wasserstein`` with ``SW_DIRECTIONS``.

    0 = the style's colour distribution exactly; 1 = as far from it as the content's.
    0.0 when both distances are zero; ``inf`` when only SW(content, style) is.

    Raises:
      ValueError: the images are not (H, W, 3) of one shape.
    """
    result, style, content = _images(result=result, style=style, content=content)
    return _palette(result, style, content)


# --- layout ------------------------------------------------------------------------------


def _gaussian_blur_reflect(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) image, truncated at 3 sigma, reflect-padded: (H, W)."""
    radius = max(1, math.ceil(3.0 * sigma))
    padded = np.pad(image, radius, mode="reflect")
    return _filter_valid(padded, gaussian_window(2 * radius + 1, sigma))


def _area_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages the input over [i size / out, (i + 1) size / out)."""
    lower = np.arange(out)[:, None] * size / out
    upper = (np.arange(out)[:, None] + 1) * size / out
    pixel = np.arange(size)[None, :]
    overlap = np.clip(np.minimum(upper, pixel + 1) - np.maximum(lower, pixel), 0.0, None)
    return overlap / (upper - lower)


def _area_resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average resize of an (H, W) image to ``shape`` (each output pixel the mean
    of the input area it covers, fractional pixels weighted by their overlap)."""
    rows = _area_matrix(image.shape[0], shape[0])
    cols = _area_matrix(image.shape[1], shape[1])
    return rows @ image @ cols.T


def _layout_luminance(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    longest = max(height, width)
    blurred = _gaussian_blur_reflect(image @ LUMA_WEIGHTS, max(1.0, longest / LAYOUT_SIDE))
    if longest <= LAYOUT_SIDE:
        return blurred
    scale = LAYOUT_SIDE / longest
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    return _area_resize(blurred, shape)


def layout_similarity(result, content) -> float:
    """SSIM of the low-frequency luminance of result and content.

    layout = ssim(A(G_s Y(result)), A(G_s Y(content))), with Y the Rec. 601 luma,
    G_s a Gaussian blur of sigma s = max(1, L / 64) px (L the longest side) and A the
    area-average resize to 64 px on the long side (none when L <= 64). 1 = the same
    layout. Low frequency so that the style's texture does not count against the
    layout (see the module docstring).

    Raises:
      ValueError: the images are not (H, W, 3) of one shape, or a side of the
        resized luminance is shorter than SSIM's 11-px window.
    """
    result, content = _images(result=result, content=content)
    height, width = result.shape[:2]
    longest = max(height, width)
    if longest > LAYOUT_SIDE:
        short = round(min(height, width) * LAYOUT_SIDE / longest)
    else:
        short = min(height, width)
    if short < SSIM_WINDOW:
        raise ValueError(
            f"layout_similarity needs both sides >= {SSIM_WINDOW} px after resizing to "
            f"{LAYOUT_SIDE} px on the long side; a {height}x{width} image gives {short} px"
        )
    return ssim(_layout_luminance(result), _layout_luminance(content))


# --- noise -------------------------------------------------------------------------------


def high_frequency_energy(image) -> float:
    """E_hf(x) = mean over pixels and channels of (x - G_1 x)^2.

    G_1 is the 7x7 Gaussian blur with sigma 1 px, on the valid region (the 3-px border
    is dropped, not padded).

    Raises:
      ValueError: not an (H, W, 3) image, or a side shorter than 7 px.
    """
    array = _image(image, "image")
    return _high_frequency_energy(array)


def _high_frequency_energy(array: np.ndarray) -> float:
    if min(array.shape[:2]) < NOISE_TAPS:
        raise ValueError(
            f"the noise measure needs both sides >= {NOISE_TAPS} px, got {array.shape[:2]}"
        )
    radius = NOISE_TAPS // 2
    blurred = _filter_valid(array, gaussian_window(NOISE_TAPS, NOISE_SIGMA))
    residual = array[radius:-radius, radius:-radius] - blurred
    return float(np.mean(np.square(residual)))


def noise_ratio(result, style) -> float:
    """E_hf(result) / E_hf(style) (``high_frequency_energy``).

    ~1 = as much fine detail as the painting; >> 1 = dominated by pixel noise; < 1 =
    smoother than the painting. 0.0 when both energies are zero; ``inf`` when only the
    style's is.

    Raises:
      ValueError: the images are not (H, W, 3) of one shape, or a side is < 7 px.
    """
    result, style = _images(result=result, style=style)
    return _ratio(_high_frequency_energy(result), _high_frequency_energy(style))


# --- texture -----------------------------------------------------------------------------


def oriented_filters() -> np.ndarray:
    """The four 5x5 first-derivative-of-Gaussian kernels, (4, 5, 5), for 0/45/90/135 deg.

    k_theta(i, j) = c (j cos theta + i sin theta) exp(-(i^2 + j^2) / (2 sigma^2)), i the
    row offset (down) and j the column offset (right), c such that the correlation with
    the unit ramp j cos theta + i sin theta is 1 (the same c for every theta).
    """
    offsets = np.arange(TEXTURE_TAPS, dtype=np.float64) - TEXTURE_TAPS // 2
    i, j = np.meshgrid(offsets, offsets, indexing="ij")
    gaussian = np.exp(-(i**2 + j**2) / (2.0 * TEXTURE_SIGMA**2))
    scale = 1.0 / np.sum(j**2 * gaussian)
    angles = np.deg2rad(np.asarray(TEXTURE_ORIENTATIONS))
    return np.stack([scale * (j * np.cos(a) + i * np.sin(a)) * gaussian for a in angles])


def oriented_responses(image) -> np.ndarray:
    """The oriented filters' responses over an (H, W) greyscale image: (H, W, 4).

    Correlation with ``oriented_filters`` on the image reflect-padded by 2 px.
    """
    array = np.asarray(image, dtype=np.float64)
    radius = TEXTURE_TAPS // 2
    padded = np.pad(array, radius, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (TEXTURE_TAPS, TEXTURE_TAPS))
    kernels = oriented_filters().reshape(len(TEXTURE_ORIENTATIONS), -1)
    flat = windows.reshape(array.shape[0], array.shape[1], TEXTURE_TAPS * TEXTURE_TAPS)
    return flat @ kernels.T


def _block_mean(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    cropped = image[:height, :width]
    return 0.25 * (cropped[0::2, 0::2] + cropped[1::2, 0::2]
                   + cropped[0::2, 1::2] + cropped[1::2, 1::2])


def _band_energies(array: np.ndarray) -> np.ndarray:
    if min(array.shape[:2]) < _TEXTURE_MIN_SIDE:
        raise ValueError(
            f"the texture measure needs both sides >= {_TEXTURE_MIN_SIDE} px "
            f"({TEXTURE_LEVELS} pyramid levels), got {array.shape[:2]}"
        )
    level = array @ LUMA_WEIGHTS
    energies = []
    for index in range(TEXTURE_LEVELS):
        if index:
            level = _block_mean(level)
        energies.append(np.mean(np.square(oriented_responses(level)), axis=(0, 1)))
    return np.stack(energies)


def band_energies(image) -> np.ndarray:
    """E[l, o]: mean squared oriented-filter response per pyramid level and orientation.

    (TEXTURE_LEVELS, 4) = (4, 4): level l is the luminance 2x2-block-averaged l times;
    orientation o is TEXTURE_ORIENTATIONS[o] (0, 45, 90, 135 degrees; 0 = derivative
    along the row, the energy of vertical stripes).

    Raises:
      ValueError: not an (H, W, 3) image, or a side shorter than 24 px.
    """
    return _band_energies(_image(image, "image"))


def _texture_statistics(array: np.ndarray) -> np.ndarray:
    return np.log(_band_energies(array) + TEXTURE_EPS).ravel()


def _texture(result: np.ndarray, style: np.ndarray, content: np.ndarray) -> float:
    style_t = _texture_statistics(style)
    distance = float(np.linalg.norm(_texture_statistics(result) - style_t))
    reference = float(np.linalg.norm(_texture_statistics(content) - style_t))
    return _ratio(distance, reference)


def texture_distance(result, style, content) -> float:
    """||t(result) - t(style)|| / ||t(content) - t(style)||, t = log(band_energies + 1e-6).

    0 = the style's oriented band statistics; 1 = as far from them as the content's.
    0.0 when both distances are zero; ``inf`` when only the content's is.

    Raises:
      ValueError: the images are not (H, W, 3) of one shape, or a side is < 24 px.
    """
    result, style, content = _images(result=result, style=style, content=content)
    return _texture(result, style, content)


# --- all four ----------------------------------------------------------------------------


def quality_measures(result, style, content) -> dict[str, float]:
    """All four measures of ``MEASURES``: {"palette", "layout", "noise", "texture"}."""
    result, style, content = _images(result=result, style=style, content=content)
    return {
        "palette": _palette(result, style, content),
        "layout": layout_similarity(result, content),
        "noise": _ratio(_high_frequency_energy(result), _high_frequency_energy(style)),
        "texture": _texture(result, style, content),
    }


def format_measures(measures: dict) -> str:
    """One line for a caption or a log: ``palette 0.41, layout 0.78, noise 1.3, texture 0.52``."""
    return ", ".join(f"{name} {measures[name]:.3g}" for name in MEASURES if name in measures)
