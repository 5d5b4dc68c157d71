"""The benchmark in its tiny configuration, its PyTorch pre-check, and its error handling.

Everything but the error handling is in the slow tier (pytest -m slow): the tiny benchmark
alone takes minutes on 2 cores.
"""

import json
import math
import os
import time

import numpy as np
import pytest

from stylejax import cli
from stylejax._src import bench, bench_problem, losses, vgg, weights_source


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    start = time.perf_counter()
    status = cli.main(["bench", "--tiny", "--quiet", "-o", str(out)])
    wall = time.perf_counter() - start
    assert status == 0
    return out, json.loads((out / "bench.json").read_text()), wall


@pytest.fixture(scope="module")
def tiny_report(tiny_run):
    out, report, _ = tiny_run
    return out, report


@pytest.mark.slow
def test_tiny_bench_writes_json_markdown_and_plot(tiny_report):
    out, report = tiny_report
    assert sorted(os.listdir(out)) == ["bench.json", "bench.md", "bench.png"]
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "bench.md").read_text()
    assert "RANDOM WEIGHTS" in markdown and "| optimizer | execution |" in markdown
    assert report["about"]["weights"].startswith("RANDOM WEIGHTS")
    assert report["about"]["convolution"] in ("lax", "direct", "winograd")


@pytest.mark.slow
def test_tiny_bench_times_every_execution_mode(tiny_run):
    _, report, wall = tiny_run
    rows = report["modes"]["rows"]
    modes = {(r["optimizer"], r["mode"].split(" (")[0].split(" of ")[0]) for r in rows}
    for optimizer in ("lbfgs", "adam"):
        assert (optimizer, "whole solve, one compiled program") in modes
        assert (optimizer, "one compiled step per Python call") in modes
        assert (optimizer, "compiled chunks") in modes
        assert (optimizer, "op by op") in modes
    for row in rows:
        assert _positive(row["ms_per_evaluation"]["median"])
        assert row["ms_per_evaluation"]["min"] <= row["ms_per_evaluation"]["median"] <= row["ms_per_evaluation"]["max"]
        if row["mode"].startswith("op by op"):
            assert row["compile_seconds"] == 0.0  # nothing compiled
        else:  # a real compile, measured inside the bench call
            assert 0 < row["compile_seconds"] < wall


@pytest.mark.slow
def test_tiny_bench_measures_sizes_in_their_own_process(tiny_report):
    _, report = tiny_report
    (row,) = report["sizes"]["rows"]
    assert row["size"] == 32 and row["shape"][1] == 32
    for key in ("ms_per_evaluation", "evaluation_ms", "compile_seconds", "peak_host_rss_mb"):
        assert _positive(row[key]), key
    # A child's own peak: a fresh process with jax and a VGG19 takes hundreds of MB, not GBs.
    assert 100 < row["peak_host_rss_mb"] < 2500


@pytest.mark.slow
def test_tiny_bench_runs_every_sweep_mode(tiny_report):
    _, report = tiny_report
    rows = report["sweep"]["rows"]
    assert {r["mode"] for r in rows} == {"vmap", "map", "loop"}
    loop = next(r for r in rows if r["mode"] == "loop")
    for row in rows:
        median = row["seconds"]["median"]
        assert _positive(median)
        # Each speed-up is the loop's time over this mode's, and the throughput is the
        # members over this mode's time, both from the times the report gives.
        assert row["speedup_vs_loop"] == pytest.approx(loop["seconds"]["median"] / median, rel=1e-9)
        assert row["members_per_minute"] == pytest.approx(60.0 * row["members"] / median, rel=1e-9)


@pytest.mark.slow
def test_tiny_bench_compares_with_pytorch_or_says_it_was_skipped(tiny_report):
    _, report = tiny_report
    if bench.bench_torch.available():
        (row,) = report["torch"]["rows"]
        assert row["agreement"]["loss_relative_error"] <= row["agreement"]["loss_rtol"]
        assert row["agreement"]["grad_relative_error"] <= row["agreement"]["grad_rtol"]
        assert _positive(row["evaluation_ratio"]) and _positive(row["adam_ratio"])
    else:
        assert "not installed" in report["torch"]["skipped"]


