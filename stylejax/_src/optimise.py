"""The optimisation: L-BFGS (optax's zoom line search) or Adam, run in compiled chunks.

The image is the only variable; the VGG params, targets, loss weights and learning
rate are traced arguments, so one compilation serves every value of them. Iterations
run in compiled chunks of up to ``chunk_size`` steps (a ``lax.while_loop`` whose trip
count is an argument, so the last, shorter chunk reuses the same program); with
``chunk_size=1`` each iteration is one compiled step driven from Python. The driver keeps
one chunk in flight while it reads the previous chunk's losses, so progress reporting
never leaves the device idle.

Bookkeeping, for the report:
- ``values[i]`` is the objective at x_i, the image after i iterations (x_0: the init);
- ``evaluations`` counts value-and-gradient evaluations of the objective: for L-BFGS,
  the first one plus every line-search trial (later iterations reuse the line search's
  last value and gradient); for Adam, one per iteration.
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from stylejax._src import convolution, losses, tiling
from stylejax._src import precision as precision_lib

OPTIMIZERS = ("lbfgs", "adam")


class EvaluationCounter:
    """Host-side count of the objective evaluations one solve or sweep executed.

    ``step`` calls ``increment`` from a ``jax.debug.callback`` that takes no traced
    arguments, so a batched (vmapped) evaluation runs it once. Each solve or sweep that
    wants the count creates its own counter and passes it in its ``SolverSpec``: nothing
    is shared between calls. Compared and hashed by identity, as a static choice.
    """

    def __init__(self):
        self._lock = threading.Lock()  # callbacks may run on the runtime's threads
        self._count = 0

    def increment(self):
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


class SolverSpec(NamedTuple):
    """Static choices: they shape the compiled program."""

    optimizer: str  # "lbfgs" or "adam"
    loss: losses.LossSpec
    lbfgs_memory: int = 10
    max_linesearch_steps: int = 20
    # Counts every objective evaluation that actually runs (a host callback each, into this
    # counter), for benchmarks of batched solvers, where the work done exceeds the members'
    # own counts. None: no callback. Create one per solve or sweep and read it afterwards
    # (after jax.effects_barrier()); the counter is part of the compiled program.
    evaluation_counter: EvaluationCounter | None = None
    # 3x3 convolution algorithm (convolution.ALGORITHMS, or auto: the backend's default).
    convolution: str = "auto"
    # The float32 precision of the objective's products and convolutions, and so of its
    # gradient (stylejax/_src/precision.py).
    precision: str = precision_lib.DEFAULT_PRECISION
    # The objective tile by tile, tiles of this many px (stylejax/_src/tiling.py: the same
    # value and gradient in the memory of one tile); None: the whole image.
    tile: int | None = None


class SolveArgs(NamedTuple):
    """Traced arguments: everything a sweep may vary."""

    params: Any
    targets: losses.Targets
    weights: losses.LossWeights
    learning_rate: jnp.ndarray  # Adam's step size; unused by L-BFGS


class SolveState(NamedTuple):
    image: jnp.ndarray  # x_i
    previous_image: jnp.ndarray  # x_{i-1}: the last image known to have a finite loss
    opt_state: Any
    iteration: jnp.ndarray  # i
    evaluations: jnp.ndarray
    finite: jnp.ndarray  # False once the objective at x_i was not finite


def _transformation(spec: SolverSpec, learning_rate):
    if spec.optimizer == "lbfgs":
        return optax.lbfgs(
            memory_size=spec.lbfgs_memory,
            linesearch=optax.scale_by_zoom_linesearch(
                max_linesearch_steps=spec.max_linesearch_steps, initial_guess_strategy="one"
            ),
        )
    if spec.optimizer == "adam":
        return optax.adam(learning_rate)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}")


def init_state(image, args: SolveArgs, spec: SolverSpec) -> SolveState:
    opt_state = _transformation(spec, args.learning_rate).init(image)
    return SolveState(
        image=image,
        previous_image=image,
        opt_state=opt_state,
        iteration=jnp.zeros((), jnp.int32),
        evaluations=jnp.zeros((), jnp.int32),
        finite=jnp.ones((), bool),
    )


def step(state: SolveState, args: SolveArgs, spec: SolverSpec):
    """One iteration from x_i: returns (the state at x_{i+1}, the objective at x_i).

    If the objective at x_i is not finite, nothing moves and ``finite`` turns False.
    """

    def value_fn(image):
        if spec.evaluation_counter is not None:
            jax.debug.callback(spec.evaluation_counter.increment)
        with precision_lib.context(spec.precision):
            return tiling.objective(image, args.params, args.targets, args.weights, spec.loss, spec.tile)

    transformation = _transformation(spec, args.learning_rate)
    if spec.optimizer == "lbfgs":
        stored = optax.tree.get(state.opt_state, "value")
        recomputed = ~jnp.isfinite(stored)
        value, grad = optax.value_and_grad_from_state(value_fn)(state.image, state=state.opt_state)
        updates, opt_state = transformation.update(
            grad, state.opt_state, state.image, value=value, grad=grad, value_fn=value_fn
        )
        linesearch_steps = optax.tree.get(opt_state, "num_linesearch_steps")
        evaluations = recomputed.astype(jnp.int32) + jnp.asarray(linesearch_steps, jnp.int32)
    else:
        value, grad = jax.value_and_grad(value_fn)(state.image)
        updates, opt_state = transformation.update(grad, state.opt_state, state.image)
        evaluations = jnp.ones((), jnp.int32)

    finite = jnp.isfinite(value)
    moved = SolveState(
        image=optax.apply_updates(state.image, updates),
        previous_image=state.image,
        opt_state=opt_state,
        iteration=state.iteration + 1,
        evaluations=state.evaluations + evaluations,
        finite=finite,
    )
    stopped = state._replace(evaluations=state.evaluations + evaluations, finite=finite)
    new_state = jax.tree.map(lambda a, b: jnp.where(finite, a, b), moved, stopped)
    return new_state, value


def run_chunk(state: SolveState, args: SolveArgs, n_steps, *, spec: SolverSpec, chunk_size: int):
    """Up to ``n_steps`` (<= chunk_size) iterations in one compiled loop.

    Returns (state, values): values[j] is the objective at the j-th iterate of this
    chunk, NaN past the steps taken. Stops early when the objective is not finite.
    ``args.params`` should come from :func:`prepare_params` (loop-invariant work done
    once per solve); unprepared params take the reference ``lax`` convolution.
    """
    if chunk_size == 1:
        active = (n_steps > 0) & state.finite
        new_state, value = step(state, args, spec)
        taken = jnp.where(active, value, jnp.nan)
        return jax.tree.map(lambda a, b: jnp.where(active, a, b), new_state, state), taken[None]

    values = jnp.full((chunk_size,), jnp.nan, state.image.dtype)

    def cond(carry):
        current, _, taken = carry
        return (taken < n_steps) & current.finite

    def body(carry):
        current, recorded, taken = carry
        current, value = step(current, args, spec)
        return current, recorded.at[taken].set(value), taken + 1

    state, values, _ = jax.lax.while_loop(cond, body, (state, values, jnp.zeros((), jnp.int32)))
    return state, values


@dataclasses.dataclass
class SolveResult:
    state: SolveState
    values: list[float]  # objective at x_0 .. x_{n-1} for the n iterations taken
    iterations: int
    evaluations: int
    seconds: float
    compile_seconds: float
    status: str  # "completed", "interrupted" or "non-finite"


class _InterruptFlag:
    """Turns the first Ctrl-C into a request to stop after the running chunk.

    A second Ctrl-C interrupts at once. Only the main thread can install signal
    handlers; elsewhere Ctrl-C keeps Python's default behaviour.
    """

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


@functools.lru_cache(maxsize=16)
def _jitted_chunk(spec: SolverSpec, chunk_size: int):
    return jax.jit(
        functools.partial(run_chunk, spec=spec, chunk_size=chunk_size), donate_argnums=(0,)
    )


@functools.lru_cache(maxsize=16)
def _jitted_init(spec: SolverSpec):
    return jax.jit(functools.partial(init_state, spec=spec))


@functools.lru_cache(maxsize=8)
def _jitted_prepare(algorithm: str):
    return jax.jit(functools.partial(convolution.prepare, algorithm=algorithm))


def prepare_params(params, spec: SolverSpec):
    """``params`` with the spec's convolution algorithm's precomputed kernels.

    Done once per solve (or sweep), outside the compiled loop: for ``winograd`` that is
    two transformed copies of every kernel (see stylejax/_src/convolution.py).
    """
    return _jitted_prepare(convolution.resolve(spec.convolution))(params)


class CompiledSolver(NamedTuple):
    prepare: Any  # params -> prepared params
    init: Any  # (image, prepared args) -> state
    chunk: Any  # (state, prepared args, n_steps) -> (state, values)
    seconds: float


def compile_solver(image, args: SolveArgs, spec: SolverSpec, chunk_size: int) -> CompiledSolver:
    """Ahead-of-time compiles the prepare, init and chunk programs."""
    start = time.perf_counter()
    prepare_fn = _jitted_prepare(convolution.resolve(spec.convolution))
    prepare = prepare_fn.lower(args.params).compile()
    prepared = args._replace(params=jax.eval_shape(prepare_fn, args.params))
    init = _jitted_init(spec).lower(image, prepared).compile()
    state_shape = jax.eval_shape(_jitted_init(spec), image, prepared)
    chunk = _jitted_chunk(spec, chunk_size).lower(state_shape, prepared, jnp.zeros((), jnp.int32)).compile()
    return CompiledSolver(prepare, init, chunk, time.perf_counter() - start)


def chunk_length(chunk_size: int, iterations: int, default: int) -> int:
    """The compiled chunk length for a run of ``iterations``: ``chunk_size``, but no longer
    than the run or ``default``, whichever is longer. A chunk holds one float32 per
    iteration, so a chunk of 2**31 iterations would allocate 8 GiB for a run of 2; keeping
    ``default`` as the floor lets short runs share the default chunk's compiled program.
    """
    return max(1, min(chunk_size, max(iterations, default)))


@dataclasses.dataclass
class Driven:
    """What :func:`drive` returns."""

    state: Any  # the final state (leading member axis when batched)
    # objective values read back, one per iteration the driver ran: shape (n,), or
    # (members, n) when batched; NaN where a member had stopped (non-finite objective)
    values: np.ndarray
    done: int  # iterations the driver ran (a stopped member's own count is its state's)
    interrupted: bool  # Ctrl-C stopped the run before ``iterations``


def drive(
    chunk: Callable[[Any, Any, jnp.ndarray], tuple[Any, jnp.ndarray]],
    state,
    args,
    iterations: int,
    *,
    chunk_size: int,
    batched: bool = False,
    on_progress: Callable[[int, Any], None] | None = None,
    save_every: int = 0,
    on_save: Callable[[int, Any], None] | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int, Any, np.ndarray], None] | None = None,
    start: int = 0,
) -> Driven:
    """The one Python loop over compiled chunks, for a solve, a sweep and the benchmark.

    ``chunk(state, args, n)`` runs up to ``n`` iterations (a compiled :func:`run_chunk`,
    or its ``vmap``/``lax.map`` over members) and returns ``(state, values)``, values of
    shape ``(chunk_size,)``, or ``(members, chunk_size)`` when ``batched``. One chunk is
    kept in flight while the previous one's values are read. ``state`` has taken
    ``start`` iterations already (a resumed run); the loop runs it to ``iterations`` in
    all. Between chunks: ``on_progress(iterations_done, latest)`` (latest: a float, or one
    per member); ``on_save(iteration, state.image)`` every ``save_every`` iterations;
    ``on_checkpoint(iteration, state, values)`` every ``checkpoint_every`` iterations,
    with the values this loop has read (the state is the one the next chunk will donate:
    copy what you keep). Iteration numbers count from the run's start, ``start``
    included. The run stops after ``iterations``, on Ctrl-C (after the running chunk) or
    once every member's objective stopped being finite.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size}")
    collected: list[np.ndarray] = []
    pending = None  # the chunk in flight: its values and the count it should have taken
    done = start
    interrupted = False
    periods = [p for p, hook in ((save_every, on_save), (checkpoint_every, on_checkpoint)) if p and hook]

    def collect(result) -> bool:
        """Reads one chunk's values; False once no member is finite any more."""
        chunk_values, expected = result
        taken = np.asarray(chunk_values)[..., :expected]
        collected.append(taken)
        if taken.shape[-1] == 0:
            return True
        latest = taken[..., -1]
        if on_progress is not None:
            on_progress(start + sum(c.shape[-1] for c in collected), latest if batched else float(latest))
        return bool(np.isfinite(latest).any())

    def read() -> np.ndarray:
        return (np.concatenate(collected, axis=-1) if collected
                else np.zeros((*np.shape(state.iteration), 0), np.float32))

    with _InterruptFlag() as interrupt:
        while done < iterations:
            n = min(chunk_size, iterations - done, *(p - done % p for p in periods))
            state, chunk_values = chunk(state, args, jnp.asarray(n, jnp.int32))
            done += n
            previous, pending = pending, (chunk_values, n)
            if previous is not None and not collect(previous):
                pending = None
                break
            due_save = bool(save_every and on_save is not None and done % save_every == 0)
            due_checkpoint = bool(checkpoint_every and on_checkpoint is not None
                                  and done % checkpoint_every == 0)
            if due_save or due_checkpoint:
                finite = collect(pending)
                pending = None
                if not finite:
                    break
                if due_save:
                    on_save(done, state.image)
                if due_checkpoint:
                    on_checkpoint(done, state, read())
            if interrupt.raised:
                interrupted = done < iterations
                break
        if pending is not None:
            collect(pending)
        jax.block_until_ready(state)
    return Driven(state=state, values=read(), done=done, interrupted=interrupted)


