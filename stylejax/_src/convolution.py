"""The 3x3 convolution (stride 1, padding 1) of one (H, W, C) image, three ways.

All three compute the same function and the same gradients, up to float32 rounding;
they differ in speed, per backend (docs/performance.md):

- ``lax``: ``lax.conv_general_dilated`` with JAX's own gradient: the reference.
- ``direct``: the same forward convolution; the input gradient is a forward-layout
  convolution with a precomputed kernel (flipped in space, in/out swapped). Why: inside
  a ``while_loop`` XLA:CPU ran JAX's input-gradient convolutions with an (o, i) kernel
  layout that takes a slow path (2.3x slower per evaluation at 128 px).
- ``winograd``: F(2x2, 3x3) minimal filtering (Lavin & Gray, "Fast Algorithms for
  Convolutional Neural Networks", CVPR 2016, Sec. 4), for the forward convolution and
  for the input gradient (itself a 3x3 convolution with the backward kernel). Each 2x2
  output tile Y comes from the 4x4 input tile d around it as

      Y = A^T [ (G g G^T) (.) (B^T d B) ] A      (summed over input channels)

  so 16 multiplications (a batched matrix product over channels) replace 36 per tile:
  2.25x fewer multiply-adds, the rest being additions. The transformed kernels
  U = G g G^T are computed once per compiled solve, outside the loop. The first layer
  (3 input channels, too few for the matrix products to pay) is instead one matrix
  product of 3x3 patches (im2col), whose input gradient is the transposed product
  scattered back (col2im).

``prepare(params, algorithm)`` adds the precomputed arrays to each layer's dict; which
path :func:`conv` takes follows from the keys present, so unprepared params (targets,
normalisation, tests) take ``lax``. Weight gradients are exact on every path (JAX's own
derivative of the plain convolution), though the solver never asks for them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

ALGORITHMS = ("lax", "direct", "winograd")

# Per backend, from the benchmark (docs/performance.md): on XLA:CPU F(2x2, 3x3) took a
# 128 px evaluation from 116 to 87 ms and a 256 px one from 464 to 318 ms; its effect on
# L-BFGS is in docs/convolution.md. GPUs and TPUs take plain lax convolutions with JAX's
# own gradient: cuDNN and XLA choose the algorithms there, and the path supports
# forward-mode differentiation (jax.jvp), which the custom VJPs do not.
DEFAULT_ALGORITHMS = {"cpu": "winograd"}
ACCELERATOR_ALGORITHM = "lax"

# F(2x2, 3x3) (Lavin & Gray 2016, Sec. 4.1).
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], np.float32)


def default_algorithm(backend: str | None = None) -> str:
    return DEFAULT_ALGORITHMS.get(backend or jax.default_backend(), ACCELERATOR_ALGORITHM)


def resolve(algorithm: str) -> str:
    """``auto`` -> the default of the backend; anything else must be one of ALGORITHMS."""
    if algorithm == "auto":
        return default_algorithm()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {algorithm!r}: expected auto or one of {ALGORITHMS}")
    return algorithm


def lax_conv(x, kernel, precision=None):
    """Reference: (H, W, C_in) * (3, 3, C_in, C_out) -> (H, W, C_out), zero padding 1.

    ``precision`` None: the context's (stylejax/_src/precision.py).
    """
    return jax.lax.conv_general_dilated(
        x[None], kernel, window_strides=(1, 1), padding=((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision,
    )[0]


def backward_kernel(kernel):
    """The kernel of the input-gradient convolution: flipped in space, in/out swapped."""
    return jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))


# G (x) G: U = G g G^T for a flattened 3x3 kernel, as one (16, 9) matrix.
_WINOGRAD_KERNEL_TRANSFORM = np.einsum("ai,bj->abij", WINOGRAD_G, WINOGRAD_G).reshape(16, 9)


def winograd_kernel(kernel):
    """U = G g G^T for each (in, out) pair: (3, 3, C_in, C_out) -> (16, C_in, C_out).

    One (16, 9) x (9, C_in C_out) matrix product: preparing all of VGG19 takes about 45 ms
    on the 2-core CPU (written out as additions it took 450 ms).
    """
    flat = kernel.reshape(9, -1)
    transformed = jnp.dot(jnp.asarray(_WINOGRAD_KERNEL_TRANSFORM), flat, precision=jax.lax.Precision.HIGHEST)
    return transformed.reshape(16, *kernel.shape[2:])


def _input_transform_1d(d0, d1, d2, d3):
    # B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def _output_transform_1d(m0, m1, m2, m3):
    # A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    return m0 + m1 + m2, m1 - m2 - m3


def winograd_conv(x, transformed_kernel, precision=None):
    """F(2x2, 3x3) convolution of (H, W, C_in) with U (16, C_in, C_out): (H, W, C_out).

    Odd sizes are padded up to whole tiles and the surplus cropped.
    """
    height, width, _ = x.shape
    tiles_h, tiles_w = -(-height // 2), -(-width // 2)
    padded = jnp.pad(x, ((1, 2 * tiles_h - height + 1), (1, 2 * tiles_w - width + 1), (0, 0)))
    # d[a][b]: element (a, b) of every 4x4 input tile, (tiles_h, tiles_w, C_in).
    d = [[padded[a:a + 2 * tiles_h:2, b:b + 2 * tiles_w:2] for b in range(4)] for a in range(4)]
    rows = [_input_transform_1d(*(d[a][b] for a in range(4))) for b in range(4)]  # rows[b][a']
    v = [_input_transform_1d(*(rows[b][a] for b in range(4))) for a in range(4)]  # v[a'][b']
    stacked = jnp.stack([v[a][b] for a in range(4) for b in range(4)])
    products = jnp.einsum("ptc,pcd->ptd", stacked.reshape(16, tiles_h * tiles_w, -1), transformed_kernel,
                          precision=precision)
    m = products.reshape(4, 4, tiles_h, tiles_w, -1)
    y_rows = _output_transform_1d(*(m[a] for a in range(4)))  # y_rows[i][b]
    y = [_output_transform_1d(*(y_rows[i][b] for b in range(4))) for i in range(2)]  # y[i][j]
    tiles = jnp.stack([jnp.stack(y[i], axis=2) for i in range(2)], axis=1)  # (th, 2, tw, 2, C_out)
    return tiles.reshape(2 * tiles_h, 2 * tiles_w, -1)[:height, :width]


def patches(x):
    """im2col: (H, W, C) -> (H, W, 9 C), the zero-padded 3x3 neighbourhood of each pixel."""
    height, width, _ = x.shape
    padded = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([padded[a:a + height, b:b + width] for a in range(3) for b in range(3)], axis=-1)


def patches_conv(x, kernel, precision=None):
    """The convolution as one matrix product: patches (H W, 9 C_in) @ kernel (9 C_in, C_out)."""
    return jnp.matmul(patches(x), kernel.reshape(-1, kernel.shape[-1]), precision=precision)


def _kernel_gradient(x, kernel, cotangent, precision):
    return jax.grad(lambda k: jnp.vdot(lax_conv(x, k, precision), cotangent, precision=precision))(kernel)


# The custom paths take the precision as a static argument, read from the context when
# the forward pass is traced: their backward passes are traced later, outside any
# precision context the caller set, and must use the forward's (lax's own transposes
# inherit it from the forward's equations).
@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _direct(x, kernel, kernel_backward, precision):
    return lax_conv(x, kernel, precision)


def _direct_forward(x, kernel, kernel_backward, precision):
    return lax_conv(x, kernel, precision), (x, kernel, kernel_backward)


def _direct_backward(precision, residuals, cotangent):
    x, kernel, kernel_backward = residuals
    return (lax_conv(cotangent, kernel_backward, precision), _kernel_gradient(x, kernel, cotangent, precision),
            jnp.zeros_like(kernel_backward))


_direct.defvjp(_direct_forward, _direct_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _winograd(x, kernel, transformed, transformed_backward, precision):
    return winograd_conv(x, transformed, precision)


def _winograd_forward(x, kernel, transformed, transformed_backward, precision):
    return winograd_conv(x, transformed, precision), (x, kernel, transformed, transformed_backward)


def _winograd_backward(precision, residuals, cotangent):
    x, kernel, transformed, transformed_backward = residuals
    return (winograd_conv(cotangent, transformed_backward, precision),
            _kernel_gradient(x, kernel, cotangent, precision),
            jnp.zeros_like(transformed), jnp.zeros_like(transformed_backward))


_winograd.defvjp(_winograd_forward, _winograd_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _im2col(x, kernel, precision):
    return patches_conv(x, kernel, precision)


def _im2col_forward(x, kernel, precision):
    return patches_conv(x, kernel, precision), (x, kernel)


def _im2col_backward(precision, residuals, cotangent):
    x, kernel = residuals
    height, width, channels = x.shape
    flat_kernel = kernel.reshape(-1, kernel.shape[-1])
    # col2im: each patch's gradient goes back to the 9 pixels it was read from.
    patch_grads = jnp.matmul(cotangent, flat_kernel.T, precision=precision).reshape(height, width, 9, channels)
    grad = jnp.zeros((height + 2, width + 2, channels), x.dtype)
    for index in range(9):
        a, b = divmod(index, 3)
        grad = grad.at[a:a + height, b:b + width].add(patch_grads[:, :, index])
    kernel_grad = jnp.matmul(patches(x).reshape(-1, 9 * channels).T, cotangent.reshape(-1, kernel.shape[-1]),
                             precision=precision)
    return grad[1:-1, 1:-1], kernel_grad.reshape(kernel.shape)


_im2col.defvjp(_im2col_forward, _im2col_backward)

# Below this many input channels, winograd preparation uses im2col instead (conv1_1).
_IM2COL_BELOW_CHANNELS = 16


def prepare_layer(layer: dict, algorithm: str) -> dict:
    """One layer's dict plus the arrays its algorithm precomputes (see module doc)."""
    kernel = layer["kernel"]
    if algorithm == "lax":
        return dict(layer)
    if algorithm == "direct":
        return {**layer, "kernel_backward": backward_kernel(kernel)}
    if algorithm == "winograd":
        if kernel.shape[2] < _IM2COL_BELOW_CHANNELS:
            return {**layer, "im2col": jnp.zeros((0,), kernel.dtype)}
        return {**layer, "winograd": winograd_kernel(kernel), "winograd_backward": winograd_kernel(backward_kernel(kernel))}
    raise ValueError(f"unknown convolution algorithm {algorithm!r}")


def prepare(params: dict, algorithm: str) -> dict:
    """Every layer prepared for ``algorithm`` (``auto``: the backend's default)."""
    algorithm = resolve(algorithm)
    return {name: prepare_layer(layer, algorithm) for name, layer in params.items()}


def conv(layer: dict, x):
    """3x3 convolution plus bias of one (H, W, C_in) image, by the path ``layer`` is prepared for."""
    kernel = layer["kernel"]
    precision = jax.config.jax_default_matmul_precision  # the trace's context (see _direct)
    if "winograd" in layer:
        y = _winograd(x, kernel, layer["winograd"], layer["winograd_backward"], precision)
    elif "im2col" in layer:
        y = _im2col(x, kernel, precision)
    elif "kernel_backward" in layer:
        y = _direct(x, kernel, layer["kernel_backward"], precision)
    else:
        y = lax_conv(x, kernel)
    return y + layer["bias"][None, None, :]
