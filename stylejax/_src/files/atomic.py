"""Atomic file output: a file is either absent, the old version, or complete.

Every output (images, JSON summaries, plots) is first written to a temporary file in the
destination's own folder and then moved onto the destination with ``os.replace``, which
is atomic on POSIX and Windows when both names are on the same file system. An
interrupted run (Ctrl-C, a crash, a full disk) therefore never leaves a half-written file
under the final name, and never damages a file that was already there.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator
from typing import Any

_TEMP_ATTEMPTS = 100


def _create_temp(path: str) -> str:
    """Creates an empty, hidden temporary file next to ``path`` and returns its name.

    The name is ``.<basename>.tmp-<random><suffix>``: hidden, clearly temporary, and with
    the same suffix as ``path`` so writers that choose a format by suffix (PIL,
    matplotlib) still choose the right one. The file is created with mode 0o666 minus the
    umask, like any ``open(path, "w")``, so the final file gets ordinary permissions
    (``tempfile.mkstemp`` would make it 0o600).
    """
    folder, base = os.path.split(os.path.abspath(path))
    suffix = os.path.splitext(base)[1]
    for _ in range(_TEMP_ATTEMPTS):
        temp = os.path.join(folder, f".{base}.tmp-{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"could not create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yields a temporary path to write; on clean exit moves it onto ``path``.

    The temporary file lives in the same folder as ``path`` (so the final move is an
    atomic rename, not a copy) and already exists, empty, when yielded; the writer may
    overwrite or replace it. On an exception inside the ``with`` block the temporary file
    is removed, ``path`` is left exactly as it was, and the exception propagates.
    """
    path = os.fspath(path)
    temp = _create_temp(path)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""
    with atomic_path(path) as temp, open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _finite_or_none(obj: Any) -> Any:
    """Replaces non-finite floats (NaN, +-inf) by None, recursing into lists and dicts.

    JSON has no NaN or Infinity; ``json.dumps`` would write them as bare ``NaN`` tokens
    that strict parsers reject. A diverged loss is written as ``null`` instead.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite_or_none(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(value) for value in obj]
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Writes ``obj`` as strict JSON (indent 2, trailing newline) to ``path`` atomically.

    Non-finite floats become ``null`` (see ``_finite_or_none``); other values must be
    JSON-serialisable (``TypeError`` otherwise, before anything is written).
    """
    text = json.dumps(_finite_or_none(obj), indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))
