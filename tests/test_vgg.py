"""The VGG19 feature extractor: shapes, counts, aliases, laziness, and a NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import convolution, vgg
from stylejax._src import layers as vgg_layers


@pytest.fixture(scope="module")
def params():
    return jax.tree.map(jnp.asarray, vgg.he_normal_params(0))


def test_conv_parameter_count_is_pinned():
    assert vgg_layers.CONV_PARAMETER_COUNT == 20_024_384
    counted = sum(np.size(a) for a in jax.tree.leaves(vgg.he_normal_params(1)))
    assert counted == 20_024_384
    assert len(vgg_layers.CONVS) == 16


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_feature_shape_at_every_layer(params, pooling):
    image = jnp.zeros((37, 50, 3))
    out = jax.eval_shape(lambda p, x: vgg.features(p, x, vgg_layers.SEQUENCE, pooling), params, image)
    height, width = 37, 50
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            height, width = height // 2, width // 2  # 2x2/2 pooling rounds down
        assert out[name].shape == (height, width, vgg_layers.channels(name)), name
    assert out["pool5"].shape == (1, 1, 512)


def test_relu_alias_names_the_same_activation(params):
    image = jnp.asarray(np.random.default_rng(0).normal(size=(16, 16, 3)).astype(np.float32))
    out = vgg.features(params, image, ("conv2_1", "relu2_1"))
    assert set(out) == {"conv2_1", "relu2_1"}
    np.testing.assert_array_equal(np.asarray(out["conv2_1"]), np.asarray(out["relu2_1"]))
    assert float(jnp.min(out["conv2_1"])) >= 0.0  # post-ReLU


def test_computes_nothing_past_the_deepest_layer(params):
    image = jnp.ones((16, 16, 3))
    only_first = {"conv1_1": params["conv1_1"]}  # any deeper access would raise KeyError
    out = vgg.features(only_first, image, ("conv1_1",))
    assert out["conv1_1"].shape == (16, 16, 64)
    jaxpr = jax.make_jaxpr(lambda p, x: vgg.features(p, x, ("conv2_2",)))(params, image)
    convolutions = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convolutions) == 4


def test_unknown_layer_is_a_value_error(params):
    with pytest.raises(ValueError, match="conv6_1"):
        vgg.features(params, jnp.ones((16, 16, 3)), ("conv6_1",))
    with pytest.raises(ValueError, match="pooling"):
        vgg.features(params, jnp.ones((16, 16, 3)), ("conv1_1",), pooling="median")


def _np_conv_relu(x, kernel, bias):
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w, :] @ kernel[dy, dx]
    return np.maximum(out + bias, 0.0)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_matches_numpy_reference_through_block_two(params, pooling):
    x = np.random.default_rng(4).normal(size=(9, 11, 3))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    a = _np_conv_relu(x, p["conv1_1"]["kernel"], p["conv1_1"]["bias"])
    a = _np_conv_relu(a, p["conv1_2"]["kernel"], p["conv1_2"]["bias"])
    cropped = a[:8, :10].reshape(4, 2, 5, 2, 64)
    pooled = cropped.mean(axis=(1, 3)) if pooling == "avg" else cropped.max(axis=(1, 3))
    expected = _np_conv_relu(pooled, p["conv2_1"]["kernel"], p["conv2_1"]["bias"])
    got = vgg.features(params, jnp.asarray(x, jnp.float32), ("conv2_1",), pooling)["conv2_1"]
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_vmap_adds_a_batch(params):
    batch = jnp.asarray(np.random.default_rng(5).normal(size=(3, 16, 20, 3)).astype(np.float32))
    features = jax.jit(lambda p, x: vgg.features(p, x, ("conv3_1",))["conv3_1"])  # compiled: seconds less
    batched = jax.jit(jax.vmap(features, in_axes=(None, 0)))(params, batch)
    single = features(params, batch[1])
    np.testing.assert_allclose(np.asarray(batched[1]), np.asarray(single), rtol=1e-5, atol=1e-5)


def test_he_init_is_seeded_and_scaled():
    a, b, c = vgg.he_normal_params(3), vgg.he_normal_params(3), vgg.he_normal_params(4)
    np.testing.assert_array_equal(a["conv3_2"]["kernel"], b["conv3_2"]["kernel"])
    assert not np.array_equal(a["conv3_2"]["kernel"], c["conv3_2"]["kernel"])
    std = float(a["conv3_2"]["kernel"].std())
    assert abs(std - np.sqrt(2.0 / (9 * 256))) < 0.01 * np.sqrt(2.0 / (9 * 256))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_prepared_convolutions_give_the_same_features_and_gradients(params, algorithm):
    """The solver's fast paths (convolution.prepare) against JAX's own derivative."""
    image = jnp.asarray(np.random.default_rng(6).normal(size=(18, 21, 3)).astype(np.float32))
    first = {name: params[name] for name in vgg_layers.CONV_NAMES[:4]}
    prepared = jax.jit(convolution.prepare, static_argnums=1)(first, algorithm)

    def loss(p, x):
        return jnp.sum(jnp.sin(vgg.features(p, x, ("conv2_2",))["conv2_2"]))

    # Compiled, as the solver runs them (op by op, the Winograd transforms dispatch hundreds of ops).
    value_and_grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    value, (weight_grads, image_grad) = value_and_grads(prepared, image)
    plain_value, (plain_grads, plain_image_grad) = value_and_grads(first, image)
    np.testing.assert_allclose(float(value), float(plain_value), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(image_grad), np.asarray(plain_image_grad), rtol=1e-4, atol=1e-4)
    for name in first:
        np.testing.assert_allclose(np.asarray(weight_grads[name]["kernel"]), np.asarray(plain_grads[name]["kernel"]),
                                   rtol=1e-4, atol=1e-3)
