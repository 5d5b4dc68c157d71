"""Loss weights computed from the pictures: the ``random`` preset's balance rule.

The paper's alpha/beta = 1e-3 and w_l = 1/5 are numbers for the normalised *pretrained*
VGG19. A random network puts its losses on other scales (its E_l differ by orders of
magnitude between layers, and its content term by other orders from its style term), so
fixed numbers that work for one pair of pictures or one size fail on the next. Here the
weights are set from the losses themselves, measured once before the optimisation:

- style layer weights (He, Wang & Hopcroft, NeurIPS 2016, Sec. 4: each layer's term
  scaled so that no layer dominates): w_l = (1 / E_l(c)) / sum_k (1 / E_k(c)), where
  E_l(c) is Eq. 4 at the content image c, i.e. how far the photo is from the painting's
  Gram matrices in layer l. Every layer then contributes equally at the start.
- content weight: alpha = balance * S(c) / L_content(s), with S(c) = sum_l w_l E_l(c) the
  style loss (Eq. 5) at the content image and L_content(s) the content loss (Eq. 1) at
  the style image, with beta = 1. ``balance`` is dimensionless: with balance = 1 the
  content term at the painting weighs as much as the style term at the photo, whatever
  the pictures, their size and the network's scale.
- TV weight: tv = tv_balance * S(c) / L_tv(c), the same idea for the smoothness term: at
  tv_balance = 1 the photo's own total variation weighs as much as its style loss.

All of it is one compiled forward pass of the two pictures (:func:`measure`) and a few
host-side divisions (:func:`resolve`); the weights it returns are ordinary
``LossWeights`` values, so the solver and sweeps treat them like any other.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import losses


class Scales(NamedTuple):
    """The loss scales the rule needs, for the layers of one LossSpec."""

    style_at_content: np.ndarray  # (n_style,) E_l(content image), Eq. 4
    content_at_style: np.ndarray  # (n_content,) L_content(style image) per content layer, Eq. 1
    tv_at_content: float  # L_tv(content image)


class Balanced(NamedTuple):
    """Weights resolved by the rule (host floats, ready for LossWeights)."""

    content_weight: float  # alpha, with beta = 1
    style_layer_weights: tuple[float, ...]
    tv_weight: float


def unit_weights(spec: losses.LossSpec, dtype=jnp.float32) -> losses.LossWeights:
    """Every weight 1 (TV 0): LossTerms then hold the raw per-layer terms the rule needs."""
    return losses.LossWeights(
        content_weight=jnp.ones((), dtype),
        style_weight=jnp.ones((), dtype),
        content_layer_weights=jnp.ones((len(spec.content_layers),), dtype),
        style_layer_weights=jnp.ones((len(spec.style_layers),), dtype),
        tv_weight=jnp.zeros((), dtype),
    )


def scales_from_terms(at_content: losses.LossTerms, at_style: losses.LossTerms) -> Scales:
    """:class:`Scales` from the loss terms at the content image and at the style image."""
    return Scales(
        style_at_content=np.asarray(at_content.style_per_layer, np.float64),
        content_at_style=np.asarray(at_style.content_per_layer, np.float64),
        tv_at_content=float(at_content.tv),
    )


def _measure(params, content_image, style_image, spec: losses.LossSpec):
    """The terms at the content and at the style image; with several style images (a
    tuple), their style terms and the content loss at them are averaged with equal
    weights, so every blend of a sweep shares one scale."""
    targets = losses.compute_targets(params, content_image, style_image, spec)
    ones = unit_weights(spec, content_image.dtype)
    at_content = losses.loss_terms(content_image, params, targets, ones, spec)
    if not isinstance(style_image, (tuple, list)):
        return at_content, losses.loss_terms(style_image, params, targets, ones, spec)
    at_styles = [losses.loss_terms(image, params, targets, ones, spec) for image in style_image]
    mean = sum(t.content_per_layer for t in at_styles) / len(at_styles)
    return at_content, at_styles[0]._replace(content_per_layer=mean)


@functools.lru_cache(maxsize=8)
def _jitted_measure(spec: losses.LossSpec):
    return jax.jit(functools.partial(_measure, spec=spec))


def measure(params, content_image, style_image, spec: losses.LossSpec) -> Scales:
    """The scales of :class:`Scales` for ``spec``'s layers (images in the network's space)."""
    return scales_from_terms(*_jitted_measure(spec)(params, content_image, style_image))


def layer_weights(style_at_content: np.ndarray) -> np.ndarray:
    """w_l proportional to 1 / E_l(content), summing to 1 (see the module docstring).

    A layer whose E_l is zero (the photo already has the painting's Gram matrix there)
    or not finite gets weight 0; if every layer is so, the weights are 1/n.
    """
    values = np.asarray(style_at_content, np.float64)
    usable = np.isfinite(values) & (values > 0)
    if not usable.any():
        return np.full(values.shape, 1.0 / max(values.size, 1))
    inverse = np.where(usable, 1.0 / np.where(usable, values, 1.0), 0.0)
    return inverse / inverse.sum()


def resolve(
    scales: Scales,
    *,
    balance: float,
    tv_balance: float = 0.0,
    style_layer_weights=None,
    content_layer_weights=None,
) -> Balanced:
    """alpha, w_l and the TV weight by the rule of the module docstring.

    Args:
      scales: from :func:`measure`, for the run's LossSpec.
      balance: the dimensionless content weight (alpha = balance * S(c) / L_content(s)).
      tv_balance: the dimensionless TV weight (0: no TV term).
      style_layer_weights: fixed w_l (one per style layer) instead of the balanced ones.
      content_layer_weights: weights of the content layers (default 1 each), for
        L_content(s) = sum_k c_k L_content^k(s).

    Raises:
      ValueError: a negative or non-finite balance, or scales that leave alpha undefined
        (the style image has exactly the content's features in the content layer).
    """
    if not np.isfinite(balance) or balance < 0:
        raise ValueError(f"balance must be a finite number >= 0, got {balance!r}")
    if not np.isfinite(tv_balance) or tv_balance < 0:
        raise ValueError(f"tv_balance must be a finite number >= 0, got {tv_balance!r}")
    if style_layer_weights is None:
        weights = layer_weights(scales.style_at_content)
    else:
        weights = np.asarray(style_layer_weights, np.float64)
        if weights.shape != scales.style_at_content.shape:
            raise ValueError(
                f"style_layer_weights has {weights.size} entries for "
                f"{scales.style_at_content.size} style layers"
            )
    style_scale = float(np.sum(weights * scales.style_at_content))
    content = np.asarray(scales.content_at_style, np.float64)
    content_weights = (
        np.ones_like(content) if content_layer_weights is None
        else np.asarray(content_layer_weights, np.float64)
    )
    content_scale = float(np.sum(content_weights * content))
    if balance == 0 or content.size == 0:
        alpha = 0.0
    elif not (np.isfinite(content_scale) and content_scale > 0 and np.isfinite(style_scale)):
        raise ValueError(
            "the balance rule is undefined for these pictures: the content loss at the style "
            f"image is {content_scale} and the style loss at the content image {style_scale}"
        )
    else:
        alpha = balance * style_scale / content_scale
    if tv_balance == 0:
        tv = 0.0
    elif not (scales.tv_at_content > 0 and np.isfinite(style_scale)):
        raise ValueError("the TV balance is undefined: the content image has no total variation")
    else:
        tv = tv_balance * style_scale / scales.tv_at_content
    return Balanced(float(alpha), tuple(float(w) for w in weights), float(tv))
