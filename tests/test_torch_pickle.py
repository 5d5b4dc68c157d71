"""The torch-free, code-free reader of PyTorch ``.pth`` checkpoints.

Tolerances: every comparison is exact (``assert_array_equal``, zero tolerance) with the
dtype checked too, because the reader copies stored bytes and never does arithmetic;
the one conversion, bfloat16 -> float32, is exact by construction, and so are the
conversions of float16/float64/bfloat16 conv weights to float32 compared below (each is
compared with the same cast of the same values). Timings have explicit bounds (a
refused decompression bomb: under 5 s wall time, under 32 MiB of Python allocations).

``tests/data/torch_{zip,legacy}_small.pth`` were written by torch 2.13.0 (CPU) with::

    torch.manual_seed(0)
    base = torch.randn(3, 5)
    sd = collections.OrderedDict()
    sd["conv1.weight"] = torch.randn(4, 3, 3, 3)
    sd["conv1.bias"] = torch.randn(4)
    sd["fc.weight_t"] = base.t()          # non-contiguous: stride (1, 5)
    sd["fc.row"] = base[1]                # same storage, offset 5
    sd["half"] = torch.randn(2, 2).half()
    sd["steps"] = torch.tensor([3, -1, 1 << 40])
    sd["mask"] = torch.tensor([True, False, False, True])
    sd["bf"] = torch.randn(3).bfloat16()
    sd["p"] = torch.nn.Parameter(torch.randn(2))
    torch.save(sd, "torch_zip_small.pth")
    torch.save(sd, "torch_legacy_small.pth", _use_new_zipfile_serialization=False)

and ``torch_small_expected.npz`` holds ``v.detach().contiguous().numpy()`` of each
(bfloat16 as float32), so CI proves compatibility with real files without torch.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import struct
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch_files
import vgg_files

from stylejax import cli
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import UserError
from stylejax._src.weights import convert, torch_pickle, weights_file
from stylejax._src.weights.torch_pickle import TensorInfo, read_state_dict

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
REAL_ZIP = os.path.join(DATA, "torch_zip_small.pth")
REAL_LEGACY = os.path.join(DATA, "torch_legacy_small.pth")
WRITERS = {
    "zip": torch_files.write_zip_checkpoint,
    "legacy": torch_files.write_legacy_checkpoint,
}


def _expected() -> dict[str, np.ndarray]:
    with np.load(os.path.join(DATA, "torch_small_expected.npz")) as npz:
        return {k: npz[k] for k in npz.files}


def _assert_same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        assert got[key].shape == want.shape, key
        assert got[key].flags.c_contiguous, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)


def _small_state_dict() -> collections.OrderedDict:
    """The state_dict of the real files, rebuilt from the expected values with the same
    storage sharing (fc.weight_t and fc.row are views of one base)."""
    exp = _expected()
    base = np.ascontiguousarray(exp["fc.weight_t"].T)
    sd = collections.OrderedDict()
    sd["conv1.weight"] = exp["conv1.weight"]
    sd["conv1.bias"] = exp["conv1.bias"]
    sd["fc.weight_t"] = base.T
    sd["fc.row"] = base[1]
    sd["half"] = exp["half"]
    sd["steps"] = exp["steps"]
    sd["mask"] = exp["mask"]
    sd["bf"] = torch_files.BFloat16.from_float32(exp["bf"])
    sd["p"] = torch_files.Parameter(exp["p"])
    return sd


def _ops(data: bytes) -> list[tuple[str, object]]:
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


def _legacy_pickles(path: str) -> list[bytes]:
    """The five pickles at the start of a legacy file, as separate byte strings."""
    with open(path, "rb") as f:
        blob = f.read()
    out, pos = [], 0
    for _ in range(5):
        stream = io.BytesIO(blob[pos:])
        end = max(p for _, _, p in pickletools.genops(stream)) + 1
        out.append(blob[pos : pos + end])
        pos += end
    return out


def _normalise_keys(ops: list[tuple[str, object]], keys: list[str]) -> list[tuple[str, object]]:
    names = {k: f"<key{i}>" for i, k in enumerate(keys)}
    return [(name, names.get(arg, arg) if isinstance(arg, str) else arg) for name, arg in ops]


# --------------------------------------------------------------------------------------
# Real files written by torch.


def test_reads_real_torch_zip_file():
    _assert_same(read_state_dict(REAL_ZIP), _expected())


def test_reads_real_torch_legacy_file():
    _assert_same(read_state_dict(REAL_LEGACY), _expected())


def test_real_files_hold_what_the_tests_claim():
    with zipfile.ZipFile(REAL_ZIP) as z:
        dis = io.StringIO()
        pickletools.dis(z.read("torch_zip_small/data.pkl"), dis)
        assert z.read("torch_zip_small/byteorder") == b"little"
    text = dis.getvalue()
    assert "GLOBAL     'torch._utils _rebuild_tensor_v2'" in text
    assert "GLOBAL     'torch._utils _rebuild_parameter'" in text
    assert "GLOBAL     'torch BFloat16Storage'" in text
    with open(REAL_LEGACY, "rb") as f:
        assert pickle.loads(f.read(15)) == torch_pickle.LEGACY_MAGIC  # a plain int pickle


def test_fabricated_zip_pickle_is_byte_identical_to_torchs():
    with zipfile.ZipFile(REAL_ZIP) as z:
        real = z.read("torch_zip_small/data.pkl")
    assert torch_files.data_pickle(_small_state_dict()) == real


def test_fabricated_zip_archive_matches_torchs_layout(tmp_path):
    path = tmp_path / "torch_zip_small.pth"
    torch_files.write_zip_checkpoint(path, _small_state_dict(), archive_name="torch_zip_small")
    with zipfile.ZipFile(REAL_ZIP) as real, zipfile.ZipFile(path) as fab:
        assert fab.namelist() == real.namelist()
        for name in real.namelist():
            if "/data/" in name or name.endswith(("byteorder", "version", "data.pkl")):
                assert fab.read(name) == real.read(name), name
    _assert_same(read_state_dict(path), _expected())


def test_fabricated_legacy_file_matches_torchs_structure(tmp_path):
    path = tmp_path / "legacy.pth"
    torch_files.write_legacy_checkpoint(path, _small_state_dict())
    real, fab = _legacy_pickles(REAL_LEGACY), _legacy_pickles(str(path))
    assert fab[:3] == real[:3]  # magic, protocol, sys_info: byte-identical
    # Storage keys are C pointers in torch's file: compare with keys renamed by first use.
    real_keys, fab_keys = pickle.loads(real[4]), pickle.loads(fab[4])  # lists of str
    assert real_keys == sorted(real_keys) and fab_keys == sorted(fab_keys)

    def first_use(ops):
        return list(
            dict.fromkeys(a for n, a in ops if n == "BINUNICODE" and a in real_keys + fab_keys)
        )

    real_ops, fab_ops = _ops(real[3]), _ops(fab[3])
    assert _normalise_keys(real_ops, first_use(real_ops)) == _normalise_keys(
        fab_ops, first_use(fab_ops)
    )
    assert os.path.getsize(path) == os.path.getsize(REAL_LEGACY)
    _assert_same(read_state_dict(path), _expected())


def test_fabricated_pickle_has_torchs_opcodes():
    rng = np.random.default_rng(0)
    text = io.StringIO()
    pickletools.dis(torch_files.data_pickle({"w": rng.standard_normal(3).astype(np.float32)}), text)
    dis = text.getvalue()
    for needle in (
        "PROTO      2",
        "GLOBAL     'collections OrderedDict'",
        "GLOBAL     'torch._utils _rebuild_tensor_v2'",
        "GLOBAL     'torch FloatStorage'",
        "BINPERSID",
    ):
        assert needle in dis


# --------------------------------------------------------------------------------------
# Fabricated files: layouts and dtypes.


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_conv_state_dict_round_trip(tmp_path, fmt):
    rng = np.random.default_rng(1)
    sd = {
        "features.0.weight": rng.standard_normal((4, 3, 3, 3), dtype=np.float32),
        "features.0.bias": rng.standard_normal(4, dtype=np.float32),
        "features.2.weight": rng.standard_normal((4, 4, 3, 3), dtype=np.float32),
    }
    path = tmp_path / "vgg.pth"
    WRITERS[fmt](path, sd)
    _assert_same(read_state_dict(path), sd)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_strided_views_and_offsets_into_one_storage(tmp_path, fmt):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((3, 4))  # float64
    sd = {
        "t": base.T,  # stride (1, 4)
        "row": base[1],  # offset 4
        "cols": base[:, 1::2],  # offset 1, stride (4, 2)
        "corner": base[1:, 2:],  # offset 6
        "scalar": base[2:, 3:].reshape(()),  # 0-d view, offset 11
        "expanded": np.broadcast_to(base[0, :1], (2, 3)),  # stride (0, 0)
    }
    path = tmp_path / "views.pth"
    WRITERS[fmt](path, sd)
    expected = {k: np.array(v, order="C") for k, v in sd.items()}
    _assert_same(read_state_dict(path), expected)
    if fmt == "zip":  # one storage, stored once
        with zipfile.ZipFile(path) as z:
            assert [n for n in z.namelist() if "/data/" in n] == ["archive/data/0"]


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_dtypes(tmp_path, fmt):
    sd = {
        "f16": np.array([[1.5, -2.25], [65504.0, 6e-8]], dtype=np.float16),
        "f64": np.array([np.pi, -1e300]),
        "i64": np.array([-(1 << 62), 0, (1 << 40) + 1], dtype=np.int64),
        "i32": np.array([-(1 << 31), 7], dtype=np.int32),
        "i16": np.array([-300, 300], dtype=np.int16),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u8": np.array([0, 255], dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    path = tmp_path / "dtypes.pth"
    WRITERS[fmt](path, sd)
    _assert_same(read_state_dict(path), sd)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_bfloat16_becomes_float32_exactly(tmp_path, fmt):
    bits = np.array([0x3F80, 0xC049, 0x0001, 0x7F7F], dtype=np.uint16)  # 1, -3.14.., tiny, max
    path = tmp_path / "bf16.pth"
    WRITERS[fmt](path, {"bf": torch_files.BFloat16(bits)})
    got = read_state_dict(path)["bf"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), bits.astype(np.uint32) << 16)


def test_big_endian_zip(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 3)).astype(np.float32)
    sd = {"t": base.T, "i": np.array([1, -2, 1 << 50], dtype=np.int64), "h": np.float16([0.5])}
    path = tmp_path / "big.pth"
    torch_files.write_zip_checkpoint(path, sd, byteorder="big")
    got = read_state_dict(path)
    _assert_same(got, {k: np.array(v, order="C") for k, v in sd.items()})
    assert all(v.dtype.isnative for v in got.values())


def test_pytorch_03_legacy_tensor_reduction(tmp_path):
    rng = np.random.default_rng(6)
    base = rng.standard_normal((4, 3)).astype(np.float32)
    sd = {"features.0.weight": base, "features.0.bias": base[1], "classifier.t": base.T}
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_files.write_legacy_checkpoint(path, sd, torch03=True)
    ops = _ops(_legacy_pickles(str(path))[3])
    assert ("GLOBAL", "torch._utils _rebuild_tensor") in ops
    _assert_same(read_state_dict(path), {k: np.array(v, order="C") for k, v in sd.items()})


@pytest.mark.parametrize("archive_name", ["archive", "vgg19", "vgg19-dcbb9e9d"])
def test_any_top_level_folder_name(tmp_path, archive_name):
    sd = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = tmp_path / "any.pth"
    torch_files.write_zip_checkpoint(path, sd, archive_name=archive_name)
    _assert_same(read_state_dict(path), sd)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_parameters_are_unwrapped(tmp_path, fmt):
    w = np.arange(4, dtype=np.float32)
    path = tmp_path / "param.pth"
    WRITERS[fmt](path, {"w": torch_files.Parameter(w), "b": w[:2]})
    _assert_same(read_state_dict(path), {"w": w, "b": w[:2]})


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_state_dict_inside_a_training_checkpoint(tmp_path, fmt, wrapper):
    rng = np.random.default_rng(4)
    sd = {"conv.weight": rng.standard_normal((2, 1, 3, 3), dtype=np.float32)}
    sd["conv.bias"] = rng.standard_normal(2, dtype=np.float32)
    checkpoint = {
        "epoch": 7,
        "arch": "vgg19",
        wrapper: sd,
        "optimizer": {
            "state": {0: {"momentum_buffer": np.ones(2, dtype=np.float32)}},
            "param_groups": [{"lr": 0.1, "params": [0, 1]}],
        },
    }
    path = tmp_path / "ckpt.pth"
    WRITERS[fmt](path, checkpoint)
    _assert_same(read_state_dict(path), sd)


def test_doubly_nested_state_dict(tmp_path):
    sd = {"w": np.ones((2, 2), dtype=np.float32)}
    path = tmp_path / "nested.pth"
    torch_files.write_zip_checkpoint(path, {"model": {"net": sd, "name": "x"}, "step": 1})
    _assert_same(read_state_dict(path), sd)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_dataparallel_module_prefix_is_stripped(tmp_path, fmt):
    w = np.arange(3, dtype=np.float32)
    path = tmp_path / "dp.pth"
    WRITERS[fmt](path, {"module.features.0.weight": w, "module.features.0.bias": w[:1]})
    assert list(read_state_dict(path)) == ["features.0.weight", "features.0.bias"]


def test_module_prefix_kept_unless_every_key_has_it(tmp_path):
    w = np.arange(3, dtype=np.float32)
    path = tmp_path / "mixed.pth"
    torch_files.write_zip_checkpoint(path, {"module.a": w, "b": w})
    assert list(read_state_dict(path)) == ["module.a", "b"]


def test_ambiguous_tensor_mappings_are_an_error(tmp_path):
    w = np.arange(3, dtype=np.float32)
    path = tmp_path / "two.pth"
    torch_files.write_zip_checkpoint(path, {"generator": {"w": w}, "critic": {"w": w}})
    with pytest.raises(UserError, match="several mappings") as info:
        read_state_dict(path)
    assert str(path) in str(info.value)


def test_reader_never_uses_default_unpickler_or_torch(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the default unpickler was used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    path = tmp_path / "plain.pth"
    torch_files.write_legacy_checkpoint(path, {"w": np.ones(2, dtype=np.float32)})
    read_state_dict(path)
    read_state_dict(REAL_ZIP)
    read_state_dict(REAL_LEGACY)
    with open(torch_pickle.__file__, encoding="utf-8") as f:
        source = f.read()
    assert "import torch" not in source
    assert "pickle.load(" not in source and "pickle.loads(" not in source


# --------------------------------------------------------------------------------------
# Hostile files: nothing may execute.


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _os_system_payload(marker) -> bytes:
    # GLOBAL 'os system', the command as argument, REDUCE: os.system("touch marker")
    return b"\x80\x02cos\nsystem\n" + _binunicode(f"touch '{marker}'") + b"\x85R."


def _eval_payload(marker) -> bytes:
    code = f"open({str(marker)!r}, 'w').close()"
    return b"\x80\x02cbuiltins\neval\n" + _binunicode(code) + b"\x85R."


def test_eval_payload_is_really_malicious(tmp_path):
    """Control: with the default unpickler the payload does create its marker file."""
    marker = tmp_path / "control-marker"
    pickle.loads(_eval_payload(marker))  # deliberately unsafe, on our own payload
    assert marker.exists()


@pytest.mark.parametrize(
    ("payload", "global_name"),
    [(_os_system_payload, "os.system"), (_eval_payload, "builtins.eval")],
)
def test_malicious_zip_pickle_is_refused_and_nothing_runs(tmp_path, payload, global_name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch_files.write_zip_checkpoint(
        path, {"w": np.ones(2, dtype=np.float32)}, data_pkl=payload(marker)
    )
    with pytest.raises(UserError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert f"GLOBAL {global_name}" in message
    assert str(path) in message and "malicious" in message
    assert "\n" not in message
    assert not marker.exists()


def test_malicious_legacy_stream_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_legacy.pth"
    header = b"".join(
        pickle.dumps(x, protocol=2)
        for x in (torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL, {"little_endian": True})
    )
    path.write_bytes(header + _eval_payload(marker))
    with pytest.raises(UserError, match=r"GLOBAL builtins\.eval"):
        read_state_dict(path)
    assert not marker.exists()


def test_malicious_first_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_first.pth"
    path.write_bytes(_os_system_payload(marker))
    with pytest.raises(UserError, match=r"GLOBAL os\.system"):
        read_state_dict(path)
    assert not marker.exists()


def test_dotted_stack_global_is_refused(tmp_path):
    # Protocol 4 STACK_GLOBAL with a dotted name: the default find_class would walk the
    # attribute chain; the restricted one admits exact names only.
    payload = (
        b"\x80\x04"
        + b"\x8c\x0bcollections"
        + b"\x8c\x14OrderedDict.fromkeys"
        + b"\x93"  # STACK_GLOBAL
        + b")R."
    )
    path = tmp_path / "dotted.pth"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(1, dtype=np.float32)}, data_pkl=payload)
    with pytest.raises(UserError, match=r"GLOBAL collections\.OrderedDict\.fromkeys"):
        read_state_dict(path)


def test_whole_pickled_model_is_refused_with_advice(tmp_path):
    # torch.save(model) pickles the module class: GLOBAL 'torch.nn.modules.conv Conv2d'.
    payload = b"\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81."
    path = tmp_path / "model.pth"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(1, dtype=np.float32)}, data_pkl=payload)
    with pytest.raises(UserError, match=r"GLOBAL torch\.nn\.modules\.conv\.Conv2d.*state_dict"):
        read_state_dict(path)


def test_stand_ins_refuse_build(tmp_path):
    # BUILD (__setstate__) on the _rebuild_tensor_v2 stand-in would let a pickle
    # re-program it; it is refused as a corrupt file.
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b."
    path = tmp_path / "build.pth"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(1, dtype=np.float32)}, data_pkl=payload)
    with pytest.raises(UserError, match="set the state"):
        read_state_dict(path)


def test_huge_zero_stride_expansion_is_refused(tmp_path):
    # A valid tensor description (torch keeps expanded views as they are) that would
    # expand 1 stored float to 10^12 elements: refused rather than allocated.
    one = np.ones(1, np.float32)
    sd = {"w": np.lib.stride_tricks.as_strided(one, (10**6, 10**6), (0, 0), writeable=False)}
    path = tmp_path / "expand.pth"
    torch_files.write_zip_checkpoint(path, sd)
    assert os.path.getsize(path) < 2000
    with pytest.raises(UserError, match="expands 1 stored elements"):
        read_state_dict(path)


# --------------------------------------------------------------------------------------
# Broken files: one-line UserErrors naming the path.


def _error(path, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        read_state_dict(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_truncated_zip(tmp_path):
    good = tmp_path / "good.pth"
    torch_files.write_zip_checkpoint(good, {"w": np.ones((8, 8), dtype=np.float32)})
    blob = good.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 10, 30):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(blob[:cut])
        assert "truncated" in _error(path)


def test_truncated_storage_in_zip(tmp_path):
    good = tmp_path / "good.pth"
    torch_files.write_zip_checkpoint(good, {"w": np.ones((4, 3, 3, 3), dtype=np.float32)})
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[:100] if name == "archive/data/0" else data)
    assert "truncated" in _error(path)


def test_missing_storage_in_zip(tmp_path):
    good = tmp_path / "good.pth"
    torch_files.write_zip_checkpoint(good, {"w": np.ones(3, dtype=np.float32)})
    path = tmp_path / "missing.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            if name != "archive/data/0":
                dst.writestr(name, src.read(name))
    assert "truncated" in _error(path)


def test_storage_shorter_than_tensor_needs(tmp_path):
    # The pickle declares a 2-element storage but a (4,) tensor on it.
    pickled = torch_files.data_pickle({"w": np.ones(4, np.float32)})
    assert pickled.count(b"K\x04") == 2  # numel in the persistent id, then size (4,)
    pickled = pickled.replace(b"K\x04", b"K\x02", 1)
    path = tmp_path / "short_storage.pth"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(4, np.float32)}, data_pkl=pickled)
    message = _error(path)
    assert "truncated" in message and "'w'" in message


def test_truncated_legacy_file(tmp_path):
    good = tmp_path / "good.pth"
    torch_files.write_legacy_checkpoint(good, {"w": np.ones((4, 3, 3, 3), dtype=np.float32)})
    blob = good.read_bytes()
    for cut in (len(blob) - 1, len(blob) - 4 * 108, len(blob) // 3, 40):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(blob[:cut])
        assert "truncated" in _error(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a PyTorch checkpoint" in _error(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert "not a PyTorch checkpoint" in _error(path)


def test_missing_file(tmp_path):
    assert "no such file" in _error(tmp_path / "absent.pth")


def test_other_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    assert "not a PyTorch checkpoint" in _error(path)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    assert "not a PyTorch checkpoint" in _error(path)


def test_torchscript_archive(tmp_path):
    path = tmp_path / "scripted.pt"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(1, np.float32)})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("archive/constants.pkl", b"\x80\x02).")
    assert "TorchScript" in _error(path)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_no_tensors(tmp_path, fmt):
    path = tmp_path / "none.pth"
    WRITERS[fmt](path, {"epoch": 3, "names": ["a", "b"]})
    assert "no tensors found" in _error(path)


# --------------------------------------------------------------------------------------
# Reading only what the caller keeps: the index first, then the kept storages.

VGG19_CLASSIFIER = {  # torchvision's fully connected layers, all dropped by conversion
    "classifier.0.weight": (4096, 25088),
    "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096),
    "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


@pytest.fixture(scope="module")
def vgg_params():
    return vgg_files.random_params(0)


def _expanded(shape: tuple[int, ...]) -> np.ndarray:
    """What torch.zeros(1).expand(*shape) saves: a one-element storage, all strides 0."""
    return np.broadcast_to(np.zeros(1, np.float32), shape)


def _expanded_classifier_state(params) -> dict:
    state = vgg_files.torch_state_dict(params, classifier=False)
    for key, shape in VGG19_CLASSIFIER.items():
        state[key] = _expanded(shape)
    return state


def _assert_conv_params(path, params) -> None:
    loaded = weights_file.load_weights(path)
    for name in vgg_layers.CONV_NAMES:
        np.testing.assert_array_equal(loaded.params[name]["kernel"], params[name]["kernel"])
        np.testing.assert_array_equal(loaded.params[name]["bias"], params[name]["bias"])


def _spy_zip_opens(monkeypatch) -> list[str]:
    """Every zip member name that zipfile opens (ZipFile.read opens too) from now on."""
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


class _CountingFileIO(io.FileIO):
    """A raw file that counts the bytes it hands to its buffer."""

    total = 0

    def readinto(self, buffer):
        n = super().readinto(buffer)
        _CountingFileIO.total += n or 0
        return n


def _count_legacy_reads(monkeypatch) -> type[_CountingFileIO]:
    """From now on read_state_dict opens files through _CountingFileIO (legacy format)."""
    _CountingFileIO.total = 0

    def counting_open(path, mode="r"):
        assert mode == "rb"
        return io.BufferedReader(_CountingFileIO(path, "r"))

    monkeypatch.setattr(torch_pickle, "open", counting_open, raising=False)
    return _CountingFileIO


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_expanded_classifier_is_never_read_and_the_file_converts(vgg_params, tmp_path, fmt):
    # torch.save keeps torch.zeros(1).expand(4096, 25088) as one stored float with
    # strides (0, 0), and torch.load reads it back; conversion drops the classifier, so
    # it must not refuse the file for an expansion it never materialises.
    source = tmp_path / "vgg19-dcbb9e9d.pth"  # torchvision's name: convention known
    WRITERS[fmt](source, _expanded_classifier_state(vgg_params))
    with pytest.raises(UserError, match=r"'classifier\.0\.weight' expands 1 stored elements"):
        read_state_dict(source)  # reading every tensor still refuses the expansion
    out = tmp_path / "w.h5"
    result, _ = convert.convert(str(source), str(out))
    assert sorted(result.dropped) == sorted(VGG19_CLASSIFIER)
    _assert_conv_params(out, vgg_params)


def test_the_same_expansion_in_a_conv_key_is_still_refused(vgg_params, tmp_path):
    state = _expanded_classifier_state(vgg_params)
    state["features.0.weight"] = _expanded((4096, 25088))
    source = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_files.write_zip_checkpoint(source, state)
    message = _error(source, select={"features.0.weight": None})  # kept, any shape
    assert "'features.0.weight' expands 1 stored elements to 102760448" in message
    out = tmp_path / "w.h5"
    with pytest.raises(UserError, match=r"features\.0\.weight \(4096, 25088\)"):
        convert.convert(str(source), str(out))  # not a conv kernel: refused by name
    state["features.0.weight"] = _expanded((4096, 25088, 3, 3))  # 4-D, wrong shape
    torch_files.write_zip_checkpoint(source, state)
    with pytest.raises(UserError) as info:
        convert.convert(str(source), str(out))
    assert "'features.0.weight' has shape (4096, 25088, 3, 3), expected (64, 3, 3, 3)" in str(
        info.value
    )
    assert not out.exists()


def test_a_stride_zero_conv_weight_of_the_right_shape_converts(vgg_params, tmp_path):
    # A small expansion (1 stored element to 64x3x3x3) is a valid tensor torch loads.
    state = _expanded_classifier_state(vgg_params)
    state["features.0.weight"] = _expanded((64, 3, 3, 3))
    source = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_files.write_zip_checkpoint(source, state)
    out = tmp_path / "w.h5"
    convert.convert(str(source), str(out))
    kernel = weights_file.load_weights(out).params["conv1_1"]["kernel"]
    np.testing.assert_array_equal(kernel, np.zeros((3, 3, 3, 64), np.float32))


def test_only_the_kept_zip_members_are_opened(vgg_params, tmp_path, monkeypatch):
    source = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_files.write_zip_checkpoint(source, vgg_files.torch_state_dict(vgg_params))
    with zipfile.ZipFile(source) as z:  # 32 conv storages, then the classifier's two
        assert [n for n in z.namelist() if "/data/" in n][-2:] == [
            "archive/data/32",
            "archive/data/33",
        ]
    opened = _spy_zip_opens(monkeypatch)
    out = tmp_path / "w.h5"
    result, _ = convert.convert(str(source), str(out))
    assert result.dropped == ("classifier.0.weight", "classifier.0.bias")
    assert sorted(n for n in opened if "/data/" in n) == sorted(
        f"archive/data/{i}" for i in range(32)
    )
    _assert_conv_params(out, vgg_params)


@pytest.mark.slow
def test_a_damaged_dropped_storage_does_not_stop_conversion(vgg_params, tmp_path):
    good = tmp_path / "good.pth"
    torch_files.write_zip_checkpoint(good, vgg_files.torch_state_dict(vgg_params))
    classifier = ("archive/data/32", "archive/data/33")
    for damage in ("garbage", "missing"):
        source = tmp_path / damage / "vgg19-dcbb9e9d.pth"
        source.parent.mkdir()
        if damage == "garbage":  # wrong length and not floats
            torch_files.rewrite_zip(good, source, dict.fromkeys(classifier, b"\xff" * 7))
        else:
            torch_files.rewrite_zip(good, source, drop=classifier)
        assert "truncated" in _error(source)  # reading everything notices the damage
        out = tmp_path / damage / "w.h5"
        convert.convert(str(source), str(out))
        _assert_conv_params(out, vgg_params)


def test_legacy_storages_of_dropped_tensors_are_skipped(vgg_params, tmp_path, monkeypatch):
    state = vgg_files.torch_state_dict(vgg_params, classifier=False)
    state["classifier.0.weight"] = np.ones((4096, 4096), np.float32)  # 64 MiB of real data
    source = tmp_path / "vgg19-d01eb7cb.pth"  # jcjohnson's legacy file: Caffe convention
    torch_files.write_legacy_checkpoint(source, state)
    size = os.path.getsize(source)
    counter = _count_legacy_reads(monkeypatch)
    convert.convert(str(source), str(tmp_path / "w.h5"))
    conv_bytes = 4 * vgg_layers.CONV_PARAMETER_COUNT
    assert conv_bytes <= counter.total < conv_bytes + (1 << 20)
    assert size - counter.total > (63 << 20)  # the classifier's 64 MiB (less read-ahead) unread
    counter.total = 0
    assert list(read_state_dict(source, select={})) == []
    assert counter.total < 1 << 20  # the pickles and the element counts only


@pytest.mark.parametrize(("fmt", "layout"), [("zip", "features"), ("legacy", "named")])
def test_a_wrong_conv_shape_is_refused_by_name_before_any_read(
    vgg_params, tmp_path, monkeypatch, fmt, layout
):
    state = vgg_files.torch_state_dict(vgg_params, layout=layout)
    key = "features.5.weight" if layout == "features" else "conv2_1.weight"
    state[key] = np.zeros((128, 64, 5, 5), np.float32)  # conv2_1 with 5x5 kernels
    source = tmp_path / ("vgg19-dcbb9e9d.pth" if layout == "features" else "vgg_conv.pth")
    WRITERS[fmt](source, state)
    opened = _spy_zip_opens(monkeypatch)
    counter = _count_legacy_reads(monkeypatch)
    out = tmp_path / "w.h5"
    with pytest.raises(UserError) as info:
        convert.convert(str(source), str(out))
    message = str(info.value)
    assert f"{key!r} has shape (128, 64, 5, 5), expected (128, 64, 3, 3)" in message
    assert str(source) in message and "\n" not in message
    assert not [n for n in opened if "/data/" in n]  # zip: no storage member opened
    if fmt == "legacy":
        assert counter.total < 1 << 20  # the pickles only, not one storage
    assert not out.exists()


def test_select_by_mapping_reads_only_the_named_tensors(tmp_path):
    rng = np.random.default_rng(8)
    base = rng.standard_normal((3, 4)).astype(np.float32)
    sd = {
        "a": base,
        "b": base[1],
        "c": np.arange(5, dtype=np.int64),
        "d": _expanded((10**6, 10**6)),
    }
    for fmt, writer in WRITERS.items():
        path = tmp_path / f"sel_{fmt}.pth"
        writer(path, sd)
        got = read_state_dict(path, select={"b": None, "a": (3, 4), "absent": (1,)})
        _assert_same(got, {"a": base, "b": base[1]})  # file order, not the mapping's
        assert "'b' has shape (4,), expected (3,)" in _error(path, select={"b": [3]})
        assert read_state_dict(path, select={}) == {}


def test_select_function_gets_the_index_before_any_storage_is_read(tmp_path, monkeypatch):
    sd = {
        "module.w": np.ones((2, 3), np.float16),
        "module.bf": torch_files.BFloat16(np.array([0x3F80], np.uint16)),
        "module.huge": _expanded((4096, 25088)),
        "module.mask": np.array([True, False]),
    }
    path = tmp_path / "index.pth"
    torch_files.write_zip_checkpoint(path, sd)
    opened = _spy_zip_opens(monkeypatch)
    seen = {}

    def select(index):
        seen.update(index)
        assert not [n for n in opened if "/data/" in n]  # nothing read yet
        return {"w": (2, 3), "bf": None}

    got = read_state_dict(path, select=select)
    assert list(seen) == ["w", "bf", "huge", "mask"]  # module. removed, file order
    assert seen["w"] == TensorInfo((2, 3), np.dtype(np.float16))
    assert seen["bf"] == TensorInfo((1,), np.dtype(np.float32))
    assert seen["huge"] == TensorInfo((4096, 25088), np.dtype(np.float32))
    assert seen["mask"] == TensorInfo((2,), np.dtype(bool))
    _assert_same(got, {"w": np.ones((2, 3), np.float16), "bf": np.ones(1, np.float32)})
    assert sorted(n for n in opened if "/data/" in n) == ["archive/data/0", "archive/data/1"]


def test_select_errors_pass_through_unchanged(tmp_path):
    path = tmp_path / "x.pth"
    torch_files.write_zip_checkpoint(path, {"w": np.ones(2, np.float32)})

    def refuse(index):
        raise UserError("not the network we want")

    def bug(index):
        raise RuntimeError("a bug in the caller")

    with pytest.raises(UserError, match=r"^not the network we want$"):
        read_state_dict(path, select=refuse)
    with pytest.raises(RuntimeError, match=r"^a bug in the caller$"):
        read_state_dict(path, select=bug)


@pytest.mark.slow
def test_float16_float64_and_bfloat16_conv_weights_convert(vgg_params, tmp_path):
    # Both formats read these dtypes (test_dtypes, test_bfloat16_...); this is the convert.
    state = vgg_files.torch_state_dict(vgg_params)
    expected = {}
    casts = (np.float16, np.float64, "bfloat16", np.float32)
    for i, name in enumerate(vgg_layers.CONV_NAMES):
        index = next(k for k, v in convert.FEATURE_INDEX.items() if v == name)
        key = f"features.{index}.weight"
        cast = casts[i % len(casts)]
        if cast == "bfloat16":
            state[key] = torch_files.BFloat16.from_float32(state[key])
            oihw = state[key].to_float32()
        else:
            state[key] = state[key].astype(cast)
            oihw = state[key].astype(np.float32)  # exact: the same cast of the same values
        expected[name] = np.transpose(oihw, (2, 3, 1, 0))
    source = tmp_path / "vgg19-74e45263.pth"
    torch_files.write_zip_checkpoint(source, state)
    out = tmp_path / "w.h5"
    convert.convert(str(source), str(out))
    loaded = weights_file.load_weights(out)
    for name in vgg_layers.CONV_NAMES:
        assert loaded.params[name]["kernel"].dtype == np.float32
        np.testing.assert_array_equal(loaded.params[name]["kernel"], expected[name], err_msg=name)


@pytest.mark.slow
def test_real_torch_saves_and_loads_an_expanded_classifier(tmp_path):
    """With torch installed (not in CI): torch.save writes an expansion exactly as the
    fabricated files do, and torch.load reads the fabricated file back."""
    torch = pytest.importorskip("torch")
    weight = torch.randn(64, 3, 3, 3)
    real = collections.OrderedDict(
        [("features.0.weight", weight), ("classifier.0.weight", torch.zeros(1).expand(4096, 25088))]
    )
    path = tmp_path / "real.pth"
    torch.save(real, path)
    fabricated = {
        "features.0.weight": weight.numpy(),
        "classifier.0.weight": _expanded((4096, 25088)),
    }
    with zipfile.ZipFile(path) as z:
        (name,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        assert z.read(name) == torch_files.data_pickle(fabricated)
    got = read_state_dict(path, select={"features.0.weight": (64, 3, 3, 3)})
    np.testing.assert_array_equal(got["features.0.weight"], weight.numpy())
    fab = tmp_path / "fab.pth"
    torch_files.write_zip_checkpoint(fab, fabricated)
    back = torch.load(fab, weights_only=True)
    assert back["classifier.0.weight"].shape == (4096, 25088)
    assert back["classifier.0.weight"].stride() == (0, 0)


# --------------------------------------------------------------------------------------
# Decompression bombs: refused before inflating, or while inflating in bounded chunks.


def _small_conv_file(path) -> np.ndarray:
    """features.0.weight in storage 0, a small classifier in storage 1 (stored, as torch)."""
    weight = np.random.default_rng(9).standard_normal((64, 3, 3, 3), dtype=np.float32)
    torch_files.write_zip_checkpoint(
        path, {"features.0.weight": weight, "classifier.0.weight": np.ones(4, np.float32)}
    )
    return weight


KEEP_CONV = {"features.0.weight": (64, 3, 3, 3)}


def _refused_quickly(path, **kwargs) -> str:
    """read_state_dict's one-line error; asserts < 5 s wall and < 32 MiB allocated."""
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(UserError) as info:
            read_state_dict(path, **kwargs)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 5.0, elapsed
    assert peak < 32 << 20, peak
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_deflated_zeros_larger_than_the_storage_are_refused_unread(tmp_path, monkeypatch):
    good = tmp_path / "good.pth"
    _small_conv_file(good)
    path = tmp_path / "bomb.pth"
    torch_files.rewrite_zip(
        good,
        path,
        {"archive/data/0": torch_files.zero_chunks(64 << 20)},
        deflate={"archive/data/0"},
    )
    assert os.path.getsize(path) < 200_000  # 64 MiB of zeros in ~65 KB
    opened = _spy_zip_opens(monkeypatch)
    message = _refused_quickly(path, select=KEEP_CONV)
    assert "storage entry archive/data/0 (tensor 'features.0.weight')" in message
    assert "declares 67108864 bytes uncompressed" in message and "6912" in message
    assert "refusing to decompress" in message
    assert "archive/data/0" not in opened