def member_status(finite: bool, iteration: int, iterations: int, interrupted: bool) -> str:
    """``done``, ``non-finite at iteration k`` (the objective at x_k was not finite; the
    state's ``previous_image`` is the last finite one) or ``interrupted``."""
    if not finite:
        return f"non-finite at iteration {iteration}"
    if interrupted and iteration < iterations:
        return "interrupted"
    return "done"


def finite_history(values: np.ndarray) -> list[float]:
    """The finite prefix of one member's values: the objective at x_0 .. x_{n-1}."""
    history = []
    for value in np.asarray(values, np.float64):
        if not np.isfinite(value):
            break
        history.append(float(value))
    return history


def solve(
    image,
    args: SolveArgs,
    spec: SolverSpec,
    iterations: int,
    *,
    chunk_size: int,
    on_progress: Callable[[int, float], None] | None = None,
    save_every: int = 0,
    on_save: Callable[[int, jnp.ndarray], None] | None = None,
    initial_state: SolveState | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int, SolveState, np.ndarray], None] | None = None,
) -> SolveResult:
    """Runs ``iterations`` steps from ``image``; stops early on Ctrl-C or a non-finite loss.

    ``on_progress(iterations_done, latest_value)`` is called between chunks;
    ``on_save(iteration, image)`` every ``save_every`` iterations;
    ``on_checkpoint(iteration, state, values)`` every ``checkpoint_every`` (see
    :func:`drive`). ``initial_state``: a state saved after k iterations (its image has
    ``image``'s shape) to resume from; the run then takes iterations k+1..``iterations``,
    and its ``values`` are those of the iterations it ran.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size}")
    compiled = compile_solver(image, args, spec, chunk_size)
    start = time.perf_counter()
    args = args._replace(params=compiled.prepare(args.params))
    state = compiled.init(image, args) if initial_state is None else initial_state
    driven = drive(compiled.chunk, state, args, iterations, chunk_size=chunk_size,
                   on_progress=on_progress, save_every=save_every, on_save=on_save,
                   checkpoint_every=checkpoint_every, on_checkpoint=on_checkpoint,
                   start=0 if initial_state is None else int(initial_state.iteration))
    seconds = time.perf_counter() - start
    state = driven.state
    history = finite_history(driven.values)
    if not bool(state.finite) or len(history) < driven.values.shape[-1]:
        status = "non-finite"
    elif driven.interrupted:
        status = "interrupted"
    else:
        status = "completed"
    return SolveResult(
        state=state,
        values=history,
        iterations=int(state.iteration),
        evaluations=int(state.evaluations),
        seconds=seconds,
        compile_seconds=compiled.seconds,
        status=status,
    )
