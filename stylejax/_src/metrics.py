"""Image and feature metrics for the figure scripts' trend checks.

Everything here works on NumPy arrays on the host (float64 internally) and needs no
SciPy. Images are RGB in [0, 1], shape (H, W, 3) (or (H, W) for one channel).

- ``psnr``: peak signal-to-noise ratio in dB with a peak of 1.
- ``ssim``: the structural similarity of Wang, Bovik, Sheikh & Simoncelli (IEEE TIP
  2004) with their standard settings: an 11x11 Gaussian window with sigma 1.5 (normalised
  to sum 1), K1 = 0.01, K2 = 0.03, data range 1, population (weighted) variances. The
  window is applied only where it fits inside the image (the "valid" region, as in the
  authors' ``ssim.m`` with ``filter2(..., 'valid')``); the SSIM map is averaged over that
  region and then over channels. This equals
  ``skimage.metrics.structural_similarity(a, b, channel_axis=-1, data_range=1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, which pads and then
  crops the same 5-pixel border. The separable filter is two matrix products over
  ``numpy.lib.stride_tricks.sliding_window_view`` windows.
- ``gram_distance``: relative Frobenius distance between unnormalised Gram matrices.
- ``style_gram_distance``: ``gram_distance`` through VGG19, averaged over layers.
- ``mean_pairwise_distance``: mean RMS pixel difference over all pairs of images.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import numpy as np

from stylejax._src import vgg

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]: 10 log10(1 / MSE).

    ``inf`` when the images are equal.
    """
    a, b = _pair(a, b)
    mse = float(np.mean(np.square(a - b)))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D Gaussian taps (sum 1); the 2-D window is their outer product."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-(x**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation of (H, W, ...) with ``taps`` on both axes, valid region only."""
    size = len(taps)
    rows = np.lib.stride_tricks.sliding_window_view(image, size, axis=0) @ taps
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=1) @ taps


def ssim_map(a, b, data_range: float = 1.0) -> np.ndarray:
    """The SSIM map over the valid region: (H - 10, W - 10[, C])."""
    a, b = _pair(a, b)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs both sides >= {SSIM_WINDOW} px, got {a.shape[:2]}")
    taps = gaussian_window()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_a = _filter_valid(a, taps)
    mu_b = _filter_valid(b, taps)
    var_a = _filter_valid(a * a, taps) - mu_a * mu_a
    var_b = _filter_valid(b * b, taps) - mu_b * mu_b
    cov = _filter_valid(a * b, taps) - mu_a * mu_b
    numerator = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    denominator = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return numerator / denominator


def ssim(a, b, data_range: float = 1.0) -> float:
    """Mean SSIM (Gaussian 11x11, sigma 1.5; see the module docstring), averaged over channels."""
    return float(np.mean(ssim_map(a, b, data_range)))


def gram_matrix(features) -> np.ndarray:
    """Unnormalised Gram matrix F^T F of an (H, W, N) activation, float64: (N, N)."""
    array = np.asarray(features, dtype=np.float64)
    flat = array.reshape(-1, array.shape[-1])
    return flat.T @ flat


def _relative_distance(gram_a: np.ndarray, gram_b: np.ndarray) -> float:
    if gram_a.shape != gram_b.shape:
        raise ValueError(f"activations differ in channels: {gram_a.shape} vs {gram_b.shape}")
    difference = float(np.linalg.norm(gram_a - gram_b))
    reference = float(np.linalg.norm(gram_b))
    if difference == 0.0:
        return 0.0
    if reference == 0.0:
        return math.inf
    return difference / reference


def gram_distance(features_a, features_b) -> float:
    """||G_a - G_b||_F / ||G_b||_F for the unnormalised Grams of two (H, W, N) activations.

    Relative to the second argument (the reference, e.g. the style image). 0 when the
    Grams are equal (also when both are zero); ``inf`` when only the reference's is zero.
    Invariant to any permutation of positions, as the Gram is.
    """
    return _relative_distance(gram_matrix(features_a), gram_matrix(features_b))


# Images per batched forward pass in style_gram_distances: enough to read the deep layers'
# weights once for several images, few enough to bound memory at 512 px.
_FEATURE_BATCH = 4


@functools.lru_cache(maxsize=8)
def _features_fn(layers: tuple[str, ...], pooling: str):
    one = functools.partial(vgg.features, layers=layers, pooling=pooling)
    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def style_gram_distances(params, images, reference, layers: Sequence[str], convention,
                         pooling: str = "avg") -> list[float]:
    """``style_gram_distance`` of each of ``images`` to ``reference``, batched.

    The activations come from jitted, vmapped VGG19 forward passes over batches of
    ``_FEATURE_BATCH`` pictures (the last batch padded), the Grams and norms from
    NumPy in float64.
    """
    layers = tuple(layers)
    if not layers:
        raise ValueError("style_gram_distance needs at least one layer")
    fn = _features_fn(layers, vgg.check_pooling(pooling))
    pictures = [np.asarray(reference, np.float32)] + [np.asarray(i, np.float32) for i in images]
    if any(p.shape != pictures[0].shape for p in pictures):
        raise ValueError("style_gram_distances needs pictures of one shape")
    features = {name: [] for name in layers}
    for start in range(0, len(pictures), _FEATURE_BATCH):
        batch = pictures[start : start + _FEATURE_BATCH]
        padded = batch + [batch[-1]] * (_FEATURE_BATCH - len(batch))
        out = fn(params, convention.to_network(np.stack(padded)))
        for name in layers:
            features[name].extend(np.asarray(out[name])[: len(batch)])
    distances = np.zeros((len(pictures) - 1, len(layers)))
    for j, name in enumerate(layers):
        reference_gram = gram_matrix(features[name][0])
        for i, image_features in enumerate(features[name][1:]):
            distances[i, j] = _relative_distance(gram_matrix(image_features), reference_gram)
    return [float(d) for d in distances.mean(axis=1)]


def style_gram_distance(params, image_a, image_b, layers: Sequence[str], convention,
                        pooling: str = "avg") -> float:
    """Mean over ``layers`` of ``gram_distance`` between the VGG19 activations of two images.

    Args:
      params: VGG19 params (as ``LoadedWeights.params``). NumPy params are copied to the
        device on every call; a caller that measures many images passes
        ``jax.tree.map(jnp.asarray, params)`` once, or uses ``style_gram_distances``.
      image_a, image_b: RGB in [0, 1], (H, W, 3); ``image_b`` is the reference.
      layers: names such as ``conv1_1``.
      convention: the weights' ``InputConvention``.
      pooling: ``avg`` (the paper) or ``max``.
    """
    return style_gram_distances(params, [image_a], image_b, layers, convention, pooling)[0]


def rms_distance(a, b) -> float:
    """Root-mean-square pixel difference of two images."""
    a, b = _pair(a, b)
    return float(np.sqrt(np.mean(np.square(a - b))))


def mean_pairwise_distance(images) -> float:
    """Mean RMS pixel difference over all unordered pairs of two or more images."""
    images = [np.asarray(image, dtype=np.float64) for image in images]
    if len(images) < 2:
        raise ValueError("mean_pairwise_distance needs at least two images")
    return float(np.mean([rms_distance(a, b) for a, b in itertools.combinations(images, 2)]))
