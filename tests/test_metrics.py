"""stylejax._src.metrics against plain reference implementations."""

import itertools
import math

import numpy as np
import pytest

from stylejax._src import metrics, vgg
from stylejax._src.convention import CAFFE


def _image(seed, shape=(24, 32, 3)):
    return np.random.default_rng(seed).random(shape)


def _smooth_image(seed, shape=(24, 32, 3)):
    """A natural-ish picture (smooth, so SSIM is well above zero against itself + noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape[:2])
    channels = [0.5 + 0.4 * np.sin(6 * x + 4 * y + rng.uniform(0, 6)) for _ in range(shape[2])]
    return np.stack(channels, axis=-1)


def _reference_ssim(a, b):
    """The textbook definition, one window position and one channel at a time."""
    size, sigma = 11, 1.5
    x = np.arange(size) - 5.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for c in range(a.shape[2]):
        for i in range(a.shape[0] - size + 1):
            for j in range(a.shape[1] - size + 1):
                pa = a[i : i + size, j : j + size, c]
                pb = b[i : i + size, j : j + size, c]
                ma, mb = np.sum(window * pa), np.sum(window * pb)
                va = np.sum(window * (pa - ma) ** 2)
                vb = np.sum(window * (pb - mb) ** 2)
                cov = np.sum(window * (pa - ma) * (pb - mb))
                values.append(((2 * ma * mb + c1) * (2 * cov + c2))
                              / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_psnr_of_a_known_mse():
    a = _image(0)
    b = a + 0.1  # MSE exactly 0.01: 20 dB
    assert metrics.psnr(a, b) == pytest.approx(20.0, abs=1e-9)
    c = a.copy()
    c[0, 0, 0] += 1.0  # MSE = 1 / size
    assert metrics.psnr(a, c) == pytest.approx(10 * math.log10(a.size), abs=1e-9)


def test_psnr_equal_images_is_inf_and_symmetric():
    a, b = _image(0), _image(1)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, b) == pytest.approx(metrics.psnr(b, a), abs=1e-12)


def test_psnr_rejects_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.zeros((16, 16, 3)), np.zeros((16, 17, 3)))


def test_ssim_of_an_image_with_itself_is_one():
    for a in (_image(0), _smooth_image(1)):
        assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_the_plain_reference():
    a = _smooth_image(2, (16, 19, 3))
    b = np.clip(a + 0.1 * _image(3, (16, 19, 3)) - 0.05, 0, 1)
    assert metrics.ssim(a, b) == pytest.approx(_reference_ssim(a, b), abs=1e-10)
    assert metrics.ssim(a, b) < 1.0


def test_ssim_matches_scikit_image():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    a = _smooth_image(4)
    b = np.clip(a + 0.2 * (_image(5) - 0.5), 0, 1)
    expected = skimage_metrics.structural_similarity(
        a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_falls_as_noise_grows_and_is_symmetric():
    a = _smooth_image(6)
    noise = _image(7) - 0.5
    values = [metrics.ssim(a, np.clip(a + s * noise, 0, 1)) for s in (0.0, 0.05, 0.2, 0.5)]
    assert values[0] == pytest.approx(1.0, abs=1e-12)
    assert all(later < earlier - 1e-3 for earlier, later in itertools.pairwise(values))
    b = np.clip(a + 0.3 * noise, 0, 1)
    assert metrics.ssim(a, b) == pytest.approx(metrics.ssim(b, a), abs=1e-12)


def test_ssim_needs_room_for_the_window():
    with pytest.raises(ValueError, match="11"):
        metrics.ssim(np.zeros((10, 20, 3)), np.zeros((10, 20, 3)))


def test_gram_distance_zero_for_identical_and_permuted_positions():
    rng = np.random.default_rng(8)
    features = rng.random((6, 5, 7))
    assert metrics.gram_distance(features, features) == 0.0
    flat = features.reshape(-1, 7)
    permuted = flat[rng.permutation(flat.shape[0])].reshape(6, 5, 7)
    assert not np.array_equal(permuted, features)
    assert metrics.gram_distance(permuted, features) == pytest.approx(0.0, abs=1e-12)
    # Reshaping positions into another spatial layout changes nothing either.
    assert metrics.gram_distance(features.reshape(3, 10, 7), features) == pytest.approx(0.0, abs=1e-12)


def test_gram_distance_against_the_plain_formula():
    rng = np.random.default_rng(9)
    a, b = rng.random((4, 4, 3)), rng.random((4, 4, 3))
    ga = sum(np.outer(a[i, j], a[i, j]) for i in range(4) for j in range(4))
    gb = sum(np.outer(b[i, j], b[i, j]) for i in range(4) for j in range(4))
    expected = np.sqrt(np.sum((ga - gb) ** 2)) / np.sqrt(np.sum(gb**2))
    assert metrics.gram_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.gram_distance(2 * b, b) == pytest.approx(3.0, rel=1e-12)  # (4G - G) / G


def test_gram_distance_with_a_zero_reference():
    zero = np.zeros((2, 2, 3))
    assert metrics.gram_distance(zero, zero) == 0.0
    assert metrics.gram_distance(np.ones((2, 2, 3)), zero) == math.inf


@pytest.mark.slow
def test_style_gram_distance_through_vgg():
    params = vgg.he_normal_params(0)
    layers = ("conv1_1", "conv2_1", "conv3_1")
    a, b = _smooth_image(10, (32, 32, 3)), _image(11, (32, 32, 3))
    assert metrics.style_gram_distance(params, a, a, layers, CAFFE) == pytest.approx(0.0, abs=1e-6)
    value = metrics.style_gram_distance(params, a, b, layers, CAFFE, "avg")
    features_a = vgg.features(params, CAFFE.to_network(a.astype(np.float32)), layers, "avg")
    features_b = vgg.features(params, CAFFE.to_network(b.astype(np.float32)), layers, "avg")
    expected = np.mean([metrics.gram_distance(features_a[n], features_b[n]) for n in layers])
    assert value > 0.0
    assert value == pytest.approx(expected, rel=1e-5)


def test_style_gram_distances_batched_equal_one_at_a_time():
    params = vgg.he_normal_params(1)
    layers = ("conv1_1", "conv2_1")
    reference = _smooth_image(12, (16, 20, 3))
    pictures = [_image(13 + i, (16, 20, 3)) for i in range(5)]  # 6 with the reference: 2 batches
    batched = metrics.style_gram_distances(params, pictures, reference, layers, CAFFE)
    single = [metrics.style_gram_distance(params, p, reference, layers, CAFFE) for p in pictures]
    assert len(batched) == 5
    np.testing.assert_allclose(batched, single, rtol=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        metrics.style_gram_distances(params, [np.zeros((16, 16, 3))], reference, layers, CAFFE)


def test_rms_distance_of_known_differences():
    a = np.zeros((4, 5, 3))
    assert metrics.rms_distance(a, a) == 0.0
    assert metrics.rms_distance(a, np.full((4, 5, 3), 0.25)) == pytest.approx(0.25, abs=1e-15)
    b = a.copy()
    b[1, 2, 0] = 0.6  # one of 60 values differs: sqrt(0.36 / 60)
    assert metrics.rms_distance(a, b) == pytest.approx(math.sqrt(0.36 / 60), rel=1e-12)
    assert metrics.rms_distance(b, a) == metrics.rms_distance(a, b)


def test_mean_pairwise_distance():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.5)
    c = np.ones((4, 4, 3))
    # pairs: a-b 0.5, a-c 1.0, b-c 0.5
    assert metrics.mean_pairwise_distance([a, b, c]) == pytest.approx(2.0 / 3.0, abs=1e-12)
    assert metrics.mean_pairwise_distance(np.stack([a, a])) == 0.0
    with pytest.raises(ValueError, match="two"):
        metrics.mean_pairwise_distance([a])
