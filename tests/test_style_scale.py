"""Style scale (jcjohnson/neural-style's -style_scale): a style image of another size than
the output, in a transfer under the balance rule and in sweeps."""

import json

import image_files
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import stylejax
from stylejax import cli
from stylejax._src import image_ops, losses, presets, samples, sweep
from stylejax._src import settings as settings_lib
from stylejax._src import transfer as transfer_lib
from stylejax._src.errors import InvalidSetting
from stylejax._src.files import images
from stylejax._src.weights import weights_source

SIZE = 32  # the sample pair is 24x32 px at 32
LAYERS = ("conv1_1", "conv2_1")
SCALE = 1.5


@pytest.fixture(scope="module")
def weights():
    return weights_source.random_weights(0)


def _other_aspect_style() -> np.ndarray:
    """The sample painting at 36x40 px: another size and aspect ratio than the 24x32 content."""
    _, style = samples.sample_images(48)
    return np.ascontiguousarray(style[:, :40])


def test_a_single_style_of_another_size_is_scaled_as_one_of_several(weights):
    content, style = samples.sample_images(SIZE)
    big = image_ops.resize(style, (36, 48))
    params = jax.tree.map(jnp.asarray, weights.params)
    net = lambda rgb: jnp.asarray(weights.convention.to_network(rgb))  # noqa: E731
    spec = losses.LossSpec(("conv1_2",), LAYERS, "avg")
    one = losses.compute_targets(params, net(content), net(big), spec)
    several = losses.compute_targets(params, net(content), (net(big),), spec)
    raw = losses.compute_targets(params, net(big), net(big), spec)  # the style's own Grams, factor 1
    for k, name in enumerate(spec.style_layers):
        assert one.style_grams[k].shape == several.style_grams[k].shape[1:]
        np.testing.assert_allclose(one.style_grams[k], several.style_grams[k][0], rtol=1e-6)
        factor = stylejax.layers.DOWNSAMPLING[name]
        ratio = ((24 // factor) * (32 // factor)) / ((36 // factor) * (48 // factor))
        np.testing.assert_allclose(one.style_grams[k], raw.style_grams[k] * ratio, rtol=1e-6)


def test_the_sweep_scales_the_styles_as_the_transfer_does():
    content, _ = samples.sample_images(SIZE)
    style = _other_aspect_style()
    cfg = transfer_lib.Settings(**settings_lib.resolve("paper", {"size": SIZE, "style_scale": SCALE}))
    prepared = transfer_lib.prepare_inputs(content, style, cfg)
    assert prepared.style.shape[:2] == transfer_lib.scaled_style_shape(style.shape, content.shape, SCALE) == (43, 48)
    # Never under twice the smallest side: the transfer's floor.
    assert transfer_lib.scaled_style_shape(style.shape, content.shape, 0.01) == (29, 32)


def test_run_sweep_refuses_a_bad_scale_and_a_scale_with_a_content_mask(weights):
    content, style = samples.sample_images(SIZE)
    members = [sweep.Member(style_layers=("conv1_1",), content_layer="conv1_2")]
    with pytest.raises(InvalidSetting, match="style_scale must be a positive"):
        sweep.run_sweep(content, style, members, weights, iterations=1, style_scale=0)
    with pytest.raises(InvalidSetting, match="a content mask needs every style image at the content's shape"):
        sweep.run_sweep(content, style, members, weights, iterations=1, style_scale=SCALE,
                        content_mask=np.zeros(content.shape[:2], np.int64))


@pytest.mark.slow
def test_a_style_scaled_balanced_sweep_member_equals_the_transfer(weights):
    """The balance rule's content loss at the style image is measured at the content's
    shape, the targets from the scaled style, and init "style" is the scaled style at the
    content's shape: in the sweep as in the transfer."""
    content, _ = samples.sample_images(SIZE)
    style = _other_aspect_style()
    preset = presets.PRESETS["random"]
    member = sweep.Member(ratio=1e-3, style_layers=LAYERS, content_layer="conv1_2", init="style").balanced(
        preset["balance"], preset["tv_balance"])
    result = sweep.run_sweep(content, style, [member], weights, optimizer="adam", iterations=3, mode="vmap",
                             chunk_size=2, style_scale=SCALE)
    assert result.style_scale == SCALE and result.statuses == ["done"]
    image, report = stylejax.transfer(
        content, style, weights, preset="random", optimizer="adam", size=SIZE, iterations=3,
        content_layer="conv1_2", style_layers=LAYERS, init="style", style_scale=SCALE)
    assert report["config"]["style_scale"] == SCALE and report["balance"] is not None
    resolved = result.members[0]
    assert resolved.content_weight == pytest.approx(report["config"]["content_weight"], rel=1e-5)
    assert resolved.tv_weight == pytest.approx(report["config"]["tv_weight"], rel=1e-5)
    # Same objective, same Adam steps: only float32 rounding of the batched program may
    # differ (as tests/test_sweep_masks.py compares a masked member with the transfer).
    # Measured: 1.8e-6; the same member from the style at the content's shape is 0.12 away.
    np.testing.assert_allclose(result.images[0], image, atol=1e-4)
    np.testing.assert_allclose(result.histories[0], report["history"], rtol=1e-4)
    np.testing.assert_allclose(result.final[0]["total"], report["final"]["total"], rtol=1e-4)


@pytest.fixture
def files(tmp_path):
    return image_files.sample_pair_files(tmp_path)


@pytest.mark.slow
def test_a_balanced_cli_transfer_with_a_style_scale_completes(files, tmp_path, capsys):
    """The random preset's balance rule with a style image of another shape than the
    output: once a TypeError from a program compiled for the output's shape."""
    out, report_path = tmp_path / "o.png", tmp_path / "report.json"
    status = cli.main(["transfer", *files, "-o", str(out), "--weights", "random", "--size", str(SIZE),
                       "--iterations", "2", "--optimizer", "adam", "--style-scale", str(SCALE),
                       "--report", str(report_path), "--quiet"])
    assert status == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["config"]["style_scale"] == SCALE and report["preset"]["name"] == "random"
    assert report["status"] == "completed" and report["balance"]["content_at_style"] > 0
    assert out.is_file()


@pytest.mark.slow
def test_the_cli_sweep_scales_the_style_and_records_the_scale(tmp_path, capsys):
    content_path = image_files.sample_pair_files(tmp_path)[0]
    style_path = tmp_path / "tall.png"
    images.save_png(style_path, _other_aspect_style())
    out = tmp_path / "sweep"
    status = cli.main(["sweep", content_path, str(style_path), "-o", str(out), "--weights", "random",
                       "--size", str(SIZE), "--iterations", "2", "--optimizer", "adam",
                       "--style-layer-sets", "conv1_1,conv2_1", "--inits", "content,style",
                       "--style-scale", str(SCALE), "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["style_scale"] == SCALE and results["config"]["preset"] == "random"
    assert [m["status"] for m in results["members"]] == ["done", "done"]
    for row in results["members"]:
        with Image.open(out / row["image"]) as png:
            assert png.size == (SIZE, 24)
            assert json.loads(png.text["stylejax:sweep_config"])["style_scale"] == SCALE


def _mask(path) -> str:
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("extra, expect", [
    (["--style-scale", "0"], "--style-scale must be a positive"),
    (["--style-scale", "1.5", "--content-mask", "MASK"],
     "a content mask needs every style image at the content's shape: no style scale"),
])
def test_bad_sweep_style_scales_are_one_line_errors_and_nothing_is_written(extra, expect, files, tmp_path,
                                                                            capsys):
    extra = [_mask(tmp_path / "mask.png") if e == "MASK" else e for e in extra]
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *files, "-o", str(out), "--weights", "random", "--size", str(SIZE),
                       "--iterations", "1", "--quiet", *extra])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
