"""Sweeps: many configurations of one content/style pair in one compiled program.

A member of a sweep is a point in (alpha/beta, style layer set and weights, content
layer, initialisation, TV weight). Every member shares one :class:`LossSpec` whose layers
are the union over members; a member's own choice is a weight vector over that union
(zero for a layer it does not use), so sets of different sizes run in one program and
the weights, ratio and init are traced arrays with a leading member axis.

Batch modes (all compile the solver once for the whole sweep):

- ``vmap``: all members advance in lockstep in one batched program. For L-BFGS this
  costs more than the members' own evaluations: under ``vmap`` the ``cond`` in optax's
  ``value_and_grad_from_state`` evaluates both branches (one extra value-and-gradient
  per iteration) and the line-search ``while_loop`` runs until the member that needs the
  most trials is done. ``run_sweep(count_evaluations=True)`` measures what actually ran.
- ``map``: ``lax.map`` over members with ``batch_size`` members vmapped at a time.
- ``loop``: the one compiled solver called per member from Python.
- ``auto``: per backend, from measurement (see SWEEP_MODES and docs/sweeps.md).

The member axis can be sharded over all local devices (``shard=True``), or over a mesh
of every process's devices (``mesh=``, stylejax/_src/distributed.py): members are padded
to a multiple of the device count and each device runs its own members (``shard_map``);
the objective values of each chunk, and the results at the end, are gathered to every
process. ``loop`` over several processes runs each process's share of the members on its
own device, one after another, and gathers the results at the end. On one device none
of this changes anything.

``map``'s ``batch_size`` may be ``"auto"``: the largest batch whose estimated memory
(stylejax/_src/budget.py) fits the device, balanced so the batches are as even as
possible (:func:`plan_batch`). An out-of-memory error from XLA is raised as
:class:`OutOfMemory`, naming a batch size to try.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from stylejax._src import (
    balance,
    budget,
    colour,
    guides,
    image_ops,
    losses,
    optimise,
    presets,
    tiling,
)
from stylejax._src import layers as vgg_layers
from stylejax._src import precision as precision_lib
from stylejax._src import settings as settings_lib
from stylejax._src import transfer as transfer_lib
from stylejax._src.errors import InvalidSetting, invalid, literal

BATCH_MODES = ("auto", "vmap", "map", "loop")
# auto, per (backend, optimizer): measured with scripts/bench_sweep.py (docs/sweeps.md).
SWEEP_MODES = {("cpu", "lbfgs"): "loop", ("cpu", "adam"): "vmap"}
ACCELERATOR_MODE = "vmap"
_PAPER = presets.PRESETS["paper"]  # a member's defaults: the paper's settings


@dataclasses.dataclass(frozen=True)
class Member:
    """One configuration of a sweep."""

    ratio: float = _PAPER["ratio"]  # alpha/beta, with beta = 1
    style_layers: tuple[str, ...] = _PAPER["style_layers"]
    style_layer_weights: tuple[float, ...] | None = None  # None: 1/n each
    content_layer: str | None = _PAPER["content_layer"]  # None: no content term (Fig. 1 style only)
    init: str = "noise:0"  # noise:SEED | content | style
    tv_weight: float = 0.0
    style_weight: float = 1.0  # beta; 0 turns the style term off (Fig. 1 content only)
    # The balance rule (stylejax/_src/balance.py), resolved by run_sweep from the
    # pictures: balance sets the ratio, tv_balance the TV weight, balanced_layers w_l.
    balance: float | None = None
    tv_balance: float | None = None
    balanced_layers: bool = False
    # alpha as resolved by the balance rule (``ratio`` then keeps the value the member was
    # asked for, on the paper's scale, for labels); None: alpha = ratio.
    content_weight: float | None = None
    # With several style images: b_k of each, summing to 1 (None: 1/K each). Traced: a
    # sweep over blends compiles once.
    style_blend: tuple[float, ...] | None = None

    @property
    def alpha(self) -> float:
        return self.ratio if self.content_weight is None else self.content_weight

    def layer_weights(self) -> tuple[float, ...]:
        if self.style_layer_weights is not None:
            return tuple(self.style_layer_weights)
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)

    @property
    def needs_balance(self) -> bool:
        return self.balance is not None or self.tv_balance is not None or self.balanced_layers

    def describe(self) -> dict:
        described = {
            "ratio": self.ratio,
            "style_layers": list(self.style_layers),
            "style_layer_weights": list(self.layer_weights()),
            "content_layer": self.content_layer,
            "init": self.init,
            "tv_weight": self.tv_weight,
            "style_weight": self.style_weight,
        }
        if self.style_blend is not None:
            described["style_blend"] = list(self.style_blend)
        if self.needs_balance:
            described.update(balance=self.balance, tv_balance=self.tv_balance,
                             balanced_layers=self.balanced_layers,
                             content_weight=self.content_weight)
        return described

    def balanced(self, balance: float | None, tv_balance: float | None,
                 balanced_layers: bool = False) -> Member:
        """This member under the balance rule: alpha from ``balance`` (None: the ratio
        itself), the TV weight from ``tv_balance`` (None: as given), and with
        ``balanced_layers`` w_l ~ 1/E_l unless the member gives its own."""
        return dataclasses.replace(
            self, balance=balance, tv_balance=tv_balance,
            balanced_layers=balanced_layers and self.style_layer_weights is None)


def resolve_balance(members: list[Member], spec: losses.LossSpec, scales: balance.Scales) -> list[Member]:
    """Each member with the ratio, w_l and TV weight its balance settings leave open,
    computed by :func:`balance.resolve` from ``scales`` (measured for ``spec``, the union
    of the members' layers) restricted to the member's own layers."""
    style_index = {name: i for i, name in enumerate(spec.style_layers)}
    content_index = {name: i for i, name in enumerate(spec.content_layers)}
    resolved = []
    for member in members:
        if not member.needs_balance:
            resolved.append(member)
            continue
        own_style = [style_index[vgg_layers.canonical_name(n)] for n in member.style_layers]
        own_content = ([content_index[vgg_layers.canonical_name(member.content_layer)]]
                       if member.content_layer else [])
        own = balance.Scales(
            style_at_content=scales.style_at_content[own_style],
            content_at_style=scales.content_at_style[own_content],
            tv_at_content=scales.tv_at_content,
        )
        weights = balance.resolve(
            own,
            balance=member.balance or 0.0,
            tv_balance=member.tv_balance or 0.0,
            style_layer_weights=None if member.balanced_layers else member.layer_weights(),
        )
        resolved.append(dataclasses.replace(
            member,
            content_weight=weights.content_weight if member.balance is not None else None,
            style_layer_weights=weights.style_layer_weights,
            tv_weight=weights.tv_weight if member.tv_balance is not None else member.tv_weight,
        ))
    return resolved


def parse_init(text: str) -> str:
    """``content``, ``style`` or ``noise:SEED`` (``noise`` alone is seed 0)."""
    text = text.strip()
    if text in ("content", "style"):
        return text
    if text == "noise":
        return "noise:0"
    if text.startswith("noise:") and text[6:].isdigit():
        return text
    raise invalid(f"unknown init {text!r}: expected content, style, noise or noise:SEED")


def product(
    ratios=(_PAPER["ratio"],),
    style_layer_sets=(_PAPER["style_layers"],),
    content_layers=(_PAPER["content_layer"],),
    inits=("noise:0",),
    tv_weights=(0.0,),
    style_blends=(None,),
) -> list[Member]:
    """Every combination, in row-major order of the arguments."""
    return [
        Member(ratio=float(r), style_layers=tuple(s), content_layer=c, init=parse_init(i), tv_weight=float(t),
               style_blend=None if b is None else normalised_blend(b))
        for r, s, c, i, t, b in itertools.product(ratios, style_layer_sets, content_layers, inits, tv_weights,
                                                  style_blends)
    ]


def normalised_blend(blend) -> tuple[float, ...]:
    """Blend weights, each >= 0, not all 0, scaled to sum to 1."""
    weights = tuple(float(w) for w in blend)
    if not weights or min(weights) < 0 or sum(weights) <= 0 or not np.isfinite(weights).all():
        raise invalid(f"a style blend needs weights >= 0 with a positive sum, got {list(blend)}")
    return tuple(w / sum(weights) for w in weights)


def loss_spec(members: list[Member], pooling: str, luminance=None) -> losses.LossSpec:
    """The union of the members' layers, each list in forward order (``luminance``: the
    weights' input convention for a luminance-only objective, see losses.LossSpec)."""
    style = {vgg_layers.canonical_name(n) for m in members for n in m.style_layers}
    content = {vgg_layers.canonical_name(m.content_layer) for m in members if m.content_layer}
    order = vgg_layers.SEQUENCE.index
    return losses.LossSpec(tuple(sorted(content, key=order)), tuple(sorted(style, key=order)), pooling,
                           luminance)


def member_weights(members: list[Member], spec: losses.LossSpec, styles: int = 1) -> losses.LossWeights:
    """LossWeights with a leading member axis: each member's choice over the union (and,
    with several ``styles``, each member's blend, 1/K each by default)."""
    content_rows, style_rows = [], []
    for member in members:
        content_rows.append([
            1.0 if member.content_layer and vgg_layers.canonical_name(member.content_layer) == n else 0.0
            for n in spec.content_layers
        ])
        chosen = dict(zip((vgg_layers.canonical_name(n) for n in member.style_layers),
                          member.layer_weights(), strict=True))
        style_rows.append([chosen.get(n, 0.0) for n in spec.style_layers])
    count = len(members)
    return losses.LossWeights(
        content_weight=jnp.asarray([m.alpha if m.content_layer else 0.0 for m in members], jnp.float32),
        style_weight=jnp.asarray([m.style_weight for m in members], jnp.float32),
        content_layer_weights=jnp.asarray(
            np.asarray(content_rows, np.float32).reshape(count, len(spec.content_layers))),
        style_layer_weights=jnp.asarray(
            np.asarray(style_rows, np.float32).reshape(count, len(spec.style_layers))),
        tv_weight=jnp.asarray([m.tv_weight for m in members], jnp.float32),
        style_blend=None if styles == 1 else jnp.asarray(
            [m.style_blend or (1.0 / styles,) * styles for m in members], jnp.float32),
    )


def initial_images(members, content_rgb, style_rgb) -> np.ndarray:
    """(K, H, W, 3) RGB initial images (``style``: the first style image at the content's
    shape, in [0, 1], as stylejax/_src/transfer.py prepare_inputs makes it)."""
    shape = content_rgb.shape[:2]
    style_rgb = image_ops.resize(style_rgb[0] if isinstance(style_rgb, tuple) else style_rgb, shape)
    out = []
    for member in members:
        if member.init == "content":
            out.append(content_rgb)
        elif member.init == "style":
            out.append(style_rgb)
        else:
            out.append(image_ops.white_noise(int(member.init.split(":")[1]), shape))
    return np.stack(out).astype(np.float32)


def default_mode(backend: str, optimizer: str) -> str:
    return SWEEP_MODES.get((backend, optimizer), ACCELERATOR_MODE)


# Per-member arguments: params and targets are shared, the weights and lr are batched.
_ARGS_AXES = optimise.SolveArgs(params=None, targets=None, weights=0, learning_rate=0)


def _batched_chunk(states, args, n_steps, *, spec, chunk_size, mode, batch_size):
    """:func:`optimise.run_chunk` for every member: returns (states, values (K, chunk)).

    ``vmap``: all members in one batched loop, each stopping on its own once its objective
    is not finite. ``map``: ``batch_size`` members vmapped at a time and the batches one
    after another (``lax.map``).
    """
    run = jax.vmap(functools.partial(optimise.run_chunk, spec=spec, chunk_size=chunk_size),
                   in_axes=(0, _ARGS_AXES, None))
    if mode == "vmap":
        return run(states, args, n_steps)
    members = states.image.shape[0]
    size = batch_size or 1
    if members % size:
        raise ValueError("map mode needs the member count padded to a multiple of batch_size")

    def split(a):
        return a.reshape(members // size, size, *a.shape[1:])

    def one_batch(batch):
        batch_states, weights, lr = batch
        return run(batch_states, args._replace(weights=weights, learning_rate=lr), n_steps)

    batches = jax.tree.map(split, (states, args.weights, args.learning_rate))
    new_states, values = jax.lax.map(one_batch, batches)
    merge = lambda a: a.reshape(members, *a.shape[2:])  # noqa: E731
    return jax.tree.map(merge, new_states), merge(values)


@dataclasses.dataclass
class SweepResult:
    members: list[Member]
    images: np.ndarray  # (K, H, W, 3) RGB in [0, 1]
    initial: list[dict]
    final: list[dict]
    histories: list[list[float]]
    evaluations: list[int]  # each member's own value-and-gradient evaluations
    # Objective evaluations that actually ran, a batched one counting once: measured
    # when run_sweep(count_evaluations=True), else None. Under vmap, L-BFGS runs more
    # than its members' own counts: both branches of every batched cond, and the line
    # search until its slowest member is done.
    executed_evaluations: int | None
    seconds: float
    member_seconds: list[float]  # loop mode: measured per member; else the even share
    compile_seconds: float
    mode: str
    batch_size: int | None
    devices: int
    # Compiled programs the sweep's chunk calls used, read from the jitted chunk's own
    # cache after the run (1: every member and chunk ran one compilation).
    traces: int
    # Per member: "done", "non-finite at iteration k" (its image is the last finite one,
    # x_{k-1}, and its history the finite values) or "interrupted" (Ctrl-C).
    statuses: list[str] = dataclasses.field(default_factory=list)
    processes: int = 1  # the processes that ran the sweep (a multi-process mesh: more than 1)
    style_scale: float | None = None  # as run_sweep was given it, shared by every member


class OutOfMemory(InvalidSetting):
    """XLA ran out of memory during a sweep. ``batch_size`` is a batch to try (``map``
    mode), None where one member at a time did not fit either."""

    def __init__(self, template: str, *names: str, batch_size: int | None = None):
        super().__init__(template, *names)
        self.batch_size = batch_size


def is_out_of_memory(error: BaseException) -> bool:
    """XLA's RESOURCE_EXHAUSTED (``jax.errors.JaxRuntimeError``), or an out-of-memory message."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower())


@contextlib.contextmanager
def _out_of_memory_hint(mode: str, in_flight: int):
    """Turns an out-of-memory error inside the block into :class:`OutOfMemory` naming the
    batch to try: half the members in flight per device, in ``map`` mode."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        text = str(error).strip()
        reason = literal((text.splitlines()[0] if text else type(error).__name__)[:160])
        what = "one member" if in_flight == 1 else f"{in_flight} members"
        if in_flight > 1:
            smaller = max(1, in_flight // 2)
            raise OutOfMemory(f"the sweep ran out of memory with {what} in flight per device ({mode} mode; "
                              f"{reason}); try {{}}=map {{}}={smaller}", "batch_mode", "batch_size",
                              batch_size=smaller) from error
        raise OutOfMemory(f"the sweep ran out of memory with one member in flight per device ({reason}); "
                          "lower the {}", "size") from error


def plan_batch(members: int, largest: int) -> int:
    """``map``'s batch for ``members`` per device when at most ``largest`` fit at once:
    as few batches as ``largest`` allows, as even as possible (the padding to a whole
    number of batches is then less than one member per batch)."""
    largest = max(1, min(largest, members))
    batches = math.ceil(members / largest)
    return math.ceil(members / batches)


def auto_batch(members: int, height: int, width: int, layers, optimizer: str, *, chunk: int,
               limit: float | None) -> int:
    """The ``auto`` batch: :func:`plan_batch` of the largest batch that fits ``limit``
    bytes (:func:`budget.auto_batch_size`)."""
    largest = budget.auto_batch_size(height, width, layers, optimizer, members=members, chunk=chunk, limit=limit)
    return plan_batch(members, largest)


def _terms_dict(terms, spec, k):
    return {
        "content": float(terms.content[k]),
        "content_layers": {n: float(terms.content_per_layer[k, i]) for i, n in enumerate(spec.content_layers)},
        "style": {n: float(terms.style_per_layer[k, i]) for i, n in enumerate(spec.style_layers)},
        "style_weighted_sum": float(terms.style[k]),
        "tv": float(terms.tv[k]),
        "total": float(terms.total[k]),
    }


def _pad(tree, count):
    """Repeats the last member so the member axis divides evenly over the devices."""
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], count, axis=0)]) if count else a, tree)


