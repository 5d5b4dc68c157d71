"""The objective evaluated tile by tile: the same value and gradient in bounded memory.

Every term of Eq. 7 reaches the image through sums over the positions of the layers'
maps: L_content (Eq. 1) is one, and E_l (Eq. 4) depends on the image only through the
Gram matrix G^l = sum_k F^l_k (F^l_k)^T (Eq. 3), another (guided Grams too). So the image
is cut into square tiles of ``tile`` pixels, each tile's features are computed with a
margin of ``halo`` pixels around it, and the sums over the tiles' own positions add up to
the whole image's (:class:`stylejax._src.losses.PositionSums`). The gradient follows by
the chain rule, in two passes over the tiles:

1. forward: S = sum_t S_t, the position sums, tile by tile; then the loss L(S);
2. backward: the cotangent dL/dS from S alone (``jax.grad`` of Eq. 4, 5 and 7 in S), then
   per tile the vector-Jacobian product of S_t with that cotangent, which is the tile's
   share of dL/dx, added into the gradient at the tile's place, margin included.

So only one tile's activations and their gradients are alive at a time, in place of the
whole image's: the memory of a value-and-gradient is that of a (tile + 2 halo)^2 pixel
image plus image-sized buffers, whatever the image's size.

Why the margin makes it exact. The whole image's network pads every layer's input with
zeros (3x3 convolutions, padding 1). In a tile, every layer's output is multiplied by the
mask of positions inside the image, so a tile at the image's border sees the same zeros
there; pooling windows line up because tiles start on multiples of the deepest layer's
stride. At the tile's own edge the padding is not the neighbour's values, and the error
moves inward by one position of the current stride per convolution, and to whole pooled
positions at each pooling; :func:`halo` adds it up for the deepest layer used (80 px for
conv5_1, 96 px for conv5_2) so a tile's own positions are exact. The total variation term
is computed on the whole image, as it is cheap.

Cost and limits:
- Work: each evaluation runs one forward pass more (pass 1) and recomputes the margins,
  ((tile + 2 halo) / tile)^2 times the pixels: 1.72x at tile 512 and halo 80.
- The result equals the untiled objective up to float32 summation order
  (tests/test_tiling.py: within 1e-5 relative, value and gradient).
- The objective is a ``jax.custom_vjp`` (the gradient is computed in its forward rule), so
  reverse mode works and forward mode (``jax.jvp``) does not.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from stylejax._src import guides, losses, vgg
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import InvalidSetting, quote


def _step(name: str) -> int:
    """A layer's stride in pixels."""
    return vgg_layers.DOWNSAMPLING[vgg_layers.canonical_name(name)]


def _deepest(layers) -> str:
    return max((vgg_layers.canonical_name(n) for n in layers), key=vgg_layers.SEQUENCE.index)


def stride(layers) -> int:
    """The deepest of ``layers``' stride in pixels: tiles and halos are multiples of it."""
    return _step(_deepest(layers))


def halo(layers) -> int:
    """The margin, in pixels, a tile needs so that its own positions at every one of
    ``layers`` equal the whole image's (see the module doc), a multiple of :func:`stride`."""
    deepest = _deepest(layers)
    spread = 0  # how far inward, in pixels, the tile edge's error has reached
    for name in vgg_layers.SEQUENCE[: vgg_layers.SEQUENCE.index(deepest) + 1]:
        step = _step(name)  # this layer's output stride
        if name.startswith("pool"):
            spread = math.ceil(spread / step) * step  # a pooled position with any wrong input
        else:
            spread += step  # a 3x3 convolution: one more position at this stride
    return math.ceil(spread / stride(layers)) * stride(layers)


def check_tile(tile, layers) -> int:
    """``tile`` as an int if it is a positive multiple of the layers' :func:`stride`.

    Raises:
      InvalidSetting: it is not.
    """
    step = stride(layers)
    try:
        number = 0 if isinstance(tile, bool) else int(str(tile).strip())
    except ValueError:
        number = 0
    if number < step or number % step:
        raise InvalidSetting(f"{{}} must be a whole multiple of {step} px, the stride of layer "
                             f"{_deepest(layers)}, got {quote(tile)}", "tile")
    return number


def piece_shape(height: int, width: int, tile: int, layers) -> tuple[int, int]:
    """The (height, width) in px of one tile with its margin, for an image of ``height`` x
    ``width`` px in tiles of at most ``tile`` px: what the network sees at once."""
    return _Grid((height, width), tile, halo(layers), stride(layers)).piece_shape


