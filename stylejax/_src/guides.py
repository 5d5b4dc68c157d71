"""Spatial control (Gatys, Ecker, Bethge, Hertzmann, Shechtman, CVPR 2017, Sec. 4).

R regions of the output, each with its own style image: a guide T_r (values in [0, 1])
over the content image says where region r is, and optionally a guide over style image r
says which part of it to take the style from. At layer l the guide is taken to the
layer's resolution (:func:`guide_at`) and the features are weighted by it, giving the
guided Gram matrix G_r^l = (F^l o T_r^l)(F^l o T_r^l)^T (Eq. 8 of the 2017 paper); the
style loss is sum_r w_r E_l(G_r^l(x), G_r^l(style_r)), w_r = 1/R by default (the
several-styles blend weights, ``LossWeights.style_blend``), and a region absent at a
layer (its guide all zero there) is skipped.

Two ways to take a guide to a layer's resolution, as the authors' notebooks name them:

- ``simple``: the layer's own 2x2 average pooling applied to the guide as many times as
  the layer is downsampled (each pooling rounds down, as the network's does);
- ``inside``: the same, then eroded with a 3x3 minimum at the layer, so that only
  positions whose neighbourhood lies wholly inside the region count (the notebooks' cheap
  stand-in, erosion by 3, for "receptive field inside the region").

Normalisation: each guide is scaled so that its squares sum to the layer's position
count, T <- T sqrt(M_l / sum T^2). An all-ones guide is left unchanged, so a single
region covering everything gives exactly the paper's Gram; a region covering a fraction
f of the picture gets weight 1/sqrt(f), so its guided Gram has the scale of a whole-image
Gram (the notebooks normalise by sqrt(sum T^2) and divide by M_l: the same up to the
constant the paper's E_l absorbs).

The guides are arrays passed to the compiled program (``Targets.guides``), not constants.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from stylejax._src import layers as vgg_layers
from stylejax._src.errors import invalid

GUIDE_METHODS = ("simple", "inside")


def _pool2(guide):
    """One 2x2, stride-2 average pooling of an (H, W) guide, rounding down as VGG's does."""
    window = (2, 2)
    return jax.lax.reduce_window(guide, 0.0, jax.lax.add, window, window, "VALID") / 4.0


def _erode3(guide):
    """3x3 minimum; outside the picture counts as inside the region (no border effect)."""
    return jax.lax.reduce_window(guide, jnp.inf, jax.lax.min, (3, 3), (1, 1), "SAME")


def guide_at(guide, layer: str, method: str = "simple"):
    """The (H, W) guide at ``layer``'s resolution (module docstring), not yet normalised."""
    if method not in GUIDE_METHODS:
        raise ValueError(f"unknown guide method {method!r}: expected one of {', '.join(GUIDE_METHODS)}")
    for _ in range(int(math.log2(vgg_layers.DOWNSAMPLING[vgg_layers.canonical_name(layer)]))):
        guide = _pool2(guide)
    return _erode3(guide) if method == "inside" else guide


def normalised(guide):
    """``guide`` scaled so that its squares sum to its size (all zero stays zero)."""
    total = jnp.sum(jnp.square(guide))
    return guide * jnp.sqrt(guide.size / jnp.maximum(total, 1e-12)) * (total > 0)


def layer_guides(guides, layer: str, method: str = "simple"):
    """(R, H, W) guides at image resolution -> (R, H_l, W_l) normalised guides at ``layer``."""
    return jnp.stack([normalised(guide_at(g, layer, method)) for g in guides])


def guided_grams(features, guides):
    """G_r = (F o T_r)(F o T_r)^T for every region: features (H, W, N), guides (R, H, W) at
    the features' resolution -> (R, N, N)."""
    flat = features.reshape(-1, features.shape[-1])  # (M, N)
    weights = jnp.square(guides.reshape(guides.shape[0], -1))  # (R, M): T_r^2 per position
    return jnp.einsum("rm,mn,mk->rnk", weights, flat, flat)


def resize_guide(guide: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """One (H, W) guide in [0, 1] resampled to ``shape`` (bilinear, as a 32-bit float
    image, so soft edges stay soft and hard ones stay within one pixel)."""
    picture = Image.fromarray(np.ascontiguousarray(np.asarray(guide, np.float32)))
    resized = picture.resize((int(shape[1]), int(shape[0])), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, np.float32), 0.0, 1.0)


def region_guides(mask: np.ndarray, regions: int) -> np.ndarray:
    """(R, H, W) float guides from ``mask``: (H, W) integer labels 0..R-1, or already
    (R, H, W) guides in [0, 1].

    Raises:
      InvalidSetting: another number of regions than ``regions``, or values out of range.
    """
    mask = np.asarray(mask)
    if mask.ndim == 2:
        if not np.issubdtype(mask.dtype, np.integer) or mask.min() < 0 or mask.max() >= regions:
            raise invalid(f"a label mask needs integers 0..{regions - 1}, one per style image")
        return np.stack([(mask == r).astype(np.float32) for r in range(regions)])
    if mask.ndim != 3 or mask.shape[0] != regions:
        raise invalid(f"the content mask has {mask.shape[0] if mask.ndim == 3 else 'no'} regions for "
                      f"{regions} style images")
    if not np.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise invalid("guides must hold values in [0, 1]")
    return mask.astype(np.float32)


def check_aspect(mask_shape, image_shape, what: str) -> None:
    """Refuses a mask whose aspect ratio differs from its image's by more than a pixel."""
    (mh, mw), (ih, iw) = mask_shape[:2], image_shape[:2]
    if abs(mh * iw - ih * mw) > max(mh, mw, ih, iw):
        raise invalid(f"the {what} is {mw}x{mh} px but its image is {iw}x{ih} px: another aspect ratio")