def test_a_few_kilobytes_claiming_gigabytes_are_refused(tmp_path):
    good = tmp_path / "good.pth"
    _small_conv_file(good)
    path = tmp_path / "claims.pth"
    torch_files.rewrite_zip(
        good, path, {"archive/data/0": torch_files.zero_chunks(1 << 20)}, deflate={"archive/data/0"}
    )
    torch_files.set_declared_size(path, "archive/data/0", 4_000_000_000)
    assert os.path.getsize(path) < 8192
    for select in (KEEP_CONV, None):
        message = _refused_quickly(path, select=select)
        assert "'features.0.weight'" in message and "declares 4000000000 bytes" in message


@pytest.mark.parametrize(
    ("numel", "inflated", "declared"),
    [
        (16 << 20, 64 << 20, None),  # a real 64 MiB of deflated zeros, consistently declared
        (10**9, 1 << 20, 4 * 10**9),  # the pickle and the zip both claim 4 GB
    ],
)
def test_a_storage_the_pickle_declares_huge_is_not_inflated(tmp_path, numel, inflated, declared):
    # The pickle itself declares the conv's storage huge (the tensor is a small view at
    # its start): the member agrees, so only the inflation ratio gives the bomb away.
    good = tmp_path / "good.pth"
    weight = _small_conv_file(good)
    pickled = torch_files.data_pickle(
        {"features.0.weight": weight, "classifier.0.weight": np.ones(4, np.float32)}
    )
    numel_1728 = b"M" + struct.pack("<H", 1728)  # BININT2: the storage's numel
    assert pickled.count(numel_1728) == 1
    pickled = pickled.replace(numel_1728, b"J" + struct.pack("<i", numel))
    path = tmp_path / "bomb.pth"
    torch_files.rewrite_zip(
        good,
        path,
        {"archive/data.pkl": pickled, "archive/data/0": torch_files.zero_chunks(inflated)},
        deflate={"archive/data/0"},
    )
    if declared is not None:
        torch_files.set_declared_size(path, "archive/data/0", declared)
    message = _refused_quickly(path, select=KEEP_CONV)
    assert "storage entry archive/data/0 (tensor 'features.0.weight') would inflate" in message
    assert f"to {4 * numel}, over 100 times" in message


