"""Atomic output: complete file or nothing, and an existing file survives a failure."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from stylejax._src.files import atomic


def _listing(folder):
    return sorted(os.listdir(folder))


def test_write_bytes_creates_and_overwrites(tmp_path):
    target = tmp_path / "out.bin"
    atomic.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    atomic.atomic_write_bytes(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert _listing(tmp_path) == ["out.bin"]


def test_temp_path_is_hidden_sibling_with_same_suffix(tmp_path):
    target = tmp_path / "out.png"
    with atomic.atomic_path(target) as temp:
        assert os.path.dirname(temp) == str(tmp_path)
        name = os.path.basename(temp)
        assert name.startswith(".out.png.tmp-")
        assert name.endswith(".png")
        assert os.path.exists(temp)
        assert not target.exists()
        with open(temp, "wb") as f:
            f.write(b"payload")
    assert target.read_bytes() == b"payload"
    assert _listing(tmp_path) == ["out.png"]


def test_suffix_lets_pil_pick_the_format(tmp_path):
    target = tmp_path / "picture.png"
    with atomic.atomic_path(target) as temp:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(temp)
    with Image.open(target) as image:
        assert image.format == "PNG"


def test_exception_removes_temp_and_keeps_destination(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    seen = []
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_path(target) as temp:
        seen.append(temp)
        with open(temp, "wb") as f:
            f.write(b"half-writ")
        raise RuntimeError("boom")
    assert not os.path.exists(seen[0])
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.txt"]


def test_exception_before_writing_leaves_nothing(tmp_path):
    target = tmp_path / "never.txt"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target):
        raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_failed_write_bytes_keeps_destination(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic.atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.bin"]


def test_destination_is_a_folder(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    with pytest.raises(OSError):
        atomic.atomic_write_bytes(target, b"x")
    assert _listing(tmp_path) == ["folder"]
    assert _listing(target) == []


def test_permissions_follow_umask(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    target = tmp_path / "out.bin"
    atomic.atomic_write_bytes(target, b"x")
    assert (target.stat().st_mode & 0o777) == (reference.stat().st_mode & 0o777)


def test_json_non_finite_become_null(tmp_path):
    target = tmp_path / "summary.json"
    obj = {
        "loss": math.nan,
        "history": [1.5, math.inf, -math.inf, (2.0, math.nan)],
        "nested": {"x": {"y": math.nan}, "ok": 0.25},
        "name": "Tübingen",
        "count": 3,
        "flag": True,
        "none": None,
    }
    atomic.atomic_write_json(target, obj)
    text = target.read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text
    assert "Tübingen" in text
    assert text.endswith("\n")
    assert "\n  " in text  # indent 2

    def strict(token):
        raise ValueError(f"non-standard JSON token {token}")

    loaded = json.loads(text, parse_constant=strict)
    assert loaded == {
        "loss": None,
        "history": [1.5, None, None, [2.0, None]],
        "nested": {"x": {"y": None}, "ok": 0.25},
        "name": "Tübingen",
        "count": 3,
        "flag": True,
        "none": None,
    }


def test_json_unserialisable_writes_nothing(tmp_path):
    target = tmp_path / "summary.json"
    with pytest.raises(TypeError):
        atomic.atomic_write_json(target, {"x": object()})
    assert _listing(tmp_path) == []
