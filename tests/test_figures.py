"""The figure scripts (scripts/fig*.py), run in-process at a tiny size on random weights.

Each run checks the files, the grid (every panel PNG sits at its row and column of
figure.png; empty cells are blank), the trend fields of results.json and that the
results say RANDOM WEIGHTS. Adam and 2 iterations at 32 px keep the file well under a
minute on 2 cores (most of it is compiling; fig3 and fig7 share one compilation).
"""

import importlib.util
import itertools
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from stylejax._src.files import images
from stylejax.cli import figures, grid

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
TINY = ["--size", "32", "--iterations", "2", "--optimizer", "adam", "--weights", "random", "--quiet"]
PAD = getattr(grid, "_PAD", 4)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"figure_script_{name}", os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts():
    names = ("fig1_reconstructions", "fig3_styles", "fig4_layers_ratios", "fig5_content_layer",
             "fig6_inits", "fig7_photo_to_photo", "fig2017_colour_control", "fig2017_spatial_control",
             "fig2017_scale_control")
    return {name: _load(name) for name in names}


def _run(module, out, *args):
    start = time.perf_counter()
    status = module.main([*TINY, "--out", str(out), *args])
    wall = time.perf_counter() - start
    assert status == 0
    with open(out / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    # The reported runtime: its parts (each sweep's optimisation and compilation) fit in
    # the total, and the total in the wall time of the call.
    runtime = results["runtime"]
    assert runtime["optimise_seconds"] == pytest.approx(sum(run["seconds"] for run in runtime["runs"]))
    assert 0 < runtime["optimise_seconds"] + runtime["compile_seconds"] <= runtime["total_seconds"] <= wall
    return results


def _check_common(out, results, rows, columns, trend_keys):
    assert (out / "figure.png").is_file()
    assert results["random_weights"] is True
    assert results["weights"]["random"] is True
    assert "RANDOM WEIGHTS" in results["title"]
    assert results["warning"] and "RANDOM WEIGHTS" in results["warning"]
    for key in ("members", "trends", "runtime", "device", "config", "weights", "credits", "notes"):
        assert key in results
    for key in trend_keys:
        assert key in results["trends"], key
    for member in results["members"]:
        assert np.isfinite(member["final"]["total"])
        assert (out / member["image"]).is_file()
    layout = results["grid"]
    assert (layout["rows"], layout["columns"]) == (rows, columns)
    assert len(layout["panels"]) == rows and all(len(row) == columns for row in layout["panels"])
    _check_grid(out, layout)


def _check_grid(out, layout):
    """Each panel PNG is pasted at its cell of figure.png (cells are counted from the
    bottom-right corner, which the labels do not move); empty cells stay white."""
    figure = np.asarray(Image.open(out / "figure.png").convert("RGB")).astype(int)
    height, width = layout["cell_shape"]
    rows, columns = layout["rows"], layout["columns"]
    assert figure.shape[0] >= rows * (height + PAD)
    assert figure.shape[1] >= columns * (width + PAD) + PAD
    for r, row in enumerate(layout["panels"]):
        for c, name in enumerate(row):
            y = figure.shape[0] - (rows - r) * (height + PAD)
            x = figure.shape[1] - PAD - (columns - c) * (width + PAD)
            crop = figure[y : y + height, x : x + width]
            if name is None:
                assert np.all(crop == 255), (r, c)
                continue
            panel = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
            assert panel.shape == (height, width, 3)
            assert np.max(np.abs(crop - panel)) <= 1, (r, c)  # grid and PNG round halves apart


@pytest.mark.slow
def test_fig1(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig1_reconstructions"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 2, 5, ["psnr_by_layer", "psnr_falls_with_depth",
                                            "style_gram_distance_by_set"])
    trends = results["trends"]
    assert list(trends["psnr_by_layer"]) == ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
    values = list(trends["psnr_by_layer"].values())
    assert trends["psnr_falls_with_depth"] == all(b < a for a, b in itertools.pairwise(values))
    assert len(results["members"]) == 10
    assert [run["members"] for run in results["runtime"]["runs"]] == [5, 5]  # one sweep per row


