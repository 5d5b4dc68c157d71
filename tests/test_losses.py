"""Each loss against a plain NumPy transcription of the paper's equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import losses

RTOL = 1e-5  # float32 sums of a few thousand terms


def _np_gram(f):
    flat = f.reshape(-1, f.shape[-1]).astype(np.float64)  # (M, N)
    return flat.T @ flat


def _np_content(f, p):
    return 0.5 * np.sum((f.astype(np.float64) - p) ** 2)


def _np_style_layer(f, a):
    h, w, n = f.shape
    m = h * w
    return np.sum((_np_gram(f) - a) ** 2) / (4.0 * n**2 * m**2)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    return (
        rng.uniform(0, 2, (5, 7, 6)).astype(np.float32),
        rng.uniform(0, 2, (5, 7, 6)).astype(np.float32),
    )


def test_gram_matches_numpy_and_is_symmetric(features):
    f, _ = features
    g = np.asarray(losses.gram(jnp.asarray(f)))
    np.testing.assert_allclose(g, _np_gram(f), rtol=RTOL)
    np.testing.assert_allclose(g, g.T, rtol=0, atol=0)
    assert g.shape == (6, 6)
    # A Gram matrix is positive semi-definite: no eigenvalue below float32 noise.
    assert np.linalg.eigvalsh(g.astype(np.float64)).min() > -1e-3 * np.abs(g).max()


def test_content_loss_matches_eq1(features):
    f, p = features
    np.testing.assert_allclose(
        float(losses.content_loss(jnp.asarray(f), jnp.asarray(p))), _np_content(f, p), rtol=RTOL
    )


def test_style_layer_loss_matches_eq4(features):
    f, other = features
    a = _np_gram(other)
    value = float(losses.style_layer_loss(jnp.asarray(f), jnp.asarray(a, jnp.float32)))
    np.testing.assert_allclose(value, _np_style_layer(f, a), rtol=RTOL)


def test_zero_loss_cases(features):
    f, _ = features
    x = jnp.asarray(f)
    assert float(losses.content_loss(x, x)) == 0.0
    assert float(losses.style_layer_loss(x, losses.gram(x))) == 0.0
    assert float(losses.tv_loss(jnp.full((6, 5, 3), 0.7))) == 0.0


def test_style_loss_is_invariant_to_spatial_permutation(features):
    f, _ = features
    target = losses.gram(jnp.asarray(f))
    shuffled = np.random.default_rng(1).permutation(f.reshape(-1, 6)).reshape(f.shape)
    assert float(losses.style_layer_loss(jnp.asarray(shuffled), target)) < 1e-9


def test_tv_loss_matches_numpy():
    x = np.random.default_rng(2).normal(size=(4, 6, 3)).astype(np.float32)
    expected = np.sum((x[1:] - x[:-1]).astype(np.float64) ** 2) + np.sum(
        (x[:, 1:] - x[:, :-1]).astype(np.float64) ** 2
    )
    np.testing.assert_allclose(float(losses.tv_loss(jnp.asarray(x))), expected, rtol=RTOL)


def test_gradients_match_analytic_forms(features):
    f, p = features
    # d/dF of 1/2 sum (F - P)^2 is F - P (paper, Eq. 2).
    grad = jax.grad(losses.content_loss)(jnp.asarray(f), jnp.asarray(p))
    np.testing.assert_allclose(np.asarray(grad), f - p, rtol=1e-6, atol=1e-6)
    # d E_l / d F^l_ij = 1/(N^2 M^2) ((F^l)^T (G^l - A^l))_ji (paper, Eq. 6, before the ReLU mask).
    a = _np_gram(p)
    grad = jax.grad(losses.style_layer_loss)(jnp.asarray(f), jnp.asarray(a, jnp.float32))
    flat = f.reshape(-1, 6).astype(np.float64)
    m, n = flat.shape
    expected = (flat @ (_np_gram(f) - a)) / (n**2 * m**2)
    np.testing.assert_allclose(np.asarray(grad).reshape(-1, 6), expected, rtol=1e-4, atol=1e-9)


def test_total_objective_weights_each_term():
    rng = np.random.default_rng(3)
    params = {
        "conv1_1": {
            "kernel": jnp.asarray(rng.normal(size=(3, 3, 3, 64)).astype(np.float32) * 0.2),
            "bias": jnp.zeros((64,)),
        },
        "conv1_2": {
            "kernel": jnp.asarray(rng.normal(size=(3, 3, 64, 64)).astype(np.float32) * 0.05),
            "bias": jnp.zeros((64,)),
        },
    }
    spec = losses.LossSpec(("conv1_2",), ("conv1_1", "conv1_2"), "avg")
    content, style, image = (jnp.asarray(rng.uniform(size=(8, 10, 3)).astype(np.float32)) for _ in range(3))
    targets = losses.compute_targets(params, content, style, spec)
    weights = losses.LossWeights(
        content_weight=jnp.float32(0.3),
        style_weight=jnp.float32(7.0),
        content_layer_weights=jnp.ones((1,)),
        style_layer_weights=jnp.asarray([0.25, 0.75]),
        tv_weight=jnp.float32(0.01),
    )
    terms = losses.loss_terms(image, params, targets, weights, spec)
    np.testing.assert_allclose(
        float(terms.style), 0.25 * float(terms.style_per_layer[0]) + 0.75 * float(terms.style_per_layer[1]),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        float(terms.total), 0.3 * float(terms.content) + 7.0 * float(terms.style) + 0.01 * float(terms.tv),
        rtol=RTOL,
    )
    # At the content image the content term vanishes; at the style image the style terms do.
    at_content = losses.loss_terms(content, params, targets, weights, spec)
    at_style = losses.loss_terms(style, params, targets, weights, spec)
    assert float(at_content.content) == 0.0
    assert np.all(np.asarray(at_style.style_per_layer) <= 1e-12)
