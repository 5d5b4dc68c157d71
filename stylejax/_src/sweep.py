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
- ``auto``: per backend, from measurement (see SWEEP_MODES and README "Sweeps").

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

from stylejax._src import balance, images, losses, optimise
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import UserError

BATCH_MODES = ("auto", "vmap", "map", "loop")
# auto, per (backend, optimizer): measured with scripts/bench_sweep.py (README "Sweeps").
SWEEP_MODES = {("cpu", "lbfgs"): "loop", ("cpu", "adam"): "vmap"}
ACCELERATOR_MODE = "vmap"


@dataclasses.dataclass(frozen=True)
class Member:
    """One configuration of a sweep."""

    ratio: float = 1e-3  # alpha/beta, with beta = 1
    style_layers: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    style_layer_weights: tuple[float, ...] | None = None  # None: 1/n each
    content_layer: str | None = "conv4_2"  # None: no content term (Fig. 1 style only)
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
    raise UserError(f"unknown init {text!r}: expected content, style, noise or noise:SEED")


def product(
    ratios=(1e-3,),
    style_layer_sets=(("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),),
    content_layers=("conv4_2",),
    inits=("noise:0",),
    tv_weights=(0.0,),
) -> list[Member]:
    """Every combination, in row-major order of the arguments."""
    return [
        Member(ratio=float(r), style_layers=tuple(s), content_layer=c, init=parse_init(i), tv_weight=float(t))
        for r, s, c, i, t in itertools.product(ratios, style_layer_sets, content_layers, inits, tv_weights)
    ]


def loss_spec(members: list[Member], pooling: str) -> losses.LossSpec:
    """The union of the members' layers, each list in forward order."""
    style = {vgg_layers.canonical_name(n) for m in members for n in m.style_layers}
    content = {vgg_layers.canonical_name(m.content_layer) for m in members if m.content_layer}
    order = vgg_layers.SEQUENCE.index
    return losses.LossSpec(tuple(sorted(content, key=order)), tuple(sorted(style, key=order)), pooling)


def member_weights(members: list[Member], spec: losses.LossSpec) -> losses.LossWeights:
    """LossWeights with a leading member axis: each member's choice over the union."""
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
    )


def initial_images(members, content_rgb, style_rgb) -> np.ndarray:
    """(K, H, W, 3) RGB initial images."""
    shape = content_rgb.shape[:2]
    out = []
    for member in members:
        if member.init == "content":
            out.append(content_rgb)
        elif member.init == "style":
            out.append(style_rgb)
        else:
            out.append(images.white_noise(int(member.init.split(":")[1]), shape))
    return np.stack(out).astype(np.float32)


def default_mode(backend: str, optimizer: str) -> str:
    return SWEEP_MODES.get((backend, optimizer), ACCELERATOR_MODE)


# Per-member arguments: params and targets are shared, the weights and lr are batched.
_ARGS_AXES = optimise.SolveArgs(params=None, targets=None, weights=0, learning_rate=0)


def _batched_chunk(states, args, n_steps, *, spec, chunk_size, mode, batch_size):
    """One chunk for every member: returns (states, values (K, chunk)).

    ``map`` runs ``batch_size`` members in lockstep at a time and the batches one after
    another (what ``lax.map`` with a batch size does), counting what each batch ran.
    """
    if mode == "vmap":
        return _lockstep_chunk(states, args, n_steps, spec=spec, chunk_size=chunk_size)
    members = states.image.shape[0]
    size = batch_size or 1
    if members % size:
        raise ValueError("map mode needs the member count padded to a multiple of batch_size")

    def split(a):
        return a.reshape(members // size, size, *a.shape[1:])

    def one_batch(batch):
        batch_states, weights, lr = batch
        batch_args = args._replace(weights=weights, learning_rate=lr)
        return _lockstep_chunk(batch_states, batch_args, n_steps, spec=spec, chunk_size=chunk_size)

    batches = jax.tree.map(split, (states, args.weights, args.learning_rate))
    new_states, values = jax.lax.map(one_batch, batches)
    merge = lambda a: a.reshape(members, *a.shape[2:])  # noqa: E731
    return jax.tree.map(merge, new_states), merge(values)


def _lockstep_chunk(states, args, n_steps, *, spec, chunk_size):
    step = jax.vmap(functools.partial(optimise.step, spec=spec), in_axes=(0, _ARGS_AXES))
    members = states.image.shape[0]

    def body(carry):
        current, recorded, taken = carry
        new, value = step(current, args)
        return new, recorded.at[:, taken].set(value), taken + 1

    values = jnp.full((members, chunk_size), jnp.nan, states.image.dtype)
    carry = (states, values, jnp.zeros((), jnp.int32))
    if chunk_size == 1:
        states, values, _ = body(carry)
        return states, values
    states, values, _ = jax.lax.while_loop(lambda c: c[2] < n_steps, body, carry)
    return states, values


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
) -> SweepResult:
    """Runs every member from the same content and style pictures (RGB, same shape)."""
    if not members:
        raise UserError("a sweep needs at least one member")
    if mode not in BATCH_MODES:
        raise UserError(f"unknown batch mode {mode!r}: expected one of {', '.join(BATCH_MODES)}")
    from stylejax._src import config as config_lib

    backend = jax.default_backend()
    mode = default_mode(backend, optimizer) if mode == "auto" else mode
    chunk_size = chunk_size or config_lib.default_chunk(backend, optimizer)
    convention = weights.convention
    lr = lr if lr is not None else config_lib.ADAM_STEP_FRACTION * convention.unit
    spec = loss_spec(members, pooling)
    # This sweep's own count of executed evaluations (None: not counted).
    counter = optimise.EvaluationCounter() if count_evaluations else None
    solver = optimise.SolverSpec(optimizer=optimizer, loss=spec, evaluation_counter=counter)
    params = jax.tree.map(jnp.asarray, weights.params)
    content = jnp.asarray(convention.to_network(content_rgb))
    style = jnp.asarray(convention.to_network(style_rgb))
    targets = jax.jit(functools.partial(losses.compute_targets, spec=spec))(params, content, style)
    if any(m.needs_balance for m in members):
        members = resolve_balance(members, spec, balance.measure(params, content, style, spec))

    count = len(members)
    loss_weights = member_weights(members, spec)
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
    if mode == "loop":
        finals, histories = [], []
        init_jitted = jax.jit(functools.partial(optimise.init_state, spec=solver))
        for k in range(count):
            member_start = time.perf_counter()
            member_args = args._replace(weights=jax.tree.map(lambda a, k=k: a[k], loss_weights),
                                        learning_rate=learning_rates[k])
            state = init_jitted(inits[k], member_args)
            chunks = []  # device arrays: read once the member is done, no sync per chunk
            done = 0
            while done < iterations:
                n = min(chunk_size, iterations - done)
                state, chunk_values = chunk_fn(state, member_args, jnp.asarray(n, jnp.int32))
                chunks.append((chunk_values, n))
                done += n
            values = [float(v) for chunk_values, n in chunks for v in np.asarray(chunk_values)[:n]]
            jax.block_until_ready(state)
            member_seconds.append(time.perf_counter() - member_start)
            finals.append(state)
            histories.append([v for v in values if np.isfinite(v)])
            if progress:
                progress(k + 1, count)
        states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *finals)
    else:
        states = initial_states
        recorded = []
        done = 0
        while done < iterations:
            n = min(chunk_size, iterations - done)
            states, chunk_values = chunk_fn(states, args, jnp.asarray(n, jnp.int32))
            recorded.append(np.asarray(chunk_values)[:count, :n])
            done += n
            if progress:
                progress(done, iterations)
        jax.block_until_ready(states)
        values = np.concatenate(recorded, axis=1) if recorded else np.zeros((count, 0))
        histories = [[float(v) for v in row if np.isfinite(v)] for row in values]
    seconds = time.perf_counter() - start
    jax.effects_barrier()  # every counting callback has run
    executed = counter.count if counter is not None else None
    traces = chunk_fn._cache_size()  # jit's own cache: the programs the chunk calls used
    if mode != "loop":
        member_seconds = [seconds / count] * count

    final = terms_fn(states.image, params, targets, loss_weights)
    rgb = np.clip(np.asarray(convention.to_rgb01(states.image))[:count], 0.0, 1.0)
    for k in range(count):
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
    )
