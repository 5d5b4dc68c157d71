"""Sweeps across processes (jax.distributed over Gloo on 127.0.0.1): the same results as
one process, process 0 alone writing, and every failure one line and status 2 in time.

Each test that starts processes gives them a timeout, so a hang fails the test instead of
blocking the run; the supervised worker of a killed command follows it within a second
(stylejax/_src/distributed.py, ``follow_parent``).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import distributed, samples
from stylejax._src.errors import InvalidSetting
from stylejax.cli import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 600  # seconds a started process may take before the test fails (a hang)
SWEEP = ["--weights", "random", "--size", "32", "--iterations", "3", "--ratios", "1e-4,1e-3",
         "--style-layer-sets", "conv1_1;conv1_1,conv2_1", "--content-layers", "conv2_2"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    content, style = samples.sample_images(32)
    paths = []
    for name, array in (("content.png", content), ("style.png", style)):
        Image.fromarray((array * 255).astype(np.uint8)).save(folder / name)
        paths.append(str(folder / name))
    return paths


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(arguments, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT, "STYLEJAX_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "stylejax", *arguments], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _finish(process: subprocess.Popen, timeout: float = TIMEOUT) -> tuple[int, str]:
    """The exit status and stderr; a process still running after ``timeout`` is killed
    and fails the test."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"still running after {timeout} s (a hang): {err[-2000:]}")
    return process.returncode, err


def _pair(pictures, out, extra, timeout=30):
    """The same distributed sweep in processes 0 and 1 (outputs ``out``0 and ``out``1)."""
    coordinator = f"127.0.0.1:{_free_port()}"
    return [_start(["sweep", *pictures, "-o", f"{out}{k}", *SWEEP, *extra, "--distributed", "--coordinator",
                    coordinator, "--num-processes", "2", "--process-id", str(k), "--distributed-timeout",
                    str(timeout)]) for k in (0, 1)]


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# The pure parts: settings, the explanation of a runtime's death, the worker's command line.

def test_settings_are_checked_and_named():
    assert distributed.settings() == distributed.Settings(timeout=distributed.DEFAULT_TIMEOUT)
    chosen = distributed.settings("10.0.0.1:1234", "2", "1", "30")
    assert chosen == distributed.Settings("10.0.0.1:1234", 2, 1, 30)
    assert chosen.describe() == "process 1 of 2"
    assert distributed.settings("[::1]:80", 1, 0).coordinator == "[::1]:80"
    flag = lambda name: f"--{name.replace('_', '-')}"  # noqa: E731
    for arguments, message in (
        (("host", 2, 0), "--coordinator must be HOST:PORT with a port 1..65535, got 'host'"),
        (("host:0", 2, 0), "got 'host:0'"),
        (("host:65536", 2, 0), "got 'host:65536'"),
        (("host:1", None, 0), "--coordinator needs --num-processes too"),
        ((None, 2, None), "--num-processes needs --coordinator and --process-id too"),
        (("host:1", 2, 2), "--process-id must be 0..1 for --num-processes 2, got 2"),
        (("host:1", 0, 0), "--num-processes must be a whole number from 1"),
        (("host:1", 2, -1), "--process-id must be a whole number from 0"),
    ):
        with pytest.raises(InvalidSetting) as info:
            distributed.settings(*arguments)
        assert message in info.value.named(flag)
    with pytest.raises(InvalidSetting, match="distributed_timeout must be a whole number from 1"):
        distributed.settings(timeout="0")


