"""VGG19 features as a pure function of a params pytree and one image.

``features(params, image, layers, pooling)`` takes one image (H, W, 3) already in the
network's input space (see :mod:`stylejax._src.convention`) and returns the named
post-ReLU activations, each (H_l, W_l, N_l). ``vmap`` adds a batch. The forward pass
stops at the deepest layer requested, so asking for ``conv1_1`` touches only conv1_1's
weights.

Pooling is 2x2 with stride 2 and no padding: odd sizes round down, as in the PyTorch
ports (Caffe rounded up). ``avg`` is the paper's choice, ``max`` the trained network's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import convolution
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import invalid

POOLINGS = ("avg", "max")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise invalid(f"unknown pooling {pooling!r}: expected avg or max")
    return pooling


def conv(kernel, bias, x):
    """3x3 convolution, stride 1, padding 1, plus bias, on one (H, W, C) image (lax path)."""
    return convolution.lax_conv(x, kernel) + bias[None, None, :]


def conv_relu(kernel, bias, x):
    """3x3 convolution, stride 1, padding 1, then ReLU, on one (H, W, C) image."""
    return jax.nn.relu(conv(kernel, bias, x))


def pool(x, pooling: str):
    """2x2 stride-2 pooling of one (H, W, C) image; odd sizes round down."""
    window = (2, 2, 1)
    if pooling == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID")
    return summed * 0.25


def features(params, image, layers: Iterable[str], pooling: str = "avg",
             restrict: Callable[[str, jnp.ndarray], jnp.ndarray] | None = None) -> dict:
    """Named VGG19 activations of one image.

    Args:
      params: ``{"conv1_1": {"kernel": (3, 3, in, out), "bias": (out,)}, ...}``; only the
        convolutions up to the deepest requested layer are read. Layers prepared by
        :func:`stylejax._src.convolution.prepare` take that algorithm's path.
      image: (H, W, 3) in the input space of ``params``.
      layers: names such as ``conv4_2``, ``relu4_2`` (the same layer) or ``pool3``.
      pooling: ``avg`` (the paper) or ``max``.
      restrict: ``restrict(name, activation)`` replaces each layer's output before the
        next layer reads it, such as zeroing the positions outside the image in a tile
        (stylejax/_src/tiling.py); None: the outputs as they are.

    Returns:
      A dict from each requested name, spelled as requested, to its (H_l, W_l, N_l)
      activation.
    """
    requested = tuple(layers)
    check_pooling(pooling)
    canonical = {name: vgg_layers.canonical_name(name) for name in requested}
    if not canonical:
        return {}
    wanted = set(canonical.values())
    deepest = max(vgg_layers.SEQUENCE.index(name) for name in wanted)
    computed = {}
    x = image
    for name in vgg_layers.SEQUENCE[: deepest + 1]:
        if name.startswith("pool"):
            x = pool(x, pooling)
        else:
            x = jax.nn.relu(convolution.conv(params[name], x))
        if restrict is not None:
            x = restrict(name, x)
        if name in wanted:
            computed[name] = x
    return {name: computed[canonical[name]] for name in requested}


def he_normal_params(seed: int) -> dict:
    """A seeded He-initialised VGG19 conv stack (kernels N(0, 2/fan_in), biases 0).

    Generated with NumPy's PCG64 so the same seed gives the same bits on every
    backend and jax version; ``normalise`` then rescales it (see normalise.py).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for spec in vgg_layers.CONVS:
        fan_in = 9 * spec.in_channels
        kernel = rng.standard_normal(spec.kernel_shape, dtype=np.float32)
        params[spec.name] = {
            "kernel": kernel * np.float32(np.sqrt(2.0 / fan_in)),
            "bias": np.zeros(spec.bias_shape, np.float32),
        }
    return params
