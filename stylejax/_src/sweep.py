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

The member axis can be sharded over all local devices (``shard=True``): members are
padded to a multiple of the device count and laid out with a ``NamedSharding``; on one
device this changes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from stylejax._src import balance, colour, image_ops, losses, optimise, presets
from stylejax._src import convolution as convolution_lib
from stylejax._src import layers as vgg_layers
from stylejax._src import precision as precision_lib
from stylejax._src.errors import invalid

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
    """(K, H, W, 3) RGB initial images (``style``: the first style image)."""
    if isinstance(style_rgb, tuple):
        style_rgb = image_ops.resize(style_rgb[0], content_rgb.shape[:2])
    shape = content_rgb.shape[:2]
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
    batch_size: int | None = None,
    chunk_size: int | None = None,
    shard: bool = True,
    progress=None,
    count_evaluations: bool = False,
    color_control: str = "none",
    histogram_match: str = "pca",
    convolution: str = "auto",
    precision: str = precision_lib.DEFAULT_PRECISION,
) -> SweepResult:
    """Runs every member from the same content and style pictures (RGB, same shape).

    ``color_control`` and ``histogram_match`` (stylejax/_src/colour.py) apply to every
    member: they change the style target and the loss spec, which the members share.
    ``convolution`` and ``precision`` choose how the solver computes the objective
    (stylejax/_src/convolution.py, stylejax/_src/precision.py).
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
    if precision not in precision_lib.PRECISIONS:
        raise invalid(f"unknown precision {precision!r}: expected one of {', '.join(precision_lib.PRECISIONS)}")
    if convolution != "auto" and convolution not in convolution_lib.ALGORITHMS:
        raise invalid(f"unknown convolution {convolution!r}: expected auto or one of "
                      f"{', '.join(convolution_lib.ALGORITHMS)}")

    backend = jax.default_backend()
    mode = default_mode(backend, optimizer) if mode == "auto" else mode
    default_chunk = presets.default_chunk(backend, optimizer)
    chunk_size = optimise.chunk_length(chunk_size or default_chunk, iterations, default_chunk)
    convention = weights.convention
    lr = lr if lr is not None else presets.ADAM_STEP_FRACTION * convention.unit
    spec = loss_spec(members, pooling, convention if color_control == "luminance" else None)
    several = isinstance(style_rgb, (tuple, list))
    styles = tuple(style_rgb) if several else (style_rgb,)
    blends = {len(m.style_blend) for m in members if m.style_blend is not None}
    if blends - {len(styles)}:
        raise invalid(f"a member's style blend has {blends.pop()} weights for {len(styles)} style images")
    styles = tuple(colour.style_target(p, content_rgb, color_control, histogram_match) for p in styles)
    style_rgb = styles if several else styles[0]
    # This sweep's own count of executed evaluations (None: not counted).
    counter = optimise.EvaluationCounter() if count_evaluations else None
    solver = optimise.SolverSpec(optimizer=optimizer, loss=spec, evaluation_counter=counter,
                                 convolution=convolution, precision=precision)
    params = jax.tree.map(jnp.asarray, weights.params)
    content = jnp.asarray(convention.to_network(content_rgb))
    style = (tuple(jnp.asarray(convention.to_network(p)) for p in styles) if several
             else jnp.asarray(convention.to_network(style_rgb)))
    targets = losses.jitted_targets(spec)(params, content, style)
    if any(m.needs_balance for m in members):
        members = resolve_balance(members, spec, balance.measure(params, content, style, spec))

    count = len(members)
    loss_weights = member_weights(members, spec, len(styles))
    inits = jnp.asarray(convention.to_network(initial_images(members, content_rgb, style_rgb)))
    learning_rates = jnp.full((count,), lr, jnp.float32)
    devices = jax.local_devices() if shard and mode != "loop" else jax.local_devices()[:1]
    multiple = len(devices) * ((batch_size or 1) if mode == "map" else 1)
    padding = (-count) % multiple
    loss_weights, inits, learning_rates = _pad((loss_weights, inits, learning_rates), padding)
    sharding = None
    if len(devices) > 1:
        sharding = NamedSharding(Mesh(np.array(devices), ("members",)), PartitionSpec("members"))
        loss_weights, inits, learning_rates = jax.device_put((loss_weights, inits, learning_rates), sharding)
    # Shared by every member: the convolution algorithm's kernels, prepared once.
    args = optimise.SolveArgs(optimise.prepare_params(params, solver), targets, loss_weights, learning_rates)

    terms_fn = jax.jit(jax.vmap(functools.partial(losses.loss_terms, spec=spec), in_axes=(0, None, None, 0)))
    init_fn = jax.jit(jax.vmap(functools.partial(optimise.init_state, spec=solver), in_axes=(0, _ARGS_AXES)))
    # Compiled ahead of time, to time the compilation on its own; the calls below go
    # through chunk_fn, which reuses that executable, so its cache size afterwards is the
    # number of programs the whole sweep needed.
    compile_start = time.perf_counter()
    if mode == "loop":
        single_args = args._replace(weights=jax.tree.map(lambda a: a[0], loss_weights),
                                    learning_rate=learning_rates[0])
        chunk_fn = jax.jit(functools.partial(optimise.run_chunk, spec=solver, chunk_size=chunk_size))
        state_shape = jax.eval_shape(functools.partial(optimise.init_state, spec=solver), inits[0], single_args)
        chunk_fn.lower(state_shape, single_args, jnp.zeros((), jnp.int32)).compile()
    else:
        chunk_fn = jax.jit(functools.partial(
            _batched_chunk, spec=solver, chunk_size=chunk_size, mode=mode, batch_size=batch_size))
        initial_states = init_fn(inits, args)
        if sharding is not None:  # every state leaf has the member axis first
            initial_states = jax.device_put(initial_states, sharding)
        chunk_fn.lower(initial_states, args, jnp.zeros((), jnp.int32)).compile()
    compile_seconds = time.perf_counter() - compile_start

    initial = terms_fn(inits, params, targets, loss_weights)
    start = time.perf_counter()
    member_seconds = []
    interrupted = False
    if mode == "loop":
        finals, rows = [], []
        init_jitted = jax.jit(functools.partial(optimise.init_state, spec=solver))
        for k in range(count):
            member_start = time.perf_counter()
            member_args = args._replace(weights=jax.tree.map(lambda a, k=k: a[k], loss_weights),
                                        learning_rate=learning_rates[k])
            state = init_jitted(inits[k], member_args)
            if not interrupted:
                driven = optimise.drive(chunk_fn, state, member_args, iterations, chunk_size=chunk_size)
                state, interrupted = driven.state, driven.interrupted
                rows.append(driven.values)
            else:  # after Ctrl-C the remaining members keep their initial images
                rows.append(np.zeros((0,), np.float32))
            member_seconds.append(time.perf_counter() - member_start)
            finals.append(state)
            if progress:
                progress(k + 1, count)
        states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *finals)
        histories = [optimise.finite_history(row) for row in rows]
    else:
        driven = optimise.drive(
            chunk_fn, initial_states, args, iterations, chunk_size=chunk_size, batched=True,
            on_progress=(lambda done, latest: progress(done, iterations)) if progress else None)
        states, interrupted = driven.state, driven.interrupted
        histories = [optimise.finite_history(row) for row in driven.values[:count]]
    seconds = time.perf_counter() - start
    jax.effects_barrier()  # every counting callback has run
    executed = counter.count if counter is not None else None
    traces = chunk_fn._cache_size()  # jit's own cache: the programs the chunk calls used
    if mode != "loop":
        member_seconds = [seconds / count] * count

    finite = np.asarray(states.finite)[:count]
    reached = np.asarray(states.iteration)[:count]
    statuses = [optimise.member_status(bool(finite[k]), int(reached[k]), iterations, interrupted)
                for k in range(count)]
    # A member that stopped on a non-finite objective keeps x_{k-1}, its last finite image.
    kept = jnp.where(states.finite.reshape(-1, *([1] * (states.image.ndim - 1))),
                     states.image, states.previous_image)
    final = terms_fn(kept, params, targets, loss_weights)
    rgb = np.stack([colour.finish(image, content_rgb, color_control)
                    for image in np.asarray(convention.to_rgb01(kept))[:count]])
    for k in range(count):
        if finite[k]:
            histories[k].append(float(final.total[k]))
    return SweepResult(
        members=list(members),
        images=rgb,
        initial=[_terms_dict(initial, spec, k) for k in range(count)],
        final=[_terms_dict(final, spec, k) for k in range(count)],
        histories=histories,
        evaluations=[int(e) for e in np.asarray(states.evaluations)[:count]],
        executed_evaluations=executed,
        seconds=seconds,
        member_seconds=member_seconds,
        compile_seconds=compile_seconds,
        mode=mode,
        batch_size=batch_size,
        devices=len(devices),
        traces=traces,
        statuses=statuses,
    )
