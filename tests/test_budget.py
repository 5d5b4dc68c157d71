"""The memory estimate (stylejax/_src/budget.py) and the chunk cap that keeps it true."""

import jax
import jax.numpy as jnp
import pytest

from stylejax._src import budget, losses, optimise
from stylejax._src.errors import InvalidSetting
from stylejax._src.weights import weights_source

PAPER_LAYERS = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def test_activations_per_pixel_counted_by_hand():
    # conv1_1, conv1_2: 64 each at full size; pool1 64 at 1/4; conv2_x 128 at 1/4, ...
    assert budget.activations_per_pixel("conv1_1") == 64
    assert budget.activations_per_pixel("conv1_2") == 128
    assert budget.activations_per_pixel("conv2_1") == 128 + 64 / 4 + 128 / 4
    expected = 128 + 16 + 64 + 8 + 64 + 4 + 32 + 2 + 2  # up to conv5_1
    assert budget.activations_per_pixel("conv5_1") == pytest.approx(expected)


def test_the_estimate_grows_with_pixels_members_and_chunk():
    one = budget.estimate_bytes(96, 128, PAPER_LAYERS, "lbfgs")
    assert budget.estimate_bytes(192, 256, PAPER_LAYERS, "lbfgs") - budget.BASE_BYTES == pytest.approx(
        4 * (one - budget.BASE_BYTES), rel=1e-6)
    assert budget.estimate_bytes(96, 128, PAPER_LAYERS, "adam") < one
    assert budget.estimate_bytes(96, 128, ("conv1_1",), "lbfgs") < one
    four = budget.estimate_bytes(96, 128, PAPER_LAYERS, "lbfgs", members=4, members_in_flight=4)
    assert four - budget.BASE_BYTES == pytest.approx(4 * (one - budget.BASE_BYTES), rel=1e-6)
    assert budget.estimate_bytes(96, 128, PAPER_LAYERS, "lbfgs", chunk=2**30) > one + 2**32


def test_check_refuses_above_the_limit_only():
    budget.check(10, 11, "a run")
    budget.check(10, None, "a run")
    budget.check(10, float("inf"), "a run")
    with pytest.raises(InvalidSetting) as info:
        budget.check(3 << 30, 2 << 30, "a 10x10 px transfer")
    assert info.value.named(lambda n: f"--{n.replace('_', '-')}") == (
        "a 10x10 px transfer needs about 3.0 GiB of memory (estimate), more than the 2.0 GiB "
        "available; lower the size or the members, or set --max-memory to override")
    with pytest.raises(InvalidSetting) as info:
        budget.check(3 << 30, 2 << 30, "a 10x10 px transfer", tiles=True)
    assert info.value.named(lambda n: f"--{n.replace('_', '-')}").endswith(
        "lower the size or the members, evaluate it in tiles (--tile), or set --max-memory to override")


def test_a_chunk_longer_than_the_run_is_cut_to_it():
    assert optimise.chunk_length(2**31 - 1, 2, 10) == 10  # a 2-iteration run: the default chunk
    assert optimise.chunk_length(2**31 - 1, 500, 10) == 500
    assert optimise.chunk_length(7, 500, 10) == 7
    assert optimise.chunk_length(50, 0, 10) == 10


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_estimate_covers_what_xla_allocates(optimizer):
    """XLA's own figure for the compiled chunk (temporary buffers and the state it returns)
    is within the estimate's per-pixel part, and not far below it."""
    params = jax.tree.map(jnp.asarray, weights_source.random_weights(0).params)
    spec = losses.LossSpec(("conv4_2",), PAPER_LAYERS[1:], "avg")
    for height, width in ((48, 64), (96, 128)):
        image = jnp.zeros((height, width, 3), jnp.float32)
        targets = jax.eval_shape(losses.jitted_targets(spec), params, image, image)
        weights = losses.LossWeights(jnp.float32(1), jnp.float32(1), jnp.ones((1,)), jnp.full((5,), 0.2),
                                     jnp.float32(0))
        args = optimise.SolveArgs(params, targets, weights, jnp.float32(1))
        compiled = optimise.compile_solver(image, args, optimise.SolverSpec(optimizer, spec), 10)
        analysis = compiled.chunk.memory_analysis()
        xla = analysis.temp_size_in_bytes + analysis.output_size_in_bytes
        estimate = budget.estimate_bytes(height, width, PAPER_LAYERS, optimizer, chunk=10) - budget.BASE_BYTES
        assert xla <= estimate <= 1.6 * xla, (height, width, xla, estimate)
