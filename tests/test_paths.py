"""The path checks every input and output goes through (stylejax/_src/files/paths.py)."""

import os
import socket

import pytest

from stylejax._src.errors import UserError
from stylejax._src.files import paths

posix = pytest.mark.skipif(os.name != "posix", reason="needs POSIX FIFOs, links and devices")


# --------------------------------------------------------------------------- inputs


def test_a_regular_file_passes(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    assert paths.check_input_file(path, "image") == str(path)


@posix
def test_a_symlink_to_a_regular_file_passes(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "a.png", tmp_path / "link.png")
    assert paths.check_input_file(tmp_path / "link.png", "image") == str(tmp_path / "link.png")


@pytest.mark.parametrize("make, expect", [
    ("missing", "no such file"),
    ("folder", "is a folder"),
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("socket", "is a socket, not a regular file"),
    ("loop", "is a symlink loop"),
    ("dangling", "which does not exist"),
    ("below_a_file", "a part of the path is not a folder"),
])
@posix
def test_anything_but_a_regular_file_is_refused_by_name(make, expect, tmp_path):
    target = tmp_path / "in.png"
    if make == "folder":
        target.mkdir()
    elif make == "fifo":
        os.mkfifo(target)
    elif make == "socket":
        target = tmp_path / "s"  # AF_UNIX paths are short
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    elif make == "loop":
        os.symlink(tmp_path / "b", target)
        os.symlink(target, tmp_path / "b")
    elif make == "dangling":
        os.symlink(tmp_path / "gone.png", target)
    elif make == "below_a_file":
        (tmp_path / "file").write_bytes(b"x")
        target = tmp_path / "file" / "in.png"
    with pytest.raises(UserError) as info:
        paths.check_input_file(target, "content image")
    message = str(info.value)
    assert expect in message and str(target) in message, message
    assert "\n" not in message
    if make == "socket":
        server.close()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused():
    with pytest.raises(UserError, match="character device"):
        paths.check_input_file("/dev/zero", "image")


# --------------------------------------------------------------------------- outputs


def test_check_writable_file_creates_nothing(tmp_path):
    paths.check_writable_file(tmp_path / "out.png")
    paths.check_writable_file(str(tmp_path / "out.png"), what="loss plot")
    assert os.listdir(tmp_path) == []


def test_an_existing_output_file_is_fine_and_kept(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    paths.check_writable_file(path)
    assert path.read_bytes() == b"old"


@pytest.mark.parametrize("name, expect", [
    ("missing/out.png", "does not exist"),
    ("file/out.png", "is not a folder"),
    ("folder", "names a folder"),
    ("newdir/", "names a folder"),
    ("newdir/.", "names a folder"),
])
def test_unwritable_output_paths(name, expect, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    path = f"{tmp_path}/{name}"  # as typed: pathlib would drop a trailing "/" or "/."
    with pytest.raises(UserError, match=expect) as info:
        paths.check_writable_file(path, "output")
    assert path in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["file", "folder"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")
def test_a_folder_even_root_cannot_write_is_refused():
    # os.access would say root can create files in /proc; the probe file says no.
    with pytest.raises(UserError, match="cannot create files") as info:
        paths.check_writable_file("/proc/x.png")
    assert "/proc/x.png" in str(info.value)


@posix
@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
def test_an_output_that_is_an_input_is_refused(spelling, tmp_path, monkeypatch):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"precious")
    monkeypatch.chdir(tmp_path)
    output = {"same": str(photo), "dotted": "./sub/../photo.png", "symlink": "link.png",
              "hardlink": "hard.png"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        os.symlink(photo, "link.png")
    if spelling == "hardlink":
        os.link(photo, "hard.png")
    with pytest.raises(UserError, match="refusing to overwrite an input") as info:
        paths.check_outputs({"output": output}, {"content image": str(photo), "style image": None})
    assert output in str(info.value) and "content image" in str(info.value)
    assert photo.read_bytes() == b"precious"


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    out = str(tmp_path / "out.png")
    with pytest.raises(UserError, match="the output and the report are the same file"):
        paths.check_outputs({"output": out, "report": out}, {})


def test_distinct_outputs_and_inputs_pass(tmp_path):
    (tmp_path / "in.png").write_bytes(b"x")
    paths.check_outputs({"output": str(tmp_path / "out.png"), "report": None},
                        {"content image": str(tmp_path / "in.png")})


def test_check_output_folder_creates_nothing(tmp_path):
    paths.check_output_folder(str(tmp_path / "new"), "sweep output")
    assert os.listdir(tmp_path) == []
    paths.prepare_output_folder(str(tmp_path / "new"), "sweep output")
    assert os.listdir(tmp_path) == ["new"]


def test_check_output_folder_refusals(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        paths.check_output_folder(str(tmp_path / "file"), "sweep output")
    with pytest.raises(UserError, match="is not a folder"):
        paths.check_output_folder(str(tmp_path / "missing" / "new"), "sweep output")