PEAK_SCRIPT = """
import json, os, sys
import numpy as np
if sys.argv[1] == "parent":
    big = np.ones(ARRAY_MB * 2**20 // 8)  # touched: resident
    del big
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], "child", sys.argv[2]])
from stylejax._src.bench_size import peak_rss_mb
before = peak_rss_mb()
array = np.ones(ARRAY_MB * 2**20 // 8)
print(json.dumps({"before": before, "after": peak_rss_mb()}))
"""


@pytest.mark.slow
def test_peak_rss_is_this_process_own():
    """A process that had a big array before exec'ing does not pass its peak on (ru_maxrss
    would), and an array the measured process allocates shows in full."""
    import subprocess
    import sys

    array_mb = 300
    script = PEAK_SCRIPT.replace("ARRAY_MB", str(array_mb))
    done = subprocess.run([sys.executable, "-c", script, "parent", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    peaks = json.loads(done.stdout)
    assert peaks["before"] < array_mb  # the exec'd process's own peak, not its predecessor's
    assert peaks["after"] - peaks["before"] >= 0.95 * array_mb


@pytest.mark.parametrize("argv, message", [
    (["--sections", "modes,speed"], "unknown bench section 'speed'"),
    (["--sizes", "64,abc"], "--sizes must be a whole number"),
    (["--convolution", "fft"], "unknown convolution algorithm"),
    (["--repeats", "0"], "--repeats must be a whole number >= 1"),
])
def test_bench_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    status = cli.main(["bench", "--tiny", "-o", str(out), *argv])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert message in err and "\n" not in err
    assert not out.exists() or not os.listdir(out)


# --- PyTorch side by side (runs when torch is installed) ---------------------------


@pytest.fixture(scope="module")
def small_problem():
    return bench_problem.build(32, weights_source.random_weights(0))


@pytest.mark.slow
def test_torch_features_match_stylejax(small_problem):
    torch = pytest.importorskip("torch")
    from stylejax._src import torch_vgg

    model = bench.bench_torch.torch_model(small_problem)
    layers = ("conv1_1", "conv3_1", "conv4_2", "conv5_1")
    with torch.no_grad():
        theirs = model.features(torch_vgg.to_torch_image(small_problem.init))
    ours = vgg.features(small_problem.args.params, small_problem.init, layers)
    for name in layers:
        np.testing.assert_allclose(theirs[name].numpy()[0].transpose(1, 2, 0), np.asarray(ours[name]),
                                   rtol=1e-4, atol=1e-4 * float(np.abs(np.asarray(ours[name])).max()))


@pytest.mark.slow
@pytest.mark.parametrize("convolution", ["lax", "winograd"])
def test_torch_precheck_passes_on_the_same_problem(small_problem, convolution):
    pytest.importorskip("torch")
    agreement = bench.bench_torch.check(small_problem, convolution)
    assert agreement["timed_convolution"] == convolution
    assert set(agreement["terms"]) == {f"{t} ({p})" for t in ("content", "style") for p in ("lax", convolution)}
    for errors in agreement["terms"].values():
        assert errors["loss_relative_error"] <= bench.bench_torch.LOSS_RTOL
        assert errors["grad_relative_error"] <= bench.bench_torch.GRAD_RTOL
    style_only = small_problem.args.weights._replace(content_weight=np.float32(0.0))
    expected = float(losses.objective(small_problem.init, small_problem.args.params, small_problem.args.targets,
                                      style_only, small_problem.spec))
    assert agreement["terms"]["style (lax)"]["stylejax"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_torch_precheck_refuses_a_different_loss(small_problem):
    pytest.importorskip("torch")
    from stylejax._src.errors import UserError

    model = bench.bench_torch.torch_model(small_problem)
    model.style_layer_weights[4] = 0.0  # conv5_1 dropped: not the paper's style loss any more
    with pytest.raises(UserError, match="style term"):
        bench.bench_torch.check(small_problem, "winograd", model)
