"""--precision: every product of the objective and of its gradient takes the chosen precision."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vgg_files

from stylejax._src import convolution, losses, optimise, precision, settings
from stylejax._src.errors import InvalidSetting

PRODUCTS = ("conv_general_dilated", "dot_general")
LAYERS = ("conv1_1", "conv1_2", "conv2_1")


def _params(seed=0):
    full = vgg_files.random_params(seed)
    return {name: {k: jnp.asarray(v) for k, v in full[name].items()} for name in LAYERS}


def _precisions(jaxpr) -> list:
    """The ``precision`` of every product in ``jaxpr``, its sub-jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in PRODUCTS:
            found.append(eqn.params["precision"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found.extend(_precisions(inner))
    return found


def _gradient_jaxpr(algorithm: str, chosen: str):
    spec = losses.LossSpec(("conv2_1",), ("conv1_1", "conv2_1"), "avg")
    params = convolution.prepare(_params(), algorithm)
    image = jnp.ones((16, 16, 3), jnp.float32)
    targets = losses.jitted_targets(spec)(_params(), image, image * 0.5)
    weights = losses.LossWeights(
        content_weight=jnp.float32(1.0), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,)), style_layer_weights=jnp.full((2,), 0.5),
        tv_weight=jnp.float32(0.0))
    solver = optimise.SolverSpec("adam", spec, convolution=algorithm, precision=chosen)
    args = optimise.SolveArgs(params, targets, weights, jnp.float32(1.0))
    state = optimise.init_state(image, args, solver)
    step = functools.partial(optimise.step, spec=solver)
    return jax.make_jaxpr(step)(state, args).jaxpr


@pytest.mark.parametrize("algorithm", ["lax", "direct", "winograd"])
@pytest.mark.parametrize("chosen", ["high", "default"])
def test_every_product_of_a_step_takes_the_precision(algorithm, chosen):
    found = _precisions(_gradient_jaxpr(algorithm, chosen))
    # forward and backward convolutions (or their matrix products) of three layers, Grams
    assert len(found) >= 9
    wanted = (jax.lax.Precision[chosen.upper()],) * 2
    assert all(p == wanted for p in found), set(found)


def test_highest_is_the_default_and_is_explicit_in_the_program():
    assert optimise.SolverSpec("lbfgs", None).precision == precision.DEFAULT_PRECISION == "highest"
    found = _precisions(_gradient_jaxpr("winograd", "highest"))
    assert found and all(p == (jax.lax.Precision.HIGHEST,) * 2 for p in found)


def test_precision_outside_the_solver_is_left_as_it_was():
    _gradient_jaxpr("direct", "high")
    assert jax.config.jax_default_matmul_precision is None


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        precision.check("bf16")
    with pytest.raises(InvalidSetting, match="precision"):
        settings.resolve("paper", {"precision": "bf16"})
    with pytest.raises(InvalidSetting, match="convolution"):
        settings.resolve("paper", {"convolution": "fft"})


def test_settings_record_convolution_and_precision():
    resolved = settings.Settings(**settings.resolve("paper", {"precision": "high", "convolution": "lax"}))
    assert resolved.to_dict()["precision"] == "high"
    assert resolved.to_dict()["convolution"] == "lax"
    default = settings.Settings(**settings.resolve("paper", {}))
    assert (default.precision, default.convolution) == ("highest", "auto")


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's float32 products")
def test_on_cpu_every_precision_gives_the_same_gradient():
    spec = losses.LossSpec(("conv2_1",), ("conv1_1", "conv2_1"), "avg")
    params = _params(1)
    rng = np.random.default_rng(0)
    image, style = (jnp.asarray(rng.uniform(-100, 100, (16, 16, 3)), jnp.float32) for _ in range(2))
    targets = losses.jitted_targets(spec)(params, image, style)
    weights = losses.LossWeights(
        content_weight=jnp.float32(1e-3), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,)), style_layer_weights=jnp.full((2,), 0.5),
        tv_weight=jnp.float32(0.0))

    def value_and_grad(chosen):
        with precision.context(chosen):
            return jax.jit(jax.value_and_grad(
                lambda x: losses.objective(x, params, targets, weights, spec)))(image * 0.9)

    value, grad = value_and_grad("highest")
    for chosen in ("high", "default"):
        other_value, other_grad = value_and_grad(chosen)
        np.testing.assert_allclose(float(other_value), float(value), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(other_grad), np.asarray(grad), rtol=1e-5, atol=1e-6 * float(
            jnp.abs(grad).max()))


def test_targets_and_reported_terms_are_at_highest_precision_whatever_the_context():
    spec = losses.LossSpec(("conv2_1",), ("conv1_1", "conv2_1"), "avg")
    params = _params()
    image = jnp.ones((16, 16, 3), jnp.float32)
    weights = losses.LossWeights(
        content_weight=jnp.float32(1.0), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,)), style_layer_weights=jnp.full((2,), 0.5),
        tv_weight=jnp.float32(0.0))
    with precision.context("default"):
        targets_jaxpr = jax.make_jaxpr(losses.jitted_targets(spec))(params, image, image).jaxpr
        targets = losses.jitted_targets(spec)(params, image, image)
        terms_jaxpr = jax.make_jaxpr(losses.jitted_terms(spec))(image, params, targets, weights).jaxpr
    for jaxpr in (targets_jaxpr, terms_jaxpr):
        found = _precisions(jaxpr)
        assert len(found) >= 3
        assert all(p == (jax.lax.Precision.HIGHEST,) * 2 for p in found), set(found)
