"""The losses of Gatys, Ecker & Bethge (CVPR 2016), exactly as the paper defines them.

Notation (Sec. 2 of the paper): layer l has N_l filters and M_l = H_l * W_l positions;
F^l in R^{N_l x M_l} holds the generated image's responses, P^l the content image's.

- content (Eq. 1):     L_content = 1/2 * sum_ij (F^l_ij - P^l_ij)^2
- Gram matrix (Eq. 3): G^l_ij = sum_k F^l_ik F^l_jk   (unnormalised)
- style layer (Eq. 4): E_l = 1 / (4 N_l^2 M_l^2) * sum_ij (G^l_ij - A^l_ij)^2
- style (Eq. 5):       L_style = sum_l w_l E_l
- total (Eq. 7):       L_total = alpha * L_content + beta * L_style (+ tv * L_tv)

The total-variation term is not in the paper (it is off by default); here it is
L_tv = sum ((x_{i+1,j} - x_{i,j})^2 + (x_{i,j+1} - x_{i,j})^2) over pixels and channels of
the image in the network's input space (the squared form of Mahendran & Vedaldi, 2015).

Every weight is an array argument, so one compiled program serves a sweep over them.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from stylejax._src import colour, guides, vgg
from stylejax._src import layers as vgg_layers
from stylejax._src.convention import InputConvention


def gram(features):
    """Unnormalised Gram matrix G = F F^T (Eq. 3) of one (H, W, N) activation: (N, N)."""
    flat = features.reshape(-1, features.shape[-1])  # (M, N): F^T
    return flat.T @ flat


def content_loss(generated, content):
    """L_content = 1/2 sum (F - P)^2 (Eq. 1) for one layer's (H, W, N) activations."""
    return 0.5 * jnp.sum(jnp.square(generated - content))


def style_layer_loss(generated, target_gram):
    """E_l = 1/(4 N^2 M^2) sum (G - A)^2 (Eq. 4): generated (H, W, N), target Gram (N, N);
    or one E_l per style, shape (K,), for targets (K, N, N)."""
    height, width, channels = generated.shape
    return style_loss_of_gram(gram(generated), target_gram, channels, height * width)


def style_loss_of_gram(generated_gram, target_gram, channels: int, positions: int):
    """Eq. 4 from the generated image's Gram G (N, N) at a layer of N channels and M
    positions: 1/(4 N^2 M^2) sum (G - A)^2; one E_l per style, shape (K,), for targets
    (K, N, N)."""
    scale = 1.0 / (4.0 * channels**2 * positions**2)
    if target_gram.ndim == 3:  # one target per style
        generated_gram = generated_gram[None]
    difference = jnp.square(generated_gram - target_gram)
    return scale * jnp.sum(difference, axis=(-2, -1))


def tv_loss(image):
    """Squared total variation of one (H, W, C) image (not in the paper; see module doc)."""
    down = jnp.sum(jnp.square(image[1:, :, :] - image[:-1, :, :]))
    right = jnp.sum(jnp.square(image[:, 1:, :] - image[:, :-1, :]))
    return down + right


