"""scripts/device_check.py (stylejax/bench/device_check.py): its pieces, its bookkeeping
(a failing section, a spent budget, results rewritten after every section), its usage
errors, and the --smoke run end to end (slow tier: it compiles about fifteen programs)."""

import dataclasses
import json
import math
import os
import subprocess
import sys
import time

import pytest

from stylejax._src import convolution, precision
from stylejax.bench import bench_torch, device_check

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def test_device_slug():
    assert device_check.device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert device_check.device_slug("NVIDIA H200") == "nvidia-h200"
    assert device_check.device_slug("cpu") == "cpu"
    assert device_check.device_slug("TPU v5 lite") == "tpu-v5-lite"
    assert device_check.device_slug(" / ") == "device"


def test_parse_pytest_reads_the_summary_and_the_failed_tests():
    output = "\n".join([
        "..F..s.                                                   [100%]",
        "=========================== short test summary info ============================",
        "FAILED tests/test_a.py::test_one - AssertionError: no",
        "ERROR tests/test_b.py::test_two - RuntimeError",
        "5 passed, 1 failed, 1 skipped, 1 error, 63 deselected in 12.34s",
    ])
    parsed = device_check.parse_pytest(output)
    assert parsed["complete"]
    assert parsed["counts"] == {"passed": 5, "failed": 1, "errors": 1, "skipped": 1, "deselected": 63,
                                "xfailed": 0, "xpassed": 0}
    assert parsed["failed_tests"] == ["tests/test_a.py::test_one", "tests/test_b.py::test_two"]


def test_parse_pytest_counts_the_progress_of_a_run_cut_short():
    parsed = device_check.parse_pytest("....F.s.  [ 10%]\n..E.\n")
    assert not parsed["complete"] and parsed["summary"] is None
    assert parsed["counts"]["passed"] == 9 and parsed["counts"]["failed"] == 1
    assert parsed["counts"]["errors"] == 1 and parsed["counts"]["skipped"] == 1


def test_out_of_memory_is_recognised():
    assert device_check.is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 12 GiB"))
    assert device_check.is_out_of_memory(MemoryError())
    assert not device_check.is_out_of_memory(ValueError("shapes do not match"))


def _results(sections: dict, smoke: bool = False) -> dict:
    cfg = dataclasses.replace(device_check.CheckConfig(), smoke=smoke)
    about = {"device_kind": "NVIDIA H100 80GB HBM3", "devices": 1, "jax": "0.10.2", "smoke": smoke,
             "config": dataclasses.asdict(cfg)}
    return {"about": about, "sections": sections}


def test_targets_and_the_readme_row_come_from_the_sections():
    default = precision.DEFAULT_PRECISION
    sections = {
        "lbfgs": {"status": "ok", "rows": [
            {"precision": default, "seconds": 2.5, "compile_seconds": 16.0},
            {"precision": "default", "seconds": 1.25, "compile_seconds": 9.0},
        ], "agreement": {"recommended": "default"}},
        "sweep": {"status": "ok", "best_batched": {"mode": "vmap", "ratio_to_loop": 5.5}},
        "adam": {"status": "error", "error": "RuntimeError: boom"},
        "convolutions": {"status": "ok", "rows": [{"convolution": "lax", "seconds": 0.004},
                                                  {"convolution": "direct", "skipped": "budget"}]},
        "memory": {"status": "ok", "peak_bytes": {"512": 3 * 2**30, "1024": None}, "largest_fitting": 4608},
        "tests": {"status": "ok", "counts": {"passed": 700, "failed": 2, "errors": 1}, "timed_out": True},
    }
    results = _results(sections)
    by_name = {t["name"]: t for t in device_check.targets(results)}
    assert by_name["lbfgs_seconds"]["status"] == "PASS" and by_name["lbfgs_seconds"]["value"] == 2.5
    assert by_name["sweep_vs_loop"]["status"] == "PASS" and by_name["sweep_vs_loop"]["mode"] == "vmap"
    assert by_name["compile_seconds"]["status"] == "MISS"
    header, separator, row = device_check.readme_rows(results)
    assert header.count("|") == row.count("|") == separator.count("|")
    assert "512 px x 500 L-BFGS s" in header and "16-ratio sweep at 256 px" in header
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:6] == ["NVIDIA H100 80GB HBM3", "0.10.2", "2.50", "16.0", "default: 1.25 s", "-"]
    assert cells[6] == "4.0 / - / -" and cells[7] == "5.50x (vmap)"
    assert cells[8] == "3072 / - / -" and cells[9] == "4608"
    assert cells[10] == "700 passed, 3 failed (cut short)"


def test_targets_without_measurements_are_not_applicable():
    results = _results({"lbfgs": {"status": "skipped"}, "sweep": {"status": "error"}})
    assert {t["status"] for t in device_check.targets(results)} == {"n/a"}


def _fake_sections(monkeypatch, runners: dict):
    for name, runner in runners.items():
        monkeypatch.setitem(device_check.RUNNERS, name, runner)