@pytest.mark.slow
def test_fig3_skips_the_missing_picasso(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig3_styles"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 2, 6, ["panels", "all_closer_in_style_than_photo", "skipped_panels"])
    assert results["trends"]["skipped_panels"] == ["E"]
    assert results["grid"]["panels"][0][4] is None and results["grid"]["panels"][1][4] is None
    assert any("panel E" in note for note in results["notes"])
    assert [m["config"]["ratio"] for m in results["members"]] == [1e-3, 8e-4, 5e-3, 5e-4]


@pytest.mark.slow
def test_fig3_with_a_replacement_and_arxiv_ratios(scripts, reference_images_dir, tmp_path):
    hokusai = os.path.join(reference_images_dir, "hokusai_great_wave.jpg")
    results = _run(scripts["fig3_styles"], tmp_path, "--images", reference_images_dir,
                   "--replace", f"E={hokusai}", "--arxiv")
    _check_common(tmp_path, results, 2, 6, ["panels"])
    assert results["trends"]["skipped_panels"] == []
    assert [m["config"]["ratio"] for m in results["members"]] == [1e-3, 1e-3, 1e-3, 1e-4, 1e-4]
    assert results["trends"]["panels"]["E"]["style"] == "hokusai_great_wave"


@pytest.mark.slow
def test_fig4(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig4_layers_ratios"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 5, 4, ["ssim_by_ratio", "ssim_rises_with_ratio",
                                            "gram_distance_by_ratio", "gram_distance_rises_with_ratio",
                                            "content_loss_by_ratio", "content_loss_falls_with_ratio"])
    trends = results["trends"]
    assert list(trends["ssim_by_ratio"]) == ["1e-5", "1e-4", "1e-3", "1e-2"]
    values = list(trends["gram_distance_by_ratio"].values())
    assert trends["gram_distance_rises_with_ratio"] == all(b > a for a, b in itertools.pairwise(values))
    assert results["runtime"]["runs"][0]["members"] == 20  # one sweep
    # Row r, column c: the first r + 1 style layers at the c-th ratio.
    for member in results["members"]:
        assert len(member["config"]["style_layers"]) == member["row"] + 1
        assert member["config"]["ratio"] == [1e-5, 1e-4, 1e-3, 1e-2][member["column"]]


@pytest.mark.slow
def test_fig5(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig5_content_layer"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 1, 4, ["ssim_to_content", "ssim_higher_with_conv2_2"])
    assert set(results["trends"]["ssim_to_content"]) == {"conv2_2", "conv4_2"}
    assert results["config"]["images"]["style"].endswith("vangogh_wheat_field_with_cypresses.jpg")


@pytest.mark.slow
def test_fig6(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig6_inits"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 1, 6, ["noise_pairwise_distance", "fixed_init_rerun_distance",
                                            "noise_results_differ", "fixed_init_deterministic"])
    trends = results["trends"]
    # The paper's claims at this tiny size: different noise seeds give different images
    # (more than one 8-bit level apart), the content init rerun gives the same one.
    assert trends["noise_pairwise_distance"] > trends["threshold"] == 1 / 255
    assert trends["noise_results_differ"] is True
    assert trends["fixed_init_rerun_distance"] < trends["threshold"]
    assert trends["fixed_init_deterministic"] is True
    assert trends["fixed_init_rerun_distance"] <= trends["fixed_init_rerun_max_abs"]  # RMS <= max
    assert [run["members"] for run in results["runtime"]["runs"]] == [6, 1]


@pytest.mark.slow
def test_fig7(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig7_photo_to_photo"], tmp_path,
                   "--content", os.path.join(reference_images_dir, "tuebingen_neckarfront.jpg"),
                   "--style", os.path.join(reference_images_dir, "hokusai_great_wave.jpg"))
    _check_common(tmp_path, results, 1, 3, ["ssim_to_content", "style_gram_distance",
                                            "style_gram_distance_fell"])
    assert results["members"][0]["config"]["init"] == "content"
    assert results["members"][0]["config"]["ratio"] == 1e-2


@pytest.mark.slow
def test_fig2017_colour_control(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig2017_colour_control"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 1, 6, ["luminance_keeps_chroma", "original_keeps_chroma",
                                            "histogram_nearer_photo_colours_than_none"])
    trends = results["trends"]
    assert trends["luminance_keeps_chroma"] is True and trends["original_keeps_chroma"] is True
    assert trends["controls"]["luminance"]["chroma_error_to_content"] < 1 / 255
    assert [m["config"]["color_control"] for m in results["members"]] == ["none", "luminance", "histogram",
                                                                        "original"]


