"""``--batch-size auto``: the largest map batch whose estimated memory fits, and XLA's
out-of-memory error as one line naming the batch size to try."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import budget, samples, sweep
from stylejax._src.weights import weights_source
from stylejax.cli import sweep_commands

PAPER_LAYERS = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
GIB = 2**30


def test_auto_batch_size_by_hand():
    # 512x512 px up to conv5_1: 320 activation elements per pixel (tests/test_budget.py),
    # 14 bytes each, and L-BFGS's 22 float32 RGB images (12 bytes a pixel): 4,744 bytes
    # per pixel, 1,243,611,136 bytes per member.
    per_member = 512 * 512 * (14 * 320 + 22 * 12)
    assert per_member == 1_243_611_136 == budget.member_bytes(512, 512, PAPER_LAYERS, "lbfgs")
    fixed = 3 * 2**29 + 64 * 1 * 8  # the process's 1.5 GiB and the chunk's values of 64 members
    # 80 GiB: (85,899,345,920 - 1,610,613,248) // 1,243,611,136 = 67 fit, so all 64 members.
    assert (80 * GIB - fixed) // per_member == 67
    assert budget.auto_batch_size(512, 512, PAPER_LAYERS, "lbfgs", members=64, limit=80 * GIB) == 64
    # 60 GiB (an 80 GB GPU's default 75% for XLA): 62,813,896,192 // 1,243,611,136 = 50.
    assert budget.auto_batch_size(512, 512, PAPER_LAYERS, "lbfgs", members=64, limit=60 * GIB) == 50
    # A limit that fits nobody still answers 1 (the memory check then refuses the run).
    assert budget.auto_batch_size(512, 512, PAPER_LAYERS, "lbfgs", members=64, limit=1.5 * GIB) == 1
    # No budget: every member.
    for limit in (None, float("inf")):
        assert budget.auto_batch_size(512, 512, PAPER_LAYERS, "lbfgs", members=64, limit=limit) == 64
    # The chunk's values count: 2**27 iterations of 64 members take 64 GiB of the 80.
    assert budget.auto_batch_size(512, 512, PAPER_LAYERS, "lbfgs", members=64, limit=80 * GIB,
                                  chunk=2**27) == (80 * GIB - 3 * 2**29 - 64 * 2**27 * 8) // per_member


def test_the_batches_are_as_even_as_the_largest_allows():
    assert sweep.plan_batch(64, 50) == 32  # two batches either way; 32 + 32 pads nothing
    assert sweep.plan_batch(64, 64) == 64
    assert sweep.plan_batch(10, 3) == 3  # four batches: 3, 3, 3, 1
    assert sweep.plan_batch(10, 4) == 4  # three batches
    assert sweep.plan_batch(10, 6) == 5
    assert sweep.plan_batch(5, 100) == 5
    assert sweep.plan_batch(7, 0) == 1
    assert sweep.auto_batch(64, 512, 512, PAPER_LAYERS, "lbfgs", chunk=1, limit=60 * GIB) == 32


def test_plan_memory_resolves_auto_from_max_memory():
    # 24x32 px up to conv2_2 (208 elements a pixel), Adam (4 images): 2,960 bytes a pixel,
    # 2,273,280 bytes a member; room for 2.5 members above the fixed part: a batch of 2.
    member = 24 * 32 * (14 * 208 + 4 * 12)
    assert member == budget.member_bytes(24, 32, ("conv1_1", "conv2_2"), "adam") == 2_273_280
    limit = (budget.BASE_BYTES + 4 * 8 + 2.5 * member) / GIB
    plan = lambda mode, batch: sweep_commands.plan_memory(  # noqa: E731
        mode, 4, batch, "adam", devices=1, shape=(24, 32), layers={"conv1_1", "conv2_2"}, chunk=1,
        max_memory=repr(limit))
    if len(jax.local_devices()) == 1:
        assert plan("map", None) == (2, 2) == plan("map", "auto")
        assert plan("map", 3) == (3, 3)
        assert plan("vmap", None) == (None, 4)
        assert plan("loop", None) == (None, 1)


def test_out_of_memory_errors_are_recognised():
    assert sweep.is_out_of_memory(jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying "
                                                             "to allocate 1073741824 bytes."))
    assert sweep.is_out_of_memory(RuntimeError("INTERNAL: Failed to allocate: Out of memory"))
    assert sweep.is_out_of_memory(MemoryError())
    assert not sweep.is_out_of_memory(jax.errors.JaxRuntimeError("INVALID_ARGUMENT: shapes"))
    assert not sweep.is_out_of_memory(ValueError("RESOURCE_EXHAUSTED"))


@pytest.fixture(scope="module")
def setup():
    content, style = samples.sample_images(32)
    return content, style, weights_source.random_weights(0)


def _exhausted(**kwargs):
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1234 bytes.\n"
                                     "BufferAssignment OOM Debugging.")


MEMBERS = [sweep.Member(ratio=r, style_layers=("conv1_1",), content_layer="conv1_2") for r in (1e-4, 1e-3, 1e-2)]


@pytest.mark.parametrize(("mode", "batch", "expected"), [
    ("vmap", None, "3 members in flight per device (vmap mode; RESOURCE_EXHAUSTED: Out of memory while trying to "
                   "allocate 1234 bytes.); try --batch-mode=map --batch-size=1"),
    ("map", 4, "4 members in flight per device (map mode; RESOURCE_EXHAUSTED: Out of memory while trying to "
               "allocate 1234 bytes.); try --batch-mode=map --batch-size=2"),
    ("loop", None, "one member in flight per device (RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                   "1234 bytes.); lower the --size"),
])
def test_run_sweep_names_the_batch_to_try(setup, monkeypatch, mode, batch, expected):
    content, style, weights = setup
    monkeypatch.setattr(sweep, "_run_batched", _exhausted)
    monkeypatch.setattr(sweep, "_run_loop", _exhausted)
    with pytest.raises(sweep.OutOfMemory) as info:
        sweep.run_sweep(content, style, MEMBERS, weights, optimizer="adam", iterations=1, mode=mode,
                        batch_size=batch, shard=False)
    assert info.value.named(sweep_commands.sweep_flag) == f"the sweep ran out of memory with {expected}"
    assert info.value.batch_size == {"vmap": 1, "map": 2, "loop": None}[mode]
    assert isinstance(info.value.__cause__, jax.errors.JaxRuntimeError)


def _pictures(tmp_path, content, style):
    paths = []
    for name, array in (("c.png", content), ("s.png", style)):
        Image.fromarray((array * 255).astype(np.uint8)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


def test_the_cli_reports_out_of_memory_in_one_line_and_writes_nothing(setup, tmp_path, monkeypatch, capsys):
    content, style, _ = setup
    monkeypatch.setattr(sweep, "_run_batched", _exhausted)
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *_pictures(tmp_path, content, style), "-o", str(out), "--weights", "random",
                       "--size", "32", "--iterations", "1", "--ratios", "1e-4,1e-3", "--style-layer-sets",
                       "conv1_1", "--content-layers", "conv1_2", "--batch-mode", "map", "--batch-size", "8",
                       "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines() == [
        "stylejax sweep: error: the sweep ran out of memory with 8 members in flight per device (map mode; "
        "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1234 bytes.); try --batch-mode=map "
        "--batch-size=4"]
    assert not out.exists()


def test_bad_batch_sizes_are_one_line(setup, tmp_path, capsys):
    content, style, _ = setup
    pictures = _pictures(tmp_path, content, style)
    for value in ("0", "x", "-1"):
        status = cli.main(["sweep", *pictures, "-o", str(tmp_path / "o"), "--weights", "random",
                           "--batch-size", value])
        err = capsys.readouterr().err
        assert status == 2 and "--batch-size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_chosen_batch_is_recorded(setup, tmp_path, capsys):
    """map with no --batch-size: auto; with room for 2.5 members, a batch of 2 (4 members:
    two batches), recorded in results.json."""
    content, style, _ = setup
    member = budget.member_bytes(24, 32, ("conv1_1", "conv1_2"), "adam")
    limit = (budget.BASE_BYTES + 4 * 8 + 2.5 * member) / GIB
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *_pictures(tmp_path, content, style), "-o", str(out), "--weights", "random",
                       "--size", "32", "--iterations", "1", "--ratios", "1e-4,1e-3,1e-2,1e-1", "--style-layer-sets",
                       "conv1_1", "--content-layers", "conv1_2", "--optimizer", "adam", "--batch-mode", "map",
                       "--max-memory", repr(limit), "--quiet"])
    assert status == 0, capsys.readouterr().err
    report = json.loads((out / "results.json").read_text())
    expected = 2 if len(jax.local_devices()) == 1 else report["batch_size"]
    assert report["batch_size"] == expected and report["config"]["batch_size"] == "auto"
    assert report["mode"] == "map" and [m["status"] for m in report["members"]] == ["done"] * 4
