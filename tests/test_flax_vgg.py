"""The Flax module and the pure function are one network with one params layout."""

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import layers as vgg_layers
from stylejax._src import vgg
from stylejax._src.flax_vgg import VGG19


def test_flax_module_matches_the_pure_function():
    params = jax.tree.map(jnp.asarray, vgg.he_normal_params(0))
    image = jnp.asarray(np.random.default_rng(0).normal(size=(20, 18, 3)).astype(np.float32))
    module = VGG19(layers=("relu3_1", "pool2"), pooling="avg")
    used = {name: params[name] for name in vgg_layers.CONV_NAMES[:5]}
    got = jax.jit(module.apply)({"params": used}, image)  # compiled: a second, not several
    expected = jax.jit(lambda p, x: vgg.features(p, x, ("relu3_1", "pool2"), "avg"))(params, image)
    for name in ("relu3_1", "pool2"):
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(expected[name]), rtol=1e-5, atol=1e-4)


def test_flax_init_has_the_pinned_layout_and_count():
    # The abstract init (shapes only): the layout is decided at trace time, no weights computed.
    variables = jax.eval_shape(VGG19(layers=("conv5_4",)).init, jax.random.key(0), jnp.zeros((16, 16, 3)))
    shapes = jax.tree.map(lambda a: a.shape, variables["params"])
    for spec in vgg_layers.CONVS:
        assert shapes[spec.name] == {"kernel": spec.kernel_shape, "bias": spec.bias_shape}
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables)) == 20_024_384
