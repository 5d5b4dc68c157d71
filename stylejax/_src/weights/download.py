"""Robust file download: resumable, checksum-verified, never half-written under the final name.

Pretrained weights are hundreds of megabytes fetched over links that drop, through
proxies that truncate, and by users who press Ctrl-C. Three rules follow:

* The bytes go to ``<destination>.part`` and reach ``destination`` only through
  ``os.replace`` after the transfer is complete and the checksum (if given) matches. A
  file under the final name is therefore always a complete, verified download; code that
  checks ``os.path.exists(destination)`` can trust what it finds.
* An interrupted transfer (dropped connection, timeout, Ctrl-C) keeps its ``.part`` file,
  and the next call asks the server for the rest with an HTTP ``Range`` request instead
  of starting again from zero. Servers that ignore ranges get a clean restart.
* Every failure a user can meet (offline, HTTP 404/500, a cut-off transfer, a corrupt
  file) is a one-line ``UserError`` naming the URL and what to do next, never a
  traceback from the depths of ``urllib``.

Only the standard library does the work (``urllib.request``, ``hashlib``); ``tqdm``
draws the progress bar when stderr is a terminal. A resumed ``.part`` is not checked
against the server's ETag: a file that changed on the server between two runs would be
spliced from two versions, which is why callers should always pass a checksum, which
is computed over the whole file, resumed part included, and catches exactly that.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from stylejax._src.errors import UserError
from stylejax._version import __version__

_SCHEMES = ("http", "https", "file")
_DIGEST_CHUNK = 1 << 20
_HEX_DIGITS = {"sha256": 64, "md5": 32}
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*\s*/\s*(\d+)\s*$", re.IGNORECASE)
_USER_AGENT = f"stylejax/{__version__} (python-urllib)"


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """Returns the lowercase hex digest of the file at ``path`` (e.g. ``"sha256"``, ``"md5"``).

    Reads 1 MiB at a time so a multi-gigabyte weights file never has to fit in memory.
    MD5 is requested with ``usedforsecurity=False``: it only detects corruption here, and
    FIPS-mode OpenSSL builds refuse MD5 otherwise.
    """
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(
    path: str | os.PathLike[str], *, sha256: str | None = None, md5: str | None = None
) -> None:
    """Raises ``UserError`` unless the file at ``path`` has the given digest(s).

    For files that are already on disk (downloaded earlier, or by other means). Digests
    are hex and case-insensitive; with neither given there is nothing to check and the
    call only requires that the file can be read.
    """
    expected = _expected_digests(sha256=sha256, md5=md5)
    path = os.fspath(path)
    try:
        mismatches = _mismatches(path, expected)
    except OSError as err:
        raise UserError(f"cannot verify {path}: {_reason(err)}") from None
    if mismatches:
        raise UserError(f"{path} is not the expected file: {mismatches}")


def download(
    url: str,
    destination: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
    offline_hint: str = "",
) -> str:
    """Downloads ``url`` to ``destination`` (resuming, verifying) and returns the destination path.

    The data streams to ``<destination>.part``; an existing ``.part`` from an
    interrupted run is resumed with ``Range: bytes=N-`` (206 appends, 200 restarts from
    zero, 416 means the ``.part`` may already be complete and is verified). After the
    transfer the given digest(s) are checked over the whole file and only then is the
    ``.part`` renamed onto ``destination``, replacing any file already there; the
    destination's folder is created if missing.

    Raises ``UserError`` (one line, naming the URL) when the scheme is not http, https or
    file; when the server cannot be reached or answers with an HTTP error (the message
    ends with ``": " + offline_hint`` when a hint is given, so the caller can say what to
    do offline); when the transfer is cut off before the declared length (the ``.part``
    is kept so the same call resumes); and when a checksum does not match (the ``.part``
    is deleted, as resuming from corrupt bytes could never succeed). ``KeyboardInterrupt``
    keeps the ``.part`` and propagates. ``timeout`` is per socket operation (connect, each
    read), not for the whole transfer, so a slow but live download never times out.
    """
    display = _display_url(url)
    _check_scheme(url, display)
    expected = _expected_digests(sha256=sha256, md5=md5)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    destination = os.fspath(destination)
    part = destination + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)

    _transfer(
        url,
        part,
        display=display,
        timeout=timeout,
        chunk_size=chunk_size,
        show_progress=progress and _stderr_is_tty(),
        description=os.path.basename(destination),
        offline_hint=offline_hint,
        have_checksum=bool(expected),
    )
    mismatches = _mismatches(part, expected)
    if mismatches:
        os.remove(part)
        raise UserError(
            f"download of {display} is corrupt (deleted; run again to retry): {mismatches}"
        )
    os.replace(part, destination)
    return destination


def _transfer(
    url: str,
    part: str,
    *,
    display: str,
    timeout: float,
    chunk_size: int,
    show_progress: bool,
    description: str,
    offline_hint: str,
    have_checksum: bool,
) -> None:
    """Brings ``part`` to the full file: resumes it if the server allows, else restarts.

    At most two requests: the first asks for the bytes after an existing ``.part``; if the
    server's answer cannot be appended (a 206 for a different offset, a 416 that does
    not confirm the ``.part`` is whole), the second fetches everything from zero.
    """
    offset = os.path.getsize(part) if os.path.isfile(part) else 0
    for _ in range(2):
        try:
            response = _open(url, offset, timeout)
        except urllib.error.HTTPError as err:
            with contextlib.closing(err):  # holds the error page's socket open otherwise
                if err.code == 416 and offset > 0:
                    total = _unsatisfied_total(err.headers)
                    if total == offset or (total is None and have_checksum):
                        return  # the .part is (probably) whole; the checksum decides
                    offset = 0  # larger than the file, or unknowable: start over
                    continue
                reason = f"HTTP {err.code} {err.reason}".strip()
            raise _network_error(display, reason, offline_hint) from None
        except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
            raise _network_error(display, _reason(err), offline_hint) from None

        with contextlib.closing(response):
            status = response.status or 200  # file: URLs have no status
            total = _content_length(response.headers)
            if status == 206:
                start, range_total = _content_range(response.headers)
                if start != offset:
                    if offset == 0:
                        raise _network_error(
                            display, "server sent a byte range that was not asked for", offline_hint
                        )
                    offset = 0  # not the bytes we asked for: fetch the whole file instead
                    continue
                if range_total is not None:
                    total = range_total
                elif total is not None:
                    total += offset
            else:
                offset = 0  # a 200 is the whole file, whatever we asked for
            _stream(
                response,
                part,
                offset=offset,
                total=total,
                display=display,
                chunk_size=chunk_size,
                show_progress=show_progress,
                description=description,
            )
            return
    raise _network_error(display, "server answered the range requests inconsistently", offline_hint)


def _stream(
    response: Any,
    part: str,
    *,
    offset: int,
    total: int | None,
    display: str,
    chunk_size: int,
    show_progress: bool,
    description: str,
) -> None:
    """Appends the response body to ``part`` (truncating it first when ``offset`` is 0).

    A read that fails mid-stream or ends before ``total`` keeps what arrived, fsynced, so
    the next run resumes from there, and raises the "cut off" ``UserError``. Only reads
    are treated as network failures; a write error (disk full) propagates as itself.

    ``read1`` (one socket read, whatever has arrived, at most ``chunk_size``) rather than
    ``read``: a buffered ``read(n)`` collects until it has n bytes, and when the socket
    times out or Ctrl-C arrives meanwhile, the bytes it had collected are lost instead of
    landing in the ``.part``.
    """
    read = getattr(response, "read1", response.read)
    received = offset
    failure = None
    bar = _progress_bar(total, offset, description, show_progress)
    try:
        with open(part, "ab" if offset else "wb") as f:
            while True:
                try:
                    chunk = read(chunk_size)
                except (OSError, http.client.HTTPException) as err:
                    failure = _reason(err)
                    break
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            f.flush()
            os.fsync(f.fileno())
    finally:
        bar.close()
    if failure is not None or (total is not None and received < total):
        of_total = f" of {total}" if total is not None else ""
        because = f" ({failure})" if failure is not None else ""
        raise UserError(
            f"download of {display} was cut off after {received}{of_total} bytes{because}; "
            "run the same command again to resume"
        )


def _open(url: str, offset: int, timeout: float) -> Any:
    """Sends the GET (with ``Range`` when resuming) and returns the open response.

    ``Accept-Encoding: identity`` keeps the body byte-for-byte the file, so lengths,
    ranges and checksums all refer to the same bytes.
    """
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def _progress_bar(total: int | None, initial: int, description: str, enabled: bool) -> Any:
    """A tqdm byte counter on stderr, or a do-nothing stand-in when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=True,
    )