class LossSpec(NamedTuple):
    """What is computed (static: it decides the program's shape, not its numbers)."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pooling: str
    # Luminance-only transfer (colour control, CVPR 2017 Sec. 5): with the weights' input
    # convention here, every image (the optimised one and both targets) is replaced by the
    # grey image of its luminance before the network sees it, so the objective depends on
    # luminance alone and chroma gets no gradient. None: the images as they are.
    luminance: InputConvention | None = None


class LossWeights(NamedTuple):
    """How the terms are weighted (traced arrays: a sweep varies them without recompiling).

    content_weight is alpha, style_weight is beta (Eq. 7); content_layer_weights and
    style_layer_weights (w_l, Eq. 5) have one entry per layer of the LossSpec.
    """

    content_weight: jnp.ndarray
    style_weight: jnp.ndarray
    content_layer_weights: jnp.ndarray
    style_layer_weights: jnp.ndarray
    tv_weight: jnp.ndarray
    # Several styles (targets (K, N, N) per layer): b_k, the weight of style k's E_l in the
    # style term, E_l = sum_k b_k E_l^k (jcjohnson/neural-style's blend). None: 1/K each.
    style_blend: jnp.ndarray | None = None


class Targets(NamedTuple):
    """P^l of the content image and A^l of the style image, one per layer of the spec."""

    content: tuple
    style_grams: tuple
    # Spatial control (stylejax/_src/guides.py): per style layer, the (R, H_l, W_l)
    # normalised guides of the R regions over the output; the style targets are then the
    # R regions' guided Grams. None: no spatial control.
    guides: tuple | None = None


class LossTerms(NamedTuple):
    """The unweighted terms and the weighted objective at one image."""

    content: jnp.ndarray  # sum_l c_l * L_content(l); c = 1 for the paper's single layer
    content_per_layer: jnp.ndarray  # (n_content,)
    style_per_layer: jnp.ndarray  # (n_style,) E_l, unweighted
    style: jnp.ndarray  # sum_l w_l E_l (Eq. 5)
    tv: jnp.ndarray
    total: jnp.ndarray  # alpha * content + beta * style + tv_weight * tv


def layers_needed(spec: LossSpec) -> tuple[str, ...]:
    return tuple(dict.fromkeys(spec.content_layers + spec.style_layers))


def seen(image, spec: LossSpec):
    """``image`` as the objective sees it: itself, or its luminance as a grey image."""
    if spec.luminance is None:
        return image
    return spec.luminance.to_network(colour.grey(spec.luminance.to_rgb01(image)))


def compute_targets(params, content_image, style_image, spec: LossSpec, content_guides=None,
                    style_guides=None, guide_method: str = "simple") -> Targets:
    """Content responses P^l and style Grams A^l (Eq. 1, 3) for the layers of ``spec``.

    ``style_image`` is one image, or a tuple of K images (several styles): then each
    layer's target is (K, N, N). A style image may have another size than the content
    (``style_scale``): its Gram is then scaled by M_l / M_l^k, the content's positions
    over the style's, so that it is compared per position as the paper's same-size style
    image is (the factor is exactly 1 at the same size).

    Spatial control: ``content_guides`` (R, H, W) over the content image, one region per
    style image (a tuple of R), and optionally ``style_guides``, one (H_k, W_k) guide per
    style image (None: all of it); the targets are then guided Grams (guides.py).
    """
    content_image = seen(content_image, spec)
    content = ()
    if spec.content_layers:
        content_features = vgg.features(params, content_image, spec.content_layers, spec.pooling)
        content = tuple(content_features[name] for name in spec.content_layers)
    grams = ()
    if spec.style_layers:
        several = isinstance(style_image, (tuple, list))
        per_style = []
        for k, image in enumerate(style_image if several else (style_image,)):
            style_features = vgg.features(params, seen(image, spec), spec.style_layers, spec.pooling)
            own_guide = None if style_guides is None else style_guides[k]
            per_style.append([
                _style_gram(style_features[name], name, own_guide, guide_method)
                * (positions(content_image.shape, name) / positions(image.shape, name))
                for name in spec.style_layers])
        grams = tuple(jnp.stack(layer) if several else layer[0] for layer in zip(*per_style, strict=True))
    if content_guides is None:
        return Targets(content=content, style_grams=grams)
    layer_guides = tuple(guides.layer_guides(content_guides, name, guide_method) for name in spec.style_layers)
    return Targets(content=content, style_grams=grams, guides=layer_guides)


def _style_gram(features, layer: str, guide, method: str):
    """A style image's Gram at ``layer``, guided by ``guide`` (H, W) if one is given."""
    if guide is None:
        return gram(features)
    return guides.guided_grams(features, guides.layer_guides(guide[None], layer, method))[0]


