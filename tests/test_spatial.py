"""Spatial control (CVPR 2017 Sec. 4, stylejax/_src/guides.py) against plain NumPy
transcriptions, and its bad inputs."""

import image_files
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import stylejax
from stylejax import cli
from stylejax._src import guides, losses, samples, transfer
from stylejax._src.errors import InvalidSetting
from stylejax._src.weights import weights_source


def _pool2_numpy(a):
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def test_guides_reach_each_layer_by_pooling_and_erosion():
    rng = np.random.default_rng(0)
    guide = (rng.random((37, 50)) > 0.4).astype(np.float32)
    expected = _pool2_numpy(_pool2_numpy(guide))  # conv3_1: downsampled 4x, each pooling rounds down
    np.testing.assert_allclose(guides.guide_at(jnp.asarray(guide), "conv3_1"), expected, atol=1e-6)
    np.testing.assert_allclose(guides.guide_at(jnp.asarray(guide), "relu1_1"), guide, atol=0)
    inside = np.asarray(guides.guide_at(jnp.asarray(guide), "conv2_1", "inside"))
    pooled = np.pad(_pool2_numpy(guide), 1, constant_values=np.inf)
    eroded = np.min([pooled[i:i + inside.shape[0], j:j + inside.shape[1]] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_allclose(inside, eroded, atol=1e-6)
    with pytest.raises(ValueError, match="unknown guide method"):
        guides.guide_at(jnp.asarray(guide), "conv1_1", "all")


def test_normalised_guides_square_sum_to_the_positions_and_ones_stay_ones():
    half = np.zeros((8, 10), np.float32)
    half[:, :5] = 1
    n = np.asarray(guides.normalised(jnp.asarray(half)))
    np.testing.assert_allclose(np.sum(n**2), 80, rtol=1e-6)
    np.testing.assert_allclose(n[:, :5], np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(guides.normalised(jnp.ones((4, 4))), 1.0, atol=0)
    np.testing.assert_allclose(guides.normalised(jnp.zeros((4, 4))), 0.0, atol=0)


def test_guided_grams_are_the_definition():
    rng = np.random.default_rng(1)
    features = rng.random((6, 7, 5)).astype(np.float32)
    region_guides = rng.random((3, 6, 7)).astype(np.float32)
    got = np.asarray(guides.guided_grams(jnp.asarray(features), jnp.asarray(region_guides)))
    for r in range(3):
        weighted = (features * region_guides[r][..., None]).reshape(-1, 5)  # F o T_r
        np.testing.assert_allclose(got[r], weighted.T @ weighted, rtol=1e-5)


@pytest.fixture(scope="module")
def network():
    weights = weights_source.random_weights(0)
    params = jax.tree.map(jnp.asarray, weights.params)
    return params, lambda rgb: jnp.asarray(weights.convention.to_network(rgb))


@pytest.mark.slow
def test_an_all_ones_mask_gives_the_plain_gram_and_loss(network):
    params, net = network
    content, style = samples.sample_images(32)
    spec = losses.LossSpec(("conv1_2",), ("conv1_1", "conv2_1"), "avg")
    plain = losses.compute_targets(params, net(content), (net(style),), spec)
    guided = losses.compute_targets(params, net(content), (net(style),), spec,
                                    content_guides=jnp.ones((1, 24, 32)), style_guides=(jnp.ones((24, 32)),))
    for a, b in zip(plain.style_grams, guided.style_grams, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    unit = losses.LossWeights(jnp.float32(1), jnp.float32(1), jnp.ones((1,)), jnp.full((2,), 0.5), jnp.float32(0))
    x = net(np.random.default_rng(2).random(content.shape, np.float32))
    np.testing.assert_allclose(losses.loss_terms(x, params, guided, unit, spec).style_per_layer,
                               losses.loss_terms(x, params, plain, unit, spec).style_per_layer, rtol=1e-5)


@pytest.mark.slow
def test_each_region_is_compared_with_its_own_style(network):
    """Two regions: the loss is the mean of each region's E_l against its own style's Gram,
    and a region absent at a layer adds nothing."""
    params, net = network
    content, style = samples.sample_images(32)
    other = np.ascontiguousarray(style[::-1])
    top = np.zeros((24, 32), np.float32)
    top[:12] = 1
    region_guides = jnp.asarray(np.stack([top, 1 - top]))
    spec = losses.LossSpec(("conv1_2",), ("conv1_1",), "avg")
    targets = losses.compute_targets(params, net(content), (net(style), net(other)), spec,
                                     content_guides=region_guides)
    x = net(np.random.default_rng(3).random(content.shape, np.float32))
    features = stylejax.features(params, x, ("conv1_1",))["conv1_1"]
    expected = []
    for r, picture in enumerate((style, other)):
        g = np.asarray(guides.normalised(region_guides[r]))[..., None]
        target = np.asarray(losses.gram(stylejax.features(params, net(picture), ("conv1_1",))["conv1_1"]))
        mine = (np.asarray(features) * g).reshape(-1, 64)
        expected.append(np.sum((mine.T @ mine - target) ** 2) / (4 * 64**2 * (24 * 32) ** 2))
    unit = losses.LossWeights(jnp.float32(1), jnp.float32(1), jnp.ones((1,)), jnp.ones((1,)), jnp.float32(0))
    got = losses.loss_terms(x, params, targets, unit, spec).style_per_layer[0]
    np.testing.assert_allclose(got, np.mean(expected), rtol=1e-4)
    absent = targets._replace(guides=(targets.guides[0].at[1].set(0.0),))
    np.testing.assert_allclose(losses.loss_terms(x, params, absent, unit, spec).style_per_layer[0],
                               expected[0] / 2, rtol=1e-4)


def _settings(**changes):
    from stylejax._src import settings

    return transfer.Settings(**settings.resolve("paper", {"size": 32, **changes}))


@pytest.mark.parametrize("mask, expect", [
    (np.zeros((30, 32), np.int64), "another aspect ratio"),
    (np.full((24, 32), 2, np.int64), "integers 0..1"),
    (np.zeros((3, 24, 32), np.float32), "3 regions for 2 style images"),
    (np.zeros((24, 32), np.int64), "region 2 of the content mask is empty"),
])
def test_bad_masks_are_refused_by_the_method(mask, expect):
    content, style = samples.sample_images(32)
    with pytest.raises(InvalidSetting, match=expect):
        transfer.prepare_inputs(content, (style, style), _settings(), content_mask=mask)


@pytest.mark.parametrize("colours, styles, expect", [
    (3, 2, "has 3 colours for 2 style images"),
    (1, 2, "has 1 colours for 2 style images"),
])
def test_mask_colours_must_match_the_style_images(colours, styles, expect, tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path, third=True)
    stripes = np.zeros((24, 32, 3), np.uint8)
    for k in range(colours):
        stripes[k * 24 // colours:] = (80 * k, 40 * k, 200 - 60 * k)
    Image.fromarray(stripes).save(tmp_path / "mask.png")
    status = cli.main(["transfer", paths[0], *paths[1:1 + styles], "-o", str(tmp_path / "o.png"), "--weights",
                       "random", "--size", "32", "--iterations", "1", "--content-mask", str(tmp_path / "mask.png"),
                       "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


def test_style_masks_need_a_content_mask(tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path)
    status = cli.main(["transfer", *paths, "-o", str(tmp_path / "o.png"), "--weights", "random", "--size", "32",
                       "--style-masks", paths[1], "--quiet"])
    assert status == 2 and "--style-masks needs --content-mask" in capsys.readouterr().err


@pytest.mark.slow
def test_a_masked_transfer_runs_and_a_one_region_mask_equals_no_mask(tmp_path, capsys):
    content, style = samples.sample_images(32)
    other = np.ascontiguousarray(style[:, ::-1])
    weights = weights_source.random_weights(0)
    common = dict(preset="paper", optimizer="adam", size=32, iterations=3, content_layer="conv2_2",
                  style_layers=("conv1_1", "conv2_1"), init="content", ratio=1e-2)
    plain, _plain_report = stylejax.transfer(content, style, weights, **common)
    one, _one_report = stylejax.transfer(content, style, weights, content_mask=np.zeros((24, 32), np.int64),
                                        **common)
    np.testing.assert_allclose(one, plain, atol=1e-5)
    labels = np.zeros((24, 32), np.int64)
    labels[:12] = 1
    _masked, report = stylejax.transfer(content, (style, other), weights, content_mask=labels,
                                        mask_method="inside", **{**common, "optimizer": "lbfgs"})
    assert report["status"] == "completed" and report["config"]["mask_method"] == "inside"
    assert report["final"]["total"] < report["initial"]["total"]  # L-BFGS's line search: it descends
    # The command line: two colours, two paintings.
    paths = image_files.sample_pair_files(tmp_path, third=True)
    mask = np.zeros((24, 32, 3), np.uint8)
    mask[:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    status = cli.main(["transfer", *paths, "-o", str(tmp_path / "o.png"), "--weights", "random", "--size", "32",
                       "--iterations", "2", "--content-mask", str(tmp_path / "mask.png"), "--quiet"])
    assert status == 0, capsys.readouterr().err