def test_a_runtime_death_is_explained_in_one_sentence():
    chosen = distributed.Settings("127.0.0.1:5000", 2, 1, 10)
    abort = -signal.SIGABRT
    # The lines JAX 0.10.2 printed in each case (trimmed), see docs/contract.md.
    joined = ("F1207 client.h:80] Terminating process because the JAX distributed service detected fatal "
              "errors. absl::Status: DEADLINE_EXCEEDED: Deadline Exceeded\n\n"
              "RPC: /xla.coordination.CoordinationService/RegisterTask\n")
    assert distributed.explain(joined, abort, chosen) == (
        "process 1 of 2: the distributed run's processes did not all join the coordinator at "
        "127.0.0.1:5000 within 10 s (is every process started, with the same coordinator, and the "
        "address reachable from here?)")
    lost = ("E1207 coordination_service.cc:1549] Use error polling to propagate the following error to all "
            "tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):\n1\n")
    assert "another process of the distributed run died, hung or became unreachable" in distributed.explain(
        lost, abort, chosen)
    assert "within 10 s" in distributed.explain("RPC: /xla.coordination.CoordinationService/Heartbeat", abort,
                                                chosen)
    assert distributed.explain("", -signal.SIGKILL, chosen) == "process 1 of 2: the sweep's process ended with SIGKILL"
    assert distributed.explain("something else", abort, distributed.Settings()) == (
        "this process: the sweep's process ended with SIGABRT; run with --debug to see JAX's log")


def test_a_lost_peer_in_a_collective_becomes_one_line():
    chosen = distributed.Settings("127.0.0.1:5000", 2, 0, 10)
    gloo = ValueError("UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:547] "
                      "Connection closed by peer [127.0.0.1]:40842")
    assert distributed.is_peer_failure(gloo)
    assert not distributed.is_peer_failure(RuntimeError("RESOURCE_EXHAUSTED: Out of memory"))
    with pytest.raises(distributed.DistributedFailure) as info, distributed.failures(chosen):
        raise gloo
    assert "lost another process of the distributed run (UNKNOWN: Gloo AllGather failed" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(KeyError), distributed.failures(chosen):  # other errors pass unchanged
        raise KeyError("x")


def test_the_worker_gets_the_same_command_line(monkeypatch, pictures, tmp_path):
    """The supervising process starts ``python -m stylejax sweep`` with the options it was
    given; parsed again, they are the same, whatever the spelling."""
    seen = {}

    def supervise(command, chosen, *, debug=False):
        seen.update(command=command, chosen=chosen, debug=debug)
        return 0

    monkeypatch.setattr(distributed, "supervise", supervise)
    monkeypatch.delenv(distributed.WORKER_ENV, raising=False)
    argv = ["sweep", *pictures, "-o", str(tmp_path / "out"), "--ratios=1e-4,1e-3", "--batch-mode", "map",
            "--batch-size", "auto", "--inits", "content", "--overwrite", "--distributed", "--coordinator",
            "127.0.0.1:1234", "--num-processes", "2", "--process-id", "1", "--distributed-timeout", "7", "--quiet"]
    assert cli.main(argv) == 0
    command = seen["command"]
    assert command[:3] == [sys.executable, "-m", "stylejax"]
    assert seen["chosen"] == distributed.Settings("127.0.0.1:1234", 2, 1, 7) and not seen["debug"]
    again, original = (vars(commands.build_parser().parse_args(a)) for a in (command[3:], argv))
    again.pop("sweep_options"), original.pop("sweep_options")
    assert again == original
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--coordinator=127.0.0.1:1", "--num-processes=2", "--process-id=0",
                                  "--distributed-timeout=5"])
def test_distributed_flags_need_distributed(flag, pictures, tmp_path, capsys):
    status = cli.main(["sweep", *pictures, "-o", str(tmp_path / "out"), flag])
    err = capsys.readouterr().err
    assert status == 2 and err.strip().splitlines() == [f"stylejax sweep: error: {flag.split('=')[0]} needs "
                                                        "--distributed"]


# Processes on 127.0.0.1.

@pytest.mark.slow
def test_an_unreachable_coordinator_is_one_line_within_the_timeout(pictures, tmp_path):
    """Process 1 of 2, and no process 0: one line, status 2, nothing written, after the
    3 s timeout plus the start (importing JAX, reading the pictures)."""
    out = tmp_path / "out"
    start = time.monotonic()
    process = _start(["sweep", *pictures, "-o", str(out), *SWEEP, "--distributed", "--coordinator",
                      f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "1",
                      "--distributed-timeout", "3", "--quiet"])
    status, err = _finish(process, timeout=120)
    seconds = time.monotonic() - start
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("stylejax sweep: error: process 1 of 2: the distributed run's processes did not all "
                          "join the coordinator at 127.0.0.1:") and "within 3 s" in err
    assert 3 <= seconds < 60
    assert not out.exists()