def _place(tree, sharding):
    """Every leaf as one global array laid out by ``sharding`` (each process holds the
    whole value and gives its own devices their part)."""
    def put(leaf):
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def _gathered(tree, replicated):
    """``tree`` (global arrays) as numpy arrays, the whole of each on every process."""
    if replicated is None:
        return jax.tree.map(np.asarray, tree)
    return jax.tree.map(np.asarray, jax.jit(lambda t: t, out_shardings=replicated)(tree))


def _gather_processes(tree, count: int):
    """Each process's block of members (the same shape on every process) joined, every
    process's in process order, cut to ``count`` members."""
    from jax.experimental import multihost_utils

    stacked = multihost_utils.process_allgather(tree)
    return jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:])[:count], stacked)


def run_sweep(
    content_rgb: np.ndarray,
    style_rgb: np.ndarray,
    members: list[Member],
    weights,
    *,
    optimizer: str = "lbfgs",
    iterations: int = 500,
    pooling: str = "avg",
    lr: float | None = None,
    mode: str = "auto",
    batch_size: int | str | None = None,
    chunk_size: int | None = None,
    shard: bool = True,
    progress=None,
    count_evaluations: bool = False,
    color_control: str = "none",
    histogram_match: str = "pca",
    convolution: str = "auto",
    precision: str = precision_lib.DEFAULT_PRECISION,
    mesh: Mesh | None = None,
    memory_limit: float | None = None,
    content_mask: np.ndarray | None = None,
    style_masks=None,
    mask_method: str = "simple",
    style_scale: float | None = None,
    tile: int | None = None,
) -> SweepResult:
    """Runs every member from the same content and style pictures (RGB, the same shape,
    or with ``style_scale`` any).

    Spatial control (CVPR 2017 Sec. 4, stylejax/_src/guides.py): ``content_mask`` over
    the content picture ((H, W) labels 0..K-1, or (K, H, W) guides), region k in the style
    of style image k, optionally from the part of it ``style_masks[k]`` marks, the guides
    taken to each layer by ``mask_method`` (``simple`` or ``inside``), all as
    :func:`stylejax._src.transfer.prepare_inputs` takes them (and checks them); the style
    pictures are then resized to the content's shape. The guided targets are computed
    once and shared; each member's ``style_blend`` weights the regions' style terms (1/K
    each by default), traced, so a sweep over region weights compiles once.

    ``style_scale`` (jcjohnson/neural-style's ``-style_scale``, as ``stylejax transfer``
    takes it): each style picture, given at any size, is resized to a longest side of
    ``style_scale`` times the content's, keeping its own aspect ratio
    (:func:`stylejax._src.transfer.scaled_style_shape`); not with a content mask. The
    style targets are computed from the scaled pictures, the balance rule's content loss
    at the style pictures (and init ``style``) from them resized to the content's shape,
    as a transfer does.

    ``color_control``, ``histogram_match`` and ``style_scale`` apply to every member:
    they change the style target and the loss spec, which the members share.
    ``convolution``, ``precision`` and ``tile`` choose how the solver computes the
    objective (stylejax/_src/convolution.py, stylejax/_src/precision.py, and tile by tile,
    tiles of ``tile`` px: stylejax/_src/tiling.py).

    ``batch_size``: ``map``'s members per batch on each device (None: 1), or ``"auto"``:
    the largest that fits ``memory_limit`` bytes per device (None: the memory available,
    :func:`budget.available_bytes`), see :func:`auto_batch`. ``mesh``: a one-axis
    :class:`jax.sharding.Mesh` to shard the members over instead of the local devices,
    such as :func:`stylejax._src.distributed.global_mesh` after
    ``jax.distributed.initialize``; with several processes, every process calls
    ``run_sweep`` with the same arguments and gets the whole result.

    Raises:
      InvalidSetting: a bad setting.
      OutOfMemory: XLA ran out of memory; its ``batch_size`` is one to try.
    """
    if not members:
        raise invalid("a sweep needs at least one member")
    if mode not in BATCH_MODES:
        raise invalid(f"unknown batch mode {mode!r}: expected one of {', '.join(BATCH_MODES)}")
    if color_control not in colour.COLOR_CONTROLS:
        raise invalid(f"unknown color control {color_control!r}: expected one of "
                      f"{', '.join(colour.COLOR_CONTROLS)}")
    if histogram_match not in colour.HISTOGRAM_MODES:
        raise invalid(f"unknown histogram match {histogram_match!r}: expected one of "
                      f"{', '.join(colour.HISTOGRAM_MODES)}")
    convolution, precision = settings_lib.compute_options(convolution, precision)
    if not (batch_size is None or batch_size == "auto" or (isinstance(batch_size, int) and batch_size >= 1)):
        raise invalid(f"batch size must be a whole number >= 1 or 'auto', got {batch_size!r}")
    if mesh is not None and len(mesh.axis_names) != 1:
        raise invalid(f"a sweep's mesh has one axis, the members; got axes {tuple(mesh.axis_names)}")
    if mask_method not in guides.GUIDE_METHODS:
        raise invalid(f"unknown mask method {mask_method!r}: expected one of {', '.join(guides.GUIDE_METHODS)}")
    if style_masks is not None and content_mask is None:
        raise invalid("style masks need a content mask")
    if style_scale is not None:
        style_scale = settings_lib.positive_finite(style_scale, "style_scale")
        if content_mask is not None:
            raise invalid(transfer_lib.NO_SCALE_WITH_MASK)

    backend = jax.default_backend()
    mode = default_mode(backend, optimizer) if mode == "auto" else mode
    default_chunk = presets.default_chunk(backend, optimizer)
    chunk_size = optimise.chunk_length(chunk_size or default_chunk, iterations, default_chunk)
    convention = weights.convention
    lr = lr if lr is not None else presets.ADAM_STEP_FRACTION * convention.unit
    spec = loss_spec(members, pooling, convention if color_control == "luminance" else None)
    if tile is not None:
        tile = tiling.check_tile(tile, (*spec.content_layers, *spec.style_layers))
    several = isinstance(style_rgb, (tuple, list)) or content_mask is not None
    styles = tuple(style_rgb) if isinstance(style_rgb, (tuple, list)) else (style_rgb,)
    blends = {len(m.style_blend) for m in members if m.style_blend is not None}
    if blends - {len(styles)}:
        raise invalid(f"a member's style blend has {blends.pop()} weights for {len(styles)} style images")
    guide_arrays = {}
    if content_mask is not None:  # checked as a transfer checks them, at the content's shape
        shape = tuple(content_rgb.shape[:2])
        region_guides, own_guides = transfer_lib.prepare_guides(content_rgb.shape, styles, shape, content_mask,
                                                                style_masks)
        styles = tuple(image_ops.resize(p, shape) for p in styles)
        guide_arrays = {"content_guides": jnp.asarray(region_guides),
                        "style_guides": None if own_guides is None else tuple(jnp.asarray(g) for g in own_guides)}
    if style_scale is not None:  # from the pictures as given, each its own aspect ratio
        styles = tuple(image_ops.resize(p, transfer_lib.scaled_style_shape(p.shape, content_rgb.shape,
                                                                           style_scale)) for p in styles)
    styles = tuple(colour.style_target(p, content_rgb, color_control, histogram_match) for p in styles)
    # The style pictures at the content's shape: the balance rule's content loss at them,
    # and init "style" (the same pictures when there is no style scale).
    at_shape = transfer_lib.at_content_shape(styles, content_rgb.shape[:2])
    style_rgb = styles if several else styles[0]
    # This sweep's own count of executed evaluations (None: not counted).
    counter = optimise.EvaluationCounter() if count_evaluations else None
    solver = optimise.SolverSpec(optimizer=optimizer, loss=spec, evaluation_counter=counter,
                                 convolution=convolution, precision=precision, tile=tile)
    params = jax.tree.map(jnp.asarray, weights.params)
    content = jnp.asarray(convention.to_network(content_rgb))
    style = (tuple(jnp.asarray(convention.to_network(p)) for p in styles) if several
             else jnp.asarray(convention.to_network(style_rgb)))
    targets = tiling.jitted_targets(spec, mask_method, tile)(params, content, style, **guide_arrays)
    if any(m.needs_balance for m in members):
        if guide_arrays or style_scale is not None or tile is not None:
            measured = tuple(jnp.asarray(convention.to_network(p)) for p in at_shape)
            scales = _scales_against(params, content, measured, targets, spec, tile)
        else:
            scales = balance.measure(params, content, style, spec)
        members = resolve_balance(members, spec, scales)

    count = len(members)
    loss_weights = member_weights(members, spec, len(styles))
    inits = jnp.asarray(convention.to_network(initial_images(members, content_rgb, at_shape)))
    learning_rates = jnp.full((count,), lr, jnp.float32)

    # The devices: a mesh's (every process's), or the local ones; loop mode uses one device
    # per process.
    devices = list(mesh.devices.flat) if mesh is not None else (
        jax.local_devices() if shard and mode != "loop" else jax.local_devices()[:1])
    processes = sorted({d.process_index for d in devices})
    if mode == "loop":
        mesh = None
        devices = [next(d for d in devices if d.process_index == p) for p in processes]
    elif len(devices) > 1 and mesh is None:
        mesh = Mesh(np.array(devices), ("members",))
    elif len(devices) == 1:
        mesh = None
    per_device = math.ceil(count / len(devices))
    if mode == "map" and batch_size == "auto":
        layers = (*spec.content_layers, *spec.style_layers)
        limit = budget.available_bytes() if memory_limit is None else memory_limit
        batch_size = auto_batch(per_device, content_rgb.shape[0], content_rgb.shape[1], layers, optimizer,
                                chunk=chunk_size, limit=limit)
        if len(processes) > 1:  # each host measured its own memory: the smallest wins
            from stylejax._src import distributed

            batch_size = distributed.agree_min(batch_size)
    elif mode != "map" or batch_size == "auto":
        batch_size = None if mode != "map" else 1
    in_flight = {"vmap": per_device, "map": batch_size}.get(mode, 1)

    with _out_of_memory_hint(mode, in_flight):
        run = _run_loop if mode == "loop" else _run_batched
        outcome = run(solver=solver, spec=spec, params=params, targets=targets, loss_weights=loss_weights,
                      inits=inits, learning_rates=learning_rates, count=count, mode=mode, batch_size=batch_size,
                      chunk_size=chunk_size, iterations=iterations, mesh=mesh, processes=processes,
                      progress=progress)
    executed = counter.count if counter is not None else None
    statuses = [optimise.member_status(bool(outcome.finite[k]), int(outcome.iteration[k]), iterations,
                                       outcome.interrupted) for k in range(count)]
    rgb = np.stack([colour.finish(image, content_rgb, color_control)
                    for image in np.asarray(convention.to_rgb01(outcome.kept))])
    histories = outcome.histories
    for k in range(count):
        if outcome.finite[k]:
            histories[k].append(float(outcome.final.total[k]))
    return SweepResult(
        members=list(members),
        images=rgb,
        initial=[_terms_dict(outcome.initial, spec, k) for k in range(count)],
        final=[_terms_dict(outcome.final, spec, k) for k in range(count)],
        histories=histories,
        evaluations=[int(e) for e in outcome.evaluations],
        executed_evaluations=executed,
        seconds=outcome.seconds,
        member_seconds=outcome.member_seconds,
        compile_seconds=outcome.compile_seconds,
        mode=mode,
        batch_size=batch_size,
        devices=len(devices),
        traces=outcome.traces,
        statuses=statuses,
        processes=len(processes),
        style_scale=style_scale,
    )


