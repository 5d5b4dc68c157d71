"""The demo's procedural pictures: fixed, the right shape, and pictures rather than noise."""

import numpy as np
import pytest

from stylejax._src import samples
from stylejax._src.errors import UserError


def _rgb(image):
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[-1] == 3
    assert image.min() >= 0.0 and image.max() <= 1.0


def _neighbour_correlation(image):
    horizontal = np.corrcoef(image[:, :-1].ravel(), image[:, 1:].ravel())[0, 1]
    vertical = np.corrcoef(image[:-1].ravel(), image[1:].ravel())[0, 1]
    return min(horizontal, vertical)


def test_sample_images_shape_and_range():
    content, style = samples.sample_images()
    for image in (content, style):
        _rgb(image)
        assert image.shape == (96, 128, 3)
    content, style = samples.sample_images(100)
    assert content.shape == (75, 100, 3)
    assert style.shape == (75, 100, 3)


def test_sample_images_deterministic():
    first = samples.sample_images(64)
    second = samples.sample_images(64)
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()


def test_sample_images_look_like_pictures():
    content, style = samples.sample_images(128)
    for image in (content, style):
        assert float(image.std()) > 0.1  # not flat
        assert _neighbour_correlation(image) > 0.8  # not noise
        assert float(np.ptp(image)) > 0.7  # real highlights and shadows
    assert float(np.abs(content - style).mean()) > 0.1  # two different pictures
    # The style is colourful: strongly saturated pixels are common.
    saturation = style.max(axis=-1) - style.min(axis=-1)
    assert float((saturation > 0.3).mean()) > 0.4
    assert float(saturation.mean()) > float((content.max(axis=-1) - content.min(axis=-1)).mean())
    # The content's sky is above its (greener) ground.
    assert content[:10, :, 2].mean() > content[:10, :, 1].mean()
    assert content[-10:, :, 1].mean() > content[-10:, :, 2].mean()


def test_sample_images_too_small():
    with pytest.raises(UserError, match="16 px"):
        samples.sample_images(20)
    content, style = samples.sample_images(22)  # 16 x 22, the smallest allowed
    assert content.shape == style.shape == (16, 22, 3)
