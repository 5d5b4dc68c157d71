"""Colour control (Gatys, Ecker, Bethge, Hertzmann, Shechtman, CVPR 2017, Sec. 5).

Two ways to keep the photo's colours while transferring the painting's style, and one
post-hoc swap for comparison. Every image here is RGB in [0, 1], shape (H, W, 3), NumPy
or JAX (the colour space maps are plain matrix products).

- ``luminance`` (Sec. 5, "luminance-only transfer"): the objective sees only the
  luminance Y of the image (:func:`grey` inside the loss, so chroma gets no gradient), the
  targets are the content's luminance and the style's luminance matched to the content's
  mean and standard deviation (:func:`match_luminance`, Eq. of Sec. 5:
  Y_s' = (sigma_c / sigma_s)(Y_s - mu_s) + mu_c), and the result is the optimised Y with
  the content's I and Q (:func:`with_chroma_of`).
- ``histogram`` (Sec. 5, "colour histogram matching"): before the run, the style's pixels
  p become p' = A (p - mu_s) + mu_c, so that their mean and covariance are the content's
  (:func:`match_histogram`); A by ``pca`` (Sigma_c^1/2 Sigma_s^-1/2, eigen-decomposition
  square roots: the authors' notebooks' default), ``cholesky`` (L_c L_s^-1) or ``sym``
  (Sigma_s^-1/2 (Sigma_s^1/2 Sigma_c Sigma_s^1/2)^1/2 Sigma_s^-1/2, the one symmetric A).
- ``original`` (jcjohnson/neural-style's ``-original_colors 1``): a normal run, then the
  result's luminance with the content's chroma.

The colour space is YIQ (the paper's wording; the notebooks and jcjohnson use YUV). Both
share Y = 0.299 R + 0.587 G + 0.114 B, and their chroma pairs are invertible linear maps
of (R - Y, B - Y), so "the content's chroma" is the same in both: the results agree up
to the rounding of the published coefficients.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

COLOR_CONTROLS = ("none", "luminance", "histogram", "original")
HISTOGRAM_MODES = ("pca", "cholesky", "sym")

# RGB -> YIQ (FCC NTSC), rows Y, I, Q; and its exact inverse, whose Y column is all ones
# (R, G and B each move one for one with Y).
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)
# The covariance regulariser of the authors' notebooks (match_color, eps = 1e-5).
HISTOGRAM_EPS = 1e-5


def _apply(image, matrix: np.ndarray):
    """``matrix`` applied to every pixel of ``image`` (..., 3), in ``image``'s array module
    and dtype."""
    xp = np if isinstance(image, np.ndarray) else jnp
    return xp.tensordot(image, xp.asarray(matrix.T, dtype=image.dtype), axes=1)


def to_yiq(rgb):
    """RGB (..., 3) -> YIQ (..., 3)."""
    return _apply(rgb, RGB_TO_YIQ)


def from_yiq(yiq):
    """YIQ (..., 3) -> RGB (..., 3)."""
    return _apply(yiq, YIQ_TO_RGB)


def luminance(rgb):
    """Y (..., 1) of RGB (..., 3)."""
    return _apply(rgb, RGB_TO_YIQ[:1])


def grey(rgb):
    """The grey image with ``rgb``'s luminance: Y in every channel (what a luminance-only
    objective sees)."""
    xp = np if isinstance(rgb, np.ndarray) else jnp
    return xp.repeat(luminance(rgb), 3, axis=-1)


def match_luminance(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The style's luminance matched to the content's mean and standard deviation, as a
    grey RGB image: Y_s' = (sigma_c / sigma_s)(Y_s - mu_s) + mu_c (Sec. 5). Not clipped:
    the network does not need [0, 1], and clipping would undo the match."""
    style_y = np.asarray(luminance(np.asarray(style_rgb, np.float64)))
    content_y = np.asarray(luminance(np.asarray(content_rgb, np.float64)))
    scale = content_y.std() / max(style_y.std(), 1e-8)
    matched = scale * (style_y - style_y.mean()) + content_y.mean()
    return np.repeat(matched, 3, axis=-1).astype(np.float32)


