"""The stylejax weights file: round trip, byte stability, validation messages, atomic saves,
and where pretrained weights are looked for."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time

import h5py
import numpy as np
import pytest

from stylejax._src.convention import CAFFE, TORCHVISION
from stylejax._src.errors import UserError
from stylejax._src.layers import CONV_NAMES, CONV_PARAMETER_COUNT, CONVS
from stylejax._src.weights import weights_file as wf

_NORMALISATION = {"images": ["a.jpg", "b.jpg"], "pooling": "average", "target_mean": 1.0}
_HEADER = {
    "format": "stylejax-vgg19",
    "format_version": 1,
    "input_convention": json.dumps(CAFFE.to_dict()),
}


@pytest.fixture(scope="module")
def params():
    """Full-shape VGG19 params (80 MB of float32), built once for the module."""
    rng = np.random.default_rng(0)
    return {
        c.name: {
            "kernel": rng.standard_normal(c.kernel_shape, dtype=np.float32) * np.float32(0.01),
            "bias": rng.standard_normal(c.bias_shape, dtype=np.float32) * np.float32(0.01),
        }
        for c in CONVS
    }


@pytest.fixture(scope="module")
def saved(params, tmp_path_factory):
    """One valid weights file, shared by the read-only tests."""
    path = tmp_path_factory.mktemp("saved") / "w.h5"
    digest = wf.save_weights(
        path,
        params,
        convention=CAFFE,
        source="random: test normal, seed 0",
        source_sha256="ab" * 32,
        normalised=True,
        normalisation=_NORMALISATION,
        created_by="stylejax 0.1.0",
    )
    return path, digest


def _copy_tree(params):
    """A new outer and per-layer dict sharing the arrays (cheap to mutate)."""
    return {name: dict(layer) for name, layer in params.items()}


def _write_raw(path, tree, attrs=None):
    """Writes an HDF5 file by hand: groups for dicts, datasets for arrays."""
    with h5py.File(path, "w") as handle:
        for key, value in (_HEADER if attrs is None else attrs).items():
            handle.attrs[key] = value
        for name, layer in tree.items():
            if isinstance(layer, dict):
                group = handle.create_group(name)
                for key, array in layer.items():
                    group[key] = array
            else:
                handle[name] = layer
    return path


def _load_error(path) -> str:
    with pytest.raises(UserError) as info:
        wf.load_weights(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def _temp_leftovers(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- counting, hashing


def test_parameter_count(params):
    assert wf.count_parameters(params) == CONV_PARAMETER_COUNT == 20_024_384


def test_params_sha256_is_the_documented_canonical_hash(params):
    digest = hashlib.sha256()
    for name in CONV_NAMES:
        digest.update(params[name]["kernel"].astype("<f4").tobytes())
        digest.update(params[name]["bias"].astype("<f4").tobytes())
    assert wf.params_sha256(params) == digest.hexdigest()


def test_params_sha256_depends_on_values_not_container(params):
    reference = wf.params_sha256(params)
    reordered = {
        name: {"bias": params[name]["bias"], "kernel": params[name]["kernel"]}
        for name in reversed(CONV_NAMES)
    }
    assert wf.params_sha256(reordered) == reference
    changed = _copy_tree(params)
    bias = params["conv5_4"]["bias"].copy()
    bias[-1] = np.nextafter(bias[-1], np.float32(1))  # one ulp
    changed["conv5_4"]["bias"] = bias
    assert wf.params_sha256(changed) != reference


def test_file_sha256_streams_whole_file(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)  # crosses chunk boundaries
    path.write_bytes(data)
    assert wf.file_sha256(path) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- round trip


def test_round_trip_is_bit_exact(params, saved):
    path, digest = saved
    loaded = wf.load_weights(path)
    assert set(loaded.params) == set(CONV_NAMES)
    for name in CONV_NAMES:
        assert set(loaded.params[name]) == {"kernel", "bias"}
        for key in ("kernel", "bias"):
            got, want = loaded.params[name][key], params[name][key]
            assert got.dtype == np.float32
            assert got.shape == want.shape
            # Bit-for-bit: compare the raw float32 bit patterns.
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert loaded.path == os.path.abspath(path)
    assert loaded.sha256 == digest == wf.file_sha256(path)
    assert loaded.source == "random: test normal, seed 0"
    assert loaded.source_sha256 == "ab" * 32
    assert loaded.convention == CAFFE
    assert loaded.normalised is True
    assert loaded.normalisation == _NORMALISATION
    assert loaded.created_by == "stylejax 0.1.0"
    assert wf.params_sha256(loaded.params) == wf.params_sha256(params)


def test_describe_is_json_ready(saved):
    path, digest = saved
    description = wf.load_weights(path).describe()
    assert description == {
        "path": os.path.abspath(path),
        "sha256": digest,
        "source": "random: test normal, seed 0",
        "input_convention": CAFFE.to_dict(),
        "normalised": True,
        "normalisation": _NORMALISATION,
    }
    assert json.loads(json.dumps(description)) == description


def test_file_layout_and_attributes(saved):
    path, _ = saved
    with h5py.File(path, "r") as handle:
        assert sorted(handle) == sorted(CONV_NAMES)
        for spec in CONVS:
            group = handle[spec.name]
            assert sorted(group) == ["bias", "kernel"]
            assert group["kernel"].shape == spec.kernel_shape
            assert group["bias"].shape == spec.bias_shape
            assert group["kernel"].dtype == np.dtype("<f4")
            assert group["bias"].dtype == np.dtype("<f4")
        attrs = dict(handle.attrs)
    assert attrs["format"] == "stylejax-vgg19"
    assert attrs["format_version"] == 1
    assert json.loads(attrs["input_convention"]) == CAFFE.to_dict()
    assert attrs["source"] == "random: test normal, seed 0"
    assert attrs["source_sha256"] == "ab" * 32
    assert bool(attrs["normalised"]) is True
    assert json.loads(attrs["normalisation"]) == _NORMALISATION
    assert attrs["created_by"] == "stylejax 0.1.0"


def test_unnormalised_defaults_round_trip(params, tmp_path):
    path = tmp_path / "plain.h5"
    wf.save_weights(path, params, convention=TORCHVISION, source="x")
    loaded = wf.load_weights(path)
    assert loaded.convention == TORCHVISION
    assert loaded.normalised is False
    assert loaded.normalisation is None
    assert loaded.source_sha256 == ""
    with h5py.File(path, "r") as handle:
        assert handle.attrs["normalisation"] == "null"


@pytest.mark.slow
def test_saving_the_same_weights_twice_is_byte_identical(params, saved, tmp_path):
    # HDF5 can record object timestamps (1 s resolution); sleep past a tick so any
    # recorded time would differ.
    first, first_digest = saved
    time.sleep(1.1)
    second = tmp_path / "other_name.h5"
    second_digest = wf.save_weights(
        second,
        params,
        convention=CAFFE,
        source="random: test normal, seed 0",
        source_sha256="ab" * 32,
        normalised=True,
        normalisation=_NORMALISATION,
        created_by="stylejax 0.1.0",
    )
    assert first.read_bytes() == second.read_bytes()
    assert first_digest == second_digest


def test_other_float_dtypes_are_stored_as_float32(params, tmp_path):
    as_float64 = {
        n: {k: v.astype(np.float64) for k, v in layer.items()} for n, layer in params.items()
    }
    path = tmp_path / "f64.h5"
    wf.save_weights(path, as_float64, convention=CAFFE, source="f64")
    loaded = wf.load_weights(path)
    for name in CONV_NAMES:
        for key in ("kernel", "bias"):
            assert loaded.params[name][key].dtype == np.float32
            # float32 -> float64 -> float32 is exact.
            np.testing.assert_allclose(loaded.params[name][key], params[name][key], rtol=0, atol=0)


def test_jax_arrays_can_be_saved(params, tmp_path):
    import jax.numpy as jnp

    as_jax = {n: {k: jnp.asarray(v) for k, v in layer.items()} for n, layer in params.items()}
    path = tmp_path / "jax.h5"
    wf.save_weights(path, as_jax, convention=CAFFE, source="jax")
    assert wf.params_sha256(wf.load_weights(path).params) == wf.params_sha256(params)


def test_in_memory_weights(params):
    loaded = wf.LoadedWeights.from_params(params, convention=TORCHVISION, source="random: seed 0")
    assert loaded.path is None
    assert loaded.sha256 == wf.params_sha256(params)
    assert loaded.describe()["path"] is None
    assert loaded.describe()["input_convention"] == TORCHVISION.to_dict()
    assert loaded.params["conv1_1"]["kernel"] is not params["conv1_1"]["kernel"]  # copied
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.source = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- load errors


def test_missing_file(tmp_path):
    message = _load_error(tmp_path / "nope.h5")
    assert "no such file" in message


def test_directory(tmp_path):
    directory = tmp_path / "dir.h5"
    directory.mkdir()
    assert "folder" in _load_error(directory)


@pytest.mark.parametrize("content", [b"", b"conv1_1 kernel\nnot hdf5\n"])
def test_not_hdf5(tmp_path, content):
    path = tmp_path / "w.h5"
    path.write_bytes(content)
    assert "is not an HDF5 file" in _load_error(path)


def test_truncated_file(saved, tmp_path):
    path = tmp_path / "cut.h5"
    data = saved[0].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _load_error(path)
    assert "damaged HDF5 file" in message


def test_unconverted_keras_file(params, tmp_path):
    # The Keras VGG19 layout: block groups with TF-named datasets and no format attribute.
    tree = {
        "block1_conv1": {
            "block1_conv1_W_1:0": params["conv1_1"]["kernel"],
            "block1_conv1_b_1:0": params["conv1_1"]["bias"],
        }
    }
    path = _write_raw(tmp_path / "keras.h5", tree, attrs={"layer_names": [b"block1_conv1"]})
    message = _load_error(path)
    assert "not a stylejax weights file" in message
    assert "converted" in message


# The header is checked before the layers, so these files need no layers at all.


def test_foreign_format_attribute(tmp_path):
    attrs = dict(_HEADER, format="keras-vgg19")
    message = _load_error(_write_raw(tmp_path / "w.h5", {}, attrs))
    assert "'keras-vgg19'" in message
    assert "not a stylejax weights file" in message
    assert "converted" in message


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        (2, "unsupported format_version 2"),
        (0, "unsupported format_version 0"),
        ("one", "malformed format_version"),
    ],
)
def test_bad_format_version(tmp_path, version, fragment):
    attrs = dict(_HEADER, format_version=version)
    message = _load_error(_write_raw(tmp_path / "w.h5", {}, attrs))
    assert fragment in message
    if version == 2:
        assert "newer stylejax" in message


def test_missing_format_version(tmp_path):
    attrs = {k: v for k, v in _HEADER.items() if k != "format_version"}
    assert "no format_version" in _load_error(_write_raw(tmp_path / "w.h5", {}, attrs))


def test_bad_input_convention(tmp_path):
    attrs = {k: v for k, v in _HEADER.items() if k != "input_convention"}
    assert "no input_convention" in _load_error(_write_raw(tmp_path / "a.h5", {}, attrs))
    attrs = dict(_HEADER, input_convention='{"name": "caffe"}')
    assert "malformed input_convention" in _load_error(_write_raw(tmp_path / "b.h5", {}, attrs))


def test_the_documented_message(params, tmp_path):
    tree = _copy_tree(params)
    del tree["conv5_3"], tree["conv5_4"]
    tree["fc6"] = {"kernel": np.zeros((4, 4), np.float32), "bias": np.zeros(4, np.float32)}
    tree["conv1_1"]["kernel"] = np.zeros((3, 3, 4, 64), np.float32)
    path = _write_raw(tmp_path / "w.h5", tree)
    assert _load_error(path) == (
        f"weights file {path} does not match VGG19: missing conv5_3, conv5_4; extra fc6; "
        "conv1_1/kernel has shape (3, 3, 4, 64), expected (3, 3, 3, 64)"
    )


def test_vgg16_with_classifier(params, tmp_path):
    # VGG16 has three convolutions in blocks 3-5 and fully connected layers.
    tree = _copy_tree(params)
    for name in ("conv3_4", "conv4_4", "conv5_4"):
        del tree[name]
    for name in ("fc6", "fc7", "fc8"):
        tree[name] = {"kernel": np.zeros((2, 2), np.float32), "bias": np.zeros(2, np.float32)}
    message = _load_error(_write_raw(tmp_path / "vgg16.h5", tree))
    assert "missing conv3_4, conv4_4, conv5_4; extra fc6, fc7, fc8" in message


def test_problems_inside_layers_are_all_listed(params, tmp_path):
    tree = _copy_tree(params)
    del tree["conv2_1"]["bias"]
    tree["conv2_2"]["gamma"] = np.ones(128, np.float32)
    tree["conv3_1"]["bias"] = np.zeros(255, np.float32)
    tree["conv4_1"] = params["conv4_1"]["kernel"]  # a dataset where a group belongs
    message = _load_error(_write_raw(tmp_path / "w.h5", tree))
    assert "missing conv2_1/bias" in message
    assert "extra conv2_2/gamma" in message
    assert "conv3_1/bias has shape (255,), expected (256,)" in message
    assert "conv4_1 is a dataset, expected a group of kernel and bias" in message


def test_integer_data(params, tmp_path):
    tree = _copy_tree(params)
    tree["conv1_2"]["bias"] = np.zeros(64, np.int32)
    message = _load_error(_write_raw(tmp_path / "w.h5", tree))
    assert "conv1_2/bias has dtype int32, expected floating point" in message


def test_non_finite_values(params, tmp_path):
    tree = _copy_tree(params)
    for name, bad in (("conv2_1", np.nan), ("conv4_2", np.inf), ("conv5_1", -np.inf)):
        kernel = params[name]["kernel"].copy()
        kernel[0, 0, 0, :3] = bad
        tree[name]["kernel"] = kernel
    message = _load_error(_write_raw(tmp_path / "w.h5", tree))
    for name in ("conv2_1", "conv4_2", "conv5_1"):
        assert f"{name}/kernel has 3 non-finite values (NaN or inf)" in message


def test_validate_params_names_the_caller(params):
    tree = _copy_tree(params)
    del tree["conv1_1"]
    with pytest.raises(UserError, match=r"^my params does not match VGG19: missing conv1_1$"):
        wf.validate_params(tree, "my params")
    with pytest.raises(UserError, match="my params does not match VGG19"):
        wf.validate_params([1, 2], "my params")  # type: ignore[arg-type]
    checked = wf.validate_params(params, "my params")
    assert checked["conv1_1"]["kernel"].dtype == np.float32


# --------------------------------------------------------------------------- atomic save


def test_invalid_params_write_nothing(params, tmp_path):
    tree = _copy_tree(params)
    del tree["conv5_4"]
    path = tmp_path / "w.h5"
    with pytest.raises(UserError) as info:
        wf.save_weights(path, tree, convention=CAFFE, source="x")
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "missing conv5_4" in message
    assert list(tmp_path.iterdir()) == []


def test_invalid_params_leave_existing_file_alone(params, saved, tmp_path):
    path = tmp_path / "w.h5"
    original = saved[0].read_bytes()
    path.write_bytes(original)
    tree = _copy_tree(params)
    bias = params["conv3_3"]["bias"].copy()
    bias[7] = np.nan
    tree["conv3_3"]["bias"] = bias
    with pytest.raises(UserError, match="conv3_3/bias has 1 non-finite values"):
        wf.save_weights(path, tree, convention=CAFFE, source="x")
    assert path.read_bytes() == original
    assert _temp_leftovers(tmp_path) == []


class _DiskFull(Exception):
    pass


def test_failure_mid_write_leaves_no_partial_file(params, saved, tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    original = saved[0].read_bytes()
    path.write_bytes(original)
    real_create = h5py.Group.create_dataset
    calls = []

    def failing_create(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            raise _DiskFull("simulated failure")
        return real_create(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create)
    with pytest.raises(_DiskFull):
        wf.save_weights(path, params, convention=CAFFE, source="x")
    assert path.read_bytes() == original
    assert _temp_leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]


def test_save_creates_folders_and_refuses_directories(params, tmp_path):
    nested = tmp_path / "a" / "b" / "w.h5"
    digest = wf.save_weights(nested, params, convention=CAFFE, source="x")
    assert wf.file_sha256(nested) == digest
    with pytest.raises(UserError, match="is a directory"):
        wf.save_weights(tmp_path / "a", params, convention=CAFFE, source="x")


def test_metadata_errors_are_raised_before_writing(params, tmp_path):
    path = tmp_path / "w.h5"
    with pytest.raises(TypeError):
        wf.save_weights(path, params, convention="caffe", source="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        wf.save_weights(path, params, convention=CAFFE, source="x", source_sha256="xyz")
    with pytest.raises(TypeError):
        wf.save_weights(path, params, convention=CAFFE, source="x", normalisation={"a": object()})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- weights folder


def _fake_checkout(root: pathlib.Path, project: str) -> pathlib.Path:
    src = root / "stylejax" / "_src"
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{project}"\nversion = "0"\n')
    return src


def test_weights_dir_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert wf.weights_dir() == tmp_path / "mine"


def test_weights_dir_source_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLEJAX_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(wf, "_SRC_DIR", _fake_checkout(tmp_path / "clone", "stylejax"))
    assert wf.weights_dir() == tmp_path / "clone" / "weights"


def test_weights_dir_real_checkout(monkeypatch):
    monkeypatch.delenv("STYLEJAX_WEIGHTS_DIR", raising=False)
    root = pathlib.Path(wf.__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("stylejax is installed, not run from a checkout")
    assert wf.weights_dir() == root / "weights"


def test_weights_dir_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLEJAX_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(wf, "_SRC_DIR", _fake_checkout(tmp_path / "other", "not-stylejax"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert wf.weights_dir() == tmp_path / "cache" / "stylejax" / "weights"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert wf.weights_dir() == tmp_path / "home" / ".cache" / "stylejax" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert wf.weights_dir() == tmp_path / "home" / ".cache" / "stylejax" / "weights"


def test_find_pretrained_preference(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEJAX_WEIGHTS_DIR", str(tmp_path))
    plain, normalised = tmp_path / wf.PRETRAINED_NAME, tmp_path / wf.NORMALISED_NAME
    assert wf.find_pretrained() is None
    normalised.mkdir()  # a folder with the name does not count
    assert wf.find_pretrained() is None
    normalised.rmdir()
    plain.write_bytes(b"")
    assert wf.find_pretrained() == plain
    assert wf.find_pretrained(prefer_normalised=False) == plain
    normalised.write_bytes(b"")
    assert wf.find_pretrained() == normalised
    assert wf.find_pretrained(prefer_normalised=True) == normalised
    assert wf.find_pretrained(prefer_normalised=False) == plain
    plain.unlink()
    assert wf.find_pretrained(prefer_normalised=False) == normalised
