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

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import layers as vgg_layers
from stylejax._src.errors import UserError

POOLINGS = ("avg", "max")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise UserError(f"unknown pooling {pooling!r}: expected avg or max")
    return pooling


def _conv3x3(x, kernel):
    return jax.lax.conv_general_dilated(
        x[None],
        kernel,
        window_strides=(1, 1),
        padding=((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )[0]


def backward_kernel(kernel):
    """The kernel of the input-gradient convolution: flipped in space, in/out swapped."""
    return jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))


@jax.custom_vjp
def _conv3x3_given_backward(x, kernel, kernel_backward):
    return _conv3x3(x, kernel)


def _conv_forward(x, kernel, kernel_backward):
    return _conv3x3(x, kernel), (x, kernel, kernel_backward)


def _conv_backward(residuals, cotangent):
    x, kernel, kernel_backward = residuals
    # The input gradient with the precomputed kernel, in the layout of a forward conv.
    grad_x = _conv3x3(cotangent, kernel_backward)
    # The weight gradient as JAX would compute it; dead code unless someone asks for it.
    grad_kernel = jax.grad(lambda k: jnp.vdot(_conv3x3(x, k), cotangent))(kernel)
    return grad_x, grad_kernel, jnp.zeros_like(kernel_backward)


_conv3x3_given_backward.defvjp(_conv_forward, _conv_backward)


def with_backward_kernels(params):
    """``params`` plus each layer's ``kernel_backward`` (see :func:`conv`)."""
    return {name: {**layer, "kernel_backward": backward_kernel(layer["kernel"])} for name, layer in params.items()}


def conv(kernel, bias, x, kernel_backward=None):
    """3x3 convolution, stride 1, padding 1, plus bias, on one (H, W, C) image.

    With ``kernel_backward`` (= backward_kernel(kernel), computed once per solve by
    :func:`with_backward_kernels`), the input gradient is a plain forward-layout
    convolution with it. Why: inside a ``while_loop`` XLA:CPU otherwise runs the input-
    gradient convolutions with an (o, i) kernel layout that takes a slow path; measured
    2.3x slower per evaluation at 128 px (README, "Measured").
    """
    if kernel_backward is None:
        y = _conv3x3(x, kernel)
    else:
        y = _conv3x3_given_backward(x, kernel, kernel_backward)
    return y + bias[None, None, :]


def conv_relu(kernel, bias, x, kernel_backward=None):
    """3x3 convolution, stride 1, padding 1, then ReLU, on one (H, W, C) image."""
    return jax.nn.relu(conv(kernel, bias, x, kernel_backward))


def pool(x, pooling: str):
    """2x2 stride-2 pooling of one (H, W, C) image; odd sizes round down."""
    window = (2, 2, 1)
    if pooling == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID")
    return summed * 0.25


def features(params, image, layers: Iterable[str], pooling: str = "avg") -> dict:
    """Named VGG19 activations of one image.

    Args:
      params: ``{"conv1_1": {"kernel": (3, 3, in, out), "bias": (out,)}, ...}``; only the
        convolutions up to the deepest requested layer are read.
      image: (H, W, 3) in the input space of ``params``.
      layers: names such as ``conv4_2``, ``relu4_2`` (the same layer) or ``pool3``.
      pooling: ``avg`` (the paper) or ``max``.

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
            layer = params[name]
            x = conv_relu(layer["kernel"], layer["bias"], x, layer.get("kernel_backward"))
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