def with_chroma_of(result_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """``result_rgb``'s luminance with ``content_rgb``'s chroma (I and Q), in [0, 1].

    RGB = Y + c per pixel, with c the content's chroma offsets (``YIQ_TO_RGB``'s Y column
    is all ones), so keeping c and clamping Y to [-min(c), 1 - max(c)] gives an in-gamut
    pixel with exactly the content's I and Q; the interval is never empty for a content
    pixel that was itself in [0, 1].
    """
    content = np.asarray(content_rgb, np.float64)
    y = np.asarray(luminance(np.asarray(result_rgb, np.float64)))
    chroma = content - np.asarray(luminance(content))  # c = RGB - Y: the I, Q part
    low = -chroma.min(axis=-1, keepdims=True)
    high = 1.0 - chroma.max(axis=-1, keepdims=True)
    y = np.clip(y, low, np.maximum(high, low))
    return np.clip(y + chroma, 0.0, 1.0).astype(np.float32)


def _sqrt_and_inverse_sqrt(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 0.0)
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse_root = (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T
    return root, inverse_root


def histogram_transform(style_rgb: np.ndarray, content_rgb: np.ndarray, mode: str = "pca"):
    """(A, mu_s, mu_c) of :func:`match_histogram`: p' = A (p - mu_s) + mu_c."""
    if mode not in HISTOGRAM_MODES:
        raise ValueError(f"unknown histogram match {mode!r}: expected one of {', '.join(HISTOGRAM_MODES)}")
    style = np.asarray(style_rgb, np.float64).reshape(-1, 3)
    content = np.asarray(content_rgb, np.float64).reshape(-1, 3)
    mu_s, mu_c = style.mean(axis=0), content.mean(axis=0)
    eye = HISTOGRAM_EPS * np.eye(3)
    cov_s = np.cov(style, rowvar=False, bias=True) + eye
    cov_c = np.cov(content, rowvar=False, bias=True) + eye
    if mode == "cholesky":
        transform = np.linalg.cholesky(cov_c) @ np.linalg.inv(np.linalg.cholesky(cov_s))
    elif mode == "pca":
        root_c, _ = _sqrt_and_inverse_sqrt(cov_c)
        _, inverse_root_s = _sqrt_and_inverse_sqrt(cov_s)
        transform = root_c @ inverse_root_s
    else:  # sym
        root_s, inverse_root_s = _sqrt_and_inverse_sqrt(cov_s)
        middle, _ = _sqrt_and_inverse_sqrt(root_s @ cov_c @ root_s)
        transform = inverse_root_s @ middle @ inverse_root_s
    return transform, mu_s, mu_c


def match_histogram(style_rgb: np.ndarray, content_rgb: np.ndarray, mode: str = "pca") -> np.ndarray:
    """The style image with its pixels' mean and covariance made the content's (Sec. 5):
    p' = A (p - mu_s) + mu_c, A chosen by ``mode`` (module docstring). Not clipped, so
    the match is exact (up to ``HISTOGRAM_EPS`` on the covariances)."""
    transform, mu_s, mu_c = histogram_transform(style_rgb, content_rgb, mode)
    style = np.asarray(style_rgb, np.float64)
    return ((style - mu_s) @ transform.T + mu_c).astype(np.float32)


def style_target(style_rgb: np.ndarray, content_rgb: np.ndarray, control: str,
                 mode: str = "pca") -> np.ndarray:
    """The style image the objective targets under colour control ``control``: its colours
    matched to the content's (``histogram``, by ``mode``), its luminance matched to the
    content's (``luminance``), or itself (``none``, ``original``)."""
    if control == "histogram":
        return match_histogram(style_rgb, content_rgb, mode)
    if control == "luminance":
        return match_luminance(style_rgb, content_rgb)
    return style_rgb


def finish(rgb, content_rgb: np.ndarray, control: str) -> np.ndarray:
    """The picture a run shows, in [0, 1]: under ``luminance`` and ``original``, ``rgb``'s
    luminance with the content's chroma (:func:`with_chroma_of`); otherwise ``rgb``."""
    rgb = np.asarray(rgb, np.float32)
    if control in ("luminance", "original"):
        return with_chroma_of(rgb, content_rgb)
    return np.clip(rgb, 0.0, 1.0)