def _scales_against(params, content, styles, targets, spec, tile=None) -> balance.Scales:
    """:func:`balance.measure` against ``targets`` computed apart: the guided ones (spatial
    control) or those of style images of another size (``style_scale``). The terms at
    the content and the content loss at each of ``styles``, every one at the content's
    shape, the styles (or regions) weighted equally (as ``measure`` weights several
    styles, so every blend of a sweep shares one scale)."""
    ones = balance.unit_weights(spec)
    terms = tiling.jitted_terms(spec, tile)
    at_content = terms(content, params, targets, ones)
    at_styles = [terms(p, params, targets, ones) for p in styles]
    mean = sum(t.content_per_layer for t in at_styles) / len(at_styles)
    return balance.scales_from_terms(at_content, at_styles[0]._replace(content_per_layer=mean))


@dataclasses.dataclass
class _Outcome:
    """What a run of the members leaves, as numpy arrays over the ``count`` members, the
    same on every process."""

    kept: np.ndarray  # (K, H, W, 3) in the network's space: x_n, or x_{k-1} for a non-finite member
    finite: np.ndarray
    iteration: np.ndarray
    evaluations: np.ndarray
    initial: losses.LossTerms  # numpy leaves
    final: losses.LossTerms
    histories: list[list[float]]
    interrupted: bool
    seconds: float
    member_seconds: list[float]
    compile_seconds: float
    traces: int