class _Grid:
    """Where the tiles of an (H, W) image lie (static numbers).

    ``rows`` x ``cols`` tiles of at most ``tile`` px a side, evened out: each tile is
    ``tile_height`` x ``tile_width``, the smallest multiples of the layers' stride that
    cover the image in that many tiles (1024x768 px in tiles of 512: 2 x 2 tiles of 384 x
    512 px, not of 512 x 512 with a third of the rows outside the image).
    """

    def __init__(self, shape, tile: int, margin: int, step: int):
        self.height, self.width = shape[0], shape[1]
        self.margin = margin
        self.rows, self.cols = math.ceil(self.height / tile), math.ceil(self.width / tile)
        self.tile_height = math.ceil(self.height / self.rows / step) * step
        self.tile_width = math.ceil(self.width / self.cols / step) * step

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def piece_shape(self) -> tuple[int, int]:
        """A tile with its margin."""
        return self.tile_height + 2 * self.margin, self.tile_width + 2 * self.margin

    def padded(self, image):
        """The image with ``margin`` zeros before it and enough after it for every tile."""
        below = self.rows * self.tile_height + self.margin - self.height
        right = self.cols * self.tile_width + self.margin - self.width
        return jnp.pad(image, ((self.margin, below), (self.margin, right), (0, 0)))

    def corner(self, index):
        """Tile ``index``'s top-left corner in the padded image (traced ints)."""
        return (index // self.cols) * self.tile_height, (index % self.cols) * self.tile_width

    def own_shape(self, step: int) -> tuple[int, int]:
        """A tile's own positions in a stride-``step`` map."""
        return self.tile_height // step, self.tile_width // step


def _masked(grid: _Grid, top, left):
    """``restrict`` for vgg.features: zero every position of a layer's map that lies
    outside the image, for the tile whose padded corner is (top, left)."""

    def restrict(name, x):
        return x * _inside(grid, top, left, _step(name), x.shape)[..., None]

    return restrict


def _inside(grid: _Grid, top, left, step: int, shape):
    """(h, w) 1 or 0: whether each position of a stride-``step`` map of the tile lies inside
    the image (all its ``step`` x ``step`` pixels in it, as VALID pooling keeps)."""
    rows = (top - grid.margin) // step + jnp.arange(shape[0])
    cols = (left - grid.margin) // step + jnp.arange(shape[1])
    inside_rows = (rows >= 0) & (rows < grid.height // step)
    inside_cols = (cols >= 0) & (cols < grid.width // step)
    return (inside_rows[:, None] & inside_cols[None, :]).astype(jnp.float32)


def _own(grid: _Grid, x, step: int):
    """A tile's own positions (its margin cut off) of a stride-``step`` map."""
    start = grid.margin // step
    rows, cols = grid.own_shape(step)
    return x[start:start + rows, start:start + cols]


def _placed(grid: _Grid, full, step: int):
    """A whole-image map (H_l, W_l, ...) padded with zeros to the tiles' own positions."""
    rows = grid.rows * grid.tile_height // step - full.shape[0]
    cols = grid.cols * grid.tile_width // step - full.shape[1]
    return jnp.pad(full, ((0, rows), (0, cols)) + ((0, 0),) * (full.ndim - 2))


def _tile_of(grid: _Grid, full, top, left, step: int):
    """The part of a placed whole-image map under a tile's own positions."""
    starts = (top // step, left // step) + (0,) * (full.ndim - 2)
    return jax.lax.dynamic_slice(full, starts, (*grid.own_shape(step), *full.shape[2:]))


def _placed_targets(grid: _Grid, targets: losses.Targets, spec: losses.LossSpec) -> losses.Targets:
    """The content responses and the guides padded to the tiles' own positions (guides
    as (H_l, W_l, R), to be cut like the maps)."""
    content = tuple(_placed(grid, p, _step(n)) for n, p in zip(spec.content_layers, targets.content, strict=True))
    placed_guides = None if targets.guides is None else tuple(
        _placed(grid, jnp.moveaxis(g, 0, -1), _step(n))
        for n, g in zip(spec.style_layers, targets.guides, strict=True))
    return targets._replace(content=content, guides=placed_guides)


def _own_features(piece, top, left, grid: _Grid, params, spec: losses.LossSpec) -> dict:
    """The maps of ``spec``'s layers at one tile's own positions: ``piece`` is the tile
    with its margin, cut from the padded image at (top, left)."""
    seen = losses.seen(piece, spec) * _inside(grid, top, left, 1, piece.shape)[..., None]
    layer_features = vgg.features(params, seen, losses.layers_needed(spec), spec.pooling,
                                  restrict=_masked(grid, top, left))
    return {name: _own(grid, x, _step(name)) for name, x in layer_features.items()}


def _tile_sums(piece, top, left, grid: _Grid, params, placed: losses.Targets, spec: losses.LossSpec):
    """The :class:`losses.PositionSums` of one tile's own positions (see
    :func:`_own_features`); ``placed`` from :func:`_placed_targets`."""
    own = _own_features(piece, top, left, grid, params, spec)
    content = tuple(_tile_of(grid, p, top, left, _step(n))
                    for n, p in zip(spec.content_layers, placed.content, strict=True))
    layer_guides = None if placed.guides is None else tuple(
        jnp.moveaxis(_tile_of(grid, g, top, left, _step(n)), -1, 0)
        for n, g in zip(spec.style_layers, placed.guides, strict=True))
    return losses.position_sums(own, content, spec, layer_guides)


class _Tiled:
    """One image's tiles and what every tile reads."""

    def __init__(self, image, params, targets: losses.Targets | None, spec: losses.LossSpec, tile: int):
        layers = losses.layers_needed(spec)
        self.grid = _Grid(image.shape, tile, halo(layers), stride(layers))
        self.padded = self.grid.padded(image)
        self.placed = None if targets is None else _placed_targets(self.grid, targets, spec)
        self.params, self.spec = params, spec

    def piece(self, index):
        """Tile ``index`` with its margin, and its corner in the padded image."""
        top, left = self.grid.corner(index)
        shape = (*self.grid.piece_shape, self.padded.shape[2])
        return jax.lax.dynamic_slice(self.padded, (top, left, 0), shape), top, left

    def responses(self) -> tuple:
        """The content layers' whole maps, assembled from the tiles' own positions."""
        grid, spec = self.grid, self.spec
        shapes = {n: (grid.rows * grid.own_shape(_step(n))[0], grid.cols * grid.own_shape(_step(n))[1],
                      vgg_layers.channels(n)) for n in spec.content_layers}
        maps = {n: jnp.zeros(shape, self.padded.dtype) for n, shape in shapes.items()}

        def place_tile(index, maps):
            piece, top, left = self.piece(index)
            own = _own_features(piece, top, left, grid, self.params, spec)
            return {n: jax.lax.dynamic_update_slice(m, own[n], (top // _step(n), left // _step(n), 0))
                    for n, m in maps.items()}

        maps = jax.lax.fori_loop(0, grid.count, place_tile, maps)
        return tuple(maps[n][:grid.height // _step(n), :grid.width // _step(n)] for n in spec.content_layers)

    def sums_of(self, piece, top, left):
        return _tile_sums(piece, top, left, self.grid, self.params, self.placed, self.spec)

    def sums(self) -> losses.PositionSums:
        """Pass 1: the whole image's position sums, tile by tile."""
        shapes = jax.eval_shape(lambda: self.sums_of(*self.piece(0)))
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def add_tile(index, total):
            return jax.tree.map(jnp.add, total, self.sums_of(*self.piece(index)))

        return jax.lax.fori_loop(0, self.grid.count, add_tile, zeros)

    def pull_back(self, cotangent: losses.PositionSums):
        """Pass 2: sum over tiles of each tile's VJP of its sums with ``cotangent``, as an
        image of the unpadded shape."""

        def add_tile(index, gradient):
            piece, top, left = self.piece(index)
            _, vjp = jax.vjp(lambda p: self.sums_of(p, top, left), piece)
            (piece_gradient,) = vjp(cotangent)
            corner = (top, left, 0)
            current = jax.lax.dynamic_slice(gradient, corner, piece.shape)
            return jax.lax.dynamic_update_slice(gradient, current + piece_gradient, corner)

        gradient = jax.lax.fori_loop(0, self.grid.count, add_tile, jnp.zeros_like(self.padded))
        margin, grid = self.grid.margin, self.grid
        return gradient[margin:margin + grid.height, margin:margin + grid.width]


def compute_targets(params, content_image, style_image, spec: losses.LossSpec, tile: int | None = None,
                    content_guides=None, style_guides=None, guide_method: str = "simple") -> losses.Targets:
    """:func:`stylejax._src.losses.compute_targets`, tile by tile for images larger than
    ``tile`` px: the content responses P^l assembled from the tiles, each style image's
    Grams A^l summed over its tiles (guided by its own guide if one is given)."""
    several = isinstance(style_image, (tuple, list))
    styles = tuple(style_image) if several else (style_image,)
    if all(_whole(image, tile) for image in (content_image, *styles)):
        return losses.compute_targets(params, content_image, style_image, spec, content_guides, style_guides,
                                      guide_method)
    content = ()
    if spec.content_layers:
        content_spec = spec._replace(style_layers=())
        content = _Tiled(content_image, params, None, content_spec, tile).responses()
    grams = ()
    if spec.style_layers:
        style_spec = spec._replace(content_layers=())
        per_style = []
        for k, image in enumerate(styles):
            own_guide = None if style_guides is None else style_guides[k]
            layer_guides = None if own_guide is None else tuple(
                guides.layer_guides(own_guide[None], name, guide_method) for name in spec.style_layers)
            plain = losses.Targets(content=(), style_grams=(), guides=layer_guides)
            sums = _Tiled(image, params, plain, style_spec, tile).sums()
            per_style.append([
                (g if own_guide is None else g[0])
                * (losses.positions(content_image.shape, name) / losses.positions(image.shape, name))
                for name, g in zip(spec.style_layers, sums.grams, strict=True)])
        grams = tuple(jnp.stack(layer) if several else layer[0] for layer in zip(*per_style, strict=True))
    layer_guides = None if content_guides is None else tuple(
        guides.layer_guides(content_guides, name, guide_method) for name in spec.style_layers)
    return losses.Targets(content=content, style_grams=grams, guides=layer_guides)


def _tv(image, spec):
    return losses.tv_loss(losses.seen(image, spec))


def _whole(image, tile) -> bool:
    """Whether to evaluate ``image`` at once: no tile size, or the image fits in one tile."""
    return tile is None or (image.shape[0] <= tile and image.shape[1] <= tile)


def loss_terms(image, params, targets: losses.Targets, weights: losses.LossWeights, spec: losses.LossSpec,
               tile: int | None = None) -> losses.LossTerms:
    """:func:`stylejax._src.losses.loss_terms`, tile by tile (forward only) for an image
    larger than ``tile`` px; otherwise that function itself."""
    if _whole(image, tile):
        return losses.loss_terms(image, params, targets, weights, spec)
    sums = _Tiled(image, params, targets, spec, tile).sums()
    return losses.terms_of_sums(sums, _tv(image, spec), targets, weights, spec, image.shape)


def value_and_grad(image, params, targets: losses.Targets, weights: losses.LossWeights, spec: losses.LossSpec,
                   tile: int):
    """L_total and dL_total/d image, tile by tile (the two passes of the module doc)."""
    tiled = _Tiled(image, params, targets, spec, tile)
    sums = tiled.sums()
    tv, tv_gradient = jax.value_and_grad(_tv)(image, spec)

    def total_of(s):
        return losses.terms_of_sums(s, tv, targets, weights, spec, image.shape).total

    value, cotangent = jax.value_and_grad(total_of)(sums)
    return value, tiled.pull_back(cotangent) + weights.tv_weight * tv_gradient


def objective(image, params, targets: losses.Targets, weights: losses.LossWeights, spec: losses.LossSpec,
              tile: int | None = None):
    """:func:`stylejax._src.losses.objective`, tile by tile for an image larger than
    ``tile`` px (differentiable in ``image`` only: the other arguments get no gradient);
    otherwise that function itself."""
    if _whole(image, tile):
        return losses.objective(image, params, targets, weights, spec)
    return _tiled_objective(image, params, targets, weights, spec, tile)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _tiled_objective(image, params, targets, weights, spec, tile):
    return loss_terms(image, params, targets, weights, spec, tile).total


def _tiled_objective_forward(image, params, targets, weights, spec, tile):
    return value_and_grad(image, params, targets, weights, spec, tile)


def _tiled_objective_backward(spec, tile, gradient, cotangent):
    del spec, tile
    return cotangent * gradient, None, None, None


_tiled_objective.defvjp(_tiled_objective_forward, _tiled_objective_backward)


@functools.lru_cache(maxsize=8)
def jitted_targets(spec: losses.LossSpec, guide_method: str = "simple", tile: int | None = None):
    """``jit(compute_targets)`` for one static spec, guide method and tile size: ``(params,
    content, style, *, content_guides=None, style_guides=None) -> Targets``, full float32
    products."""
    if tile is None:
        return losses.jitted_targets(spec, guide_method)
    return jax.jit(losses.at_highest_precision(functools.partial(compute_targets, spec=spec, tile=tile,
                                                                 guide_method=guide_method)))


@functools.lru_cache(maxsize=8)
def jitted_terms(spec: losses.LossSpec, tile: int | None = None):
    """``jit(loss_terms)`` for one static spec and tile size: ``(image, params, targets,
    weights) -> LossTerms``, full float32 products (the reported terms)."""
    if tile is None:
        return losses.jitted_terms(spec)
    return jax.jit(losses.at_highest_precision(functools.partial(loss_terms, spec=spec, tile=tile)))
