"""Hostile but realistic inputs to the command line: one line, exit 2 (130 for Ctrl-C, 143
for SIGTERM), nothing written or lost, within seconds (docs/contract.md).

The fast cases are refused before any compilation; those that need a run are marked slow.
"""

import json
import os
import signal
import subprocess
import sys
import time

import image_files
import numpy as np
import pytest
from PIL import Image

from stylejax import cli

RUN = ["--size", "32", "--iterations", "2", "--weights", "random", "--quiet"]
posix = pytest.mark.skipif(os.name != "posix", reason="needs POSIX FIFOs and links")


@pytest.fixture(autouse=True)
def no_hang(request):
    """A fast case that blocks (a FIFO opened for reading) fails after 20 s instead of
    hanging."""
    if not hasattr(signal, "SIGALRM") or request.node.get_closest_marker("slow"):
        yield
        return

    def hung(signum, frame):
        raise TimeoutError("blocked for 20 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _png(path, side=(32, 24), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (side[1], side[0], 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def pair(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    return _png(inputs / "photo.png", seed=0), _png(inputs / "style.png", seed=1)


def _refused(args, capsys, *expect):
    """Runs the CLI; asserts exit 2 and one line holding every ``expect``; returns the line."""
    start = time.monotonic()
    status = cli.main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in expect:
        assert word in lines[0], (word, lines[0])
    assert time.monotonic() - start < 15, "refused, but not within seconds"
    return lines[0]


def _snapshot(folder):
    """Every entry of ``folder`` with its bytes (None for what is not a regular file)."""
    entries = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        entries[name] = None
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                entries[name] = handle.read()
    return entries


# --------------------------------------------------------------------------- transfer: files lost


@posix
@pytest.mark.parametrize("target, expect", [
    ("content", "is also the content image"),
    ("style_hardlink", "is the same file as"),
    ("content_symlink", "is the same file as"),
    ("content_other_spelling", "is the same file as"),
])
def test_the_output_is_never_an_input(target, expect, pair, tmp_path, capsys):
    photo, style = pair
    before = _snapshot(os.path.dirname(photo))
    output = {
        "content": photo,
        "style_hardlink": str(tmp_path / "hard.png"),
        "content_symlink": str(tmp_path / "link.png"),
        "content_other_spelling": os.path.join(os.path.dirname(photo), "..", "in", "photo.png"),
    }[target]
    if target == "style_hardlink":
        os.link(style, output)
    if target == "content_symlink":
        os.symlink(photo, output)
    _refused(["transfer", photo, style, "-o", output, *RUN], capsys, expect, "refusing to overwrite")
    assert _snapshot(os.path.dirname(photo)) == before


def test_the_report_is_never_an_input(pair, tmp_path, capsys):
    photo, style = pair
    before = _snapshot(os.path.dirname(photo))
    _refused(["transfer", photo, style, "-o", str(tmp_path / "o.png"), "--report", style, *RUN], capsys,
             "the report", "style image")
    assert _snapshot(os.path.dirname(photo)) == before
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("output, expect", [
    ("newdir/", "names a folder"),
    ("out.jpg", "must be named .png (got .jpg)"),
    ("out", "no extension"),
    ("missing/out.png", "does not exist"),
])
def test_output_names_refused_before_the_run(output, expect, pair, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(["transfer", *pair, "-o", output, *RUN], capsys, expect)
    assert sorted(os.listdir(tmp_path)) == ["in"]


# --------------------------------------------------------------------------- transfer: hangs


@posix
@pytest.mark.parametrize("role", ["content", "style", "init"])
def test_a_fifo_input_is_refused_at_once(role, pair, tmp_path, capsys):
    photo, style = pair
    fifo = str(tmp_path / "f.png")
    os.mkfifo(fifo)
    args = {"content": [fifo, style], "style": [photo, fifo], "init": [photo, style, "--init", fifo]}[role]
    _refused(["transfer", *args[:2], "-o", str(tmp_path / "o.png"), *args[2:], *RUN], capsys,
             "FIFO", fifo)


@posix
def test_a_symlink_loop_is_named(pair, tmp_path, capsys):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    _refused(["transfer", str(tmp_path / "a"), pair[1], "-o", str(tmp_path / "o.png"), *RUN], capsys,
             "symlink loop")


# --------------------------------------------------------------------------- transfer: memory


@pytest.mark.parametrize("role", ["content", "style", "init"])
def test_a_decompression_bomb_is_refused_before_decoding(role, pair, tmp_path, capsys):
    photo, style = pair
    bomb = image_files.png_declaring(tmp_path / "bomb.png", 13000, 13000)
    args = {"content": [bomb, style], "style": [photo, bomb], "init": [photo, style, "--init", bomb]}[role]
    _refused(["transfer", *args[:2], "-o", str(tmp_path / "o.png"), *args[2:], *RUN], capsys,
             "too large to read safely", "13000x13000")


def test_a_size_beyond_the_memory_is_refused_with_the_estimate(pair, tmp_path, capsys):
    line = _refused(["transfer", *pair, "-o", str(tmp_path / "o.png"), *RUN, "--size", "100000"],
                    capsys, "100000x75000 px transfer", "TiB of memory", "--max-memory")
    assert "available" in line


def test_max_memory_sets_the_budget(pair, tmp_path, capsys):
    # 1 GiB is the process's own base in the estimate: a 0.5 GiB budget refuses any run.
    _refused(["transfer", *pair, "-o", str(tmp_path / "o.png"), *RUN, "--max-memory", "0.5"],
             capsys, "32x24 px transfer", "more than the 512.0 MiB available")
    _refused(["transfer", *pair, "-o", str(tmp_path / "o.png"), *RUN, "--max-memory", "lots"],
             capsys, "--max-memory", "lots")


@pytest.mark.parametrize("flag, value, expect", [
    ("--ratio", "1e39", "float32"),
    ("--tv-weight", "1e39", "float32"),
    ("--chunk", "1e12", "whole number"),
    ("--chunk", "1000000000000", "at most 2147483647"),
    ("--iterations", "3000000000", "at most 2147483647"),
    ("--size", "99999999999", "at most 2147483647"),
])
def test_numbers_that_overflow_are_refused_up_front(flag, value, expect, pair, tmp_path, capsys):
    _refused(["transfer", *pair, "-o", str(tmp_path / "o.png"), *RUN, flag, value], capsys,
             flag, expect)


# --------------------------------------------------------------------------- sweep


def _sweep(pair, out, *extra):
    return ["sweep", *pair, "-o", str(out), "--weights", "random", "--size", "32", "--iterations", "2",
            "--quiet", *extra]


def test_a_sweep_into_a_folder_that_is_not_empty_is_refused(pair, tmp_path, capsys):
    out = tmp_path / "sw"
    out.mkdir()
    (out / "grid.png").write_bytes(b"the user's own")
    _refused(_sweep(pair, out), capsys, "not empty", "--overwrite")
    _refused(_sweep(pair, out, "--overwrite"), capsys, "no earlier sweep's results.json")
    # With an earlier sweep's results.json, its fixed files and listed members are the
    # sweep's to replace; a member image it does not list is not.
    (out / "results.json").write_text(json.dumps(
        {"stylejax_version": "0", "members": [{"image": "member_000.png"}]}))
    (out / "member_001.png").write_bytes(b"not the sweep's")
    _refused(_sweep(pair, out, "--ratios", "1e-3,1e-2", "--overwrite"), capsys,
             "member_001.png was not written by the earlier sweep")
    assert (out / "member_001.png").read_bytes() == b"not the sweep's"


def test_a_sweep_too_large_for_the_memory_creates_no_folder(pair, tmp_path, capsys):
    out = tmp_path / "sw"
    _refused(_sweep(pair, out, "--size", "100000"), capsys, "a sweep of 1 members", "--max-memory")
    _refused(_sweep(pair, out, "--batch-mode", "vmap", "--ratios", ",".join(["1e-3"] * 64),
                    "--max-memory", "1.1"), capsys, "64 members")  # 1 GiB + 64 x 3 MiB
    assert not out.exists()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")
def test_a_sweep_into_an_unwritable_place_is_refused(pair, capsys):
    _refused(_sweep(pair, "/proc/sweep-out"), capsys, "/proc")


@pytest.mark.parametrize("entry, expect", [
    ({"style_layer_weights": 5}, "entry 0, key 'style_layer_weights': expected a list of numbers"),
    ({"content_layer": 5}, "entry 0, key 'content_layer': expected a layer name or null"),
    ({"ratio": True}, "entry 0, key 'ratio': expected a number, got true"),
    ({"ratio": "1e-3"}, "key 'ratio': expected a number"),
    ({"style_layers": "conv1_1"}, 'key \'style_layers\': expected a list of layer names such as ["conv1_1"]'),
    ({"style_layers": []}, "key 'style_layers': expected at least one layer"),
    ({"style_layers": ["conv1_1", "conv9_9"]}, "conv9_9"),
    ({"init": 3}, "key 'init'"),
    ({"tv_weight": -1}, "tv_weight must be a non-negative finite number"),
    ({"ratio": 1e39}, "float32"),
])
def test_members_files_are_checked_by_type_naming_entry_and_key(entry, expect, pair, tmp_path, capsys):
    members = tmp_path / "members.json"
    members.write_text(json.dumps([{"ratio": 1e-3}, entry][1:]))
    _refused(_sweep(pair, tmp_path / "sw", "--members", str(members)), capsys, expect, str(members))
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("content, expect", [
    (b"\xff\xfe[{}]", "not UTF-8"),
    (b"[{]", "not valid JSON"),
    (b"{}", "non-empty JSON list of objects"),
])
def test_members_files_that_are_not_json_lists(content, expect, pair, tmp_path, capsys):
    members = tmp_path / "members.json"
    members.write_bytes(content)
    _refused(_sweep(pair, tmp_path / "sw", "--members", str(members)), capsys, expect)


@posix
def test_a_fifo_members_file_is_refused(pair, tmp_path, capsys):
    os.mkfifo(tmp_path / "members.json")
    _refused(_sweep(pair, tmp_path / "sw", "--members", str(tmp_path / "members.json")), capsys, "FIFO")


# --------------------------------------------------------------------------- demo, bench


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")
def test_demo_into_an_unwritable_place_is_refused(capsys):
    _refused(["demo", "-o", "/proc/demo-output", "--quiet"], capsys, "/proc/demo-output")


def test_demo_and_bench_sizes_beyond_the_memory_are_refused(tmp_path, capsys):
    _refused(["demo", "-o", str(tmp_path / "d"), "--size", "100000", "--quiet"], capsys, "--max-memory")
    _refused(["bench", "-o", str(tmp_path / "b"), "--sections", "sizes", "--sizes", "64,100000", "--quiet"],
             capsys, "sizes section at 100000x100000 px", "--max-memory")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- runs (slow)


@pytest.mark.slow
def test_an_earlier_sweep_is_replaced_only_with_overwrite(pair, tmp_path, capsys):
    out = tmp_path / "sw"
    assert cli.main(_sweep(pair, out, "--ratios", "1e-3,1e-2,1e-1", "--optimizer", "adam")) == 0
    (out / "notes.txt").write_text("the user's own")
    assert sorted(os.listdir(out))[:3] == ["grid.png", "member_000.png", "member_001.png"]
    capsys.readouterr()
    _refused(_sweep(pair, out, "--optimizer", "adam"), capsys, "not empty")
    assert cli.main(_sweep(pair, out, "--optimizer", "adam", "--overwrite")) == 0
    assert sorted(os.listdir(out)) == ["grid.png", "member_000.png", "notes.txt", "results.csv",
                                       "results.json"]
    assert len(json.loads((out / "results.json").read_text())["members"]) == 1


@pytest.mark.slow
def test_a_sweep_with_a_diverged_member_exits_2_and_marks_it(pair, tmp_path, capsys):
    members = tmp_path / "members.json"
    members.write_text(json.dumps([
        {"ratio": 1e-3, "style_layers": ["conv1_1"], "content_layer": "conv1_2"},
        {"ratio": 3e38, "style_layers": ["conv1_1"], "content_layer": "conv1_2"},
    ]))
    out = tmp_path / "sw"
    status = cli.main(_sweep(pair, out, "--members", str(members), "--optimizer", "adam"))
    err = capsys.readouterr().err
    assert status == 2, err
    assert "member 1: non-finite at iteration 0; its image is the last finite one" in err
    rows = json.loads((out / "results.json").read_text())["members"]
    assert [r["status"] for r in rows] == ["done", "non-finite at iteration 0"]
    assert rows[1]["iterations"] == 0 and rows[1]["history"] == []


def _signal_a_run(tmp_path, pair, sig, delay):
    """Starts ``stylejax transfer`` in its own process, sends ``sig`` after ``delay`` s."""
    out = tmp_path / "o.png"
    process = subprocess.Popen(
        [sys.executable, "-m", "stylejax", "transfer", *pair, "-o", str(out), "--size", "48",
         "--iterations", "100000", "--chunk", "5", "--weights", "random", "--quiet"],
        stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"{sig!r} after {delay} s did not end the run: {err}") from None
    return process.returncode, err, out


@pytest.mark.slow
@posix
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_or_compilation_exits_cleanly(sig, status, pair, tmp_path):
    # Through start-up (imports, where JAX's garbage-collector callback would swallow the
    # interrupt, weights, compilation): never a crash (SIGSEGV is status -11), never a
    # swallowed signal (the run would go on), one line, and nothing written.
    for delay in (0.5, 1, 3, 8):
        code, err, out = _signal_a_run(tmp_path, pair, sig, delay)
        if "interrupted after" in err:  # already optimising: the image is kept
            assert out.exists()
            out.unlink()
        else:
            assert "no output was written" in err and not out.exists(), err
        assert code == status, (delay, code, err)
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
@posix
def test_sigterm_during_the_optimisation_keeps_the_image_like_ctrl_c(pair, tmp_path):
    code, err, out = _signal_a_run(tmp_path, pair, signal.SIGTERM, 25)
    assert code == 143, err
    assert "interrupted after" in err and out.exists(), err