def positions(image_shape, layer: str) -> int:
    """M_l: the positions of ``layer``'s map for an image of ``image_shape`` (each 2x2
    pooling rounds down)."""
    factor = vgg_layers.DOWNSAMPLING[layer]
    return (image_shape[0] // factor) * (image_shape[1] // factor)


class PositionSums(NamedTuple):
    """The parts of Eq. 7 that are sums over the positions of each layer's map: each
    content layer's L_content (Eq. 1) and each style layer's Gram G^l (Eq. 3), or its R
    regions' guided Grams. Sums over disjoint parts of the maps add up to the whole's,
    which is what tiled evaluation (stylejax/_src/tiling.py) relies on."""

    content: jnp.ndarray  # (n_content,)
    grams: tuple  # per style layer: (N, N), or (R, N, N) under spatial control


def position_sums(layer_features: dict, content_targets: tuple, spec: LossSpec,
                  layer_guides: tuple | None = None) -> PositionSums:
    """:class:`PositionSums` of the generated image's ``layer_features`` (name -> (H_l,
    W_l, N_l)) against the content responses ``content_targets`` (one per content layer,
    the same shapes), with ``layer_guides`` (R, H_l, W_l) per style layer or None."""
    dtype = next(iter(layer_features.values())).dtype
    content = jnp.stack(
        [content_loss(layer_features[n], p) for n, p in zip(spec.content_layers, content_targets, strict=True)]
    ) if spec.content_layers else jnp.zeros((0,), dtype)
    if layer_guides is None:
        grams = tuple(gram(layer_features[n]) for n in spec.style_layers)
    else:
        grams = tuple(guides.guided_grams(layer_features[n], g)
                      for n, g in zip(spec.style_layers, layer_guides, strict=True))
    return PositionSums(content=content, grams=grams)


def terms_of_sums(sums: PositionSums, tv, targets: Targets, weights: LossWeights, spec: LossSpec,
                  image_shape) -> LossTerms:
    """Every term of Eq. 7 from the :class:`PositionSums` of an image of ``image_shape``
    (H, W, ...) and its total variation ``tv``: E_l (Eq. 4) with M_l = H_l W_l of the
    whole image, blended over styles, and the weighted total."""
    zero = jnp.zeros((), sums.content.dtype)
    content_per_layer = sums.content
    per_layer = []
    for k, (name, generated, target) in enumerate(zip(spec.style_layers, sums.grams, targets.style_grams,
                                                      strict=True)):
        channels, count = vgg_layers.channels(name), positions(image_shape, name)
        if targets.guides is None:
            per_style = style_loss_of_gram(generated, target, channels, count)
        else:
            per_style = _guided_loss_of_grams(generated, target, targets.guides[k], channels, count)
        per_layer.append(_blended(per_style, weights.style_blend))
    style_per_layer = jnp.stack(per_layer) if spec.style_layers else jnp.zeros((0,), zero.dtype)
    content = jnp.sum(weights.content_layer_weights * content_per_layer) if spec.content_layers else zero
    style = jnp.sum(weights.style_layer_weights * style_per_layer) if spec.style_layers else zero
    total = weights.content_weight * content + weights.style_weight * style + weights.tv_weight * tv
    return LossTerms(content, content_per_layer, style_per_layer, style, tv, total)


def loss_terms(image, params, targets: Targets, weights: LossWeights, spec: LossSpec) -> LossTerms:
    """Every term of Eq. 7 at ``image`` (H, W, 3, in the network's input space)."""
    image = seen(image, spec)
    layer_features = vgg.features(params, image, layers_needed(spec), spec.pooling)
    sums = position_sums(layer_features, targets.content, spec, targets.guides)
    return terms_of_sums(sums, tv_loss(image), targets, weights, spec, image.shape)


def guided_style_loss(generated, target_grams, layer_guides):
    """E_l for each region (R,): Eq. 4 between the guided Grams of ``generated`` (H, W, N)
    under ``layer_guides`` (R, H, W) and the regions' targets (R, N, N); 0 for a region
    absent at this layer (its guide all zero)."""
    height, width, channels = generated.shape
    return _guided_loss_of_grams(guides.guided_grams(generated, layer_guides), target_grams, layer_guides,
                                 channels, height * width)


def _guided_loss_of_grams(generated_grams, target_grams, layer_guides, channels: int, positions: int):
    """Eq. 4 per region from the guided Grams (R, N, N); 0 where a region is absent."""
    scale = 1.0 / (4.0 * channels**2 * positions**2)
    difference = jnp.square(generated_grams - target_grams)
    present = jnp.any(layer_guides > 0, axis=(1, 2))
    return scale * jnp.sum(difference, axis=(-2, -1)) * present


def _blended(per_style, blend):
    """E_l from one style's E_l, or sum_k b_k E_l^k from K styles' (b: 1/K each if None)."""
    if per_style.ndim == 0:
        return per_style
    if blend is None:
        return jnp.mean(per_style)
    return jnp.sum(blend * per_style)


def objective(image, params, targets: Targets, weights: LossWeights, spec: LossSpec):
    """L_total (Eq. 7, plus the optional TV term): the scalar the optimiser minimises."""
    return loss_terms(image, params, targets, weights, spec).total


def at_highest_precision(fn):
    """``fn`` traced with full float32 products: the targets and the reported terms are
    the objective's reference values, whatever precision the solver itself uses
    (stylejax/_src/precision.py)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)
    return wrapped


@functools.lru_cache(maxsize=8)
def jitted_targets(spec: LossSpec, guide_method: str = "simple"):
    """``jit(compute_targets)`` for one static spec: ``(params, content, style, *,
    content_guides=None, style_guides=None) -> Targets``, one compiled program per spec and
    shape, shared by the transfer, sweeps and benchmark; full float32 products."""
    return jax.jit(at_highest_precision(functools.partial(compute_targets, spec=spec,
                                                           guide_method=guide_method)))


@functools.lru_cache(maxsize=8)
def jitted_terms(spec: LossSpec):
    """``jit(loss_terms)`` for one static spec: ``(image, params, targets, weights) -> LossTerms``,
    full float32 products."""
    return jax.jit(at_highest_precision(functools.partial(loss_terms, spec=spec)))
