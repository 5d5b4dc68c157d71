"""Hostile paths and hostile or damaged files, through every reader of weights files.

The contract: a problem the user (or a downloaded file) causes is one ``UserError`` line
naming the file (the CLI prints it and exits 2), raised before anything is written and
before anything heavy is read. Paths: an output that is its own source (same name,
other spelling, hard link, symlink), a FIFO, a symlink loop, a dangling symlink, a
weights folder that is a file. Files: truncated, empty, random bytes, and "bombs" whose
few kilobytes declare gigabytes, in every format (Keras and flaxmodels HDF5, PyTorch zip
and legacy, MatConvNet) - each refused by its declared shape or size before its data is
read.

Bounds: a refused bomb takes under 2 s, under 64 MiB of Python allocations (tracemalloc:
NumPy, h5py, zlib and the readers all allocate through it) and under 500 MB of growth of
the process's peak resident memory (``ru_maxrss``); the measured numbers are printed
(``pytest -s``). A FIFO is watched by a thread that unblocks any reader opening it, so a
regression fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import resource
import shutil
import struct
import sys
import threading
import time
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest
import torch_files
import vgg_files

from stylejax import cli
from stylejax._src import layers as vgg_layers
from stylejax._src.convention import CAFFE
from stylejax._src.errors import UserError
from stylejax._src.weights import (
    convert,
    download,
    mat_file,
    torch_pickle,
    weights_commands,
    weights_file,
    weights_source,
)

KERAS_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
TORCH_NAME = "vgg19-dcbb9e9d.pth"  # torchvision's file name: the convention is known
SECONDS = 2.0
TRACED_BYTES = 64 << 20
RSS_BYTES = 500 << 20


def _quiet(line):
    pass


@pytest.fixture(scope="module")
def params():
    return vgg_files.random_params(0)


@pytest.fixture(scope="module")
def keras_master(tmp_path_factory, params):
    path = tmp_path_factory.mktemp("keras") / KERAS_NAME
    vgg_files.write_keras(path, params)
    return path


@pytest.fixture
def keras_file(keras_master, tmp_path):
    """A valid Keras VGG19 of this test's own: converting it would succeed."""
    path = tmp_path / KERAS_NAME
    shutil.copyfile(keras_master, path)
    return path


@pytest.fixture(scope="module")
def stylejax_master(tmp_path_factory, params):
    path = tmp_path_factory.mktemp("stylejax") / "vgg19.h5"
    weights_file.save_weights(path, params, convention=CAFFE, source="test: random")
    return path


@pytest.fixture
def stylejax_file(stylejax_master, tmp_path):
    path = tmp_path / "vgg19.h5"
    shutil.copyfile(stylejax_master, path)
    return path


def _sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _cli_error(capsys, *args) -> str:
    """Runs the CLI; asserts exit status 2 and exactly one error line; returns it."""
    status = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _refused(fn, *args, **kwargs) -> str:
    """The one-line UserError of ``fn(*args)``."""
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _report(line: str) -> None:
    """A measurement, on the process's stderr: past capsys, shown by ``pytest -s``."""
    print(f"\n[bomb] {line}", file=sys.__stderr__, flush=True)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _measured(fn, *args):
    """``fn(*args)``: its result, seconds, traced allocation peak and ru_maxrss growth."""
    rss_before = _peak_rss()
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = fn(*args)
        elapsed = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, elapsed, traced, _peak_rss() - rss_before


def _refused_bounded(label, fn, *args, traced_limit=TRACED_BYTES) -> str:
    """``_refused``, in under SECONDS, ``traced_limit`` bytes of allocations and RSS_BYTES
    of peak resident memory growth; prints the measurements."""
    message, elapsed, traced, grown = _measured(_refused, fn, *args)
    _report(f"{label}: {elapsed * 1000:.0f} ms, traced peak {traced / 2**20:.2f} MiB, "
            f"ru_maxrss growth {grown / 2**20:.1f} MiB")
    assert elapsed < SECONDS, elapsed
    assert traced < traced_limit, traced
    assert grown < RSS_BYTES, grown
    return message


# --------------------------------------------------------------------------------------
# 1. An output that is the source, under any name.


def _same_file(source, spelling: str):
    """An output path that names ``source``: itself, another spelling, a link to it."""
    folder = source.parent
    if spelling == "same path":
        return source
    if spelling == "other spelling":
        return folder / "." / ".." / folder.name / source.name
    if spelling == "hard link":
        os.link(source, folder / "hard.h5")
        return folder / "hard.h5"
    os.symlink(source, folder / "link.h5")
    return folder / "link.h5"


