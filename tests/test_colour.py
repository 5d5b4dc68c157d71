"""Colour control (CVPR 2017 Sec. 5, stylejax/_src/colour.py) against plain NumPy/SciPy
transcriptions of its definitions."""

import json

import image_files
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from stylejax import cli
from stylejax._src import colour, losses, samples
from stylejax._src.files import images
from stylejax._src.weights import weights_source


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(0)
    # A colourful content and a style with other colours and a skewed covariance.
    content = np.clip(rng.random((24, 32, 3)) * [0.6, 0.9, 0.4] + [0.2, 0.05, 0.3], 0, 1)
    mix = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.1, 0.4]])
    style = np.clip(rng.random((24, 32, 3)) @ mix.T, 0, 1)
    return content.astype(np.float32), style.astype(np.float32)


def test_yiq_round_trip_and_the_luminance_weights():
    rgb = np.random.default_rng(1).random((5, 7, 3))
    np.testing.assert_allclose(colour.from_yiq(colour.to_yiq(rgb)), rgb, atol=1e-12)
    np.testing.assert_allclose(colour.luminance(rgb)[..., 0], rgb @ [0.299, 0.587, 0.114], atol=1e-12)
    np.testing.assert_allclose(colour.YIQ_TO_RGB[:, 0], [1, 1, 1], atol=1e-12)  # RGB = Y + chroma
    grey = colour.grey(rgb)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=0)
    # YIQ's chroma is a fixed linear map of YUV's: keeping one keeps the other.
    u, v = 0.492 * (rgb[..., 2] - colour.luminance(rgb)[..., 0]), 0.877 * (rgb[..., 0] - colour.luminance(rgb)[..., 0])
    iq = colour.to_yiq(rgb)[..., 1:]
    _, residual, *_ = np.linalg.lstsq(np.stack([u.ravel(), v.ravel()], 1), iq.reshape(-1, 2), rcond=None)
    assert residual.max() < 1e-4, residual


def _reference_transform(style, content, mode, eps=1e-5):
    """The authors' match_color (ColourControl notebook), transcribed with SciPy's sqrtm."""
    s, c = style.reshape(-1, 3).astype(np.float64), content.reshape(-1, 3).astype(np.float64)
    cov_s = np.cov(s.T, bias=True) + eps * np.eye(3)
    cov_c = np.cov(c.T, bias=True) + eps * np.eye(3)
    if mode == "cholesky":
        return np.linalg.cholesky(cov_c) @ np.linalg.inv(np.linalg.cholesky(cov_s))
    if mode == "pca":
        return np.real(linalg.sqrtm(cov_c)) @ np.linalg.inv(np.real(linalg.sqrtm(cov_s)))
    root_s = np.real(linalg.sqrtm(cov_s))
    inverse_root_s = np.linalg.inv(root_s)
    return inverse_root_s @ np.real(linalg.sqrtm(root_s @ cov_c @ root_s)) @ inverse_root_s


@pytest.mark.parametrize("mode", colour.HISTOGRAM_MODES)
def test_histogram_matching_gives_the_contents_mean_and_covariance(mode, pictures):
    content, style = pictures
    matched = colour.match_histogram(style, content, mode).reshape(-1, 3).astype(np.float64)
    flat = content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(matched.mean(0), flat.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.cov(matched.T, bias=True), np.cov(flat.T, bias=True), atol=1e-4)
    transform, _, _ = colour.histogram_transform(style, content, mode)
    np.testing.assert_allclose(transform, _reference_transform(style, content, mode), rtol=1e-6, atol=1e-8)
    if mode == "sym":
        np.testing.assert_allclose(transform, transform.T, atol=1e-10)
    if mode == "cholesky":
        np.testing.assert_allclose(np.triu(transform, 1), 0, atol=1e-12)


def test_an_unknown_histogram_mode_is_refused(pictures):
    with pytest.raises(ValueError, match="unknown histogram match 'lab'"):
        colour.match_histogram(*pictures, mode="lab")


def test_luminance_matching_gives_the_contents_mean_and_deviation(pictures):
    content, style = pictures
    matched = colour.match_luminance(style, content)
    y_c = colour.luminance(content.astype(np.float64))
    np.testing.assert_allclose(matched[..., 0], matched[..., 1], atol=0)
    np.testing.assert_allclose(matched[..., 0].mean(), y_c.mean(), atol=1e-6)
    np.testing.assert_allclose(matched[..., 0].std(), y_c.std(), rtol=1e-5)
    # The paper's formula, transcribed: (sigma_c / sigma_s)(Y_s - mu_s) + mu_c.
    y_s = colour.luminance(style.astype(np.float64))[..., 0]
    expected = y_c.std() / y_s.std() * (y_s - y_s.mean()) + y_c.mean()
    np.testing.assert_allclose(matched[..., 0], expected, atol=1e-6)


