"""Spatial control in sweeps (CVPR 2017 Sec. 4): a masked member equals the masked
transfer, the members' blends weight the regions in one compilation, and the command
line reads, checks and records the masks as ``stylejax transfer`` does."""

import json

import image_files
import numpy as np
import pytest
from PIL import Image

import stylejax
from stylejax import cli
from stylejax._src import samples, sweep
from stylejax._src.errors import InvalidSetting
from stylejax._src.weights import weights_source

SIZE = 32  # the sample pair is 24x32 px at 32
LAYERS = ("conv1_1", "conv2_1")
BLENDS = ((0.7, 0.3), (0.25, 0.75))


@pytest.fixture(scope="module")
def pictures():
    content, style = samples.sample_images(SIZE)
    other = np.ascontiguousarray(style[:, ::-1])
    labels = np.zeros(content.shape[:2], np.int64)
    labels[:, 14:] = 1  # region 1: the right part, in the style of the second picture
    own = np.zeros(style.shape[:2], np.float32)
    own[:16] = 1.0  # the first style from its top part only
    return content, (style, other), labels, [own, None], weights_source.random_weights(0)


@pytest.mark.slow
def test_masked_sweep_members_equal_the_masked_transfer_and_compile_once(pictures):
    content, styles, labels, style_masks, weights = pictures
    members = [sweep.Member(ratio=1e-2, style_layers=LAYERS, content_layer="conv1_2", init="content",
                            style_blend=blend) for blend in BLENDS]
    result = sweep.run_sweep(content, styles, members, weights, optimizer="adam", iterations=3, mode="vmap",
                             chunk_size=2, content_mask=labels, style_masks=style_masks, mask_method="inside")
    # Two region weightings, traced: one program for the whole sweep.
    assert result.traces == 1 and result.statuses == ["done", "done"]
    for k, blend in enumerate(BLENDS):
        image, report = stylejax.transfer(
            content, styles, weights, preset="paper", optimizer="adam", size=SIZE, iterations=3,
            content_layer="conv1_2", style_layers=LAYERS, style_layer_weights=(0.5, 0.5), init="content",
            ratio=1e-2, style_blend=blend, content_mask=labels, style_masks=style_masks, mask_method="inside")
        assert report["config"]["content_weight"] == pytest.approx(1e-2)
        assert report["config"]["style_weight"] == pytest.approx(1.0)
        # Same objective, same Adam steps: only float32 rounding of the batched program
        # may differ. Measured: 6e-8; the same member without the masks is 0.035 away.
        np.testing.assert_allclose(result.images[k], image, atol=1e-4)
        np.testing.assert_allclose(result.histories[k], report["history"], rtol=1e-4)
        np.testing.assert_allclose(result.final[k]["total"], report["final"]["total"], rtol=1e-4)
    # The blends do weight the regions: the two members' objectives differ.
    assert abs(result.initial[0]["total"] - result.initial[1]["total"]) > 1e-3 * result.initial[0]["total"]


@pytest.mark.slow
def test_one_style_with_a_one_region_mask_equals_the_plain_sweep(pictures):
    content, (style, _), _, _, weights = pictures
    members = [sweep.Member(ratio=1e-2, style_layers=LAYERS, content_layer="conv1_2", init="content")]
    kwargs = dict(optimizer="adam", iterations=2, mode="vmap")
    plain = sweep.run_sweep(content, style, members, weights, **kwargs)
    masked = sweep.run_sweep(content, style, members, weights, content_mask=np.zeros(content.shape[:2], np.int64),
                             **kwargs)
    np.testing.assert_allclose(masked.images, plain.images, atol=1e-5)


@pytest.mark.parametrize("changes, expect", [
    ({"content_mask": np.zeros((30, 32), np.int64)}, "another aspect ratio"),
    ({"content_mask": np.full((24, 32), 2, np.int64)}, "integers 0..1"),
    ({"content_mask": np.zeros((24, 32), np.int64)}, "region 2 of the content mask is empty"),
    ({"style_masks": [np.ones((24, 32), np.float32)]}, "1 style masks for 2 style images"),
    ({"mask_method": "outside"}, "unknown mask method"),
])
def test_bad_masks_are_refused_by_run_sweep(pictures, changes, expect):
    content, styles, labels, _, weights = pictures
    members = [sweep.Member(style_layers=("conv1_1",), content_layer="conv1_2")]
    with pytest.raises(InvalidSetting, match=expect):
        sweep.run_sweep(content, styles, members, weights, iterations=1, **{"content_mask": labels, **changes})


def _mask_file(path, shape, colours):
    stripes = np.zeros((*shape, 3), np.uint8)
    for k in range(colours):
        stripes[:, k * shape[1] // colours:] = (80 * k, 40 * k, 200 - 60 * k)
    Image.fromarray(stripes).save(path)
    return str(path)


@pytest.mark.parametrize("shape, colours, expect", [
    ((30, 32), 2, "another aspect ratio"),
    ((24, 32), 3, "has 3 colours for 2 style images"),
])
def test_bad_masks_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, shape, colours, expect):
    paths = image_files.sample_pair_files(tmp_path, third=True)
    mask = _mask_file(tmp_path / "mask.png", shape, colours)
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *paths, "-o", str(out), "--weights", "random", "--size", str(SIZE),
                       "--iterations", "1", "--content-mask", mask, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_style_masks_need_a_content_mask_in_a_sweep(tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path)
    status = cli.main(["sweep", *paths, "-o", str(tmp_path / "sweep"), "--weights", "random",
                       "--style-masks", paths[1], "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "--style-masks needs --content-mask" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_the_cli_sweeps_region_blends_and_records_the_masks(tmp_path, capsys):
    paths = image_files.sample_pair_files(tmp_path, third=True)
    mask = _mask_file(tmp_path / "mask.png", (24, 32), 2)
    white = np.zeros((24, 32, 3), np.uint8)
    white[:12] = 255
    Image.fromarray(white).save(tmp_path / "top.png")
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *paths, "-o", str(out), "--weights", "random", "--size", str(SIZE),
                       "--iterations", "2", "--optimizer", "adam", "--style-layer-sets", "conv1_1",
                       "--content-layers", "conv1_2", "--content-mask", mask,
                       "--style-masks", f"{tmp_path / 'top.png'},{tmp_path / 'top.png'}",
                       "--mask-method", "inside", "--style-blends", "1,1;1,0.5", "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    config = results["config"]
    assert config["content_mask"] == mask and config["mask_method"] == "inside"
    assert config["style_masks"] == [str(tmp_path / "top.png")] * 2
    assert results["traces"] == 1 and [m["status"] for m in results["members"]] == ["done", "done"]
    assert [m["config"]["style_blend"] for m in results["members"]] == [pytest.approx([0.5, 0.5]), pytest.approx([2 / 3, 1 / 3])]
