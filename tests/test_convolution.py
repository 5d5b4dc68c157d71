"""Every convolution algorithm against a plain NumPy convolution and JAX's own gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import convolution


def _np_conv(x, kernel):
    height, width, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((height, width, kernel.shape[-1]), np.float64)
    for a in range(3):
        for b in range(3):
            out += padded[a:a + height, b:b + width] @ kernel[a, b].astype(np.float64)
    return out


SHAPES = [(1, 1, 16, 4), (2, 3, 16, 5), (7, 9, 32, 8), (6, 8, 3, 16), (5, 4, 3, 7), (12, 10, 64, 24)]


def _layer(shape, seed):
    height, width, c_in, c_out = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(height, width, c_in)).astype(np.float32)
    kernel = (rng.normal(size=(3, 3, c_in, c_out)) / np.sqrt(9 * c_in)).astype(np.float32)
    bias = rng.normal(size=(c_out,)).astype(np.float32)
    return x, {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}


@pytest.mark.parametrize("algorithm", convolution.ALGORITHMS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_algorithm_computes_the_convolution(algorithm, shape):
    x, layer = _layer(shape, 0)
    prepared = convolution.prepare_layer(layer, algorithm)
    expected = _np_conv(x, np.asarray(layer["kernel"])) + np.asarray(layer["bias"])
    got = np.asarray(jax.jit(convolution.conv)(prepared, jnp.asarray(x)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_winograd_prepares_the_first_layer_as_patches_and_the_rest_as_tiles():
    _, first = _layer((4, 4, 3, 8), 0)
    _, later = _layer((4, 4, 64, 8), 0)
    assert "im2col" in convolution.prepare_layer(first, "winograd")
    prepared = convolution.prepare_layer(later, "winograd")
    assert prepared["winograd"].shape == (16, 64, 8)
    assert prepared["winograd_backward"].shape == (16, 8, 64)


@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_algorithm_has_jaxs_gradients(algorithm, shape):
    x, layer = _layer(shape, 1)
    cotangent = jnp.asarray(np.random.default_rng(2).normal(size=(*shape[:2], shape[3])).astype(np.float32))

    def pairing(kernel, image, prepare):
        prepared = convolution.prepare_layer({"kernel": kernel, "bias": layer["bias"]}, prepare)
        return jnp.vdot(convolution.conv(prepared, image), cotangent)

    grads = jax.jit(jax.grad(pairing, argnums=(0, 1)), static_argnums=2)
    want_kernel, want_x = grads(layer["kernel"], jnp.asarray(x), "lax")
    got_kernel, got_x = grads(layer["kernel"], jnp.asarray(x), algorithm)
    np.testing.assert_allclose(np.asarray(got_x), np.asarray(want_x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_kernel), np.asarray(want_kernel), rtol=1e-4, atol=1e-4)


def test_winograd_kernel_is_g_g_gt():
    kernel = np.random.default_rng(3).normal(size=(3, 3, 2, 5)).astype(np.float32)
    g = convolution.WINOGRAD_G.astype(np.float64)
    expected = np.einsum("ai,ijcd,bj->abcd", g, kernel.astype(np.float64), g).reshape(16, 2, 5)
    np.testing.assert_allclose(np.asarray(convolution.winograd_kernel(jnp.asarray(kernel))), expected, rtol=1e-6, atol=1e-6)


def test_resolve_names_the_backend_default_and_rejects_unknown_names():
    assert convolution.resolve("auto") == convolution.default_algorithm()
    assert convolution.default_algorithm("cpu") == "winograd"
    assert convolution.default_algorithm("gpu") == "lax"
    assert convolution.default_algorithm("tpu") == "lax"
    assert convolution.resolve("lax") == "lax"
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        convolution.resolve("fft")
