"""Strict test settings: implicit rank promotion raises, warnings are errors (pyproject)."""

import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)


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
