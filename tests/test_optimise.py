"""The compiled solver: evaluation counts, chunking, compile-once, non-finite and Ctrl-C stops."""

import os
import signal

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


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_evaluation_count_matches_the_objective_calls(problem, optimizer, monkeypatch):
    calls = []
    original = losses.objective

    def counted(image, *rest):
        jax.debug.callback(lambda: calls.append(1))
        return original(image, *rest)

    monkeypatch.setattr(losses, "objective", counted)
    optimise._jitted_chunk.cache_clear()
    optimise._jitted_init.cache_clear()
    spec = optimise.SolverSpec(optimizer, SPEC, max_linesearch_steps=19)  # a fresh compile
    result = optimise.solve(problem[3], _args(problem), spec, 6, chunk_size=1)
    optimise._jitted_chunk.cache_clear()
    assert result.evaluations == len(calls)
    if optimizer == "adam":
        assert result.evaluations == 6
    else:
        assert result.evaluations >= 6


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_chunk_size_does_not_change_the_result(problem, optimizer):
    spec = optimise.SolverSpec(optimizer, SPEC)
    one = optimise.solve(problem[3], _args(problem), spec, 7, chunk_size=1)
    four = optimise.solve(problem[3], _args(problem), spec, 7, chunk_size=4)
    np.testing.assert_allclose(one.values, four.values, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(one.state.image), np.asarray(four.state.image), rtol=1e-3, atol=1e-3)
    assert one.evaluations == four.evaluations


def test_compiles_once_whatever_the_iteration_count(problem, monkeypatch):
    traces = []
    original = optimise.step

    def traced_step(*a, **k):
        traces.append(1)  # runs at trace time only
        return original(*a, **k)

    monkeypatch.setattr(optimise, "step", traced_step)
    optimise._jitted_chunk.cache_clear()
    spec = optimise.SolverSpec("adam", SPEC, lbfgs_memory=9)
    for iterations in (3, 5, 11):
        optimise.solve(problem[3], _args(problem), spec, iterations, chunk_size=4)
    optimise._jitted_chunk.cache_clear()
    assert len(traces) == 1


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

    result = optimise.solve(problem[3], _args(problem), spec, 40, chunk_size=2, on_progress=interrupt_once)
    assert result.status == "interrupted"
    assert 2 <= result.iterations < 40
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
