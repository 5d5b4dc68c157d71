"""Which convolution paths support which derivatives of the objective.

``lax`` is JAX's own convolution, so every transformation applies: forward mode
(``jax.jvp``, ``jax.jacfwd``) and Hessian-vector products by forward-over-reverse.
``direct`` and ``winograd`` are ``jax.custom_vjp`` functions: JAX refuses forward mode on
the objective itself (``jax.jvp``, ``jax.jacfwd``), while Hessian-vector products work
both by forward-over-reverse and by reverse-over-reverse (the gradient of <grad f, v>):
once reverse mode has replaced the custom function by its forward and backward rules,
what is left is plain, differentiable JAX code.

A 16x16 image through VGG19's first block (conv1_1, the im2col path of ``winograd``, and
conv1_2, its F(2x2, 3x3) path), seeded He-normal weights, content conv1_2, style conv1_1
and conv1_2.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import convolution, losses, vgg

LAYERS = ("conv1_1", "conv1_2")
SPEC = losses.LossSpec(("conv1_2",), LAYERS, "avg")
FORWARD_MODE_REFUSED = r"can't apply forward-mode autodiff \(jvp\) to a custom_vjp function"
# Central differences in float64. The objective is piecewise smooth (ReLU kinks); for this
# seed one lies between 1e-6 and 1e-5 along v (steps of 1e-5 and more are off by 7e-4 or
# more, and for the gradient by more than 100%), so the step stays below it.
STEP = 1e-6


def _relative(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def _problem(dtype):
    """(objective of the image given prepared params, params, x, v, u), all in ``dtype``."""
    rng = np.random.default_rng(0)
    content, style, x, v, u = (jnp.asarray(rng.uniform(-1.0, 1.0, (16, 16, 3)), dtype) for _ in range(5))
    params = {name: jax.tree.map(lambda a: jnp.asarray(a, dtype), layer)
              for name, layer in vgg.he_normal_params(0).items() if name in LAYERS}
    targets = losses.compute_targets(params, content, style, SPEC)
    weights = losses.LossWeights(jnp.asarray(1.0, dtype), jnp.asarray(1.0, dtype), jnp.ones((1,), dtype),
                                 jnp.full((2,), 0.5, dtype), jnp.asarray(0.0, dtype))

    def objective(image, prepared):
        return losses.objective(image, prepared, targets, weights, SPEC)

    return objective, params, x, v, u


@pytest.fixture(scope="module")
def problem():
    return _problem(jnp.float32)


@pytest.fixture(scope="module")
def float64_reference():
    """Central differences along v of the float64 objective and of its gradient: the
    directional derivative and the Hessian-vector product to compare with."""
    with jax.enable_x64(True):
        objective, params, x, v, _ = _problem(jnp.float64)
        value = jax.jit(lambda image: objective(image, params))
        grad = jax.jit(jax.grad(lambda image: objective(image, params)))
        directional = float((value(x + STEP * v) - value(x - STEP * v)) / (2 * STEP))
        hvp = np.asarray((grad(x + STEP * v) - grad(x - STEP * v)) / (2 * STEP))
    return directional, hvp


def _on(problem, algorithm):
    objective, params, *_ = problem
    prepared = convolution.prepare(params, algorithm)
    return lambda image: objective(image, prepared)


def _forward_over_reverse(f):
    return jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])


def _reverse_over_reverse(f):
    return jax.jit(lambda x, v: jax.grad(lambda y: jnp.vdot(jax.grad(f)(y), v))(x))


def test_lax_jvp_is_the_directional_derivative(problem, float64_reference):
    f = _on(problem, "lax")
    _, _, x, v, _ = problem
    value, derivative = jax.jit(lambda x, v: jax.jvp(f, (x,), (v,)))(x, v)
    np.testing.assert_allclose(float(value), float(jax.jit(f)(x)), rtol=1e-6)
    # The same number as reverse mode's <grad f, v>, up to float32 rounding ...
    np.testing.assert_allclose(float(derivative), float(jnp.vdot(jax.jit(jax.grad(f))(x), v)), rtol=1e-5)
    # ... and as the float64 central difference (measured: 3e-7 apart).
    directional, _ = float64_reference
    np.testing.assert_allclose(float(derivative), directional, rtol=1e-5)
    assert abs(directional) > 0.1  # a direction along which the objective does change


def test_lax_hessian_vector_product_by_forward_over_reverse(problem, float64_reference):
    f = _on(problem, "lax")
    _, _, x, v, u = problem
    hvp = _forward_over_reverse(f)
    hv, hu = hvp(x, v), hvp(x, u)
    _, finite_difference = float64_reference
    assert _relative(hv, finite_difference) < 1e-5  # measured 2e-7
    # H is symmetric: <u, H v> = <v, H u>.
    np.testing.assert_allclose(float(jnp.vdot(u, hv)), float(jnp.vdot(v, hu)), rtol=1e-5)
    # Reverse-over-reverse gives the same vector on lax.
    assert _relative(_reverse_over_reverse(f)(x, v), hv) < 1e-6


@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_custom_paths_refuse_forward_mode(problem, algorithm):
    f = _on(problem, algorithm)
    _, _, x, v, _ = problem
    with pytest.raises(TypeError, match=FORWARD_MODE_REFUSED):
        jax.jvp(f, (x,), (v,))
    with pytest.raises(TypeError, match=FORWARD_MODE_REFUSED):
        jax.jacfwd(f)(x)


@pytest.mark.parametrize("order", ["forward-over-reverse", "reverse-over-reverse"])
@pytest.mark.parametrize(("algorithm", "tolerance"), [("direct", 1e-5), ("winograd", 1e-4)])
def test_custom_paths_give_hessian_vector_products(problem, algorithm, tolerance, order):
    """Forward mode over the gradient works: the custom VJP's rules are plain JAX code, and
    the forward pass never meets the custom_vjp function itself, only its rules."""
    _, _, x, v, _ = problem
    hvp = _forward_over_reverse if order == "forward-over-reverse" else _reverse_over_reverse
    got = hvp(_on(problem, algorithm))(x, v)
    want = _forward_over_reverse(_on(problem, "lax"))(x, v)
    assert np.all(np.isfinite(np.asarray(got)))
    assert _relative(got, want) < tolerance  # measured: 0 (direct), 2e-7 (winograd)
