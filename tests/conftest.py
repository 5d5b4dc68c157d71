"""Strict test settings: implicit rank promotion raises, warnings are errors (pyproject)."""

import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="session")
def reference_images_dir():
    """The paper's images, when ../shared/images or STYLEJAX_IMAGES provides them."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("STYLEJAX_IMAGES"), os.path.join(here, "..", "..", "shared", "images")]
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "tuebingen_neckarfront.jpg")):
            return os.path.abspath(candidate)
    pytest.skip("reference images not available (set STYLEJAX_IMAGES)")
