"""Several styles blended (jcjohnson/neural-style's rule) and style scale."""

import json

import image_files
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stylejax
from stylejax import cli
from stylejax._src import losses, samples, settings, sweep
from stylejax._src.errors import InvalidSetting
from stylejax._src.weights import weights_source


def test_blends_are_normalised_and_checked():
    assert settings.resolve("paper", {"style_blend": "3,1"})["style_blend"] == (0.75, 0.25)
    assert settings.resolve("paper", {"style_blend": (1, 0)})["style_blend"] == (1.0, 0.0)
    assert settings.resolve("paper", {})["style_blend"] is None
    for bad, expect in (("0,0", "needs a positive weight"), ("1,-1", "non-negative"), ("1,nan", "non-negative")):
        with pytest.raises(InvalidSetting, match=expect):
            settings.resolve("paper", {"style_blend": bad})
    assert sweep.normalised_blend((2, 2)) == (0.5, 0.5)
    with pytest.raises(ValueError, match="positive sum"):
        sweep.normalised_blend((0, 0))


@pytest.mark.slow
def test_the_style_term_of_several_styles_is_the_blend_of_their_terms():
    content, style = samples.sample_images(32)
    other = np.ascontiguousarray(style[::-1]).astype(np.float32)
    weights = weights_source.random_weights(0)
    params = jax.tree.map(jnp.asarray, weights.params)
    net = lambda rgb: jnp.asarray(weights.convention.to_network(rgb))  # noqa: E731
    spec = losses.LossSpec(("conv2_2",), ("conv1_1", "conv2_1"), "avg")
    x = net(np.random.default_rng(0).random(content.shape, np.float32))
    unit = losses.LossWeights(jnp.float32(1e-2), jnp.float32(1.0), jnp.ones((1,)), jnp.full((2,), 0.5),
                              jnp.float32(0.0))
    one = losses.loss_terms(x, params, losses.compute_targets(params, net(content), net(style), spec), unit, spec)
    two = losses.loss_terms(x, params, losses.compute_targets(params, net(content), net(other), spec), unit, spec)
    both_targets = losses.compute_targets(params, net(content), (net(style), net(other)), spec)
    assert both_targets.style_grams[0].shape == (2, 64, 64)
    blended = losses.loss_terms(x, params, both_targets, unit._replace(style_blend=jnp.asarray([0.7, 0.3])), spec)
    np.testing.assert_allclose(blended.style_per_layer, 0.7 * one.style_per_layer + 0.3 * two.style_per_layer,
                               rtol=1e-5)
    np.testing.assert_allclose(blended.total, 0.7 * one.total + 0.3 * two.total, rtol=1e-5)  # shared content
    # A style image of another size is compared per position: its Gram scaled by M_l / M_l^k.
    big = np.asarray(jax.image.resize(jnp.asarray(style), (48, 64, 3), "linear"))
    scaled = losses.compute_targets(params, net(content), (net(style), net(big)), spec)
    raw = losses.compute_targets(params, net(big), net(big), spec)
    for k, name in enumerate(spec.style_layers):
        factor = stylejax.layers.DOWNSAMPLING[name]
        ratio = ((24 // factor) * (32 // factor)) / ((48 // factor) * (64 // factor))
        np.testing.assert_allclose(scaled.style_grams[k][1], raw.style_grams[k] * ratio, rtol=1e-5)


@pytest.fixture
def files(tmp_path):
    return image_files.sample_pair_files(tmp_path, third=True)


@pytest.mark.parametrize("extra, expect", [
    (["--style-blend", "1,1,1"], "--style-blend gives 3 weights for 2 style images"),
    (["--style-blend", "0,0"], "--style-blend needs a positive weight"),
    (["--style-blend=-1,2"], "non-negative"),
    (["--style-scale", "0"], "--style-scale must be a positive"),
])
def test_bad_blends_are_one_line_errors(extra, expect, files, tmp_path, capsys):
    status = cli.main(["transfer", *files, "-o", str(tmp_path / "o.png"), "--weights", "random", "--size", "32",
                       "--iterations", "1", "--quiet", *extra])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


def test_a_sweep_blend_of_another_count_is_refused_up_front(files, tmp_path, capsys):
    status = cli.main(["sweep", *files, "-o", str(tmp_path / "sw"), "--weights", "random", "--style-blends",
                       "1,0,0", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "3 weights for 2 style images" in err and not (tmp_path / "sw").exists(), err


@pytest.mark.slow
def test_a_blend_of_one_and_zero_equals_the_single_style_run():
    content, style = samples.sample_images(32)
    other = np.ascontiguousarray(style[:, ::-1]).astype(np.float32)
    weights = weights_source.random_weights(0)
    common = dict(preset="paper", optimizer="adam", size=32, iterations=3, content_layer="conv2_2",
                  style_layers=("conv1_1", "conv2_1"), init="content", ratio=1e-2)
    single, single_report = stylejax.transfer(content, style, weights, **common)
    blended, report = stylejax.transfer(content, (style, other), weights, style_blend=(1, 0), **common)
    np.testing.assert_array_equal(blended, single)
    assert report["history"] == single_report["history"] and report["config"]["style_blend"] == [1.0, 0.0]
    equal, equal_report = stylejax.transfer(content, (style, other), weights, style_scale=1.5, **common)
    assert equal_report["config"]["style_blend"] == [0.5, 0.5] and equal_report["status"] == "completed"
    assert not np.array_equal(equal, single)


@pytest.mark.slow
def test_a_sweep_over_blends_compiles_once(files, tmp_path, capsys):
    out = tmp_path / "sw"
    status = cli.main(["sweep", *files, "-o", str(out), "--weights", "random", "--size", "32", "--iterations",
                       "2", "--optimizer", "adam", "--style-blends", "1,0;1,1;0,1", "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["traces"] == 1
    assert [m["config"]["style_blend"] for m in results["members"]] == [[1, 0], [0.5, 0.5], [0, 1]]
    assert results["config"]["styles"] == files[1:]
