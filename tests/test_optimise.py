"""The compiled solver: evaluation counts, chunking, compile-once, non-finite and Ctrl-C stops."""

import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import losses, optimise, vgg

SPEC = losses.LossSpec(("conv1_2",), ("conv1_1", "conv1_2"), "avg")


@pytest.fixture(scope="module")
def problem():
    full = vgg.he_normal_params(0)
    params = {name: jax.tree.map(jnp.asarray, full[name]) for name in ("conv1_1", "conv1_2")}
    rng = np.random.default_rng(0)
    content, style, init = (jnp.asarray(rng.uniform(-50, 50, (16, 16, 3)).astype(np.float32)) for _ in range(3))
    targets = losses.compute_targets(params, content, style, SPEC)
    weights = losses.LossWeights(
        content_weight=jnp.float32(1e-3),
        style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,)),
        style_layer_weights=jnp.full((2,), 0.5),
        tv_weight=jnp.float32(0.0),
    )
    return params, targets, weights, init


def _args(problem, lr=1.0):
    params, targets, weights, _ = problem
    return optimise.SolveArgs(params, targets, weights, jnp.float32(lr))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_falls_and_history_is_the_objective(problem, optimizer):
    init = problem[3]
    spec = optimise.SolverSpec(optimizer, SPEC)
    result = optimise.solve(init, _args(problem, lr=5.0), spec, 12, chunk_size=4)
    assert result.status == "completed"
    assert result.iterations == 12 and len(result.values) == 12
    expected_first = losses.objective(init, *_args(problem)[:3], SPEC)
    np.testing.assert_allclose(result.values[0], float(expected_first), rtol=1e-5)
    assert result.values[-1] < 0.5 * result.values[0]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_evaluation_count_matches_the_objective_calls(problem, optimizer, monkeypatch):
    calls = []
    original = losses.objective

    def counted(image, *rest):
        jax.debug.callback(lambda: calls.append(1))
        return original(image, *rest)

    monkeypatch.setattr(losses, "objective", counted)
    # This solve's own counter of executed evaluations (what sweeps report): unbatched,
    # it is the solve's own count. Being part of the spec, it also makes the program new,
    # so the patched objective is traced.
    counter = optimise.EvaluationCounter()
    spec = optimise.SolverSpec(optimizer, SPEC, max_linesearch_steps=19, evaluation_counter=counter)
    result = optimise.solve(problem[3], _args(problem), spec, 6, chunk_size=1)
    jax.effects_barrier()
    assert result.evaluations == len(calls) == counter.count
    if optimizer == "adam":
        assert result.evaluations == 6
    else:
        assert result.evaluations >= 6


@pytest.mark.parametrize("optimizer", [pytest.param("lbfgs", marks=pytest.mark.slow), "adam"])
def test_chunk_size_does_not_change_the_result(problem, optimizer):
    spec = optimise.SolverSpec(optimizer, SPEC)
    one = optimise.solve(problem[3], _args(problem), spec, 7, chunk_size=1)
    four = optimise.solve(problem[3], _args(problem), spec, 7, chunk_size=4)
    np.testing.assert_allclose(one.values, four.values, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(one.state.image), np.asarray(four.state.image), rtol=1e-3, atol=1e-3)
    assert one.evaluations == four.evaluations


@pytest.mark.slow
def test_compiles_once_whatever_the_iteration_count(problem, compile_log):
    spec = optimise.SolverSpec("adam", SPEC, lbfgs_memory=9)  # a program no other test compiles
    for iterations in (3, 5, 11):  # chunks of 4 and shorter last chunks
        optimise.solve(problem[3], _args(problem), spec, iterations, chunk_size=4)
    # JAX's own record: the chunk program was traced and compiled once for all three solves.
    assert compile_log.traces("run_chunk") == 1
    assert compile_log.compiles("run_chunk") == 1
    assert compile_log.compiles("init_state") == 1


@pytest.mark.slow
def test_compile_seconds_cover_the_compilation_and_not_the_run(problem, compile_log):
    spec = optimise.SolverSpec("adam", SPEC, lbfgs_memory=7)  # a program no other test compiles
    start = time.perf_counter()
    result = optimise.solve(problem[3], _args(problem), spec, 6, chunk_size=2)
    wall = time.perf_counter() - start
    assert compile_log.compiles("run_chunk") == 1
    # The compile time includes XLA's own compile of the chunk program, and it is not also
    # counted in the run time: together they fit in the call's wall time.
    assert result.compile_seconds >= compile_log.compile_seconds("run_chunk") > 0
    assert result.seconds > 0
    assert result.compile_seconds + result.seconds <= wall


@pytest.mark.slow
def test_a_batched_evaluation_counts_once(problem):
    counter = optimise.EvaluationCounter()
    spec = optimise.SolverSpec("adam", SPEC, evaluation_counter=counter)
    args = _args(problem)

    def one_step(image):
        return optimise.step(optimise.init_state(image, args, spec), args, spec)

    images = jnp.stack([problem[3], -problem[3], 0.5 * problem[3]])
    states, values = jax.jit(jax.vmap(one_step))(images)
    jax.block_until_ready(values)
    jax.effects_barrier()
    assert counter.count == 1  # one batched evaluation for three members
    np.testing.assert_array_equal(np.asarray(states.evaluations), [1, 1, 1])
    jax.block_until_ready(jax.jit(one_step)(problem[3]))
    jax.effects_barrier()
    assert counter.count == 2


def test_non_finite_objective_stops_and_keeps_the_last_finite_image(problem):
    spec = optimise.SolverSpec("adam", SPEC)
    # A step of 1e30 sends every pixel to about 1e30: the Gram matrices overflow.
    result = optimise.solve(problem[3], _args(problem, lr=1e30), spec, 5, chunk_size=1)
    assert result.status == "non-finite"
    assert result.iterations == 1
    assert len(result.values) == 1 and np.isfinite(result.values[0])
    np.testing.assert_array_equal(np.asarray(result.state.previous_image), np.asarray(problem[3]))


def test_ctrl_c_stops_after_the_running_chunk(problem):
    spec = optimise.SolverSpec("adam", SPEC)
    seen = []

    def interrupt_once(done, loss):
        seen.append(done)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    result = optimise.solve(problem[3], _args(problem), spec, 40, chunk_size=2, on_progress=interrupt_once)
    assert result.status == "interrupted"
    assert 2 <= result.iterations < 40
    assert signal.getsignal(signal.SIGINT) is before  # the solver's handler is gone again