@pytest.mark.slow
def test_a_lone_process_0_is_one_line_within_the_timeout(pictures, tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    process = _start(["sweep", *pictures, "-o", str(out), *SWEEP, "--distributed", "--coordinator",
                      f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "0",
                      "--distributed-timeout", "3", "--quiet"])
    status, err = _finish(process, timeout=120)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "process 0 of 2: the distributed run's processes did not all join" in err
    assert 3 <= time.monotonic() - start < 60
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--optimizer", "adam", "--lr", "5.1", "--batch-mode", "vmap"]],
                         ids=["lbfgs-auto-loop", "adam-vmap"])
def test_two_processes_equal_one_process_member_by_member(pictures, tmp_path, extra):
    """Two processes (one CPU device each) and one process, side by side: the same member
    images, bit for bit, and the same final losses and histories, exactly (measured: they
    are); process 0 alone writes the files."""
    one = _start(["sweep", *pictures, "-o", str(tmp_path / "one"), *SWEEP, *extra, "--quiet"])
    pair = _pair(pictures, tmp_path / "two", [*extra, "--quiet"])
    for process in (*pair, one):
        status, err = _finish(process)
        assert status == 0, err
        assert err == "", err
    assert not (tmp_path / "two1").exists()  # process 1 writes nothing
    alone = json.loads((tmp_path / "one" / "results.json").read_text())
    shared = json.loads((tmp_path / "two0" / "results.json").read_text())
    assert sorted(os.listdir(tmp_path / "two0")) == sorted(os.listdir(tmp_path / "one"))
    assert {"grid.png", "results.json", "results.csv"} <= set(os.listdir(tmp_path / "two0"))
    assert shared["processes"] == 2 and shared["devices"] == 2 and alone["processes"] == 1
    assert shared["config"]["distributed"]["processes"] == 2
    assert shared["mode"] == alone["mode"] == ("vmap" if extra else "loop")
    assert len(shared["members"]) == len(alone["members"]) == 4
    for mine, theirs in zip(alone["members"], shared["members"], strict=True):
        assert theirs["status"] == mine["status"] == "done"
        assert theirs["final"] == mine["final"]  # every term, exactly
        assert theirs["history"] == mine["history"] and theirs["evaluations"] == mine["evaluations"]
        with Image.open(tmp_path / "one" / mine["image"]) as a, Image.open(tmp_path / "two0" / theirs["image"]) as b:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _worker_of(process: subprocess.Popen) -> int:
    """The supervised worker's pid: the command's only child."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as handle:
            children = handle.read().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise AssertionError("no worker process")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_process_ends_every_process_with_one_line(pictures, tmp_path, victim):
    """SIGKILL to one process's worker mid-sweep: both commands end with one error line
    and status 2 within the 10 s timeout (plus the margin of a loaded machine), and
    nothing is written."""
    longer = ["--size", "64", "--iterations", "400", "--optimizer", "adam", "--batch-mode", "vmap"]
    pair = _pair(pictures, tmp_path / "out", longer, timeout=10)
    lines = []
    for line in pair[0].stderr:  # the sweep has started once process 0 says so
        lines.append(line)
        if line.startswith("sweep: 4 members"):
            break
    time.sleep(3)
    killed = time.monotonic()
    os.kill(_worker_of(pair[victim]), signal.SIGKILL)
    results = [_finish(process, timeout=120) for process in pair]
    seconds = time.monotonic() - killed
    errors = ["".join(lines) + results[0][1], results[1][1]]
    for k, ((status, _), err) in enumerate(zip(results, errors, strict=True)):
        assert status == 2, err
        assert len(_errors(err)) == 1 and err.strip().splitlines()[-1] == _errors(err)[0], err
        assert f"process {k} of 2" in _errors(err)[0]
    assert "ended with SIGKILL" in _errors(errors[victim])[0]
    assert "another process of the distributed run" in _errors(errors[1 - victim])[0]
    assert seconds < 10 + 30
    assert not (tmp_path / "out0").exists() and not (tmp_path / "out1").exists()
