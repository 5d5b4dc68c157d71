"""Tiled evaluation (stylejax/_src/tiling.py) against the whole-image objective."""

import image_files
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax import cli
from stylejax._src import balance, budget, convolution, losses, tiling, vgg
from stylejax._src import convention as convention_lib
from stylejax._src.errors import InvalidSetting
from stylejax._src.presets import PAPER_STYLE_LAYERS

PAPER = losses.LossSpec(("conv4_2",), PAPER_STYLE_LAYERS, "avg")
SHALLOW = losses.LossSpec(("conv2_2",), ("conv1_1", "conv2_1", "conv3_1"), "max")
TINY = losses.LossSpec(("conv1_2",), ("conv1_1", "conv2_1"), "avg")  # halo 4 px: cheap to compile
RTOL_VALUE = 1e-5  # float32 sums in another order
RTOL_GRADIENT = 1e-5  # relative L2 distance of the gradients


@pytest.fixture(scope="module")
def params():
    return jax.tree.map(jnp.asarray, vgg.he_normal_params(0))


def _images(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.uniform(-1.0, 1.0, (*shape, 3)).astype(np.float32)) for _ in range(count)]


def _weights(spec, tv=0.25, blend=None):
    return balance.unit_weights(spec)._replace(tv_weight=jnp.float32(tv), style_blend=blend)


