"""The torch-free, code-free reader of PyTorch ``.pth`` checkpoints.

Tolerances: every comparison is exact (``assert_array_equal``, zero tolerance) with the
dtype checked too, because the reader copies stored bytes and never does arithmetic;
the one conversion, bfloat16 -> float32, is exact by construction.

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
import zipfile

import numpy as np
import pytest
import torch_files

from stylejax._src import torch_pickle
from stylejax._src.errors import UserError
from stylejax._src.torch_pickle import read_state_dict

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


def _error(path) -> str:
    with pytest.raises(UserError) as info:
        read_state_dict(path)
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
