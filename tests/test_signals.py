"""Ctrl-C and SIGTERM handling of the command line (stylejax/cli/signals.py)."""

import gc
import os
import signal

import pytest

from stylejax.cli import signals

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")


def test_handlers_are_installed_for_the_block_and_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with signals.handled():
        assert signal.getsignal(signal.SIGINT) is not before[0]
        assert signal.getsignal(signal.SIGTERM) is not before[1]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_ctrl_c_raises_and_is_recorded():
    with signals.handled() as received:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0)  # a bytecode boundary for the handler to run at
        assert received.interrupted and not received.terminated


def test_sigterm_does_what_the_current_sigint_handler_does():
    with signals.handled() as received:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        assert received.terminated and received.interrupted
        # Inside the optimisation a handler that only sets a flag is installed: SIGTERM sets it.
        flagged = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: flagged.append(signum))
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        finally:
            signal.signal(signal.SIGINT, previous)
        assert flagged == [signal.SIGINT]


def test_an_interrupt_inside_a_gc_callback_is_kept_for_the_next_check():
    armed = [True]

    def callback(phase, info):
        if phase == "start" and armed[0]:
            armed[0] = False
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # the handler runs here, inside the collector's callback

    with signals.handled() as received:
        gc.callbacks.append(callback)
        try:
            gc.collect()  # Python would print a KeyboardInterrupt raised here as "ignored"
        finally:
            gc.callbacks.remove(callback)
        assert received.interrupted
        with pytest.raises(KeyboardInterrupt):
            signals.raise_if_interrupted()
        with pytest.raises(KeyboardInterrupt):
            signals.checking(None)(1, 0.0)
    signals.raise_if_interrupted()  # outside the block: nothing pending


def test_checking_passes_progress_through():
    seen = []
    with signals.handled():
        signals.checking(lambda done, latest: seen.append((done, latest)))(3, 1.5)
    assert seen == [(3, 1.5)]
