"""Sweeps across processes and hosts: ``jax.distributed`` set up, and its failures named.

One process per host (or per accelerator) runs the same sweep; :func:`initialize` joins
them through a coordinator (process 0's address), :func:`global_mesh` lays one mesh over
every process's devices, and ``run_sweep(..., mesh=...)`` shards the members over it
(stylejax/_src/sweep.py). The settings come from the cluster where JAX detects one
(SLURM, Open MPI, Cloud TPU, Kubernetes), else from :class:`Settings`. On CPU the
processes talk over Gloo (``jax_cpu_collectives_implementation``, ``gloo`` by default).

How a distributed run fails (measured, jax 0.10.2, CPU, 2 processes on 127.0.0.1):

- A peer that dies while this process waits in a collective (the per-chunk gather of
  the objective values, the final gather): Gloo raises at once (``Connection closed by
  peer``, ``Connection reset by peer``), a Python exception that :func:`failures` turns
  into a :class:`DistributedFailure`.
- A peer that dies or hangs while this process computes, the coordinator unreachable,
  or a process that never joins: JAX's coordination service notices (no heartbeat for
  ``timeout`` seconds; no connection within ``timeout`` seconds) and ends the process
  from C++ (``LOG(QFATAL)``, SIGABRT, a stack trace on stderr). No Python code runs, so
  :func:`supervise` runs the work in a child process and turns that death into a
  :class:`DistributedFailure` with one sentence (:func:`explain`).
- A process that leaves after an error while the others still run: Python's exit would
  wait in JAX's shutdown barrier, then abort the same way; :func:`abandon` makes it
  leave at once (``os._exit``), so the others see its death promptly.

So with ``timeout`` T every process ends within about T seconds of the failure; the
measured times are in docs/contract.md.

JAX is imported inside the functions: the supervising parent never loads it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time

from stylejax._src.errors import InvalidSetting, quote

DEFAULT_TIMEOUT = 120  # seconds: joining, heartbeats, the shutdown barrier
WORKER_ENV = "STYLEJAX_DISTRIBUTED_WORKER"  # set in the supervised child: its messages' fd
_LOG_LINES = 400  # the runtime log's last lines kept by the supervisor


class DistributedFailure(RuntimeError):
    """A distributed run that cannot go on: the coordinator unreachable, a process that
    died or hung. Its message is one line, naming the process and the timeout (the
    command line prints it, status 2)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How this process joins the run. ``coordinator`` (``HOST:PORT``, process 0's
    address), ``num_processes`` and ``process_id``: all three, or none (the cluster's,
    detected by JAX). ``timeout``: seconds to wait for every process to join, for a
    silent peer (heartbeats), and for the others at the end."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout: int = DEFAULT_TIMEOUT

    def describe(self) -> str:
        """``process I of N`` as far as the settings know it."""
        if self.process_id is None:
            return "this process"
        return f"process {self.process_id} of {self.num_processes}"


def _whole(value, name: str, minimum: int) -> int | None:
    """``value`` (a number or its text) as an int >= minimum; None stays None."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < minimum or int(text) > 2**31 - 1:
        raise InvalidSetting(f"{{}} must be a whole number from {minimum} to {2**31 - 1}, got {quote(value)}", name)
    return int(text)


def settings(coordinator: str | None = None, num_processes: int | str | None = None,
             process_id: int | str | None = None, timeout: int | str | None = None) -> Settings:
    """Checked :class:`Settings` (numbers may be given as text; ``timeout`` None:
    ``DEFAULT_TIMEOUT``).

    Raises:
      InvalidSetting: a coordinator that is not ``HOST:PORT`` (port 1..65535), only some
        of ``coordinator``, ``num_processes`` and ``process_id``, ``process_id`` outside
        0..num_processes-1, or a timeout below 1 s.
    """
    num_processes = _whole(num_processes, "num_processes", 1)
    process_id = _whole(process_id, "process_id", 0)
    timeout = _whole(timeout, "distributed_timeout", 1)
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    missing = [name for name, value in given.items() if value is None]
    if 0 < len(missing) < 3:
        named = [name for name in given if name not in missing]
        raise InvalidSetting(
            "{} needs " + " and ".join("{}" for _ in missing) + " too (or none of them, on a cluster "
            "that JAX detects)", named[0], *missing)
    if coordinator is not None:
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InvalidSetting("{} must be HOST:PORT with a port 1..65535, got " + quote(str(coordinator)),
                                 "coordinator")
        if not process_id < num_processes:
            raise InvalidSetting(f"{{}} must be 0..{num_processes - 1} for {{}} {num_processes}, got {process_id}",
                                 "process_id", "num_processes")
    return Settings(coordinator, num_processes, process_id, timeout)


_abandoned: list[int] = []


def _leave_if_abandoned() -> None:
    if _abandoned:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(_abandoned[-1])


def abandon(status: int) -> None:
    """Makes this process leave with ``status`` as soon as Python starts exiting, before
    JAX's shutdown barrier (which would wait for processes that are still running, then
    abort): for a process that stops alone, after an error."""
    _abandoned.append(status)


def initialize(chosen: Settings) -> None:
    """``jax.distributed.initialize`` with ``chosen``'s timeouts, before any computation.

    Raises:
      InvalidSetting: no cluster detected and no coordinator given.
      DistributedFailure: JAX already initialised, or any other refusal of
        ``jax.distributed.initialize``. (A
        coordinator that cannot be reached within the timeout ends the process from C++:
        see :func:`supervise`.)
    """
    import jax

    try:
        jax.distributed.initialize(
            chosen.coordinator, chosen.num_processes, chosen.process_id,
            initialization_timeout=chosen.timeout, heartbeat_timeout_seconds=chosen.timeout,
            shutdown_timeout_seconds=chosen.timeout)
    except ValueError as error:
        if chosen.coordinator is None and "should be defined" in str(error):
            raise InvalidSetting(
                "no cluster that JAX detects (SLURM, Open MPI, Cloud TPU, Kubernetes) and no {} given: "
                "give {} (process 0's HOST:PORT), {} and {}", "coordinator", "coordinator", "num_processes",
                "process_id") from None
        raise DistributedFailure(f"jax.distributed.initialize refused: {_first_line(error)}") from None
    except RuntimeError as error:
        raise DistributedFailure(f"jax.distributed.initialize failed: {_first_line(error)}") from None
    # Registered after JAX's own exit handler, so it runs first (atexit is last in, first out).
    atexit.register(_leave_if_abandoned)


def global_mesh(axis: str = "members"):
    """One mesh over every process's devices, one axis: the members."""
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()), (axis,))


