"""``stylejax transfer`` and ``stylejax demo`` end to end, on random weights and tiny images.

Most runs use a short layer list (conv1_1, conv2_1; content conv2_2) so each compiles in
about a second; one run uses the paper's full preset.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import image_ops
from stylejax._src.convention import CAFFE
from stylejax._src.files import images
from stylejax._src.weights import weights_file, weights_source

FAST = ["--style-layers", "conv1_1,conv2_1", "--content-layer", "conv2_2"]
# The fast tier's runs share one compiled program: Adam (cheaper to compile than L-BFGS), FAST, 32 px.
ADAM = ["--optimizer", "adam"]
REPORT_KEYS = {
    "config", "weights", "initial", "final", "history", "iterations", "evaluations",
    "seconds", "compile_seconds", "device", "status",
}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    y, x = np.mgrid[0:36, 0:48]
    content = np.stack([x / 47.0, y / 35.0, 0.5 + 0.5 * np.sin(x / 4.0)], axis=-1)
    style = np.stack([0.5 + 0.5 * np.sin((x + y) / 2.0), 0.3 + 0 * x, 0.5 + 0.5 * np.cos(y / 3.0)], axis=-1)
    paths = {}
    for name, array in (("content", content), ("style", style[:, :40])):
        path = folder / f"{name}.png"
        Image.fromarray((array * 255).astype(np.uint8)).save(path)
        paths[name] = str(path)
    return paths


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)


def run(args, capsys):
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.err


def transfer_args(pictures, output, *extra):
    """The paper's preset on random weights (they would otherwise take the random preset)."""
    return ["transfer", pictures["content"], pictures["style"], "-o", output,
            "--weights", "random", "--preset", "paper", "--size", "32", "--quiet", *extra]


@pytest.mark.slow
def test_transfer_end_to_end_paper_layers(pictures, tmp_path, capsys):
    output, report_path = tmp_path / "out.png", tmp_path / "report.json"
    status, err = run(transfer_args(pictures, output, "--iterations", "6", "--report", report_path), capsys)
    assert status == 0, err
    assert output.is_file()
    report = json.loads(report_path.read_text())
    assert set(report) >= REPORT_KEYS
    assert report["status"] == "completed"
    assert set(report["final"]["style"]) == {"conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"}
    assert report["config"]["content_layer"] == "conv4_2" and report["config"]["pooling"] == "avg"
    assert report["weights"]["random"] is True and report["weights"]["normalised"] is True
    assert set(report["weights"]) >= {"path", "sha256", "source", "input_convention", "normalised"}
    assert report["iterations"] == 6 and len(report["history"]) == 7
    assert report["evaluations"] >= 6
    assert report["final"]["total"] < report["initial"]["total"]
    assert report["history"][0] == pytest.approx(report["initial"]["total"], rel=1e-4)
    assert report["history"][-1] == pytest.approx(report["final"]["total"], rel=1e-6)
    metadata = images.read_png_metadata(output)
    assert json.loads(metadata["stylejax:config"])["iterations"] == 6
    assert metadata["stylejax:weights_sha256"] == report["weights"]["sha256"]
    assert pixels(output).shape == (24, 32, 3)


@pytest.mark.slow
def test_random_weights_take_the_random_preset_and_balance_from_the_pictures(pictures, tmp_path,
                                                                            capsys):
    output, report_path = tmp_path / "out.png", tmp_path / "report.json"
    status, err = run(["transfer", pictures["content"], pictures["style"], "-o", output,
                       "--weights", "random", "--size", "32", "--iterations", "3", "--quiet",
                       "--report", report_path], capsys)
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert report["preset"] == {"name": "random", "why": "the weights are random and no --preset was given"}
    config = report["config"]
    assert config["init"] == "content" and config["content_layer"] == "conv2_2"
    record = report["balance"]
    # alpha, w_l and the TV weight are the rule applied to the measured scales
    at_content = np.array([record["style_at_content"][n] for n in config["style_layers"]])
    weights = np.full(5, 0.2)  # the preset keeps the paper's w_l = 1/n
    np.testing.assert_allclose(config["style_layer_weights"], weights, rtol=1e-6)
    assert record["style_layers_balanced"] is False
    style = float(np.sum(weights * at_content))
    assert config["content_weight"] == pytest.approx(
        record["balance"] * style / record["content_at_style"], rel=1e-6)
    assert config["tv_weight"] == pytest.approx(
        record["tv_balance"] * style / record["tv_at_content"], rel=1e-6)
    # the content init: the first objective is the style (and TV) term alone
    assert report["initial"]["content"] == pytest.approx(0.0, abs=1e-6)
    assert report["final"]["total"] < report["initial"]["total"]


