"""``stylejax weights fetch | convert | normalise | info`` through the CLI."""

import functools
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest
import vgg_files
from PIL import Image

from stylejax import cli
from stylejax._src import normalise
from stylejax._src.convention import CAFFE
from stylejax._src.weights import sources, weights_file


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    path = folder / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    vgg_files.write_keras(path, vgg_files.random_params(3))
    return path


@pytest.fixture(scope="module")
def server(keras_file):
    """A static file server on 127.0.0.1 (no other address is ever contacted)."""
    handler = functools.partial(_QuietHandler, directory=str(keras_file.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _run(args, capsys):
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr()


def _error_line(err: str) -> str:
    """The one error line (progress messages may precede it)."""
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


def _point_keras_at(monkeypatch, url, md5):
    keras = sources.SOURCES["keras"]
    monkeypatch.setitem(sources.SOURCES, "keras", sources.WeightSource(
        **{**keras.__dict__, "url": f"{url}/{keras.filename}", "md5": md5}))


@pytest.mark.slow
def test_fetch_verifies_converts_and_auto_uses_it(keras_file, server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "weights"))
    _point_keras_at(monkeypatch, server, hashlib.md5(keras_file.read_bytes()).hexdigest())
    status, out = _run(["weights", "fetch"], capsys)
    assert status == 0, out.err
    converted = tmp_path / "weights" / "vgg19.h5"
    loaded = weights_file.load_weights(converted)
    assert loaded.source.startswith("keras:") and loaded.convention == CAFFE
    assert loaded.source_sha256 == weights_file.file_sha256(keras_file)
    assert weights_file.find_pretrained() == converted
    # transfer --weights auto (the default) now runs on it.
    picture = tmp_path / "p.png"
    Image.fromarray(np.full((20, 20, 3), 120, np.uint8)).save(picture)
    report = tmp_path / "r.json"
    status, out = _run(["transfer", picture, picture, "-o", tmp_path / "o.png", "--size", "16",
                        "--iterations", "0", "--quiet", "--report", report, "--style-layers", "conv1_1",
                        "--content-layer", "conv1_1", "--optimizer", "adam"], capsys)
    assert status == 0, out.err
    assert json.loads(report.read_text())["weights"]["path"] == str(converted)


def test_fetch_with_a_wrong_checksum_writes_nothing(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "weights"))
    _point_keras_at(monkeypatch, server, "0" * 32)
    status, out = _run(["weights", "fetch"], capsys)
    assert status == 2
    assert "md5" in _error_line(out.err)
    assert not (tmp_path / "weights" / "vgg19.h5").exists()
    assert list((tmp_path / "weights" / "downloads").iterdir()) == []


def test_fetch_offline_names_the_url_and_the_manual_route(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "weights"))
    _point_keras_at(monkeypatch, "http://127.0.0.1:9", None)  # the discard port: nothing listens
    status, out = _run(["weights", "fetch"], capsys)
    assert status == 2
    line = _error_line(out.err)
    assert "127.0.0.1:9" in line and "stylejax weights convert" in line


def test_convert_and_info(keras_file, tmp_path, capsys):
    out_path = tmp_path / "w.h5"
    status, out = _run(["weights", "convert", keras_file, "-o", out_path], capsys)
    assert status == 0, out.err
    status, out = _run(["weights", "info", out_path], capsys)
    assert status == 0
    assert "caffe" in out.out and "conv5_4   (3, 3, 512, 512)" in out.out and "20,024,384" in out.out


def test_convert_refuses_unknown_files_and_writes_nothing(tmp_path, capsys):
    junk = tmp_path / "x.pth"
    junk.write_bytes(b"\x00" * 100)
    status, out = _run(["weights", "convert", junk, "-o", tmp_path / "w.h5"], capsys)
    assert status == 2 and "unknown weights format" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pth"]


@pytest.mark.slow
def test_normalise_on_a_folder_records_the_calibration_set(tmp_path, capsys):
    params = vgg_files.random_params(4, scale=0.1)
    source = tmp_path / "vgg19.h5"
    weights_file.save_weights(source, params, convention=CAFFE, source="test: random")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photos / name)
    target = tmp_path / "vgg19_normalised.h5"
    status, out = _run(["weights", "normalise", source, "-o", target, "--images", photos], capsys)
    assert status == 0, out.err
    loaded = weights_file.load_weights(target)
    assert loaded.normalised and [f["name"] for f in loaded.normalisation["files"]] == ["a.png", "b.jpg"]
    from stylejax._src.weights import weights_commands

    calibration, _ = weights_commands.calibration_images(str(photos))
    means = normalise.mean_activations(loaded.params, calibration, CAFFE, pooling="max")
    for name, values in means.items():
        alive = values[values > 0]
        np.testing.assert_allclose(alive, 1.0, rtol=2e-3, err_msg=name)
    status, out = _run(["weights", "info", target], capsys)
    assert "normalised:  yes" in out.out and "folder" in out.out


def test_normalise_default_uses_scikit_image_photographs(tmp_path, capsys):
    pytest.importorskip("skimage")
    from stylejax._src.weights import weights_commands

    calibration, identity = weights_commands.calibration_images(None)
    assert calibration.shape == (6, 224, 224, 3)
    assert identity["calibration"].startswith("scikit-image")
    assert calibration.min() >= 0.0 and calibration.max() <= 1.0


class _Payload:
    """Pickles as a call of builtins.eval: what a malicious checkpoint would contain."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


def test_convert_refuses_a_malicious_pickle_without_running_it(tmp_path, capsys):
    import pickle

    import torch_files

    marker = tmp_path / "pwned"
    source = tmp_path / "vgg19-evil.pth"
    torch_files.write_zip_checkpoint(source, {"x": np.zeros(2, np.float32)},
                                     data_pkl=pickle.dumps({"features.0.weight": _Payload(marker)}, protocol=2))
    out = tmp_path / "w.h5"
    status, result = _run(["weights", "convert", source, "-o", out, "--convention", "caffe"], capsys)
    assert status == 2
    assert "eval, which a VGG19 state_dict never needs" in _error_line(result.err)  # protocol 2: __builtin__
    assert not marker.exists() and not out.exists()