def agree_min(value: int) -> int:
    """The smallest ``value`` over every process (each passes its own): choices that
    shape the compiled program, such as a batch size from each host's memory, must agree."""
    import jax

    if jax.process_count() == 1:
        return int(value)
    import numpy as np
    from jax.experimental import multihost_utils

    return int(np.min(multihost_utils.process_allgather(np.asarray(value, np.int64))))


# A peer's death as Gloo reports it in a collective, and the coordination service's errors.
_PEER_LOST = re.compile(r"Gloo|Connection closed by peer|Connection reset by peer|coordination service|"
                        r"CoordinationService|heartbeat", re.IGNORECASE)


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective or the coordination service failing (a process
    of the run died or cannot be reached), not an error of the computation itself."""
    return isinstance(error, (RuntimeError, ValueError)) and bool(_PEER_LOST.search(str(error)))


@contextlib.contextmanager
def failures(chosen: Settings):
    """Turns a lost peer (see :func:`is_peer_failure`) inside the block into a
    :class:`DistributedFailure`; other errors pass unchanged."""
    try:
        yield
    except (RuntimeError, ValueError) as error:
        if not is_peer_failure(error):
            raise
        raise DistributedFailure(
            f"{_whoami(chosen)}: lost another process of the distributed run "
            f"({_first_line(error)[:160]}); see that process's own error") from None


def _whoami(chosen: Settings) -> str:
    try:
        import jax

        return f"process {jax.process_index()} of {jax.process_count()}"
    except Exception:  # only for the message
        return chosen.describe()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain(log: str, returncode: int, chosen: Settings) -> str:
    """One sentence for a child that JAX's runtime ended (``returncode`` < 0: the signal),
    from the last lines of its runtime log."""
    who, seconds = chosen.describe(), chosen.timeout
    where = f" at {chosen.coordinator}" if chosen.coordinator else ""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if -returncode != signal.SIGABRT:  # killed from outside (SIGKILL: the system, out of memory?)
        return f"{who}: the sweep's process ended with {name}"
    if "RegisterTask" in log:
        return (f"{who}: the distributed run's processes did not all join the coordinator{where} "
                f"within {seconds} s (is every process started, with the same coordinator, and "
                "the address reachable from here?)")
    if re.search(r"heartbeat|unhealthy|/Heartbeat|PollForError", log, re.IGNORECASE):
        return (f"{who}: another process of the distributed run died, hung or became unreachable "
                f"(JAX's distributed service stops every process within {seconds} s of that); see that "
                "process's own error")
    if "Shutdown barrier" in log or "Barrier" in log:
        return (f"{who}: another process of the distributed run did not finish within {seconds} s; "
                "see that process's own error")
    return f"{who}: the sweep's process ended with {name}; run with --debug to see JAX's log"


def supervise(command: list[str], chosen: Settings, *, debug: bool = False) -> int:
    """Runs ``command`` (the same sweep, as a worker) in a child process and returns its
    exit status; raises :class:`DistributedFailure` if JAX's runtime killed it.

    The child's own messages (Python's ``sys.stderr``) go straight to this process's
    stderr, through the file descriptor named in ``STYLEJAX_DISTRIBUTED_WORKER``; its
    stdout and C++ stderr (Gloo's and XLA's logs) come here and are shown with ``debug``
    only. The child runs in its own session: Ctrl-C or SIGTERM reaches this process,
    whose ``KeyboardInterrupt`` kills the child (a graceful stop would need every process
    to stop at the same chunk) and passes on.
    """
    messages = os.dup(2)
    env = {**os.environ, WORKER_ENV: str(messages), "PYTHONUNBUFFERED": "1"}
    log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                 pass_fds=(messages,), start_new_session=True)
    finally:
        os.close(messages)
    try:
        for raw in child.stdout:
            line = raw.decode("utf-8", "replace")
            log.append(line)
            if debug:
                sys.stderr.write(line)
                sys.stderr.flush()
        returncode = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        child.stdout.close()
    if returncode >= 0:
        return returncode
    raise DistributedFailure(explain("".join(log), returncode, chosen))


def worker_messages() -> int | None:
    """In a supervised child: the file descriptor of the parent's stderr; else None."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value and value.isdigit() else None


def follow_parent(period: float = 1.0) -> None:
    """In a supervised child: leave (status 1) once the parent has died (SIGKILL), checked
    every ``period`` seconds (2.1 s measured on a loaded 2-core CPU), rather than run on
    in its own session unseen."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(1)

    threading.Thread(target=watch, name="stylejax-follow-parent", daemon=True).start()