@pytest.mark.slow
def test_smallest_transfer_writes_the_image_and_report(pictures, tmp_path, capsys):
    """The fast tier's end-to-end run: 2 Adam iterations at 32 px on a short layer list."""
    output, report_path = tmp_path / "small.png", tmp_path / "small.json"
    start = time.perf_counter()
    status, err = run(transfer_args(pictures, output, *FAST, *ADAM, "--iterations", "2", "--report", report_path),
                      capsys)
    wall = time.perf_counter() - start
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert set(report) >= REPORT_KEYS
    assert report["status"] == "completed"
    assert report["iterations"] == 2 and report["evaluations"] == 2 and len(report["history"]) == 3
    assert report["history"][0] == pytest.approx(report["initial"]["total"], rel=1e-4)
    assert report["history"][-1] == pytest.approx(report["final"]["total"], rel=1e-6)
    assert report["final"]["total"] < report["initial"]["total"]
    assert set(report["final"]["style"]) == {"conv1_1", "conv2_1"}
    # Compiling and optimising, each measured on its own, fit in the call's wall time.
    assert report["compile_seconds"] > 0 and report["seconds"] > 0
    assert report["compile_seconds"] + report["seconds"] <= wall
    assert json.loads(images.read_png_metadata(output)["stylejax:config"])["iterations"] == 2
    assert pixels(output).shape == (24, 32, 3)


@pytest.mark.slow
def test_iterations_zero_writes_the_initial_image(pictures, tmp_path, capsys):
    output, report_path = tmp_path / "zero.png", tmp_path / "zero.json"
    status, err = run(
        transfer_args(pictures, output, *FAST, *ADAM, "--iterations", "0", "--seed", "3", "--report", report_path),
        capsys,
    )
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert report["final"] == report["initial"]
    assert report["iterations"] == 0 and report["evaluations"] == 0
    written = pixels(output).astype(np.float32) / 255.0
    noise = image_ops.white_noise(3, (24, 32))
    # The init goes into the network's space and back (float32), then to 8 bits.
    np.testing.assert_allclose(written, noise, atol=0.5 / 255 + 1e-4)


