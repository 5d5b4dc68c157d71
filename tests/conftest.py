"""Strict test settings: implicit rank promotion raises, warnings are errors (pyproject)."""

import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)
# No test may reach for the network: the demo's first-use fetch goes straight offline.
os.environ["STYLEJAX_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def reference_images_dir():
    """The paper's images: the STYLEJAX_IMAGES folder when it holds them, else the copies
    shipped in stylejax/examples/ (always there, so the tests that use them never skip)."""
    from stylejax._src import images  # after the strict settings above

    override = os.environ.get(images.IMAGES_ENV)
    if override and os.path.isfile(os.path.join(override, "tuebingen_neckarfront.jpg")):
        return os.path.abspath(override)
    packaged = images.packaged_examples_dir()
    assert os.path.isfile(os.path.join(packaged, "tuebingen_neckarfront.jpg")), (
        f"the shipped example images are missing from {packaged}")
    return packaged


class CompileLog:
    """jax.monitoring's trace and backend-compile events, by function name.

    ``traces("run_chunk")``: how often a jitted function named run_chunk was traced;
    ``compiles("run_chunk")``: how often XLA compiled it. JAX's own record of its work,
    so a test needs no counter inside the code it checks.
    """

    TRACE = "/jax/core/compile/jaxpr_trace_duration"
    COMPILE = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.events = []  # (event, function name, seconds)

    def __call__(self, event, duration_secs, **kwargs):
        self.events.append((event, kwargs.get("fun_name"), duration_secs))

    def _matching(self, event, name):
        return [seconds for kind, fun, seconds in self.events if kind == event and fun == name]

    def traces(self, name):
        return len(self._matching(self.TRACE, name))

    def compiles(self, name):
        return len(self._matching(self.COMPILE, f"jit({name})"))

    def compile_seconds(self, name):
        return sum(self._matching(self.COMPILE, f"jit({name})"))


@pytest.fixture
def compile_log():
    """Records JAX's trace and compile events while the test runs (see CompileLog)."""
    log = CompileLog()
    jax.monitoring.register_event_duration_secs_listener(log)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(log)