SPELLINGS = ["same path", "other spelling", "hard link", "symlink"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_convert_refuses_an_output_that_is_its_source(keras_file, capsys, spelling):
    before = _sha256(keras_file)
    output = _same_file(keras_file, spelling)
    listing = _listing(keras_file.parent)
    line = _cli_error(capsys, "weights", "convert", keras_file, "-o", output)
    assert "refusing to overwrite an input" in line and str(output) in line
    message = _refused(convert.convert, str(keras_file), str(output))
    assert "source" in message and str(output) in message
    assert _sha256(keras_file) == before  # byte for byte
    assert _listing(keras_file.parent) == listing  # no temporary file left either


def test_the_same_file_check_would_matter(keras_file, tmp_path):
    # Without the check, converting onto the source would replace it: the source is a
    # valid Keras VGG19 that converts.
    out = tmp_path / "elsewhere.h5"
    convert.convert(str(keras_file), str(out))
    assert weights_file.load_weights(out).source.startswith("keras:")


@pytest.mark.parametrize("spelling", ["same path", "hard link", "symlink"])
def test_normalise_refuses_an_output_that_is_its_source(stylejax_file, spelling):
    before = _sha256(stylejax_file)
    output = _same_file(stylejax_file, spelling)
    message = _refused(weights_commands.normalise_file, str(stylejax_file), str(output),
                       images_dir="builtin", log=_quiet)
    assert "refusing to overwrite an input" in message and str(output) in message
    assert _sha256(stylejax_file) == before


def test_normalise_refuses_an_output_that_is_a_calibration_image(stylejax_file, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    picture = photos / "a.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(picture)
    before = _sha256(picture)
    message = _refused(weights_commands.normalise_file, str(stylejax_file), str(picture),
                       images_dir=str(photos), log=_quiet)
    assert "calibration image a.png" in message
    assert _sha256(picture) == before


def test_fetch_refuses_an_output_that_is_the_download(keras_file, tmp_path, monkeypatch):
    # The download is already there (so nothing is fetched), and its checksum is not the
    # published one (it is a fabricated file): without the check, fetch would find the
    # mismatch and delete it, or convert it onto itself.
    directory = tmp_path / "weights"
    downloads = directory / "downloads"
    downloads.mkdir(parents=True)
    local = downloads / KERAS_NAME
    shutil.copyfile(keras_file, local)
    before = _sha256(local)
    monkeypatch.setenv(weights_file.WEIGHTS_DIR_ENV, str(directory))
    monkeypatch.setattr(download, "download", _no_download)
    for output in (local, downloads / "." / KERAS_NAME):
        message = _refused(weights_commands.fetch, "keras", str(output), log=_quiet)
        assert "download" in message and "refusing to overwrite an input" in message
    assert _sha256(local) == before
    assert _listing(downloads) == [KERAS_NAME]


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


# --------------------------------------------------------------------------------------
# 2. A FIFO is refused before it is opened (an open() would block forever).


@contextlib.contextmanager
def _fifo(path):
    """Makes a FIFO at ``path``; yields a list that records every time a reader opened
    it. A watcher opens the write end whenever a reader waits (O_NONBLOCK fails with
    ENXIO while none does) and closes it at once, so the reader sees end of file
    instead of hanging the test."""
    os.mkfifo(path)
    opened: list[bool] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
                continue
            opened.append(True)
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


def _mat_want(path, shape, structs):
    return True


FIFO_READERS = {
    "detect_format": lambda src, out: convert.detect_format(src),
    "convert": lambda src, out: convert.convert(src, out),
    "weights convert": lambda src, out: weights_commands.convert(src, out, log=_quiet),
    "weights info": lambda src, out: weights_commands.info(src),
    "load_weights": lambda src, out: weights_file.load_weights(src),
    "transfer --weights PATH": lambda src, out: weights_source.resolve_weights(src),
    "weights normalise": lambda src, out: weights_commands.normalise_file(
        src, out, images_dir="builtin", log=_quiet),
    "read_state_dict": lambda src, out: torch_pickle.read_state_dict(src),
    "read_mat": lambda src, out: mat_file.read_mat(src, _mat_want),
}


@pytest.mark.parametrize("suffix", [".h5", ".pth", ".mat"])
@pytest.mark.parametrize("reader", list(FIFO_READERS))
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, reader, suffix):
    source = tmp_path / f"vgg19{suffix}"
    out = tmp_path / "out.h5"
    with _fifo(source) as opened:
        message = _refused(FIFO_READERS[reader], str(source), str(out))
    assert not opened, f"{reader} opened the FIFO"
    assert "FIFO" in message and str(source) in message
    assert not out.exists()


def test_a_fifo_through_the_cli_is_one_line(tmp_path, capsys):
    source = tmp_path / "vgg19.h5"
    with _fifo(source) as opened:
        for args in (("weights", "info", source), ("weights", "convert", source, "-o", tmp_path / "o.h5"),
                     ("weights", "normalise", source, "-o", tmp_path / "o.h5", "--images", "builtin")):
            line = _cli_error(capsys, *args)
            assert "FIFO" in line and str(source) in line
    assert not opened
    assert _listing(tmp_path) == ["vgg19.h5"]


def test_a_fifo_among_the_calibration_images_is_refused_before_any_is_read(stylejax_file, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(photos / "a.png")
    out = tmp_path / "normalised.h5"
    with _fifo(photos / "b.png") as opened:
        message = _refused(weights_commands.normalise_file, str(stylejax_file), str(out),
                           images_dir=str(photos), log=_quiet)
        assert "calibration image" in message and "FIFO" in message and "b.png" in message
        message = _refused(weights_commands.calibration_images, str(photos))
        assert "FIFO" in message and "b.png" in message
    assert not opened
    assert not out.exists()


@pytest.mark.parametrize("how", ["external link", "external storage"])
def test_hdf5_members_in_other_files_are_refused_unopened(tmp_path, how):
    # HDF5 follows an external link, and reads a dataset's external storage, by opening
    # the named file: a weights file pointing into a FIFO would hang its reader.
    fifo = tmp_path / "pipe"
    keras, stylejax = tmp_path / KERAS_NAME, tmp_path / "vgg19.h5"
    _write_declared_keras(keras)
    weights_file.save_weights(stylejax, vgg_files.random_params(2), convention=CAFFE, source="x")
    for path, group, name in ((keras, "block1_conv1", "block1_conv1_W_1:0"), (stylejax, "conv1_1", "kernel")):
        with h5py.File(path, "a") as handle:
            shape = handle[group][name].shape
            del handle[group][name]
            if how == "external link":
                handle[group][name] = h5py.ExternalLink(str(fifo), "/x")
            else:
                handle[group].create_dataset(name, shape=shape, dtype="<f4",
                                             external=[(str(fifo), 0, h5py.h5f.UNLIMITED)])
    with _fifo(fifo) as opened:
        message = _refused(convert.convert, str(keras), str(tmp_path / "out.h5"))
        assert "block1_conv1_W_1:0" in message and ("external link" in message or "other files" in message)
        message = _refused(weights_file.load_weights, str(stylejax))
        assert "conv1_1" in message and ("external link" in message or "other files" in message)
    assert not opened
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------------------
# 3. Truncated, empty and random files.


@pytest.mark.parametrize("keep", [0.5, 0.01, 512])
def test_a_truncated_keras_file_is_one_line_everywhere(keras_master, tmp_path, capsys, keep):
    data = keras_master.read_bytes()
    cut = tmp_path / KERAS_NAME
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    out = tmp_path / "out.h5"
    line = _cli_error(capsys, "weights", "convert", cut, "-o", out)
    assert "truncated or corrupt HDF5 file" in line and str(cut) in line
    for fn in (convert.detect_format, lambda p: convert.convert(p, str(out))):
        message = _refused(fn, str(cut))
        assert "truncated or corrupt HDF5 file" in message and str(cut) in message
    line = _cli_error(capsys, "weights", "info", cut)
    assert "HDF5" in line and str(cut) in line
    assert "HDF5" in _refused(weights_source.resolve_weights, str(cut))  # transfer --weights
    assert not out.exists()
    assert _listing(tmp_path) == [KERAS_NAME]


@pytest.mark.parametrize("suffix", [".h5", ".pth", ".mat"])
def test_empty_and_random_files(tmp_path, capsys, suffix):
    out = tmp_path / "out.h5"
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    line = _cli_error(capsys, "weights", "convert", empty, "-o", out)
    assert "is empty" in line and str(empty) in line
    assert "not an HDF5 file" in _cli_error(capsys, "weights", "info", empty)
    noise = tmp_path / f"noise{suffix}"
    noise.write_bytes(np.random.default_rng(0).bytes(100_000))
    line = _cli_error(capsys, "weights", "convert", noise, "-o", out)
    assert "unknown weights format" in line and str(noise) in line
    assert "not an HDF5 file" in _cli_error(capsys, "weights", "info", noise)
    assert not out.exists()


MAGIC = {
    "hdf5": b"\x89HDF\r\n\x1a\n",
    "zip": b"PK\x03\x04",
    "torch legacy": pickle.dumps(torch_pickle.LEGACY_MAGIC, protocol=2),
    "matlab": b"MATLAB 5.0 MAT-file, Platform: test".ljust(126, b" ") + b"IM",
}


@pytest.mark.parametrize("magic", list(MAGIC))
def test_random_bytes_behind_each_formats_signature(tmp_path, capsys, magic):
    source = tmp_path / f"vgg19.{magic.split()[0]}"
    rng = np.random.default_rng(1)
    for seed in range(5):
        source.write_bytes(MAGIC[magic] + np.random.default_rng(seed).bytes(int(rng.integers(8, 50_000))))
        line = _cli_error(capsys, "weights", "convert", source, "-o", tmp_path / "out.h5")
        assert str(source) in line
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.slow
def test_truncated_torch_and_matlab_files(params, tmp_path, capsys):
    state = vgg_files.torch_state_dict(params)
    files = {}
    for fmt, writer in (("zip", torch_files.write_zip_checkpoint), ("legacy", torch_files.write_legacy_checkpoint)):
        files[fmt] = tmp_path / f"{fmt}.pth"
        writer(files[fmt], state)
    files["matlab"] = tmp_path / "vgg.mat"
    vgg_files.write_matconvnet(files["matlab"], params, (120.0, 110.0, 100.0))
    for fmt, path in files.items():
        data = path.read_bytes()
        for keep in (len(data) // 2, 1000):
            path.write_bytes(data[:keep])
            line = _cli_error(capsys, "weights", "convert", path, "-o", tmp_path / "out.h5",
                              "--convention", "caffe")
            assert "truncated or corrupt" in line and str(path) in line, fmt
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------------------
# 4. A weights folder ($STYLEJAX_WEIGHTS_DIR) that is a file, or lies below one.


@pytest.mark.parametrize("below", [False, True], ids=["a file", "below a file"])
def test_a_weights_folder_that_is_a_file(tmp_path, monkeypatch, capsys, below):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    directory = blocker / "weights" if below else blocker
    monkeypatch.setenv(weights_file.WEIGHTS_DIR_ENV, str(directory))
    monkeypatch.setattr(download, "download", _no_download)  # refused before any download

    def named(message):
        return weights_file.WEIGHTS_DIR_ENV in message and str(directory) in message and str(blocker) in message

    assert named(_refused(weights_commands.fetch, "keras", log=_quiet))
    assert named(_refused(weights_commands.fetch, "keras", str(tmp_path / "out.h5"), log=_quiet))
    assert named(_cli_error(capsys, "weights", "fetch"))
    assert named(_refused(weights_commands.normalise_file, None, None, images_dir="builtin", log=_quiet))
    assert named(_refused(weights_source.resolve_weights, "auto"))  # transfer --weights auto
    assert weights_file.weights_dir() == directory  # a path, not an error
    assert weights_file.find_pretrained() is None
    assert weights_file.find_pretrained(prefer_normalised=False) is None
    assert blocker.read_text() == "x"
    assert _listing(tmp_path) == ["not-a-folder"]


def test_a_weights_folder_still_to_be_made_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_file.WEIGHTS_DIR_ENV, str(tmp_path / "a" / "b"))
    assert weights_file.check_weights_dir() == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # nothing is created by the check


# --------------------------------------------------------------------------------------
# 5. Bombs: files of kilobytes that declare gigabytes.


def _placeholder_torch_state(conv1_1_weight) -> dict:
    """A VGG19 state_dict whose conv tensors other than features.0.weight are one stored
    float expanded to their shape (a valid tensor torch loads), so the file is tiny."""
    state = {}
    for index, name in convert.FEATURE_INDEX.items():
        spec = vgg_layers.CONV_BY_NAME[name]
        state[f"features.{index}.weight"] = np.broadcast_to(
            np.zeros(1, np.float32), (spec.out_channels, spec.in_channels, 3, 3))
        state[f"features.{index}.bias"] = np.broadcast_to(np.zeros(1, np.float32), (spec.out_channels,))
    state["features.0.weight"] = conv1_1_weight
    return state


CONV1_1 = np.random.default_rng(9).standard_normal((64, 3, 3, 3), dtype=np.float32)
HUGE = (64, 3, 4096, 4096)  # conv1_1 as 3.2 G floats: 12.9 GB


def _pickled_int(value: int) -> bytes:
    """The opcode protocol 2 pickles ``value`` with (BININT1, BININT2, BININT or LONG1)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _declare(blob: bytes, *, shape=None, numel=None) -> bytes:
    """``blob`` (a pickle or a whole legacy file) with features.0.weight's size tuple
    (and strides) made ``shape`` and its storage's element count ``numel``."""
    if shape is not None:
        old = b"(" + b"".join(_pickled_int(n) for n in (64, 3, 3, 3)) + b"t"
        old_stride = b"(" + b"".join(_pickled_int(n) for n in (27, 9, 3, 1)) + b"t"
        strides = [int(np.prod(shape[i + 1:])) for i in range(4)]
        assert blob.count(old) == 1 and blob.count(old_stride) == 1
        blob = blob.replace(old, b"(" + b"".join(_pickled_int(n) for n in shape) + b"t")
        blob = blob.replace(old_stride, b"(" + b"".join(_pickled_int(n) for n in strides) + b"t")
    if numel is not None:
        assert blob.count(_pickled_int(1728)) == 1  # the storage's numel, in the pickle
        blob = blob.replace(_pickled_int(1728), _pickled_int(numel))
    return blob


@pytest.fixture(scope="module")
def torch_zip_base(tmp_path_factory):
    path = tmp_path_factory.mktemp("torch") / "base.pth"
    torch_files.write_zip_checkpoint(path, _placeholder_torch_state(CONV1_1))
    return path


def test_the_torch_bomb_bases_convert_when_intact(torch_zip_base, tmp_path):
    legacy = tmp_path / TORCH_NAME
    torch_files.write_legacy_checkpoint(legacy, _placeholder_torch_state(CONV1_1))
    for source in (torch_zip_base, legacy):
        assert os.path.getsize(source) < 100_000
        convert.convert(str(source), str(tmp_path / "out.h5"), convention="caffe")
        kernel = weights_file.load_weights(tmp_path / "out.h5").params["conv1_1"]["kernel"]
        np.testing.assert_array_equal(kernel, np.transpose(CONV1_1, (2, 3, 1, 0)))


def _zip_bomb(base, path, *, shape=None, numel=None, member_declares=None):
    """The base archive with its conv1_1 storage replaced by 64 MiB of deflated zeros
    (64 KB in the file), the pickle declaring ``shape``/``numel``, and the central
    directory declaring ``member_declares`` bytes for the member."""
    pickled = _declare(torch_files.data_pickle(_placeholder_torch_state(CONV1_1)), shape=shape, numel=numel)
    torch_files.rewrite_zip(base, path, {"archive/data.pkl": pickled,
                                         "archive/data/0": torch_files.zero_chunks(64 << 20)},
                            deflate={"archive/data/0"})
    if member_declares is not None:
        torch_files.set_declared_size(path, "archive/data/0", member_declares)
    assert os.path.getsize(path) < 200_000
    return path


def test_zip_pth_conv_declared_huge_is_refused_by_its_shape(torch_zip_base, tmp_path, capsys):
    source = _zip_bomb(torch_zip_base, tmp_path / TORCH_NAME, shape=HUGE, numel=int(np.prod(HUGE)))
    out = tmp_path / "out.h5"
    message = _refused_bounded("zip .pth, conv1_1 declared (64, 3, 4096, 4096)", convert.convert,
                               str(source), str(out))
    assert "'features.0.weight' has shape (64, 3, 4096, 4096), expected (64, 3, 3, 3)" in message
    assert "features.0.weight" in _cli_error(capsys, "weights", "convert", source, "-o", out)
    assert not out.exists()


@pytest.mark.parametrize(("numel", "expect"), [
    (None, "declares 4000000000 bytes uncompressed"),  # the member claims 4 GB, the pickle 6912 B
    (10**9, "would inflate"),  # both claim 4 GB: the inflation ratio gives it away
])
def test_zip_pth_storage_inflating_to_gigabytes_is_refused(torch_zip_base, tmp_path, numel, expect):
    source = _zip_bomb(torch_zip_base, tmp_path / TORCH_NAME, numel=numel, member_declares=4_000_000_000)
    out = tmp_path / "out.h5"
    message = _refused_bounded(f"zip .pth, storage claims 4 GB ({expect})", convert.convert,
                               str(source), str(out))
    assert expect in message and "refusing to decompress" in message and str(source) in message
    assert not out.exists()


def test_legacy_pth_conv_declared_huge_is_refused_by_its_shape(tmp_path):
    source = tmp_path / TORCH_NAME
    torch_files.write_legacy_checkpoint(source, _placeholder_torch_state(CONV1_1))
    source.write_bytes(_declare(source.read_bytes(), shape=HUGE))
    out = tmp_path / "out.h5"
    message = _refused_bounded("legacy .pth, conv1_1 declared (64, 3, 4096, 4096)", convert.convert,
                               str(source), str(out))
    assert "'features.0.weight' has shape (64, 3, 4096, 4096), expected (64, 3, 3, 3)" in message
    assert not out.exists()


def test_legacy_pth_storage_claiming_gigabytes_is_refused_unread(tmp_path):
    source = tmp_path / TORCH_NAME
    torch_files.write_legacy_checkpoint(source, _placeholder_torch_state(CONV1_1))
    blob = _declare(source.read_bytes(), numel=10**9)  # the pickle says 4 GB ...
    assert blob.count(struct.pack("<q", 1728)) == 1
    source.write_bytes(blob.replace(struct.pack("<q", 1728), struct.pack("<q", 10**9)))  # ... and the data's count
    out = tmp_path / "out.h5"
    message = _refused_bounded("legacy .pth, storage claims 4 GB", convert.convert, str(source), str(out))
    assert "needs 4000000000 bytes" in message and "truncated" in message
    assert not out.exists()


def _write_declared_keras(path, *, huge=None, extra=None):
    """A Keras VGG19 file whose datasets declare their shapes but hold no data (gzip
    chunks never written read as zeros): a few KB. ``huge``: (layer, shape) of a conv
    kernel declared instead; ``extra``: (layer, shape) of a non-conv layer added."""
    layer_names = list(vgg_files.KERAS_LAYER_NAMES) + ([extra[0]] if extra else [])
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        for keras_name in layer_names:
            group = handle.create_group(keras_name)
            if extra and keras_name == extra[0]:
                shapes = {f"{keras_name}_W_1:0": extra[1]}
            elif "_conv" in keras_name:
                spec = vgg_layers.CONV_BY_NAME[f"conv{keras_name[5]}_{keras_name[-1]}"]
                kernel = huge[1] if huge and huge[0] == keras_name else spec.kernel_shape
                shapes = {f"{keras_name}_W_1:0": kernel, f"{keras_name}_b_1:0": spec.bias_shape}
            else:
                shapes = {}
            group.attrs["weight_names"] = np.array([n.encode() for n in shapes], dtype="S40")
            for name, shape in shapes.items():
                group.create_dataset(name, shape=shape, dtype="<f4", compression="gzip",
                                     chunks=tuple(min(n, 64) for n in shape))


def test_keras_h5_dataset_declared_huge_is_refused_by_its_shape(tmp_path):
    source = tmp_path / KERAS_NAME
    _write_declared_keras(source, huge=("block1_conv1", (3, 3, 3, 1 << 26)))  # 7.2 GB of zeros
    assert os.path.getsize(source) < 200_000
    out = tmp_path / "out.h5"
    message = _refused_bounded("keras .h5, block1_conv1 kernel declared (3, 3, 3, 67108864)",
                               convert.convert, str(source), str(out))
    assert "block1_conv1 kernel has shape (3, 3, 3, 67108864), expected (3, 3, 3, 64)" in message
    assert not out.exists()


def test_a_huge_dropped_keras_layer_is_never_read(tmp_path):
    # A non-conv layer declaring 16 GB: dropped by the conversion, never read. The
    # conversion itself holds VGG19's 80 MB of weights a few times over.
    source = tmp_path / KERAS_NAME
    _write_declared_keras(source, extra=("fc1", (1 << 17, 1 << 15)))
    (result, _), _, traced, grown = _measured(convert.convert, str(source), str(tmp_path / "out.h5"))
    _report(f"keras .h5 with a 16 GB dropped layer converts: traced peak {traced / 2**20:.0f} MiB, "
            f"ru_maxrss growth {grown / 2**20:.0f} MiB")
    assert "fc1" in result.dropped
    assert traced < 400 << 20 and grown < RSS_BYTES


def test_flaxmodels_h5_dataset_declared_huge_is_refused_by_its_shape(tmp_path):
    source = tmp_path / "vgg19_weights.h5"
    with h5py.File(source, "w") as handle:
        for spec in vgg_layers.CONVS:
            group = handle.create_group(spec.name)
            kernel = (3, 3, 3, 1 << 26) if spec.name == "conv1_1" else spec.kernel_shape
            group.create_dataset("weight", shape=kernel, dtype="<f4", compression="gzip", chunks=(3, 3, 3, 64))
            group.create_dataset("bias", shape=spec.bias_shape, dtype="<f4")
    out = tmp_path / "out.h5"
    message = _refused_bounded("flaxmodels .h5, conv1_1 weight declared (3, 3, 3, 67108864)",
                               convert.convert, str(source), str(out))
    assert "conv1_1/weight has shape (3, 3, 3, 67108864), expected (3, 3, 3, 64)" in message
    assert not out.exists()


def test_a_stylejax_file_declaring_a_huge_kernel_is_refused_by_its_shape(tmp_path, capsys):
    # transfer --weights PATH and weights info read stylejax files: the same rule.
    source = tmp_path / "vgg19.h5"
    weights_file.save_weights(source, vgg_files.random_params(1), convention=CAFFE, source="x")
    with h5py.File(source, "a") as handle:
        del handle["conv1_1/kernel"]
        handle["conv1_1"].create_dataset("kernel", shape=(3, 3, 3, 1 << 26), dtype="<f4",
                                         compression="gzip", chunks=(3, 3, 3, 64))
    # load_weights reads the whole file (80 MB here) and checks every layer, to list all
    # that is wrong at once: bounded by the file's size, never by what it declares.
    message = _refused_bounded("stylejax .h5, conv1_1 kernel declared (3, 3, 3, 67108864)",
                               weights_source.resolve_weights, str(source),
                               traced_limit=3 * os.path.getsize(source))
    assert "conv1_1/kernel has shape (3, 3, 3, 67108864), expected (3, 3, 3, 64)" in message
    assert "conv1_1/kernel" in _cli_error(capsys, "weights", "info", source)


# A MATLAB 5 writer, independent of the reader under test. A segment list holds bytes,
# and ints for runs of zero bytes left as holes in the file (sparse: no disk, no memory).


def _n(segments) -> int:
    return sum(s if isinstance(s, int) else len(s) for s in segments)


def _mat_element(mtype: int, data, endian="<") -> list:
    n = data if isinstance(data, int) else len(data)
    return [struct.pack(endian + "II", mtype, n), data, bytes(-n % 8)]


def _mat_array(cls: int, dims, body: list, name: str = "", endian="<") -> list:
    content = [*_mat_element(6, struct.pack(endian + "II", cls, 0), endian),
               *_mat_element(5, struct.pack(f"{endian}{len(dims)}i", *dims), endian),
               *_mat_element(1, name.encode(), endian), *body]
    return [struct.pack(endian + "II", 14, _n(content)), *content]


def _mat_single(array_or_shape, endian="<") -> list:
    """A single-precision array; a shape instead of an array: a hole of that size."""
    if isinstance(array_or_shape, tuple):
        shape, data = array_or_shape, 4 * int(np.prod(array_or_shape))
    else:
        shape = array_or_shape.shape
        data = np.asarray(array_or_shape, endian + "f4").tobytes(order="F")
    return _mat_array(7, shape, _mat_element(7, data, endian), endian=endian)


def _mat_text(text: str, endian="<") -> list:
    return _mat_array(4, (1, len(text)), _mat_element(16, text.encode(), endian), endian=endian)


def _mat_cell(items: list, name="", endian="<") -> list:
    return _mat_array(1, (1, len(items)), [s for item in items for s in item], name, endian)


def _mat_struct(fields: dict, name="", endian="<") -> list:
    names = b"".join(f.encode().ljust(32, b"\0") for f in fields)
    body = [*_mat_element(5, struct.pack(endian + "i", 32), endian), *_mat_element(1, names, endian)]
    body += [s for value in fields.values() for s in value]
    return _mat_array(2, (1, 1), body, name, endian)


def _matconvnet(params, *, kernel_of=None, fc6=(7, 7, 512, 8), endian="<") -> list[list]:
    """The variables ``layers`` and ``meta`` of a MatConvNet VGG19 (SimpleNN layout):
    kernels (w, h, in, out), biases (out, 1). ``kernel_of``: (layer, shape) whose kernel
    is a hole of that shape; ``fc6``: the fc6 kernel's shape (a hole)."""
    layers = []
    for spec in vgg_layers.CONVS:
        if kernel_of and kernel_of[0] == spec.name:
            kernel = _mat_single(kernel_of[1], endian)
        else:
            kernel = _mat_single(np.transpose(params[spec.name]["kernel"], (1, 0, 2, 3)), endian)
        bias = _mat_single(params[spec.name]["bias"].reshape(-1, 1), endian)
        layers.append(_mat_struct({"name": _mat_text(spec.name, endian), "type": _mat_text("conv", endian),
                                   "weights": _mat_cell([kernel, bias], endian=endian)}, endian=endian))
        layers.append(_mat_struct({"name": _mat_text(spec.name.replace("conv", "relu"), endian),
                                   "type": _mat_text("relu", endian)}, endian=endian))
    fc = _mat_cell([_mat_single(fc6, endian), _mat_single((fc6[-1], 1), endian)], endian=endian)
    layers.append(_mat_struct({"name": _mat_text("fc6", endian), "type": _mat_text("conv", endian),
                               "weights": fc}, endian=endian))
    average = _mat_single(np.array([[[123.0, 117.0, 104.0]]], np.float32), endian)
    meta = _mat_struct({"normalization": _mat_struct({"averageImage": average}, endian=endian)},
                       "meta", endian)
    return [_mat_cell(layers, "layers", endian), meta]


def _write_mat(path, variables: list[list], *, compress=None, endian="<") -> None:
    """A MATLAB 5 file of ``variables``, each compressed at zlib level ``compress`` if
    given (level 0: deflate's stored blocks, quick for 80 MB of random weights)."""
    header = b"MATLAB 5.0 MAT-file, written by test_weights_hostile".ljust(116, b" ") + bytes(8)
    header += struct.pack(endian + "H", 0x0100) + (b"IM" if endian == "<" else b"MI")
    with open(path, "wb") as f:
        f.write(header)
        for variable in variables:
            if compress is not None:
                packed = zlib.compress(b"".join(bytes(s) if isinstance(s, int) else s for s in variable),
                                       compress)
                f.write(struct.pack(endian + "II", 15, len(packed)) + packed)
                continue
            for segment in variable:
                if isinstance(segment, int):
                    f.seek(segment, os.SEEK_CUR)
                else:
                    f.write(segment)
        f.truncate(f.tell())


def _sparse_files(folder) -> bool:
    probe = folder / "probe"
    with open(probe, "wb") as f:
        f.seek(64 << 20)
        f.write(b"x")
    sparse = os.stat(probe).st_blocks * 512 < 1 << 20
    probe.unlink()
    return sparse


@pytest.mark.parametrize(("compress", "endian"), [(None, "<"), (0, "<"), (None, ">")],
                         ids=["plain", "compressed", "big-endian"])
def test_matconvnet_files_of_each_kind_convert(params, tmp_path, compress, endian):
    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    _write_mat(source, _matconvnet(params, fc6=(7, 7, 512, 2), endian=endian), compress=compress, endian=endian)
    result, _ = convert.convert(str(source), str(tmp_path / "out.h5"))
    assert result.dropped == ("fc6",) and result.convention.mean == (123.0, 117.0, 104.0)
    loaded = weights_file.load_weights(tmp_path / "out.h5")
    for name in weights_file.CONV_NAMES:
        np.testing.assert_array_equal(loaded.params[name]["kernel"], params[name]["kernel"])
        np.testing.assert_array_equal(loaded.params[name]["bias"], params[name]["bias"])


def test_mat_reader_reads_what_scipy_reads(tmp_path):
    # An independent writer (scipy's, compressed) and every kind of array a MatConvNet
    # file holds: the values the reader returns are scipy's.
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(3)
    pair = np.empty((1, 2), dtype=object)
    pair[0, 0], pair[0, 1] = rng.standard_normal((3, 3, 2, 4)).astype(np.float32), np.arange(4.0).reshape(4, 1)
    content = {
        "layers": np.array([[{"name": "conv1_1", "type": "conv", "weights": pair, "pad": [1, 1, 1, 1],
                              "precious": False, "opts": np.empty((0, 0), dtype=object)}]], dtype=object),
        "meta": {"normalization": {"averageImage": rng.uniform(0, 255, (4, 5, 3)),
                                   "interpolation": "bilinear"},
                 "classes": {"name": np.array(["tench", "goldfish"], dtype=object)}},
        "counts": np.arange(6, dtype=np.int16).reshape(2, 3),
    }
    for compress in (True, False):
        source = tmp_path / f"small{compress}.mat"
        scipy_io.savemat(source, content, do_compression=compress)
        got = mat_file.read_mat(str(source), _mat_want)
        layer = got["layers"].items[0].elements[0]
        assert (layer["name"], layer["type"]) == ("conv1_1", "conv")
        np.testing.assert_array_equal(layer["weights"].items[0], pair[0, 0])
        np.testing.assert_array_equal(layer["weights"].items[1], pair[0, 1])
        np.testing.assert_array_equal(layer["pad"], [[1, 1, 1, 1]])
        normalization = got["meta"].elements[0]["normalization"].elements[0]
        np.testing.assert_array_equal(normalization["averageImage"], content["meta"]["normalization"]["averageImage"])
        assert normalization["interpolation"] == "bilinear"
        assert [c for c in got["meta"].elements[0]["classes"].elements[0]["name"].items] == ["tench", "goldfish"]
        np.testing.assert_array_equal(got["counts"], content["counts"])
        assert got["counts"].dtype == np.int16


def test_mat_compressed_variable_declaring_gigabytes_is_refused(tmp_path):
    # A compressed variable whose inflated stream starts with an array claiming 4 GB.
    header = _mat_cell([], "layers")
    inner = struct.pack("<II", 14, 4_000_000_000) + b"".join(header[1:])
    packed = zlib.compress(inner + bytes(1 << 20))
    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    _write_mat(source, [])
    with open(source, "ab") as f:
        f.write(struct.pack("<II", 15, len(packed)) + packed)
    assert os.path.getsize(source) < 8192
    message = _refused_bounded(".mat, a compressed variable claims 4 GB", convert.convert,
                               str(source), str(tmp_path / "out.h5"))
    assert "decompression bomb" in message and "4000000000" in message and str(source) in message


def test_mat_compressed_kernel_declared_huge_is_refused_by_its_shape(params, tmp_path):
    # A compressed conv1_1 kernel declared 226 MB (within the inflation ratio of the 3 MB
    # file): refused by its shape as soon as its dimensions are read.
    shape = (3, 3, 3, 1 << 21)
    prefix = []
    for segment in _matconvnet(params, kernel_of=("conv1_1", shape))[0]:
        if isinstance(segment, int):  # the kernel's data: the stream stops here
            break
        prefix.append(segment)
    packed = zlib.compress(b"".join(prefix)) + np.random.default_rng(0).bytes(3 << 20)
    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    _write_mat(source, [])
    with open(source, "ab") as f:
        f.write(struct.pack("<II", 15, len(packed)) + packed)
    message = _refused_bounded(".mat compressed, conv1_1 kernel declared (3, 3, 3, 2097152)",
                               convert.convert, str(source), str(tmp_path / "out.h5"))
    assert "the kernel of conv1_1 has shape (3, 3, 3, 2097152), expected (3, 3, 3, 64)" in message


def test_mat_kernel_declared_huge_is_refused_by_its_shape(params, tmp_path):
    # An uncompressed file whose conv1_1 kernel really spans 1.8 GB (a hole: sparse).
    if not _sparse_files(tmp_path):
        pytest.skip("the file system of tmp_path has no sparse files")
    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    _write_mat(source, _matconvnet(params, kernel_of=("conv1_1", (3, 3, 3, 1 << 24))))
    assert os.path.getsize(source) > 1 << 30
    message = _refused_bounded(".mat, conv1_1 kernel of 1.8 GB", convert.convert, str(source),
                               str(tmp_path / "out.h5"))
    assert "the kernel of conv1_1 has shape (3, 3, 3, 16777216), expected (3, 3, 3, 64)" in message


@pytest.mark.slow
def test_a_huge_dropped_mat_layer_is_never_read(params, tmp_path):
    # fc6 of the real file's 411 MB (a hole) is skipped unread; the 16 convolutions are
    # converted (and the whole file hashed for the record).
    if not _sparse_files(tmp_path):
        pytest.skip("the file system of tmp_path has no sparse files")
    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    _write_mat(source, _matconvnet(params, fc6=(7, 7, 512, 4096)))
    assert os.path.getsize(source) > 400 << 20
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result, _ = convert.convert(str(source), str(tmp_path / "out.h5"))
        elapsed = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _report(f".mat with a 411 MB dropped fc6 converts: {elapsed * 1000:.0f} ms, "
            f"traced peak {traced / 2**20:.0f} MiB")
    assert result.dropped == ("fc6",)
    assert traced < 400 << 20


def test_a_weights_file_larger_than_any_vgg19_is_refused_unread(tmp_path, capsys):
    # load_weights reads the whole file into memory: one of 2 GB (a hole) is refused by
    # its size first (transfer --weights PATH, weights info).
    if not _sparse_files(tmp_path):
        pytest.skip("the file system of tmp_path has no sparse files")
    source = tmp_path / "vgg19.h5"
    with open(source, "wb") as f:
        f.write(MAGIC["hdf5"])
        f.truncate(2 << 30)
    message = _refused_bounded("a 2 GB weights file", weights_source.resolve_weights, str(source))
    assert "larger than any stylejax weights file" in message and str(source) in message
    assert "larger than any" in _cli_error(capsys, "weights", "info", source)


# --------------------------------------------------------------------------------------
# 6. Symlink loops and dangling symlinks.


@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_symlink_loops_and_dangling_symlinks_are_one_line(tmp_path, capsys, kind):
    source = tmp_path / "vgg19.h5"
    if kind == "loop":
        os.symlink(source.name, source)  # points at itself
        expect = "symlink loop"
    else:
        os.symlink(tmp_path / "gone.h5", source)
        expect = "does not exist"
    out = tmp_path / "out.h5"
    for args in (("weights", "convert", source, "-o", out), ("weights", "info", source)):
        line = _cli_error(capsys, *args)
        assert expect in line and str(source) in line
    for fn in (convert.detect_format, weights_file.load_weights, torch_pickle.read_state_dict):
        assert expect in _refused(fn, str(source))
    assert not out.exists()