@pytest.mark.slow
def test_same_seed_same_result(pictures, tmp_path, capsys):
    results = []
    for name in ("a", "b"):
        output, report_path = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
        status, err = run(transfer_args(pictures, output, *FAST, "--iterations", "4", "--report", report_path), capsys)
        assert status == 0, err
        results.append((pixels(output), json.loads(report_path.read_text())["history"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


@pytest.mark.slow
def test_adam_content_init_and_save_every(pictures, tmp_path, capsys):
    output = tmp_path / "adam.png"
    status, err = run(
        transfer_args(pictures, output, *FAST, "--optimizer", "adam", "--init", "content",
                      "--iterations", "4", "--save-every", "2", "--tv-weight", "1e-4"),
        capsys,
    )
    assert status == 0, err
    assert output.is_file()
    assert (tmp_path / "adam.00002.png").is_file() and (tmp_path / "adam.00004.png").is_file()


def test_weights_file_round_trip_through_the_cli(pictures, tmp_path, capsys):
    random = weights_source.random_weights(0)
    path = tmp_path / "w.h5"
    weights_file.save_weights(path, random.params, convention=CAFFE, source=random.source, normalised=True)
    report_path = tmp_path / "r.json"
    status, err = run(
        ["transfer", pictures["content"], pictures["style"], "-o", tmp_path / "o.png", "--weights", path,
         "--size", "32", "--quiet", *FAST, *ADAM, "--iterations", "1", "--report", report_path],
        capsys,
    )
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert report["weights"]["sha256"] == weights_file.file_sha256(path)
    assert report["weights"]["path"] == str(path)


def test_auto_weights_without_a_pretrained_file_exits_2(pictures, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "empty"))
    output = tmp_path / "o.png"
    status, err = run(["transfer", pictures["content"], pictures["style"], "-o", output], capsys)
    assert status == 2
    assert "no pretrained VGG19 weights" in err and "--weights random" in err
    assert not output.exists()


@pytest.mark.slow
def test_ctrl_c_keeps_the_current_image(pictures, tmp_path, capsys, monkeypatch):
    from stylejax.cli import progress

    calls = []

    def interrupt(self, done, loss):
        calls.append(done)
        if len(calls) == 1:
            os.kill(os.getpid(), 2)  # SIGINT, as a terminal's Ctrl-C

    monkeypatch.setattr(progress.ProgressBar, "__call__", interrupt)
    output, report_path = tmp_path / "int.png", tmp_path / "int.json"
    status, err = run(
        transfer_args(pictures, output, *FAST, "--optimizer", "adam", "--iterations", "50",
                      "--chunk", "2", "--report", report_path),
        capsys,
    )
    assert status == 130, err
    report = json.loads(report_path.read_text())
    assert report["status"] == "interrupted" and report["iterations"] < 50
    assert images.read_png_metadata(output)["stylejax:status"] == "interrupted"


def test_non_finite_loss_names_the_iteration_and_keeps_the_last_finite_image(pictures, tmp_path, capsys):
    output = tmp_path / "nan.png"
    status, err = run(
        transfer_args(pictures, output, *FAST, "--optimizer", "adam", "--lr", "1e30", "--iterations", "5"),
        capsys,
    )
    assert status == 2
    assert "non-finite at iteration 1" in err
    kept = tmp_path / "nan.last-finite.png"
    assert str(kept) in err and kept.is_file()
    assert not output.exists()


@pytest.mark.slow
def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "stylejax", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().startswith("stylejax 0.")


@pytest.mark.parametrize("init", ["content", "style", "path"])
def test_fixed_inits_are_the_starting_image(init, pictures, tmp_path, capsys):
    output = tmp_path / "init.png"
    expected_source = {"content": pictures["content"], "style": pictures["style"], "path": pictures["style"]}[init]
    init_arg = pictures["style"] if init == "path" else init
    status, err = run(transfer_args(pictures, output, *FAST, *ADAM, "--iterations", "0", "--init", init_arg),
                      capsys)
    assert status == 0, err
    expected = image_ops.resize(images.load_image(expected_source), (24, 32))
    np.testing.assert_allclose(pixels(output).astype(np.float32) / 255.0, expected, atol=0.5 / 255 + 1e-4)


@pytest.mark.slow
def test_transfer_on_the_papers_images(reference_images_dir, tmp_path, capsys):
    content = os.path.join(reference_images_dir, "tuebingen_neckarfront.jpg")
    style = os.path.join(reference_images_dir, "vangogh_starry_night.jpg")
    report_path = tmp_path / "r.json"
    status, err = run(["transfer", content, style, "-o", tmp_path / "n.png", "--weights", "random",
                       "--size", "48", "--iterations", "3", *FAST, "--quiet", "--report", report_path], capsys)
    assert status == 0, err
    report = json.loads(report_path.read_text())
    original = images.load_image(content).shape[:2]  # the shipped copy: 384x512
    assert report["images"]["content_original_shape"] == list(original)
    assert report["images"]["output_shape"] == [36, 48]
    assert report["final"]["total"] < report["initial"]["total"]
