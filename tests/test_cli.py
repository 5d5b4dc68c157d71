"""``stylejax transfer`` and ``stylejax demo`` end to end, on random weights and tiny images.

Most runs use a short layer list (conv1_1, conv2_1; content conv2_2) so each compiles in
about a second; one run uses the paper's full preset.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import images, weights_file, weights_source
from stylejax._src.convention import CAFFE

FAST = ["--style-layers", "conv1_1,conv2_1", "--content-layer", "conv2_2"]
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
    return ["transfer", pictures["content"], pictures["style"], "-o", output,
            "--weights", "random", "--size", "32", "--quiet", *extra]


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


def test_iterations_zero_writes_the_initial_image(pictures, tmp_path, capsys):
    output, report_path = tmp_path / "zero.png", tmp_path / "zero.json"
    status, err = run(
        transfer_args(pictures, output, *FAST, "--iterations", "0", "--seed", "3", "--report", report_path),
        capsys,
    )
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert report["final"] == report["initial"]
    assert report["iterations"] == 0 and report["evaluations"] == 0
    written = pixels(output).astype(np.float32) / 255.0
    noise = images.white_noise(3, (24, 32))
    # The init goes into the network's space and back (float32), then to 8 bits.
    np.testing.assert_allclose(written, noise, atol=0.5 / 255 + 1e-4)


def test_same_seed_same_result(pictures, tmp_path, capsys):
    results = []
    for name in ("a", "b"):
        output, report_path = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
        status, err = run(transfer_args(pictures, output, *FAST, "--iterations", "4", "--report", report_path), capsys)
        assert status == 0, err
        results.append((pixels(output), json.loads(report_path.read_text())["history"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


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
         "--size", "32", "--quiet", *FAST, "--iterations", "1", "--report", report_path],
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


def test_ctrl_c_keeps_the_current_image(pictures, tmp_path, capsys, monkeypatch):
    from stylejax._src import progress

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


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "stylejax", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().startswith("stylejax 0.")


def test_demo_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("STYLEJAX_IMAGES", raising=False)
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    out = tmp_path / "demo"
    status, err = run(["demo", "-o", out, "--size", "32", "--iterations", "3"], capsys)
    assert status == 0, err
    for name in ("content.png", "style.png", "result.png", "loss.png", "summary.png", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["weights"]["random"] is True
    assert "RANDOM WEIGHTS" in err
    assert report["final"]["total"] < report["initial"]["total"]


@pytest.mark.parametrize("init", ["content", "style", "path"])
def test_fixed_inits_are_the_starting_image(init, pictures, tmp_path, capsys):
    output = tmp_path / "init.png"
    expected_source = {"content": pictures["content"], "style": pictures["style"], "path": pictures["style"]}[init]
    init_arg = pictures["style"] if init == "path" else init
    status, err = run(transfer_args(pictures, output, *FAST, "--iterations", "0", "--init", init_arg), capsys)
    assert status == 0, err
    expected = images.resize(images.load_image(expected_source), (24, 32))
    np.testing.assert_allclose(pixels(output).astype(np.float32) / 255.0, expected, atol=0.5 / 255 + 1e-4)


def test_transfer_on_the_papers_images(reference_images_dir, tmp_path, capsys):
    content = os.path.join(reference_images_dir, "tuebingen_neckarfront.jpg")
    style = os.path.join(reference_images_dir, "vangogh_starry_night.jpg")
    report_path = tmp_path / "r.json"
    status, err = run(["transfer", content, style, "-o", tmp_path / "n.png", "--weights", "random",
                       "--size", "48", "--iterations", "3", *FAST, "--quiet", "--report", report_path], capsys)
    assert status == 0, err
    report = json.loads(report_path.read_text())
    assert report["images"]["content_original_shape"] == [768, 1024]
    assert report["images"]["output_shape"] == [36, 48]
    assert report["final"]["total"] < report["initial"]["total"]
