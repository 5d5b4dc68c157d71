"""stylejax._src.quality against plain references and known answers."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from stylejax._src import metrics, quality
from stylejax._src.samples import sample_images


@pytest.fixture(scope="module")
def pair():
    """The procedural (content, style) pair, 96x128, float64."""
    content, style = sample_images(128)
    return content.astype(np.float64), style.astype(np.float64)


def _smooth_image(seed, shape=(48, 64, 3)):
    """Smooth sinusoids in [0.2, 0.8]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape[:2])
    channels = [0.5 + 0.3 * np.sin(5 * x + 3 * y + rng.uniform(0, 6)) for _ in range(shape[2])]
    return np.stack(channels, axis=-1)


def _asymmetric_image(shape=(96, 128)):
    """A bright disc on the left, a dark bar on the right, a diagonal shading: no mirror."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    grey = 0.3 + 0.3 * x * y
    grey = np.where((x - 0.25) ** 2 + (y - 0.3) ** 2 < 0.15**2, 0.9, grey)
    grey = np.where((x > 0.75) & (x < 0.85) & (y > 0.2), 0.05, grey)
    return np.repeat(grey[..., None], 3, axis=-1)


def _stripes(shape=(128, 128), period=32, vertical=True):
    """A sinusoidal grating: intensity varies along the row for vertical stripes."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    coordinate = x if vertical else y
    grey = 0.5 + 0.4 * np.sin(2 * np.pi * coordinate / period)
    return np.repeat(grey[..., None], 3, axis=-1)


# --- identities -------------------------------------------------------------------------


def test_identical_images_give_the_ideal_values(pair):
    content, style = pair
    assert quality.palette_distance(style, style, content) == 0.0
    assert quality.texture_distance(style, style, content) == 0.0
    assert abs(quality.layout_similarity(content, content) - 1.0) <= 1e-12
    assert abs(quality.layout_similarity(style, style) - 1.0) <= 1e-12
    assert abs(quality.noise_ratio(style, style) - 1.0) <= 1e-12


def test_the_content_is_at_relative_distance_one(pair):
    content, style = pair
    assert abs(quality.palette_distance(content, style, content) - 1.0) <= 1e-12
    assert abs(quality.texture_distance(content, style, content) - 1.0) <= 1e-12


def test_quality_measures_returns_the_four_measures(pair):
    content, style = pair
    result = 0.5 * content + 0.5 * style
    measures = quality.quality_measures(result, style, content)
    assert set(measures) == set(quality.MEASURES) == {"palette", "layout", "noise", "texture"}
    assert all(isinstance(value, float) for value in measures.values())
    expected = {
        "palette": quality.palette_distance(result, style, content),
        "layout": quality.layout_similarity(result, content),
        "noise": quality.noise_ratio(result, style),
        "texture": quality.texture_distance(result, style, content),
    }
    for name, value in expected.items():
        assert abs(measures[name] - value) <= 1e-12, name
    # A blend sits between the two pictures on the relative measures.
    assert 0.1 < measures["palette"] < 0.9
    assert 0.1 < measures["texture"] < 0.9


def test_zero_references_are_guarded():
    flat = np.zeros((32, 32, 3))
    noisy = flat + 0.01 * np.random.default_rng(0).standard_normal(flat.shape)
    assert quality.noise_ratio(flat, flat) == 0.0
    assert quality.noise_ratio(noisy, flat) == math.inf
    assert quality.palette_distance(flat, flat, flat) == 0.0
    assert quality.palette_distance(noisy, flat, flat) == math.inf
    assert quality.texture_distance(flat, flat, flat) == 0.0
    assert quality.texture_distance(noisy, flat, flat) == math.inf


# --- palette ----------------------------------------------------------------------------


def test_directions_are_the_cube_axes_of_symmetry():
    theta = quality.SW_DIRECTIONS
    assert theta.shape == (13, 3)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, rtol=0, atol=1e-15)
    # No direction repeated, also not as its opposite.
    cosines = np.abs(theta @ theta.T) - np.eye(13)
    assert cosines.max() <= 1.0 / math.sqrt(1.5) + 1e-12


def test_sliced_wasserstein_of_a_colour_shift_is_the_mean_projected_shift():
    x = _smooth_image(0)  # in [0.2, 0.8]: no clipping
    d = np.array([0.03, -0.02, 0.05])
    expected = np.mean(np.abs(quality.SW_DIRECTIONS @ d))
    assert abs(quality.sliced_wasserstein(x, x + d) - expected) <= 1e-9
    assert abs(quality.sliced_wasserstein(x + d, x) - expected) <= 1e-9


