"""The paper's normalisation and the seeded random network built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import layers as vgg_layers
from stylejax._src import normalise, vgg
from stylejax._src.convention import CAFFE
from stylejax._src.weights import weights_source


@pytest.fixture(scope="module")
def calibration():
    return normalise.builtin_calibration_images()


@pytest.fixture(scope="module")
def random_weights():
    return weights_source.random_weights(0)


def test_calibration_set_is_fixed_and_natural_looking(calibration):
    again = normalise.builtin_calibration_images()
    np.testing.assert_array_equal(calibration, again)
    assert calibration.shape == (8, 64, 64, 3)
    assert calibration.min() >= 0.0 and calibration.max() <= 1.0
    # 1/f images are smooth: neighbouring pixels correlate (about 0.75 here; white noise: 0).
    a = calibration[:, :, :-1].ravel() - calibration.mean()
    b = calibration[:, :, 1:].ravel() - calibration.mean()
    assert np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)) > 0.6


@pytest.mark.slow
def test_normalised_mean_activations_are_one(random_weights, calibration):
    means = normalise.mean_activations(random_weights.params, calibration, CAFFE, pooling="max")
    dead = random_weights.normalisation["dead_filters"]
    for name in vgg_layers.CONV_NAMES:
        alive = means[name][means[name] > 0]
        assert alive.size == vgg_layers.channels(name) - dead[name], name
        np.testing.assert_allclose(alive, 1.0, rtol=1e-3, err_msg=name)


@pytest.mark.slow
def test_normalisation_keeps_the_function_up_to_a_per_channel_scale(calibration):
    params = vgg.he_normal_params(1)
    normalised, info = normalise.normalise(params, calibration[:2], CAFFE, pooling="max")
    x = jnp.asarray(CAFFE.to_network(calibration[2:4]))

    def deepest(p):
        return jax.vmap(lambda image: vgg.features(p, image, ("conv5_4",), "max")["conv5_4"])(x)

    before = np.asarray(deepest(jax.tree.map(jnp.asarray, params)), np.float64)
    after = np.asarray(deepest(jax.tree.map(jnp.asarray, normalised)), np.float64)
    # conv5_4 is divided by its own filters' means; nothing compensates after it.
    means = normalise.mean_activations(params, calibration[:2], CAFFE, pooling="max")["conv5_4"]
    scale = np.where(means > 0, means, 1.0).astype(np.float64)
    np.testing.assert_allclose(after * scale, before, rtol=2e-3, atol=2e-3 * np.abs(before).max())
    assert info["pooling"] == "max"


def test_random_weights_are_deterministic_and_labelled(random_weights):
    again = weights_source.random_weights(0)
    other = weights_source.random_weights(1)
    assert random_weights.sha256 == again.sha256
    assert random_weights.sha256 != other.sha256
    assert weights_source.is_random(random_weights)
    assert "random" in random_weights.describe()["source"]
    assert random_weights.normalised is True
    assert random_weights.normalisation["calibration"] == normalise.CALIBRATION_ID


def test_centred_biases_make_every_filter_fire_on_half_the_calibration(calibration):
    centred = normalise.centre_biases(vgg.he_normal_params(2), calibration, CAFFE, pooling="max")
    x = jnp.asarray(CAFFE.to_network(calibration))
    out = jax.vmap(lambda image: vgg.features(centred, image, ("conv3_1",), "max")["conv3_1"])(x)
    active = np.mean(np.asarray(out) > 0, axis=(0, 1, 2))
    # The median splits the pre-activations; ties at exactly the median count as off.
    assert np.all(np.abs(active - 0.5) < 0.01)