@pytest.mark.slow
def test_fig2017_spatial_control(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig2017_spatial_control"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 1, 6, ["sky_nearer_sky_painting", "town_nearer_town_painting"])
    masked, blended = results["members"]
    assert masked["config"]["content_mask"] == "mask" and blended["config"]["content_mask"] is None
    assert masked["config"]["styles"] == ["town", "sky"]
    assert set(results["trends"]["masked"]) == {"sky", "town"}


@pytest.mark.slow
def test_fig2017_scale_control(scripts, reference_images_dir, tmp_path):
    results = _run(scripts["fig2017_scale_control"], tmp_path, "--images", reference_images_dir)
    _check_common(tmp_path, results, 1, 4, ["coarse_to_fine_lower_objective"])
    single, staged = results["members"]
    assert single["config"]["scales"] == [] and staged["config"]["scales"] == [[22, 2], [32, 1]]
    assert results["trends"]["coarse_to_fine"]["iterations_at_full_size"] == 1


@pytest.mark.slow
def test_a_script_runs_as_a_program(tmp_path):
    """The path a user takes (``python scripts/figN.py``), through ``figures.leave``."""
    import subprocess
    import sys

    script = os.path.join(SCRIPTS, "fig7_photo_to_photo.py")
    done = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--content" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, script, "--content", str(tmp_path / "none.jpg"), "--style",
                           str(tmp_path / "none.jpg"), "--out", str(tmp_path / "out"), "--weights", "random"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no such file" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_grid_puts_each_panel_at_its_cell(tmp_path):
    """The fast tier's check of the figure layout (the figure runs above are slow): panels
    at their cells counted from the bottom-right, an empty cell left white."""
    rng = np.random.default_rng(0)
    cells, names = [], []
    for r in range(2):
        cells.append([])
        names.append([])
        for c in range(3):
            if (r, c) == (1, 1):
                cells[r].append(None)
                names[r].append(None)
                continue
            panel = rng.random((10, 14, 3)).astype(np.float32)
            images.save_png(tmp_path / f"panel_{r}{c}.png", panel)
            cells[r].append(panel)
            names[r].append(f"panel_{r}{c}.png")
    grid.write_grid(str(tmp_path / "figure.png"), cells, row_labels=["first row", "b"],
                    column_labels=["a column label long enough to wrap", "b", "c"], title="a title")
    _check_grid(tmp_path, {"rows": 2, "columns": 3, "cell_shape": [10, 14], "panels": names})


def _one_line_error(capsys, status, *words):
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_missing_images_folder_is_one_line(scripts, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("STYLEJAX_IMAGES", raising=False)
    status = scripts["fig5_content_layer"].main([*TINY, "--images", "/nonexistent/folder",
                                                 "--out", str(tmp_path / "o")])
    _one_line_error(capsys, status, "fig5_content_layer: error:", "/nonexistent/folder", "--images")
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("STYLEJAX_IMAGES", "/nonexistent/env-folder")
    status = scripts["fig5_content_layer"].main([*TINY, "--out", str(tmp_path / "o")])
    _one_line_error(capsys, status, "/nonexistent/env-folder", "STYLEJAX_IMAGES")
    assert not (tmp_path / "o").exists()


def test_without_images_or_env_the_shipped_pictures_are_found(tmp_path, monkeypatch):
    """No --images and no STYLEJAX_IMAGES: every figure picture resolves to the copies
    shipped in stylejax/examples/, they load, and the Neckarfront's credit names its author."""
    monkeypatch.delenv("STYLEJAX_IMAGES", raising=False)
    shipped = images.packaged_examples_dir()
    args, needs = figures.photo_and_painting("fig5_content_layer", None, ["--out", str(tmp_path)],
                                             "vangogh_wheat_field_with_cypresses.jpg")
    assert args.images is None
    paths = figures.locate(args, needs)
    assert paths == {"content": os.path.join(shipped, "tuebingen_neckarfront.jpg"),
                     "style": os.path.join(shipped, "vangogh_wheat_field_with_cypresses.jpg")}
    for path in paths.values():
        picture = images.load_image(path)
        assert max(picture.shape[:2]) == 512
    assert "Andreas Praefcke" in figures.credit(paths["content"])
    # Every file a figure asks for by default is shipped, with a credit (Fig. 3's Picasso
    # is optional and not shipped).
    every = [figures.Need(name, name, name) for name in figures.CREDITS]
    assert figures.locate(args, every) == {name: os.path.join(shipped, name) for name in figures.CREDITS}
    picasso = figures.Need("E", "picasso_femme_nue_assise.jpg", "E", optional=True)
    assert figures.locate(args, [needs[0], picasso])["E"] is None


def test_missing_picture_is_one_line(scripts, tmp_path, capsys):
    status = scripts["fig4_layers_ratios"].main([*TINY, "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, status, "tuebingen_neckarfront.jpg", "--replace")


def test_auto_weights_without_a_pretrained_file_fail_like_transfer(scripts, reference_images_dir, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    image = os.path.join(reference_images_dir, "tuebingen_neckarfront.jpg")
    status = scripts["fig7_photo_to_photo"].main(
        ["--content", image, "--style", image, "--out", str(tmp_path / "o"), "--weights", "auto"])
    _one_line_error(capsys, status, "no pretrained VGG19 weights", "--weights random")


def test_bad_command_lines_are_one_line(scripts, reference_images_dir, tmp_path, capsys):
    fig3 = scripts["fig3_styles"]
    _one_line_error(capsys, fig3.main([*TINY, "--images", reference_images_dir]), "--out")
    _one_line_error(capsys, fig3.main([*TINY, "--images", reference_images_dir, "--out", str(tmp_path),
                                       "--replace", "Z=x.jpg"]), "Z")
    _one_line_error(capsys, fig3.main([*TINY, "--images", reference_images_dir, "--out", str(tmp_path),
                                       "--replace", "E=/no/such.jpg"]), "/no/such.jpg")
    _one_line_error(capsys, fig3.main(["--size", "8", "--images", reference_images_dir, "--out",
                                       str(tmp_path)]), "--size")


def test_scripts_document_their_command_and_runtime(scripts):
    for name, module in scripts.items():
        doc = module.__doc__
        assert f"scripts/{name}.py" in doc
        assert "../shared" not in doc  # the shipped example images are the default
        assert "Runtime at the defaults" in doc and "docs/figures.md" in doc  # the measured times