def test_palette_grows_linearly_with_the_shift(pair):
    content, style = pair
    style = 0.2 + 0.6 * style
    d = np.array([0.02, 0.01, -0.03])
    steps = [0.0, 0.5, 1.0, 2.0, 4.0]
    values = [quality.palette_distance(style + k * d, style, content) for k in steps]
    assert values[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(values))
    unit = np.mean(np.abs(quality.SW_DIRECTIONS @ d))
    reference = quality.sliced_wasserstein(content, style)
    np.testing.assert_allclose(values, np.array(steps) * unit / reference, rtol=1e-9, atol=1e-12)


def _plain_w1(u, v):
    """1-D Wasserstein-1 of equal-size samples: a loop over the sorted values."""
    u, v = sorted(u), sorted(v)
    return sum(abs(a - b) for a, b in zip(u, v, strict=True)) / len(u)


def test_one_direction_is_the_1d_wasserstein_distance():
    rng = np.random.default_rng(1)
    a = rng.random((20, 30, 3))
    b = rng.random((20, 30, 3)) ** 2
    for channel in range(3):
        axis = np.eye(3)[channel : channel + 1]
        value = quality.sliced_wasserstein(a, b, directions=axis)
        u, v = a[..., channel].ravel(), b[..., channel].ravel()
        assert abs(value - _plain_w1(u, v)) <= 1e-12
        assert abs(value - stats.wasserstein_distance(u, v)) <= 1e-12
    direction = np.array([[1.0, 2.0, -1.0]])  # normalised by sliced_wasserstein
    unit = direction[0] / np.linalg.norm(direction)
    value = quality.sliced_wasserstein(a, b, directions=direction)
    expected = stats.wasserstein_distance(a.reshape(-1, 3) @ unit, b.reshape(-1, 3) @ unit)
    assert abs(value - expected) <= 1e-12


def test_sliced_wasserstein_with_different_pixel_counts_is_exact():
    rng = np.random.default_rng(2)
    a = rng.random((37, 3))
    b = rng.random((16, 9, 3)) * 0.7 + 0.2
    theta = quality.SW_DIRECTIONS
    expected = np.mean([stats.wasserstein_distance(a @ t, b.reshape(-1, 3) @ t) for t in theta])
    assert abs(quality.sliced_wasserstein(a, b) - expected) <= 1e-12
    assert abs(quality.sliced_wasserstein(b, a) - expected) <= 1e-12


# --- layout -----------------------------------------------------------------------------


def test_area_resize_of_an_integer_factor_is_the_block_mean():
    image = np.random.default_rng(3).random((12, 18))
    blocks = image.reshape(4, 3, 6, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(quality._area_resize(image, (4, 6)), blocks, rtol=0, atol=1e-14)
    # A fractional factor keeps the mean (every input pixel weighs the same in total).
    resized = quality._area_resize(image, (5, 7))
    assert abs(resized.mean() - image.mean()) <= 1e-14


def test_layout_keeps_blurred_and_noisy_copies(pair):
    content, _ = pair
    blurred = np.stack([quality._gaussian_blur_reflect(content[..., c], 1.5) for c in range(3)],
                       axis=-1)
    noise = 0.05 * np.random.default_rng(4).standard_normal(content.shape)
    assert quality.layout_similarity(blurred, content) > 0.9
    assert quality.layout_similarity(np.clip(content + noise, 0.0, 1.0), content) > 0.9


def test_layout_drops_for_a_mirror_image_or_an_unrelated_picture(pair):
    content, style = pair
    image = _asymmetric_image()
    assert abs(quality.layout_similarity(image, image) - 1.0) <= 1e-12
    assert quality.layout_similarity(image[:, ::-1], image) < 0.5
    assert quality.layout_similarity(style, content) < 0.3


def test_layout_resizes_large_images_to_64_px():
    small = _asymmetric_image((48, 64))
    large = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)  # 192x256, same picture
    value = quality.layout_similarity(large, large[::-1])
    # Blur + 4x4 area mean brings the large picture close to the small one blurred.
    expected = quality.layout_similarity(small, small[::-1])
    assert abs(value - expected) <= 0.02
    assert quality._layout_luminance(large).shape == (48, 64)


# --- noise ------------------------------------------------------------------------------


def test_high_frequency_energy_against_a_plain_loop():
    rng = np.random.default_rng(5)
    image = rng.random((12, 15, 3))
    x = np.arange(7) - 3.0
    g = np.exp(-(x**2) / 2.0)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    squares = []
    for c in range(3):
        for i in range(3, 12 - 3):
            for j in range(3, 15 - 3):
                blurred = np.sum(kernel * image[i - 3 : i + 4, j - 3 : j + 4, c])
                squares.append((image[i, j, c] - blurred) ** 2)
    assert abs(quality.high_frequency_energy(image) - np.mean(squares)) <= 1e-12