def test_a_failing_section_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    seen = {}

    def failing(ctx):
        raise RuntimeError("the accelerator caught fire\nsecond line")

    def tests(ctx):  # runs after memory and torch: their results are on disk already
        out = os.path.join(str(tmp_path), "device", "cpu")
        with open(os.path.join(out, "results.json")) as handle:
            seen["json"] = json.load(handle)
        with open(os.path.join(out, "results.md")) as handle:
            seen["md"] = handle.read()
        return {"command": "python -m pytest -q", "counts": dict.fromkeys(
            ("passed", "failed", "errors", "skipped", "deselected", "xfailed", "xpassed"), 0) | {"passed": 3},
            "seconds": 1.0, "timed_out": False, "failed_tests": []}

    _fake_sections(monkeypatch, {"memory": failing, "torch": lambda ctx: {"skipped": "no CUDA here"},
                                 "tests": tests})
    cfg = dataclasses.replace(device_check.CheckConfig(), sections=("memory", "torch", "tests"))
    results = device_check.run(cfg, str(tmp_path), log=lambda line: None)
    sections = results["sections"]
    assert sections["memory"]["status"] == "error"
    assert sections["memory"]["error"] == "RuntimeError: the accelerator caught fire"
    assert any("caught fire" in line for line in sections["memory"]["traceback"])
    assert sections["torch"] == {"status": "skipped", "reason": "no CUDA here",
                                 "section_seconds": sections["torch"]["section_seconds"]}
    assert sections["tests"]["status"] == "ok" and sections["tests"]["counts"]["passed"] == 3
    assert sections["lbfgs"] == {"status": "not selected"}
    # Written after each section: the tests section saw memory's error on disk.
    assert seen["json"]["sections"]["memory"]["status"] == "error"
    assert seen["json"]["sections"]["tests"]["status"] == "pending" and not seen["json"]["finished"]
    assert "the accelerator caught fire" in seen["md"]
    written = json.loads((tmp_path / "device" / "cpu" / "results.json").read_text())
    assert written["finished"] and written["sections"]["tests"]["counts"]["passed"] == 3
    assert written["about"]["weights"] == "seeded random weights" and written["about"]["weights_random"]
    assert "3 passed" in (tmp_path / "device" / "cpu" / "results.md").read_text()


def test_sections_after_the_budget_are_skipped_and_marked(tmp_path, monkeypatch):
    ran = []

    def slow(ctx):
        ran.append("memory")
        time.sleep(0.3)
        return {"attempts": []}

    def never(ctx):
        ran.append("lbfgs")
        return {}

    _fake_sections(monkeypatch, {"memory": slow, "lbfgs": never})
    cfg = dataclasses.replace(device_check.CheckConfig(), sections=("memory", "lbfgs"), budget_seconds=0.2)
    # Context.remaining counts from the start of run(): give the set-up its share.
    monkeypatch.setattr(device_check, "about", lambda cfg, weights: _results({})["about"] | {
        "device": "cpu", "backend": "cpu", "date": "today", "git_commit": None, "git_dirty": False,
        "weights": device_check.RANDOM_LABEL, "budget_seconds": cfg.budget_seconds})
    results = device_check.run(cfg, str(tmp_path), log=lambda line: None)
    assert ran == ["memory"]
    assert results["sections"]["lbfgs"]["status"] == "skipped"
    assert "budget of 0.2 s spent" in results["sections"]["lbfgs"]["reason"]
    assert "budget of 0.2 s spent" in (tmp_path / "device" / "cpu" / "results.md").read_text()


def test_items_after_the_budget_are_skipped_inside_a_section():
    ctx = device_check.Context(device_check.CheckConfig(budget_seconds=1.0), print, time.monotonic() - 1)
    rows = []
    assert ctx.out_of_time(rows, {"precision": "high"})
    assert rows == [{"precision": "high", "skipped": "budget of 1 s spent"}]