def _kept(finite, image, previous_image):
    """Each member's last finite image: x_n, or x_{k-1} where the objective at x_k was not finite."""
    return jnp.where(finite.reshape(-1, *([1] * (image.ndim - 1))), image, previous_image)


def _run_batched(*, solver, spec, params, targets, loss_weights, inits, learning_rates, count, mode,
                 batch_size, chunk_size, iterations, mesh, processes, progress) -> _Outcome:
    """``vmap`` and ``map``: every member in one program, each device its own members."""
    devices = 1 if mesh is None else mesh.size
    multiple = devices * ((batch_size or 1) if mode == "map" else 1)
    loss_weights, inits, learning_rates = _pad((loss_weights, inits, learning_rates), (-count) % multiple)
    local = functools.partial(_batched_chunk, spec=solver, chunk_size=chunk_size, mode=mode, batch_size=batch_size)
    init = jax.vmap(functools.partial(optimise.init_state, spec=solver), in_axes=(0, _ARGS_AXES))
    terms = _member_terms(solver)
    prepared = optimise.prepare_params(params, solver)
    if mesh is None:
        replicated = None
        chunk_fn, init_fn, terms_fn = jax.jit(local), jax.jit(init), jax.jit(terms)
    else:
        axis = mesh.axis_names[0]
        members_sharding = NamedSharding(mesh, PartitionSpec(axis))
        replicated = NamedSharding(mesh, PartitionSpec())
        loss_weights, inits, learning_rates = _place((loss_weights, inits, learning_rates), members_sharding)
        params, prepared, targets = _place((params, prepared, targets), replicated)
        specs = optimise.SolveArgs(params=PartitionSpec(), targets=PartitionSpec(),
                                   weights=PartitionSpec(axis), learning_rate=PartitionSpec(axis))
        # Each device runs its own members; the chunk's values come back whole to every
        # process (one small gather per chunk), for the driver to read.
        chunk_fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(axis), specs, PartitionSpec()),
                                         out_specs=(PartitionSpec(axis), PartitionSpec(axis)), check_vma=False),
                           out_shardings=(members_sharding, replicated))
        init_fn = jax.jit(init, out_shardings=members_sharding)
        terms_fn = jax.jit(terms, out_shardings=replicated)
    # Shared by every member: the convolution algorithm's kernels, prepared once.
    args = optimise.SolveArgs(prepared, targets, loss_weights, learning_rates)

    # Compiled ahead of time, to time the compilation on its own; the calls below go
    # through chunk_fn, which reuses that executable, so its cache size afterwards is the
    # number of programs the whole sweep needed.
    compile_start = time.perf_counter()
    initial_states = init_fn(inits, args)
    chunk_fn.lower(initial_states, args, jnp.zeros((), jnp.int32)).compile()
    compile_seconds = time.perf_counter() - compile_start

    initial = terms_fn(inits, params, targets, loss_weights)
    start = time.perf_counter()
    driven = optimise.drive(
        chunk_fn, initial_states, args, iterations, chunk_size=chunk_size, batched=True,
        on_progress=(lambda done, latest: progress(done, iterations)) if progress else None)
    states = driven.state
    seconds = time.perf_counter() - start
    jax.effects_barrier()  # every counting callback has run
    kept = _kept(states.finite, states.image, states.previous_image)
    final = terms_fn(kept, params, targets, loss_weights)
    kept, finite, iteration, evaluations, initial, final = jax.tree.map(
        lambda a: a[:count], _gathered((kept, states.finite, states.iteration, states.evaluations, initial, final),
                                       replicated))
    return _Outcome(kept=kept, finite=finite, iteration=iteration, evaluations=evaluations, initial=initial,
                    final=final, histories=[optimise.finite_history(row) for row in driven.values[:count]],
                    interrupted=driven.interrupted, seconds=seconds, member_seconds=[seconds / count] * count,
                    compile_seconds=compile_seconds, traces=chunk_fn._cache_size())