def test_high_frequency_energy_of_white_noise():
    assert quality.NOISE_SIGMA == 1.0
    taps = metrics.gaussian_window(quality.NOISE_TAPS, 1.0)
    kernel = np.outer(taps, taps)
    delta = np.zeros_like(kernel)
    delta[3, 3] = 1.0
    variance = 0.04
    # E[(x - Gx)^2] = v sum_k (delta_k - g_k)^2 for independent pixels of variance v.
    expected = variance * np.sum((delta - kernel) ** 2)
    noise = math.sqrt(variance) * np.random.default_rng(6).standard_normal((256, 256, 3))
    assert abs(quality.high_frequency_energy(noise) - expected) <= 0.02 * expected


def test_noise_ratio_rises_with_added_noise():
    smooth = _smooth_image(7, (64, 64, 3))
    unit = np.random.default_rng(8).standard_normal(smooth.shape)
    sigmas = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1]
    ratios = [quality.noise_ratio(smooth + s * unit, smooth) for s in sigmas]
    assert abs(ratios[0] - 1.0) <= 1e-12
    assert all(b > a for a, b in itertools.pairwise(ratios))
    assert ratios[-1] > 100.0


# --- texture ----------------------------------------------------------------------------


def test_oriented_filters_differentiate_a_ramp():
    y, x = np.mgrid[0:20, 0:24].astype(np.float64)
    angles = np.deg2rad(quality.TEXTURE_ORIENTATIONS)
    for gx, gy in [(0.01, 0.0), (0.0, 0.02), (0.03, -0.01)]:
        responses = quality.oriented_responses(gx * x + gy * y)
        interior = responses[2:-2, 2:-2]  # away from the reflected border
        expected = gx * np.cos(angles) + gy * np.sin(angles)
        np.testing.assert_allclose(interior, np.broadcast_to(expected, interior.shape),
                                   rtol=0, atol=1e-14)


def test_stripes_put_energy_in_the_derivative_across_them():
    vertical = quality.band_energies(_stripes(vertical=True))
    horizontal = quality.band_energies(_stripes(vertical=False))
    assert vertical.shape == (quality.TEXTURE_LEVELS, 4)
    # Vertical stripes vary along the row: the 0-degree (horizontal-derivative) filter.
    assert np.all(vertical[:, 0] > 1e-4)
    np.testing.assert_allclose(vertical[:, 2], 0.0, rtol=0, atol=1e-20)
    # Diagonal filters see cos^2(45) = 1/2 of it.
    np.testing.assert_allclose(vertical[:, 1], vertical[:, 0] / 2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(vertical[:, 3], vertical[:, 0] / 2, rtol=1e-12, atol=0)
    # Transposing swaps 0 and 90 degrees and keeps 45 and 135 (135 -> -45).
    np.testing.assert_allclose(horizontal, vertical[:, [2, 1, 0, 3]], rtol=1e-10, atol=1e-20)


def test_texture_of_a_rotated_image_differs(pair):
    content, style = pair
    square_style, square_content = style[:, :96], content[:, :96]
    rotated = np.rot90(square_style)
    distance = quality.texture_distance(rotated, square_style, square_content)
    assert distance > 0.2
    # The 0/90 and 45/135 statistics swap under the rotation.
    np.testing.assert_allclose(quality.band_energies(rotated),
                               quality.band_energies(square_style)[:, [2, 3, 0, 1]],
                               rtol=1e-9, atol=1e-20)


# --- shapes and sizes -------------------------------------------------------------------


def test_the_smallest_images_work():
    rng = np.random.default_rng(9)
    content, style, result = (rng.random((24, 32, 3)) for _ in range(3))
    measures = quality.quality_measures(result, style, content)
    assert all(np.isfinite(value) for value in measures.values())
    assert 0.0 < measures["palette"] < 2.0
    assert -1.0 <= measures["layout"] <= 1.0


def test_shapes_that_differ_raise():
    a, b = np.zeros((32, 32, 3)), np.zeros((32, 40, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        quality.palette_distance(a, a, b)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.layout_similarity(a, b)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.noise_ratio(a, b)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.texture_distance(b, a, a)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.quality_measures(a, b, a)
    with pytest.raises(ValueError, match="RGB"):
        quality.noise_ratio(a[..., 0], a[..., 0])


def test_too_small_images_raise():
    with pytest.raises(ValueError, match=">= 11 px"):
        quality.layout_similarity(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)))
    thin = np.zeros((40, 640, 3))  # 4x64 after resizing to 64 px on the long side
    with pytest.raises(ValueError, match=">= 11 px"):
        quality.layout_similarity(thin, thin)
    with pytest.raises(ValueError, match=">= 7 px"):
        quality.noise_ratio(np.zeros((6, 30, 3)), np.zeros((6, 30, 3)))
    with pytest.raises(ValueError, match=">= 24 px"):
        quality.texture_distance(*[np.zeros((23, 40, 3))] * 3)
    with pytest.raises(ValueError, match=">= 24 px"):
        quality.quality_measures(*[np.zeros((20, 40, 3))] * 3)
