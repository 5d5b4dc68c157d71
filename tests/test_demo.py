"""``stylejax demo``: offline random weights with the random preset, the fetch path, the summary."""

import json

import pytest

from stylejax import cli
from stylejax._src import config, demo, images, weights_commands
from stylejax._src.errors import UserError


def run(args, capsys):
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLEJAX_IMAGES", raising=False)
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "no-weights"))


@pytest.mark.slow
def test_offline_demo_uses_random_weights_and_the_random_preset(tmp_path, capsys, no_weights):
    out = tmp_path / "demo"
    status, err = run(["demo", "-o", out, "--size", "32", "--iterations", "3", "--offline"], capsys)
    assert status == 0, err
    for name in ("content.png", "style.png", "result.png", "loss.png", "summary.png", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["weights"]["random"] is True
    assert report["preset"]["name"] == "random" and "random" in report["preset"]["why"]
    assert report["balance"]["balance"] == config.PRESETS["random"]["balance"]
    assert report["config"]["content_weight"] > 0 and len(report["config"]["style_layer_weights"]) == 5
    assert set(report["quality"]) == {"palette", "layout", "noise", "texture"}
    assert "RANDOM WEIGHTS" in err and "offline" in err
    assert report["final"]["total"] < report["initial"]["total"]
    # the pictures are the paper's Fig. 1 pair, shipped with stylejax
    assert "Praefcke" in images.read_png_metadata(out / "content.png")["stylejax:source"]


@pytest.mark.slow
def test_demo_falls_back_to_random_weights_when_the_fetch_fails(tmp_path, capsys, no_weights,
                                                                monkeypatch):
    calls = []

    def unreachable(source, output=None, *, progress=True, log=print, timeout=30.0):
        calls.append((source, timeout))
        raise UserError("cannot reach https://example.invalid/vgg19.h5: timed out")

    monkeypatch.delenv(demo.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(weights_commands, "fetch", unreachable)
    out = tmp_path / "demo"
    status, err = run(["demo", "-o", out, "--size", "32", "--iterations", "1"], capsys)
    assert status == 0, err
    assert calls == [("keras", demo.FETCH_TIMEOUT)]
    assert demo.FETCH_TIMEOUT <= 10
    assert "could not fetch pretrained weights" in err and "using random weights" in err
    assert json.loads((out / "report.json").read_text())["weights"]["random"] is True


def test_offline_environment_variable_skips_the_fetch(monkeypatch):
    monkeypatch.setenv(demo.OFFLINE_ENV, "1")
    assert demo.is_offline(False)
    monkeypatch.setenv(demo.OFFLINE_ENV, "0")
    assert not demo.is_offline(False) and demo.is_offline(True)