def _relative(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _compare(params, image, targets, weights, spec, tile):
    whole = jax.jit(jax.value_and_grad(losses.objective), static_argnums=4)
    tiled = jax.jit(jax.value_and_grad(tiling.objective), static_argnums=(4, 5))
    value, gradient = whole(image, params, targets, weights, spec)
    tiled_value, tiled_gradient = tiled(image, params, targets, weights, spec, tile)
    np.testing.assert_allclose(float(tiled_value), float(value), rtol=RTOL_VALUE)
    assert _relative(tiled_gradient, gradient) < RTOL_GRADIENT


@pytest.mark.parametrize("layers, expected", [
    (("conv1_1",), 1), (("conv2_2",), 6), (("conv3_1",), 12), (("conv4_2",), 40),
    (("conv5_1",), 80), (("conv5_2",), 96), (("pool5",), 128), (("conv1_1", "conv5_1"), 80),
])
def test_the_halo_is_the_edge_error_spread_rounded_to_the_stride(layers, expected):
    # Spread by hand for conv5_1: 2 convs at stride 1 (2), pool1 (2), 2 at stride 2 (6),
    # pool2 (8), 4 at stride 4 (24), pool3 (24), 4 at stride 8 (56), pool4 (64), conv5_1 (80).
    assert tiling.halo(layers) == expected
    assert tiling.halo(layers) % tiling.stride(layers) == 0


@pytest.mark.parametrize("shape, tile", [
    ((21, 19), 8),  # 3 x 3 tiles of 8 x 8 px, odd sides
    ((30, 22), 16),  # 2 x 2 tiles evened out to 16 x 12 px
])
def test_a_tiny_spec_tiles_exactly(params, shape, tile):
    content, style, image = _images(shape, 3, seed=9)
    targets = losses.compute_targets(params, content, style, TINY)
    _compare(params, image, targets, _weights(TINY), TINY, tile)


def test_tiles_are_evened_out():
    layers = ("conv4_2", *PAPER_STYLE_LAYERS)
    assert tiling.piece_shape(768, 1024, 512, layers) == (384 + 160, 512 + 160)
    assert tiling.piece_shape(1536, 2048, 512, layers) == (512 + 160, 512 + 160)
    assert tiling.piece_shape(1000, 1000, 512, layers) == (512 + 160, 512 + 160)  # 500 rounded up to 16
    assert tiling.piece_shape(30, 22, 16, TINY.content_layers + TINY.style_layers) == (16 + 8, 12 + 8)


@pytest.mark.slow
def test_paper_layers_value_and_gradient_equal_the_whole_image(params):
    # 83 x 61 px: odd sides, so the pooling rounds down at the border as the whole image
    # does; tiles of 32 px make a 3 x 2 grid whose last row and column overhang the image.
    content, style, image = _images((83, 61), 3)
    targets = losses.compute_targets(params, content, style, PAPER)
    _compare(params, image, targets, _weights(PAPER), PAPER, 32)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", convolution.ALGORITHMS)
def test_every_convolution_path_tiles_exactly(params, algorithm):
    content, style, image = _images((52, 44), 3, seed=1)
    prepared = convolution.prepare(params, algorithm)
    targets = losses.compute_targets(prepared, content, style, SHALLOW)
    _compare(prepared, image, targets, _weights(SHALLOW), SHALLOW, 16)


@pytest.mark.slow
def test_luminance_only_spatial_control_and_several_styles_tile_exactly(params):
    content, first, second, image = _images((40, 36), 4, seed=2)
    spec = SHALLOW._replace(luminance=convention_lib.CAFFE)
    regions = np.zeros((2, 40, 36), np.float32)
    regions[0, :, :20], regions[1, :, 20:] = 1.0, 1.0
    targets = losses.compute_targets(params, content, (first, second), spec, content_guides=jnp.asarray(regions))
    _compare(params, image, targets, _weights(spec, blend=jnp.asarray([0.3, 0.7])), spec, 8)
    plain = losses.compute_targets(params, content, (first, second), SHALLOW)
    _compare(params, image, plain, _weights(SHALLOW, blend=jnp.asarray([0.6, 0.4])), SHALLOW, 8)


@pytest.mark.slow
def test_tiled_targets_equal_the_whole_images(params):
    content, style = _images((50, 42), 2, seed=3)
    (bigger,) = _images((61, 70), 1, seed=4)  # a style image of another size (style_scale)
    own = jnp.asarray((np.arange(61)[:, None] < 40) * np.ones((1, 70)), jnp.float32)
    regions = np.zeros((2, 50, 42), np.float32)
    regions[0, :25], regions[1, 25:] = 1.0, 1.0
    cases = [
        dict(style_image=style),
        dict(style_image=(style, bigger)),
        dict(style_image=(style, bigger), content_guides=jnp.asarray(regions), style_guides=(None, own)),
    ]
    for case in cases:
        whole = losses.compute_targets(params, content, spec=SHALLOW, **case)
        tiled = tiling.compute_targets(params, content, spec=SHALLOW, tile=8, **case)
        for got, want in zip(tiled.content, whole.content, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))
        for got, want in zip(tiled.style_grams, whole.style_grams, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(want))))
        assert (tiled.guides is None) == (whole.guides is None)


def test_tiled_terms_equal_the_whole_images(params):
    content, style, image = _images((23, 17), 3, seed=5)
    targets = losses.compute_targets(params, content, style, TINY)
    weights = _weights(TINY)
    whole = losses.loss_terms(image, params, targets, weights, TINY)
    tiled = tiling.jitted_terms(TINY, 8)(image, params, targets, weights)
    for got, want in zip(tiled, whole, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL_VALUE)


@pytest.mark.slow
def test_an_image_within_one_tile_is_evaluated_whole(params):
    content, style, image = _images((40, 36), 3, seed=6)
    targets = losses.compute_targets(params, content, style, SHALLOW)
    weights = _weights(SHALLOW)
    whole = jax.grad(losses.objective)(image, params, targets, weights, SHALLOW)
    same = jax.grad(tiling.objective)(image, params, targets, weights, SHALLOW, 40)
    np.testing.assert_array_equal(same, whole)


@pytest.mark.slow
def test_forward_mode_is_refused_as_documented(params):
    content, style, image = _images((24, 24), 3, seed=7)
    targets = losses.compute_targets(params, content, style, TINY)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: tiling.objective(x, params, targets, _weights(TINY), TINY, 8), (image,),
                (jnp.ones_like(image),))


