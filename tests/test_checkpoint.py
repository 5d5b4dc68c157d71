"""Checkpoints and resumed runs (stylejax/_src/files/checkpoint.py, --checkpoint, --resume)."""

import json

import image_files
import numpy as np
import pytest
from flax import serialization

from stylejax import cli
from stylejax._src.errors import UserError
from stylejax._src.files import checkpoint, images
from stylejax._src.transfer import Resume

OBJECTIVE = {"size": 32, "optimizer": "lbfgs", "content image": "aa", "style image": "bb", "weights": "cc"}


def _resume(iteration=2):
    state = {"image": np.arange(12, dtype=np.float32).reshape(2, 2, 3), "iteration": np.int32(iteration)}
    return Resume(iteration, state, [3.0, 2.5][:iteration])


def test_a_checkpoint_round_trips_bit_for_bit(tmp_path):
    path = str(tmp_path / "run.ckpt")
    checkpoint.write(path, _resume(), OBJECTIVE, "0.1.0")
    back = checkpoint.read(path, dict(OBJECTIVE))
    assert back.iteration == 2 and back.history == [3.0, 2.5]
    np.testing.assert_array_equal(back.state["image"], _resume().state["image"])
    assert back.state["image"].dtype == np.float32


@pytest.mark.parametrize("change, expect", [
    ({"size": 48}, "size 32 there, 48 now"),
    ({"style image": "zz"}, "the style image differs"),
    ({"weights": "zz", "optimizer": "adam"}, "optimizer 'lbfgs' there, 'adam' now; the weights differs"),
])
def test_a_checkpoint_of_another_objective_is_refused_naming_what_differs(change, expect, tmp_path):
    path = str(tmp_path / "run.ckpt")
    checkpoint.write(path, _resume(), OBJECTIVE, "0.1.0")
    with pytest.raises(UserError) as info:
        checkpoint.read(path, {**OBJECTIVE, **change})
    assert "is for another run" in str(info.value) and expect in str(info.value), str(info.value)


@pytest.mark.parametrize("content, expect", [
    (b"", "corrupt or not a stylejax checkpoint"),
    (b"\x93\x01\x02", "corrupt or not a stylejax checkpoint"),
    (serialization.msgpack_serialize({"format": "other"}), "is not a stylejax checkpoint"),
    (serialization.msgpack_serialize({"format": checkpoint.FORMAT, "version": 99}), "format version 99"),
    (serialization.msgpack_serialize({"format": checkpoint.FORMAT, "version": checkpoint.VERSION}),
     "a field is missing"),
])
def test_corrupt_and_foreign_files_are_one_line(content, expect, tmp_path):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        checkpoint.read(str(path), OBJECTIVE)
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    checkpoint.write(str(path), _resume(), OBJECTIVE, "0.1.0")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(UserError, match="corrupt"):
        checkpoint.read(str(path), OBJECTIVE)


@pytest.fixture
def pair(tmp_path):
    return image_files.sample_pair_files(tmp_path)


@pytest.mark.parametrize("extra, expect", [
    (["--checkpoint-every", "2"], "--checkpoint-every needs --checkpoint"),
    (["--scales", "24,32", "--iterations", "1,1", "--checkpoint", "@ck"], "not with --scales"),
    (["--resume", "@missing"], "no such file"),
    (["--checkpoint", "@c.png"], "is also the content image"),
])
def test_checkpoint_flags_refused_up_front(extra, expect, pair, tmp_path, capsys):
    extra = [str(tmp_path / e[1:]) if e.startswith("@") else e for e in extra]
    size = [] if "--scales" in extra else ["--size", "32", "--iterations", "2"]
    status = cli.main(["transfer", *pair, "-o", str(tmp_path / "o.png"), "--weights", "random", *size,
                       "--quiet", *extra])
    err = capsys.readouterr().err
    assert status == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_resumed_run_equals_the_uninterrupted_one_bit_for_bit(optimizer, pair, tmp_path, capsys):
    common = ["--weights", "random", "--size", "32", "--chunk", "2", "--optimizer", optimizer, "--quiet"]

    def run(name, iterations, *extra):
        status = cli.main(["transfer", *pair, "-o", str(tmp_path / f"{name}.png"), "--report",
                           str(tmp_path / f"{name}.json"), "--iterations", str(iterations), *common, *extra])
        assert status == 0, capsys.readouterr().err
        return images.load_image(tmp_path / f"{name}.png"), json.loads((tmp_path / f"{name}.json").read_text())

    full_image, full = run("full", 7)
    ckpt = str(tmp_path / "run.ckpt")
    _, part = run("part", 4, "--checkpoint", ckpt, "--checkpoint-every", "3")
    assert part["checkpoint"] == {"path": ckpt, "iteration": 4}
    resumed_image, resumed = run("resumed", 7, "--resume", ckpt, "--checkpoint", ckpt)
    np.testing.assert_array_equal(resumed_image, full_image)
    assert resumed["history"] == full["history"]  # the same float32 values, bit for bit
    assert resumed["final"] == full["final"] and resumed["evaluations"] == full["evaluations"]
    assert resumed["iterations"] == 7 and resumed["resumed_at"] == 4
    # The periodic checkpoint of a run: iteration 3 of 7, resumable as well.
    periodic = str(tmp_path / "every.ckpt")
    run("periodic", 7, "--checkpoint", periodic, "--checkpoint-every", "3")
    # ...it was rewritten at the end (iteration 7); a run to 7 from it has nothing left to do.
    again_image, again = run("again", 7, "--resume", periodic)
    np.testing.assert_array_equal(again_image, full_image)
    assert again["history"] == full["history"]