def _member_terms(solver: optimise.SolverSpec):
    """Every member's loss terms, at full float32 precision whatever the solver's (the
    reported values), tile by tile if the solver evaluates so."""
    return losses.at_highest_precision(jax.vmap(
        functools.partial(tiling.loss_terms, spec=solver.loss, tile=solver.tile), in_axes=(0, None, None, 0)))


def _terms_program(solver: optimise.SolverSpec):
    return jax.jit(_member_terms(solver))


def _run_loop(*, solver, spec, params, targets, loss_weights, inits, learning_rates, count, mode, batch_size,
              chunk_size, iterations, mesh, processes, progress) -> _Outcome:
    """``loop``: the one compiled solver per member, on this process's first device. With
    several processes, each runs its block of members and the blocks are gathered."""
    args = optimise.SolveArgs(optimise.prepare_params(params, solver), targets, loss_weights, learning_rates)
    terms_fn = _terms_program(solver)
    compile_start = time.perf_counter()
    single_args = args._replace(weights=jax.tree.map(lambda a: a[0], loss_weights),
                                learning_rate=learning_rates[0])
    chunk_fn = jax.jit(functools.partial(optimise.run_chunk, spec=solver, chunk_size=chunk_size))
    state_shape = jax.eval_shape(functools.partial(optimise.init_state, spec=solver), inits[0], single_args)
    chunk_fn.lower(state_shape, single_args, jnp.zeros((), jnp.int32)).compile()
    # The initial state's program too, so the members' timings hold no compilation.
    init_compiled = jax.jit(functools.partial(optimise.init_state, spec=solver)).lower(
        inits[0], single_args).compile()
    compile_seconds = time.perf_counter() - compile_start

    block = math.ceil(count / len(processes))
    first = processes.index(jax.process_index()) * block if len(processes) > 1 else 0
    mine = list(range(first, min(first + block, count))) if len(processes) > 1 else list(range(count))
    start = time.perf_counter()
    finals, rows, member_seconds = [], [], []
    interrupted = False
    for done, k in enumerate(mine):
        member_start = time.perf_counter()
        member_args = args._replace(weights=jax.tree.map(lambda a, k=k: a[k], loss_weights),
                                    learning_rate=learning_rates[k])
        state = init_compiled(inits[k], member_args)
        if not interrupted:
            driven = optimise.drive(chunk_fn, state, member_args, iterations, chunk_size=chunk_size)
            state, interrupted = driven.state, driven.interrupted
            rows.append(driven.values)
        else:  # after Ctrl-C the remaining members keep their initial images
            rows.append(np.zeros((0,), np.float32))
        member_seconds.append(time.perf_counter() - member_start)
        finals.append(state)
        if progress:
            progress(done + 1, len(mine))
    seconds = time.perf_counter() - start
    jax.effects_barrier()  # every counting callback has run
    traces = chunk_fn._cache_size()
    if finals:
        states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *finals)
        ran = (np.asarray(_kept(states.finite, states.image, states.previous_image)), np.asarray(states.finite),
               np.asarray(states.iteration), np.asarray(states.evaluations))
    else:  # a process with no member (more processes than members)
        ran = (np.zeros((0, *inits.shape[1:]), np.float32), np.zeros((0,), bool), np.zeros((0,), np.int32),
               np.zeros((0,), np.int32))
    values = np.full((len(mine), iterations), np.nan, np.float32)
    for row, taken in enumerate(rows):
        values[row, :len(taken)] = taken
    if len(processes) > 1:  # every process's block, padded to the same shape, gathered
        def padded(a, fill):
            extra = block - a.shape[0]
            return np.concatenate([a, np.full((extra, *a.shape[1:]), fill, a.dtype)]) if extra else a

        kept, finite, iteration, evaluations = (padded(a, 0) for a in ran)
        gathered = _gather_processes(
            (kept, finite, iteration, evaluations, padded(values, np.nan),
             padded(np.asarray(member_seconds, np.float64), 0.0), np.full((block,), interrupted),
             np.full((block,), seconds)), count)
        kept, finite, iteration, evaluations, values, member_seconds, stops, spans = gathered
        # The sweep took as long as its slowest process.
        member_seconds, interrupted, seconds = [float(s) for s in member_seconds], bool(stops.any()), float(spans.max())
    else:
        kept, finite, iteration, evaluations = ran
    initial = jax.tree.map(np.asarray, terms_fn(inits, params, targets, loss_weights))
    final = jax.tree.map(np.asarray, terms_fn(jnp.asarray(kept), params, targets, loss_weights))
    return _Outcome(kept=kept, finite=finite, iteration=iteration, evaluations=evaluations, initial=initial,
                    final=final, histories=[optimise.finite_history(row) for row in values], interrupted=interrupted,
                    seconds=seconds, member_seconds=list(member_seconds), compile_seconds=compile_seconds,
                    traces=traces)