@pytest.mark.parametrize("tile, expected", [
    (40, "multiple of 16 px"), (0, "multiple of 16"), ("abc", "multiple of 16"), (True, "multiple of 16"),
    (-16, "multiple of 16"),
])
def test_a_bad_tile_names_the_stride(tile, expected):
    with pytest.raises(InvalidSetting, match=expected):
        tiling.check_tile(tile, PAPER_STYLE_LAYERS)


def test_check_tile_takes_whole_multiples():
    assert tiling.check_tile("512", PAPER_STYLE_LAYERS) == 512
    assert tiling.check_tile(6, ("conv2_1",)) == 6


def test_the_estimate_counts_one_tile_of_activations():
    layers = ("conv4_2", *PAPER_STYLE_LAYERS)
    whole = budget.estimate_bytes(1536, 2048, layers, "lbfgs", chunk=10)
    tiled = budget.estimate_bytes(1536, 2048, layers, "lbfgs", chunk=10, tile=512)
    # By hand: (512 + 160)^2 px of activations at 14 B x 320 elements, 2048 x 1536 px of
    # L-BFGS state (264 B) and tiled buffers (224 B), on 1.5 GiB.
    activations = 672**2 * 14 * budget.activations_per_pixel("conv5_1")
    by_hand = (3 << 29) + activations + 2048 * 1536 * (264 + 224) + 10 * 8
    assert tiled == pytest.approx(by_hand, rel=1e-9)
    assert tiled < whole / 3
    small = budget.estimate_bytes(300, 400, layers, "lbfgs", chunk=10)
    assert budget.estimate_bytes(300, 400, layers, "lbfgs", chunk=10, tile=512) == small


@pytest.mark.parametrize("command, output, extra, expect", [
    ("transfer", "o.png", ["--size", "32", "--tile", "40"], "--tile must be a whole multiple of"),
    ("sweep", "sweep", ["--size", "32", "--tile", "24"], "--tile must be a whole multiple of 16"),
    ("transfer", "o.png", ["--size", "4096", "--max-memory", "4"], "evaluate it in tiles (--tile)"),
])
def test_tile_errors_on_the_command_line_are_one_line(command, output, extra, expect, tmp_path, capsys):
    files = image_files.sample_pair_files(tmp_path)
    out = tmp_path / output
    status = cli.main([command, *files, "-o", str(out), "--weights", "random", "--iterations", "1", "--quiet",
                       *extra])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_a_tiled_transfer_equals_the_whole_one(tmp_path):
    import json

    files = image_files.sample_pair_files(tmp_path)
    reports = []
    for name, extra in (("whole", []), ("tiled", ["--tile", "16"])):
        report = tmp_path / f"{name}.json"
        status = cli.main(["transfer", *files, "-o", str(tmp_path / f"{name}.png"), "--weights", "random",
                           "--size", "48", "--iterations", "3", "--optimizer", "adam", "--content-layer",
                           "conv2_2", "--style-layers", "conv1_1,conv2_1,conv3_1", "--report", str(report),
                           "--quiet", *extra])
        assert status == 0
        reports.append(json.loads(report.read_text()))
    whole, tiled = reports
    assert tiled["config"]["tile"] == 16 and whole["config"]["tile"] is None
    from PIL import Image

    with Image.open(tmp_path / "tiled.png") as picture:
        assert json.loads(picture.text["stylejax:config"])["tile"] == 16
    np.testing.assert_allclose(tiled["history"], whole["history"], rtol=1e-4)
    np.testing.assert_allclose(tiled["final"]["total"], whole["final"]["total"], rtol=1e-4)


