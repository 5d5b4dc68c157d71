"""Coarse to fine (CVPR 2017 Sec. 6): settings, and a run equal to its scales run by hand."""

import json

import image_files
import numpy as np
import pytest

import stylejax
from stylejax import cli
from stylejax._src import image_ops, samples, settings
from stylejax._src.errors import InvalidSetting
from stylejax._src.files import images


def test_scales_resolve_to_the_last_size_and_the_summed_iterations():
    resolved = settings.resolve("paper", {"scales": "64,128", "iterations": "50,20"})
    assert resolved["scales"] == (64, 128) and resolved["scale_iterations"] == (50, 20)
    assert resolved["size"] == 128 and resolved["iterations"] == 70
    one_count = settings.resolve("paper", {"scales": (32, 48, 64), "iterations": 5})
    assert one_count["scale_iterations"] == (5, 5, 5) and one_count["iterations"] == 15
    plain = settings.resolve("paper", {"size": 64})
    assert plain["scales"] == () and plain["scale_iterations"] == () and plain["size"] == 64


@pytest.mark.parametrize("given, expect", [
    ({"scales": "64,32"}, "scales must increase, got '64,32'"),
    ({"scales": "32,32"}, "scales must increase"),
    ({"scales": "32,64", "iterations": "1,2,3"}, "iterations gives 3 counts for 2 scales"),
    ({"scales": "32,64", "size": 64}, "give size or scales, not both"),
    ({"scales": "8,64"}, "scales must be a whole number >= 16"),
    ({"scales": "32,64", "iterations": "2000000000,2000000000"}, "iterations add up to more than"),
    ({"iterations": "50,20"}, "iterations must be a whole number"),
])
def test_bad_scales_name_the_setting(given, expect):
    with pytest.raises(InvalidSetting) as info:
        settings.resolve("paper", given)
    assert expect in str(info.value)


@pytest.mark.slow
def test_a_coarse_to_fine_run_equals_its_scales_run_one_after_the_other():
    content, style = samples.sample_images(48)
    weights = stylejax.weights.random_weights(0)
    common = dict(preset="paper", optimizer="adam", content_layer="conv2_2", style_layers=("conv1_1", "conv2_1"),
                  init="content", ratio=1e-2)
    result, report = stylejax.transfer(content, style, weights, scales=(32, 48), iterations=(3, 2), **common)
    first, _ = stylejax.transfer(content, style, weights, size=32, iterations=3, **common)
    shape = image_ops.output_shape(*content.shape[:2], 48)
    by_hand, second = stylejax.transfer(content, style, weights, size=48, iterations=2,
                                        **{**common, "init": image_ops.resize(first, shape)})
    np.testing.assert_allclose(result, by_hand, atol=1e-6)
    assert [s["size"] for s in report["scales"]] == [32, 48]
    assert [s["iterations"] for s in report["scales"]] == [3, 2] and report["iterations"] == 5
    assert report["scales"][1]["history"] == pytest.approx(second["history"], rel=1e-6)
    assert report["evaluations"] == sum(s["evaluations"] for s in report["scales"])
    assert report["config"]["scales"] == [32, 48] and report["config"]["iterations"] == 5
    assert report["images"]["output_shape"] == list(shape)


@pytest.mark.slow
def test_the_cli_runs_scales_and_records_them(tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path, 40)
    out, report_path = tmp_path / "o.png", tmp_path / "o.json"
    status = cli.main(["transfer", *paths, "-o", str(out), "--report", str(report_path), "--weights", "random",
                       "--scales", "24,40", "--iterations", "2,1", "--save-every", "1", "--quiet"])
    assert status == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert [s["output_shape"] for s in report["scales"]] == [[18, 24], [30, 40]]
    assert json.loads(images.read_png_metadata(out)["stylejax:config"])["scales"] == [24, 40]
    # --save-every counts over the whole run: iterations 1 and 2 at 24 px, 3 at 40 px.
    saved = sorted(p.name for p in tmp_path.glob("o.0000*.png"))
    assert saved == ["o.00001.png", "o.00002.png", "o.00003.png"], saved
    with open(tmp_path / "o.00003.png", "rb"):
        assert images.load_image(tmp_path / "o.00003.png").shape == (30, 40, 3)


@pytest.mark.slow
def test_combine_styles_keeps_the_coarse_picture_and_takes_the_fine_texture():
    coarse, fine = samples.sample_images(32)
    weights = stylejax.weights.random_weights(0)
    combined, report = stylejax.combine_styles(coarse, fine, weights, preset="random", size=32, iterations=3,
                                               optimizer="adam")
    assert combined.shape == coarse.shape and report["status"] == "completed"
    config = report["config"]
    assert config["style_layers"] == ["conv1_1", "conv2_1"] and config["init"] == "content"
    assert config["color_control"] == "histogram" and config["histogram_match"] == "pca"
    assert report["final"]["style_weighted_sum"] < report["initial"]["style_weighted_sum"]
