"""Ctrl-C and SIGTERM for the command line.

While a command runs (:func:`handled`):

- SIGINT raises ``KeyboardInterrupt``, as Python's own handler does, and records it. The
  optimisation installs its own handler meanwhile (stop after the running chunk, keep
  the image: stylejax/_src/optimise.py), so this one acts everywhere else: imports,
  loading, compiling, writing.
- SIGTERM, which cluster schedulers (SLURM, Kubernetes) send before they kill a job,
  calls whatever SIGINT handler is installed at that moment, so it does exactly what
  Ctrl-C would do there; the command then exits 143 rather than 130.

Python cannot always deliver the ``KeyboardInterrupt``: raised inside a garbage
collector callback (XLA registers one, and JAX's import runs it) it would be printed as
"ignored", with its traceback, and the program would go on. So the signal is recorded;
inside a collector callback nothing is raised; and :func:`raise_if_interrupted`, called
by the command before its heavy steps and between compiled chunks, raises it there. (A
finaliser, ``__del__``, can lose it the same way; it is then raised at the next of those
checks, with Python's "ignored" lines above the command's own.)
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Received:
    """What arrived while :func:`handled` was active."""

    def __init__(self):
        self.interrupted = False  # a KeyboardInterrupt was raised (it may have been lost)
        self.terminated = False  # the signal was SIGTERM


_active: Received | None = None


def _in_gc_callback(frame) -> bool:
    """Whether ``frame`` runs inside one of the garbage collector's callbacks."""
    codes = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def handled() -> Iterator[Received]:
    """Installs the handlers for the block, restoring the previous ones afterwards. Only the
    main thread can install handlers: elsewhere, nothing changes."""
    global _active
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_sigint(signum, frame):
        received.interrupted = True
        if not _in_gc_callback(frame):
            raise KeyboardInterrupt

    def on_sigterm(signum, frame):
        received.terminated = True
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored (a background job): SIGTERM still stops the command
            on_sigint(signum, frame)

    previous = (signal.signal(signal.SIGINT, on_sigint), signal.signal(signal.SIGTERM, on_sigterm))
    _active = received
    try:
        yield received
    finally:
        _active = None
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def raise_if_interrupted() -> None:
    """Raises ``KeyboardInterrupt`` if one was raised before and lost (see the module
    docstring); nothing otherwise, or outside :func:`handled`."""
    if _active is not None and _active.interrupted:
        raise KeyboardInterrupt


def checking(progress: Callable[[int, Any], None] | None) -> Callable[[int, Any], None]:
    """``progress`` (or nothing), after :func:`raise_if_interrupted`: a callback for the
    library's runs, called between compiled chunks."""

    def callback(done, latest):
        raise_if_interrupted()
        if progress is not None:
            progress(done, latest)

    return callback