@pytest.mark.slow
def test_lbfgs_runs_on_the_tiled_objective(tmp_path):
    import json

    # L-BFGS's zoom line search differentiates the objective at every trial: the custom
    # VJP serves them all. (Its path from a content init is too sensitive to rounding to
    # compare with the whole run iteration by iteration; tiled against whole at one point
    # is above.)
    files = image_files.sample_pair_files(tmp_path)
    report = tmp_path / "r.json"
    status = cli.main(["transfer", *files, "-o", str(tmp_path / "o.png"), "--weights", "random", "--size", "40",
                       "--iterations", "4", "--content-layer", "conv2_2", "--style-layers", "conv1_1,conv2_1",
                       "--tile", "16", "--report", str(report), "--quiet"])
    assert status == 0
    result = json.loads(report.read_text())
    assert result["status"] == "completed" and result["iterations"] == 4 and result["evaluations"] >= 4
    assert result["final"]["total"] < result["initial"]["total"]


@pytest.mark.slow
def test_a_tiled_sweep_member_equals_the_whole_one():
    from stylejax._src import samples, sweep
    from stylejax._src.weights import weights_source

    content, style = samples.sample_images(40)
    weights = weights_source.random_weights(0)
    members = sweep.product(ratios=(1e-3, 1e-2), style_layer_sets=(("conv1_1", "conv2_1"),),
                            content_layers=("conv2_2",), inits=("content",), tv_weights=(0.0,))
    common = dict(optimizer="adam", iterations=3, mode="vmap")
    whole = sweep.run_sweep(content, style, members, weights, **common)
    tiled = sweep.run_sweep(content, style, members, weights, tile=8, **common)
    # Adam's first steps are about lr * sign(gradient), so a component whose gradient is
    # near 0 may step either way on float rounding: pixels agree to 1e-3, losses closer.
    np.testing.assert_allclose(tiled.images, whole.images, atol=1e-3)
    for got, want in zip(tiled.histories, whole.histories, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4)
    with pytest.raises(InvalidSetting, match="multiple of 2 px"):  # conv2_2's stride
        sweep.run_sweep(content, style, members, weights, tile=7, **common)


@pytest.mark.slow
def test_a_run_checkpointed_with_tiles_resumes_without_them(tmp_path, capsys):
    import json

    files = image_files.sample_pair_files(tmp_path)
    common = ["--weights", "random", "--size", "40", "--optimizer", "adam", "--chunk", "2", "--content-layer",
              "conv2_2", "--style-layers", "conv1_1,conv2_1", "--quiet"]

    def run(name, iterations, *extra):
        report = tmp_path / f"{name}.json"
        status = cli.main(["transfer", *files, "-o", str(tmp_path / f"{name}.png"), "--report", str(report),
                           "--iterations", str(iterations), *common, *extra])
        assert status == 0, capsys.readouterr().err
        return json.loads(report.read_text())

    whole = run("whole", 4)
    ckpt = str(tmp_path / "run.ckpt")
    run("part", 2, "--tile", "16", "--checkpoint", ckpt)
    resumed = run("resumed", 4, "--resume", ckpt)
    assert resumed["resumed_at"] == 2 and resumed["config"]["tile"] is None
    np.testing.assert_allclose(resumed["history"], whole["history"], rtol=1e-4)


@pytest.mark.slow
def test_the_tile_benchmark_reports_agreement_memory_and_time():
    from stylejax._src.weights import weights_source
    from stylejax.bench import tiles

    rows = tiles.measure(64, (None, 32), weights_source.random_weights(0), repeats=1, run_whole_up_to=64)
    whole, tiled = rows
    assert whole["tile"] == "whole" and whole["seconds"] > 0 and whole["temp_bytes"] > 0
    assert tiled["piece_shape"] == [32 + 160, 32 + 160]
    assert tiled["value_difference"] < 1e-5 and tiled["gradient_difference"] < 1e-5
    assert tiled["time_ratio"] > 0
    compiled_only = tiles.measure(64, (None,), weights_source.random_weights(0), repeats=1, run_whole_up_to=32)
    assert "seconds" not in compiled_only[0] and compiled_only[0]["temp_bytes"] == whole["temp_bytes"]