def test_a_member_inflating_past_its_declared_size_is_cut_there(tmp_path):
    # The central directory claims the 6912 bytes the storage holds, the deflate stream
    # carries 64 MiB: zipfile stops at the declared size, whose CRC then fails.
    good = tmp_path / "good.pth"
    _small_conv_file(good)
    path = tmp_path / "liar.pth"
    torch_files.rewrite_zip(
        good,
        path,
        {"archive/data/0": torch_files.zero_chunks(64 << 20)},
        deflate={"archive/data/0"},
    )
    torch_files.set_declared_size(path, "archive/data/0", 6912)
    message = _refused_quickly(path, select=KEEP_CONV)
    assert "truncated or corrupt" in message and "CRC" in message


def test_a_compressed_but_honest_member_is_read(tmp_path):
    # Re-zipped weights inflate a little: below the ratio limit they are read as usual.
    good = tmp_path / "good.pth"
    weight = _small_conv_file(good)
    path = tmp_path / "rezipped.pth"
    torch_files.rewrite_zip(good, path, deflate={"archive/data/0", "archive/data/1"})
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("archive/data/0").compress_type == zipfile.ZIP_DEFLATED
    _assert_same(read_state_dict(path, select=KEEP_CONV), {"features.0.weight": weight})


def test_convert_cli_refuses_a_bomb_in_one_line(vgg_params, tmp_path, capsys):
    good = tmp_path / "good.pth"
    torch_files.write_zip_checkpoint(good, vgg_files.torch_state_dict(vgg_params))
    source = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_files.rewrite_zip(
        good,
        source,
        {"archive/data/0": torch_files.zero_chunks(64 << 20)},
        deflate={"archive/data/0"},
    )
    out = tmp_path / "w.h5"
    start = time.perf_counter()
    status = cli.main(["weights", "convert", str(source), "-o", str(out)])
    assert time.perf_counter() - start < 5.0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert status == 2 and len(errors) == 1, err
    assert str(source) in errors[0] and "'features.0.weight'" in errors[0]
    assert "refusing to decompress" in errors[0]
    assert not out.exists()


def test_a_shape_no_array_can_have_is_refused_even_when_dropped(tmp_path):
    # Every declared shape must fit a NumPy array (the caller may build zero-memory
    # stand-ins of dropped tensors), so one past that is a corrupt file, in one line.
    weight = np.ones((64, 3, 3, 3), np.float32)
    sd = {"features.0.weight": weight, "classifier.0.weight": _expanded((4096, 4))}
    pickled = torch_files.data_pickle(sd)
    dim_4096 = b"M" + struct.pack("<H", 4096)  # BININT2
    assert pickled.count(dim_4096) == 1
    pickled = pickled.replace(dim_4096, b"\x8a\x08" + (1 << 62).to_bytes(8, "little"))  # LONG1
    path = tmp_path / "absurd.pth"
    torch_files.write_zip_checkpoint(path, sd, data_pkl=pickled)
    message = _error(path, select=KEEP_CONV)
    assert "tensor size (4611686018427387904, 4) is larger than any array can be" in message
    with pytest.raises(UserError, match="larger than any array can be"):
        convert.convert(str(path), str(tmp_path / "w.h5"))