@pytest.mark.parametrize("argv, message", [
    (["--sections", "lbfgs,bogus"], "unknown section 'bogus'"),
    (["--budget-seconds", "-5"], "--budget-seconds must be a positive number of seconds"),
    (["--budget-seconds", "soon"], "--budget-seconds must be a number of seconds"),
    (["--tests-timeout", "0"], "--tests-timeout must be a positive number of seconds"),
    (["--convolution", "fft"], "unknown convolution algorithm 'fft'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert device_check.main([*argv, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("device_check: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_an_output_root_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    root = tmp_path / "taken"
    root.write_text("a file")
    assert device_check.main(["--sections", "tests", "-o", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_script_is_the_library_behind_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "device_check.py"), "--sections", "nope",
                           "-o", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("device_check: error: unknown section 'nope': expected some of "
                                   + ", ".join(device_check.SECTIONS))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("device-check")
    lines = []
    start = time.perf_counter()
    results = device_check.run(device_check.SMOKE, str(root), log=lines.append)
    wall = time.perf_counter() - start
    out = root / "device" / "cpu"
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text(), lines, results, wall


@pytest.mark.slow
def test_smoke_writes_every_section(smoke):
    report, _, _, _, wall = smoke
    assert report["finished"] and set(report["sections"]) == set(device_check.SECTIONS)
    statuses = {name: s["status"] for name, s in report["sections"].items()}
    expected_torch = "skipped" if not bench_torch.available() or not __import__("torch").cuda.is_available() else "ok"
    assert statuses == {**dict.fromkeys(device_check.SECTIONS, "ok"), "torch": expected_torch}, report["sections"]
    about = report["about"]
    assert about["backend"] == "cpu" and about["device_kind"] == "cpu" and about["devices"] >= 1
    assert about["jax"] and about["date"].startswith("20") and about["smoke"]
    assert about["weights"] == "seeded random weights"
    assert about["git_commit"] is None or len(about["git_commit"]) == 40
    assert wall < 300


@pytest.mark.slow
def test_smoke_solver_sections_are_finite_and_positive(smoke):
    report = smoke[0]
    for name, iterations in (("lbfgs", device_check.SMOKE.iterations), ("adam", device_check.SMOKE.adam_iterations)):
        rows = report["sections"][name]["rows"]
        assert [r["precision"] for r in rows] == list(precision.PRECISIONS)
        for row in rows:
            assert row["status"] == "completed" and row["iterations"] == iterations
            assert row["evaluations"] >= iterations
            for key in ("seconds", "compile_seconds", "ms_per_evaluation", "final_objective"):
                assert _positive(row[key]), (name, key, row)
    agreement = report["sections"]["lbfgs"]["agreement"]
    assert agreement["images"] == ["init", "solved"] and agreement["tolerance"] == 1e-3
    for row in agreement["rows"]:
        for values in (row["objective_relative_difference"], row["gradient_relative_difference"]):
            assert set(values) == {"init", "solved"}
            assert all(math.isfinite(v) and v >= 0 for v in values.values())
    assert agreement["rows"][0]["precision"] == "highest" and agreement["rows"][0]["within_tolerance"]
    assert agreement["recommended"] in precision.PRECISIONS


@pytest.mark.slow
def test_smoke_convolutions_sweep_memory_and_tests(smoke):
    sections = smoke[0]["sections"]
    rows = sections["convolutions"]["rows"]
    assert [r["convolution"] for r in rows] == list(convolution.ALGORITHMS)
    assert all(_positive(r["seconds"]) and _positive(r["first_call_seconds"]) for r in rows)
    assert all(r["gradient_relative_difference_vs_first"] < 1e-3 for r in rows)
    sweep = sections["sweep"]
    assert [r["mode"] for r in sweep["rows"]] == ["loop", "vmap", "map"]
    for row in sweep["rows"]:
        assert _positive(row["throughput"]) and _positive(row["ratio_to_loop"]) and _positive(row["compile_seconds"])
        assert row["members_done"] == device_check.SMOKE.sweep_members
    assert sweep["rows"][0]["ratio_to_loop"] == 1.0 and sweep["best_batched"]["mode"] in ("vmap", "map")
    memory = sections["memory"]
    assert [a["size"] for a in memory["attempts"]] == [32, 48, 64] and all(a["ok"] for a in memory["attempts"])
    assert memory["largest_fitting"] == 64 and memory["smallest_out_of_memory"] is None
    assert memory["peak_bytes"] == {"32": None, "48": None}  # the CPU keeps no peak
    tests = sections["tests"]
    assert tests["complete"] and tests["counts"]["passed"] == 1 and tests["counts"]["failed"] == 0
    assert _positive(tests["seconds"]) and tests["exit_status"] == 0


@pytest.mark.slow
def test_smoke_markdown_has_the_targets_and_the_readme_row(smoke):
    report, md, lines, _, _ = smoke
    assert [t["name"] for t in report["targets"]] == [t[0] for t in device_check.TARGETS]
    assert all(t["status"] in ("PASS", "MISS") and _positive(t["value"]) for t in report["targets"])
    assert len(report["readme_rows"]) == 3
    for row in report["readme_rows"]:
        assert row in md and row in lines[-2]
    assert "cpu (smoke)" in report["readme_rows"][2]
    for name in device_check.SECTIONS:
        assert f"## {name}\n" in md
    assert any(line.startswith(("PASS: ", "MISS: ")) for line in lines)


@pytest.mark.slow
@pytest.mark.skipif(not bench_torch.available(), reason="torch is not installed")
def test_the_device_model_agrees_with_stylejax_on_the_cpu():
    from stylejax._src.weights import weights_source

    problem = device_check.build_problem(32, weights_source.random_weights(0), device_check.SMOKE_LAYERS)
    agreement = bench_torch.check(problem, "lax", device_check.device_model(problem, "cpu"))
    assert agreement["loss_relative_error"] <= bench_torch.LOSS_RTOL
