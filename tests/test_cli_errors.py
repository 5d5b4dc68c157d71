"""Every bad input: one line on stderr naming it, exit status 2, and no output written."""

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from stylejax import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    good = folder / "good.png"
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(good)
    tiny = folder / "tiny.png"
    Image.fromarray(rng.integers(0, 255, (12, 40, 3), dtype=np.uint8)).save(tiny)
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    truncated = folder / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    not_hdf5 = folder / "weights.h5"
    not_hdf5.write_bytes(b"\x00" * 2048)
    vgg16 = folder / "vgg16.h5"
    with h5py.File(vgg16, "w") as handle:
        handle.attrs["format"] = "stylejax-vgg19"
        handle.attrs["format_version"] = 1
        handle.attrs["input_convention"] = (
            '{"name": "caffe", "channel_order": "BGR", "scale": 255.0, '
            '"mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]}'
        )
        group = handle.create_group("conv1_1")
        group["kernel"] = np.zeros((3, 3, 3, 32), np.float32)  # mis-shaped: 32 filters, not 64
        group["bias"] = np.zeros((32,), np.float32)
    return {
        "good": str(good), "tiny": str(tiny), "text": str(text), "cut": str(truncated),
        "dir": str(folder), "missing": str(folder / "nowhere.jpg"), "not_hdf5": str(not_hdf5),
        "vgg16": str(vgg16),
    }


def _case(content="good", style="good", extra=(), expect=()):
    return content, style, tuple(extra), tuple(expect)


CASES = {
    "missing content": _case(content="missing", expect=("no such file", "nowhere.jpg")),
    "directory as style": _case(style="dir", expect=("folder",)),
    "not an image": _case(content="text", expect=("not an image", "notes.png")),
    "truncated image": _case(style="cut", expect=("truncated", "cut.jpg")),
    "image under 16 px": _case(content="tiny", expect=("16 px", "tiny.png", "conv5_1")),
    "unknown style layer": _case(extra=("--style-layers", "conv1_1,conv9_9"), expect=("conv9_9",)),
    "unknown content layer": _case(extra=("--content-layer", "fc7"), expect=("fc7",)),
    "negative count": _case(extra=("--iterations", "-3"), expect=("--iterations", "-3")),
    "non-numeric count": _case(extra=("--size", "big"), expect=("--size", "big")),
    "size below 16": _case(extra=("--size", "8"), expect=("--size", "8")),
    "zero ratio": _case(extra=("--ratio", "0"), expect=("--ratio", "0")),
    "infinite ratio": _case(extra=("--ratio", "inf"), expect=("--ratio", "inf")),
    "nan style weight": _case(extra=("--style-weight", "nan"), expect=("--style-weight", "nan")),
    "negative content weight": _case(extra=("--content-weight", "-1"), expect=("--content-weight", "-1")),
    "text ratio": _case(extra=("--ratio", "lots"), expect=("--ratio", "lots")),
    "negative tv weight": _case(extra=("--tv-weight", "-0.1"), expect=("--tv-weight", "-0.1")),
    "bad layer weight": _case(extra=("--style-layer-weights", "1,0,1,1,1"), expect=("style layer weight", "0")),
    "layer weight count": _case(extra=("--style-layer-weights", "1,1"), expect=("2 weights for 5",)),
    "ratio and weights": _case(extra=("--ratio", "1e-3", "--style-weight", "5"), expect=("one of --ratio",)),
    "unknown optimizer": _case(extra=("--optimizer", "sgd"), expect=("sgd",)),
    "unknown pooling": _case(extra=("--pooling", "median"), expect=("median",)),
    "unknown flag": _case(extra=("--colour", "blue"), expect=("--colour",)),
    "missing weights file": _case(extra=("--weights", "/nonexistent/w.h5"), expect=("/nonexistent/w.h5",)),
    "weights not hdf5": _case(extra=("--weights", "@not_hdf5"), expect=("HDF5", "weights.h5")),
    "weights mis-shaped and missing": _case(
        extra=("--weights", "@vgg16"), expect=("missing", "conv5_4", "conv1_1/kernel", "(3, 3, 3, 64)")
    ),
    "init image missing": _case(extra=("--init", "/nonexistent/start.png"), expect=("/nonexistent/start.png",)),
    "non-finite initial loss": _case(
        extra=("--content-weight", "3e38", "--style-weight", "1", "--weights", "random",
               "--preset", "paper", "--style-layers", "conv1_1", "--content-layer", "conv1_1"),
        expect=("not finite at the initial image",),
    ),
}


def _resolve(value, files):
    return files[value[1:]] if isinstance(value, str) and value.startswith("@") else value


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, files, tmp_path, capsys):
    content, style, extra, expect = CASES[name]
    output = tmp_path / "out.png"
    report = tmp_path / "report.json"
    args = ["transfer", files[content], files[style], "-o", str(output), "--report", str(report),
            "--size", "32", "--iterations", "1", "--quiet"]
    args += [_resolve(value, files) for value in extra]
    if "--weights" not in extra:
        args += ["--weights", "random"]
    status = cli.main(args)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in expect:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in err
    assert not output.exists() and not report.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "output, expect",
    [
        ("/nonexistent-folder/out.png", "nonexistent-folder"),
        ("/proc/out.png", "/proc"),  # a folder that even root cannot write to
        ("@dir", "folder"),
    ],
)
def test_bad_output_path(output, expect, files, capsys):
    status = cli.main(["transfer", files["good"], files["good"], "-o", _resolve(output, files),
                       "--weights", "random", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert expect in err


def test_an_existing_output_survives_a_failed_run(files, tmp_path, capsys):
    output = tmp_path / "precious.png"
    output.write_bytes(b"keep me")
    status = cli.main(["transfer", files["good"], files["cut"], "-o", str(output), "--weights", "random"])
    assert status == 2
    assert output.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.png"]


def test_debug_shows_the_traceback(files, tmp_path):
    from stylejax._src.errors import UserError

    with pytest.raises(UserError, match="no such file"):
        cli.main(["transfer", files["missing"], files["good"], "-o", str(tmp_path / "o.png"), "--debug"])
