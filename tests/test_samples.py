"""The demo's procedural pictures: fixed, the right shape, and pictures rather than noise."""

import numpy as np

from stylejax._src import samples


def _neighbour_correlation(image):
    a = image[:, :-1].ravel() - image.mean()
    b = image[:, 1:].ravel() - image.mean()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_sample_images_are_deterministic_pictures():
    content, style = samples.sample_images(96)
    again_content, again_style = samples.sample_images(96)
    np.testing.assert_array_equal(content, again_content)
    np.testing.assert_array_equal(style, again_style)
    for image in (content, style):
        assert image.shape == (72, 96, 3) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert image.std() > 0.1  # not flat
        assert _neighbour_correlation(image) > 0.7  # structured, not white noise
    assert np.abs(content - style).mean() > 0.1  # two different pictures