class _NoBar:
    """Stands in for tqdm when stderr is not a terminal (logs, CI) or progress is off."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _check_scheme(url: str, display: str) -> None:
    """Rejects anything but http, https and file URLs before any I/O happens.

    ``urlopen`` would also accept ftp and data URLs; weights never come from those, and
    a bare path mistaken for a URL deserves a clear message rather than "unknown url
    type".
    """
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as err:
        raise UserError(f"invalid URL {display!r}: {err}") from None
    if scheme not in _SCHEMES:
        raise UserError(f"cannot download {display}: only http, https and file URLs are supported")


def _expected_digests(*, sha256: str | None, md5: str | None) -> dict[str, str]:
    """Normalises the requested digests to lowercase hex, rejecting malformed ones early.

    A typo in a checksum would otherwise only show after the whole download, as a
    "corrupt" file that is in fact fine.
    """
    expected = {}
    for algorithm, value in (("sha256", sha256), ("md5", md5)):
        if value is None:
            continue
        normal = value.strip().lower()
        digits = _HEX_DIGITS[algorithm]
        if len(normal) != digits or any(c not in "0123456789abcdef" for c in normal):
            raise UserError(
                f"invalid {algorithm} checksum {value!r}: expected {digits} hexadecimal digits"
            )
        expected[algorithm] = normal
    return expected


def _mismatches(path: str, expected: dict[str, str]) -> str:
    """Describes each digest of ``path`` that differs from ``expected``; "" when all match."""
    problems = []
    for algorithm, want in expected.items():
        actual = file_digest(path, algorithm)
        if actual != want:
            problems.append(f"{algorithm} expected {want}, got {actual}")
    return "; ".join(problems)


def _content_length(headers: Any) -> int | None:
    value = headers.get("Content-Length")
    try:
        length = int(value) if value is not None else None
    except ValueError:
        return None
    return length if length is not None and length >= 0 else None


def _content_range(headers: Any) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes A-B/T`` header; None when absent."""
    match = _CONTENT_RANGE.match(headers.get("Content-Range") or "")
    if match is None:
        return None, None
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


def _unsatisfied_total(headers: Any) -> int | None:
    """The file size from a 416's ``Content-Range: bytes */T``; None when not given."""
    match = _UNSATISFIED_RANGE.match(headers.get("Content-Range") or "")
    return int(match.group(1)) if match else None


def _reason(err: BaseException) -> str:
    """A short, one-line reason for a network error ("Connection refused", "timed out")."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        reason = err.reason
        if isinstance(reason, BaseException):
            return _reason(reason)
        text = str(reason)
    elif isinstance(err, OSError) and err.strerror:
        text = err.strerror
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def _network_error(display: str, reason: str, offline_hint: str) -> UserError:
    message = f"cannot download {display} ({' '.join(reason.split())})"
    if offline_hint:
        message += f": {offline_hint}"
    return UserError(message)


def _display_url(url: str) -> str:
    """The URL as shown in messages: credentials (``user:password@``) removed, one line."""
    text = " ".join(str(url).split())
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return text
    if "@" in parts.netloc:
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return text
