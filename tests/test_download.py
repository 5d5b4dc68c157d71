"""download(): resume, restart, cut-off, checksum and error paths against a local HTTP server.

The server listens on 127.0.0.1 only and serves fabricated bytes; no test reaches the
internet. Its behaviour is chosen by the request path:

* ``/range/...``      honours ``Range: bytes=N-`` (206 + Content-Range, 416 past the end)
* ``/norange/...``    ignores Range, always 200 with the whole file
* ``/cut/K/...``      declares the full Content-Length, sends K bytes, drops the connection
* ``/stall/K/...``    sends K bytes of the declared full length, then goes silent
* ``/status/CODE``    answers with that HTTP error code
"""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import socket
import threading
import time

import pytest

from stylejax._src.errors import UserError
from stylejax._src.weights import download as download_module
from stylejax._src.weights.download import download, file_digest, verify

DATA = random.Random(20160627).randbytes(300_000)
SHA256 = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
HINT = "you seem to be offline; download the file by other means"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        self.close_connection = True
        parts = self.path.strip("/").split("/")
        kind = parts[0]
        if kind == "status":
            self.send_error(int(parts[1]))
        elif kind == "range":
            self._serve_range()
        elif kind == "norange":
            self._send(200, DATA)
        elif kind == "cut":
            self._send(200, DATA[: int(parts[1])], declared=len(DATA))
        elif kind == "stall":
            self._send(200, DATA[: int(parts[1])], declared=len(DATA))
            time.sleep(0.5)  # longer than the client's timeout; then hang up
        else:
            self.send_error(404)

    def _serve_range(self):
        header = self.headers.get("Range")
        if header is None:
            self._send(200, DATA)
            return
        start = int(header.removeprefix("bytes=").rstrip("-"))
        if start >= len(DATA):
            self._send(416, b"", extra={"Content-Range": f"bytes */{len(DATA)}"})
            return
        content_range = f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
        self._send(206, DATA[start:], extra={"Content-Range": content_range})

    def _send(self, code, body, *, declared=None, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.send_header("Connection", "close")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests = []

    def handle_error(self, request, client_address):
        pass  # a client that hung up early (the Ctrl-C test) is expected, not a failure


@pytest.fixture(scope="module")
def server():
    httpd = _Server()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def url(server):
    """url("/range/w.bin") -> full URL; the server's request log starts empty per test."""
    server.requests.clear()
    host, port = server.server_address[:2]
    return lambda path: f"http://{host}:{port}{path}"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_good_checksums_give_the_file_and_no_part(url, tmp_path):
    dest = tmp_path / "sub" / "w.bin"
    result = download(url("/range/w.bin"), dest, sha256=SHA256.upper(), md5=MD5, progress=False)
    assert result == str(dest)
    assert _read(dest) == DATA
    assert not os.path.exists(f"{dest}.part")


def test_without_checksum_the_file_is_still_complete(url, tmp_path):
    dest = tmp_path / "w.bin"
    download(url("/norange/w.bin"), dest, progress=False, chunk_size=4096)
    assert _read(dest) == DATA


def test_wrong_checksum_deletes_part_and_names_both_digests(url, tmp_path):
    dest = tmp_path / "w.bin"
    wrong = "0" * 64
    with pytest.raises(UserError) as info:
        download(url("/range/w.bin"), dest, sha256=wrong, progress=False)
    message = str(info.value)
    assert wrong in message and SHA256 in message and "/range/w.bin" in message
    assert "\n" not in message
    assert not dest.exists()
    assert not os.path.exists(f"{dest}.part")


def test_wrong_md5_is_caught_even_when_sha256_matches(url, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(UserError, match=MD5):
        download(url("/range/w.bin"), dest, sha256=SHA256, md5="f" * 32, progress=False)
    assert not dest.exists()


def test_cut_off_transfer_keeps_part_then_resumes_with_range(server, url, tmp_path):
    dest = tmp_path / "w.bin"
    part = f"{dest}.part"
    with pytest.raises(UserError) as info:
        download(url("/cut/120000/w.bin"), dest, sha256=SHA256, progress=False)
    message = str(info.value)
    assert "cut off after 120000 of 300000 bytes" in message
    assert "/cut/120000/w.bin" in message and "run the same command again" in message
    assert _read(part) == DATA[:120000]
    assert not dest.exists()

    server.requests.clear()
    download(url("/range/w.bin"), dest, sha256=SHA256, progress=False)
    assert server.requests == [("/range/w.bin", "bytes=120000-")]
    assert _read(dest) == DATA
    assert not os.path.exists(part)


def test_stalled_transfer_times_out_and_keeps_part(url, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(UserError) as info:
        download(url("/stall/70000/w.bin"), dest, progress=False, timeout=0.1)
    message = str(info.value)
    assert "cut off after 70000 of 300000 bytes (timed out)" in message
    assert _read(f"{dest}.part") == DATA[:70000]
    assert not dest.exists()


def test_server_without_range_support_restarts_from_zero(server, url, tmp_path):
    dest = tmp_path / "w.bin"
    part = f"{dest}.part"
    with open(part, "wb") as f:
        f.write(b"x" * 5000)  # wrong bytes: appending to them would fail the checksum
    download(url("/norange/w.bin"), dest, sha256=SHA256, progress=False)
    assert server.requests == [("/norange/w.bin", "bytes=5000-")]
    assert _read(dest) == DATA
    assert not os.path.exists(part)


def test_complete_part_is_verified_after_416(server, url, tmp_path):
    dest = tmp_path / "w.bin"
    with open(f"{dest}.part", "wb") as f:
        f.write(DATA)
    download(url("/range/w.bin"), dest, sha256=SHA256, progress=False)
    assert server.requests == [("/range/w.bin", f"bytes={len(DATA)}-")]
    assert _read(dest) == DATA


def test_oversized_part_after_416_restarts(server, url, tmp_path):
    dest = tmp_path / "w.bin"
    with open(f"{dest}.part", "wb") as f:
        f.write(DATA + b"junk")
    download(url("/range/w.bin"), dest, sha256=SHA256, progress=False)
    assert server.requests == [("/range/w.bin", f"bytes={len(DATA) + 4}-"), ("/range/w.bin", None)]
    assert _read(dest) == DATA


@pytest.mark.parametrize("code", [404, 500])
def test_http_error_is_one_line_with_url_and_hint(url, tmp_path, code):
    dest = tmp_path / "w.bin"
    address = url(f"/status/{code}")
    with pytest.raises(UserError) as info:
        download(address, dest, progress=False, offline_hint=HINT)
    message = str(info.value)
    assert message.startswith(f"cannot download {address} (HTTP {code}")
    assert message.endswith(f": {HINT}")
    assert "\n" not in message
    assert not dest.exists()


def test_connection_refused_is_one_line_with_url_and_hint(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}/w.bin"
    with pytest.raises(UserError) as info:
        download(address, tmp_path / "w.bin", progress=False, timeout=2, offline_hint=HINT)
    message = str(info.value)
    assert message.startswith(f"cannot download {address} (")
    assert message.endswith(f": {HINT}")
    assert "\n" not in message


@pytest.mark.parametrize("address", ["ftp://example.org/w.bin", "weights/w.bin", "data:,hello"])
def test_other_schemes_are_rejected(address, tmp_path):
    with pytest.raises(UserError, match="only http, https and file URLs"):
        download(address, tmp_path / "w.bin", progress=False)
    assert not os.listdir(tmp_path)


def test_file_url(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    dest = tmp_path / "w.bin"
    download(source.as_uri(), dest, sha256=SHA256, progress=False)
    assert _read(dest) == DATA


def test_malformed_checksum_is_rejected_before_downloading(server, url, tmp_path):
    with pytest.raises(UserError, match="64 hexadecimal digits"):
        download(url("/range/w.bin"), tmp_path / "w.bin", sha256="abc", progress=False)
    assert server.requests == []


def test_ctrl_c_keeps_part_for_resume(server, url, tmp_path, monkeypatch):
    class _InterruptingBar:
        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(download_module, "_progress_bar", lambda *args: _InterruptingBar())
    dest = tmp_path / "w.bin"
    with pytest.raises(KeyboardInterrupt):
        download(url("/range/w.bin"), dest, sha256=SHA256, chunk_size=50_000)
    kept = _read(f"{dest}.part")
    assert 0 < len(kept) <= 50_000  # the first chunk: whatever one socket read brought
    assert kept == DATA[: len(kept)]
    assert not dest.exists()

    monkeypatch.undo()
    server.requests.clear()
    download(url("/range/w.bin"), dest, sha256=SHA256, progress=False)
    assert server.requests == [("/range/w.bin", f"bytes={len(kept)}-")]
    assert _read(dest) == DATA


def test_file_digest_and_verify(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(DATA)
    assert file_digest(path, "sha256") == SHA256
    assert file_digest(path, "md5") == MD5
    verify(path, sha256=SHA256, md5=MD5.upper())
    verify(path)
    with pytest.raises(UserError) as info:
        verify(path, md5="0" * 32)
    assert str(path) in str(info.value) and MD5 in str(info.value)
    with pytest.raises(UserError, match="cannot verify"):
        verify(tmp_path / "missing.bin", sha256=SHA256)