def test_with_chroma_of_keeps_the_contents_i_and_q_even_after_8_bit_rounding(pictures):
    content, _ = pictures
    rng = np.random.default_rng(3)
    result = rng.random(content.shape).astype(np.float32) * 1.4 - 0.2  # outside [0, 1] too
    out = colour.with_chroma_of(result, content)
    assert out.min() >= 0 and out.max() <= 1
    iq = colour.to_yiq(out.astype(np.float64))[..., 1:]
    np.testing.assert_allclose(iq, colour.to_yiq(content.astype(np.float64))[..., 1:], atol=1e-6)
    rounded = np.rint(out * 255) / 255
    iq8 = colour.to_yiq(rounded.astype(np.float64))[..., 1:]
    assert np.abs(iq8 - colour.to_yiq(content.astype(np.float64))[..., 1:]).max() < 1 / 255
    # Where the result's luminance is in the pixel's gamut it is kept exactly.
    inside = colour.with_chroma_of(np.clip(content * 0.9 + 0.05, 0, 1), content)
    np.testing.assert_allclose(colour.luminance(inside.astype(np.float64)),
                               colour.luminance((content * 0.9 + 0.05).astype(np.float64)), atol=1e-6)


@pytest.mark.slow
def test_the_luminance_only_objective_gives_chroma_no_gradient():
    content, style = samples.sample_images(32)
    weights = weights_source.random_weights(0)
    convention = weights.convention
    params = jax.tree.map(jnp.asarray, weights.params)
    spec = losses.LossSpec(("conv1_2",), ("conv1_1",), "avg", luminance=convention)  # block 1: fast
    to_net = lambda rgb: jnp.asarray(convention.to_network(rgb))  # noqa: E731
    targets = losses.compute_targets(params, to_net(content), to_net(style), spec)
    unit = losses.LossWeights(jnp.float32(1e-2), jnp.float32(1.0), jnp.ones((1,)), jnp.ones((1,)),
                              jnp.float32(1e-3))
    x = to_net(np.random.default_rng(4).random(content.shape, np.float32))
    grad = jax.grad(losses.objective)(x, params, targets, unit, spec)
    for chroma in ([0, 1, 0], [0, 0, 1]):  # I and Q directions, in the network's input space
        direction = to_net(colour.from_yiq(np.broadcast_to(np.float32(chroma), content.shape))) - to_net(
            np.zeros(content.shape, np.float32))
        along = float(jnp.vdot(grad, direction)) / (float(jnp.linalg.norm(grad)) * float(jnp.linalg.norm(direction)))
        assert abs(along) < 1e-5, along
    # Every pixel's gradient is one fixed direction (d Y / d x) times a number: rank one.
    singular = np.linalg.svd(np.asarray(grad).reshape(-1, 3), compute_uv=False)
    assert singular[0] > 0 and singular[1] < 1e-5 * singular[0], singular
    # The targets are those of the grey images: the content's chroma changes nothing.
    shifted = colour.from_yiq(colour.to_yiq(content) + np.float32([0, 0.05, -0.03]))
    again = losses.compute_targets(params, to_net(shifted), to_net(style), spec)
    np.testing.assert_allclose(again.content[0], targets.content[0], rtol=1e-4, atol=1e-3)


def test_bad_colour_flags_are_one_line_errors(tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path, 32)
    for flag, value in (("--color-control", "sepia"), ("--histogram-match", "lab")):
        status = cli.main(["transfer", *paths, "-o", str(tmp_path / "o.png"), "--weights", "random", flag, value])
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1 and flag in err and value in err, err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("control", ["luminance", "histogram", "original"])
def test_transfer_with_colour_control_writes_it_everywhere(control, tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path, 40)
    out, report_path = tmp_path / "o.png", tmp_path / "o.json"
    status = cli.main(["transfer", *paths, "-o", str(out), "--report", str(report_path), "--weights", "random",
                       "--size", "40", "--iterations", "4", "--color-control", control, "--quiet"])
    assert status == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["config"]["color_control"] == control and report["config"]["histogram_match"] == "pca"
    assert json.loads(images.read_png_metadata(out)["stylejax:config"])["color_control"] == control
    written = images.load_image(out).astype(np.float64)
    shown = images.load_image(paths[0]).astype(np.float64)
    iq_error = np.abs(colour.to_yiq(written)[..., 1:] - colour.to_yiq(shown)[..., 1:]).max()
    if control == "histogram":
        assert iq_error > 1 / 255  # the painting's texture brings its own (matched) colours
    else:
        assert iq_error < 1 / 255, iq_error  # exactly the content's I and Q, up to 8-bit rounding


@pytest.mark.slow
def test_a_sweep_under_luminance_control_keeps_the_contents_chroma_for_every_member(tmp_path):
    from stylejax._src import sweep

    content, style = samples.sample_images(32)
    members = [sweep.Member(ratio=r, style_layers=("conv1_1", "conv2_1"), content_layer="conv2_2", init="content")
               for r in (1e-4, 1e-2)]
    result = sweep.run_sweep(content, style, members, weights_source.random_weights(0), optimizer="adam",
                             iterations=3, mode="vmap", lr=5.1, color_control="luminance")
    assert result.statuses == ["done", "done"]
    for image in result.images:
        np.testing.assert_allclose(colour.to_yiq(image.astype(np.float64))[..., 1:],
                                   colour.to_yiq(content.astype(np.float64))[..., 1:], atol=1e-5)
