"""The paper's weight normalisation, and the built-in calibration set it uses offline.

Gatys et al. (CVPR 2016, Sec. 2) "normalized the network by scaling the weights such that
the mean activation of each convolutional filter over images and positions is equal to
one". For a ReLU network this is exact: for layer l and filter k with mean post-ReLU
activation m_k,

    W_l[..., k] /= m_k,   b_l[k] /= m_k,   W_{l+1}[:, :, k, :] *= m_k,

applied layer by layer in forward order. ReLU and both poolings are positively
homogeneous, so every activation after layer l is unchanged, the activation of layer l
is divided by m_k, and only conv5_4's output keeps the per-channel scale 1/m_k. A filter
that never fires on the calibration set (m_k = 0) is left as it is and counted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import layers as vgg_layers
from stylejax._src import vgg
from stylejax._src.convention import InputConvention

CALIBRATION_ID = "stylejax-builtin-pink-noise-v1"
CALIBRATION_COUNT = 8
CALIBRATION_SIDE = 64
_CALIBRATION_SEED = 20160627  # CVPR 2016's first day; any fixed number would do


def builtin_calibration_images() -> np.ndarray:
    """A fixed set of 8 RGB images, 64x64, in [0, 1], with natural-image statistics.

    Each is 1/f ("pink") noise, the power spectrum natural photographs share, with
    correlated colour channels and a random brightness and contrast, drawn from a
    fixed NumPy seed. It lets ``--weights random`` normalise without any download and
    gives the same bits on every machine.
    """
    rng = np.random.default_rng(_CALIBRATION_SEED)
    side = CALIBRATION_SIDE
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.fftfreq(side)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    radius[0, 0] = 1.0
    amplitude = 1.0 / radius
    amplitude[0, 0] = 0.0
    images = []
    for _ in range(CALIBRATION_COUNT):
        # One luminance field plus weaker chroma fields: colours in photos are correlated.
        fields = []
        for strength in (1.0, 0.35, 0.35):
            phase = rng.uniform(0, 2 * np.pi, (side, side))
            field = np.real(np.fft.ifft2(amplitude * np.exp(1j * phase)))
            fields.append(strength * field / field.std())
        luminance, chroma_a, chroma_b = fields
        rgb = np.stack(
            [luminance + chroma_a, luminance - 0.5 * chroma_a + chroma_b, luminance - chroma_b],
            axis=-1,
        )
        brightness = rng.uniform(0.35, 0.65)
        contrast = rng.uniform(0.12, 0.22)
        images.append(np.clip(brightness + contrast * rgb, 0.0, 1.0))
    return np.stack(images).astype(np.float32)


@jax.jit
def _conv_relu_batch(kernel, bias, x):
    return jax.vmap(vgg.conv_relu, in_axes=(None, None, 0))(kernel, bias, x)


@jax.jit
def _conv_batch(kernel, bias, x):
    return jax.vmap(vgg.conv, in_axes=(None, None, 0))(kernel, bias, x)


def _pool_batch(x, pooling):
    return jax.vmap(lambda image: vgg.pool(image, pooling))(x)


def normalise(params, calibration_rgb01, convention: InputConvention, pooling: str = "max"):
    """Rescales ``params`` so each filter's mean activation on the calibration set is 1.

    Args:
      params: the VGG19 conv params pytree (not modified).
      calibration_rgb01: (B, H, W, 3) RGB images in [0, 1], H and W at least 16.
      convention: the input convention of ``params``.
      pooling: the pooling used while measuring (``max``: the network as trained).

    Returns:
      (normalised params as NumPy float32, info dict with the per-layer count of dead
      filters and the mean activations measured before rescaling).
    """
    vgg.check_pooling(pooling)
    x = jnp.asarray(convention.to_network(np.asarray(calibration_rgb01, np.float32)))
    result = {name: {k: np.array(v, np.float32) for k, v in p.items()} for name, p in params.items()}
    dead = {}
    mean_range = {}
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            x = _pool_batch(x, pooling)
            continue
        layer = result[name]
        activation = _conv_relu_batch(layer["kernel"], layer["bias"], x)
        means = np.asarray(jnp.mean(activation, axis=(0, 1, 2)), np.float64)
        alive = means > 0
        scale = np.where(alive, means, 1.0)
        layer["kernel"] = (layer["kernel"] / scale[None, None, None, :]).astype(np.float32)
        layer["bias"] = (layer["bias"] / scale).astype(np.float32)
        # The next conv sees activation / scale, so it multiplies that input channel back.
        following = _next_conv(name)
        if following is not None:
            next_kernel = result[following]["kernel"]
            result[following]["kernel"] = (next_kernel * scale[None, None, :, None]).astype(np.float32)
        x = activation / jnp.asarray(scale, activation.dtype)[None, None, None, :]
        dead[name] = int(np.count_nonzero(~alive))
        mean_range[name] = [float(means[alive].min(initial=np.inf)), float(means[alive].max(initial=0.0))]
    info = {"pooling": pooling, "dead_filters": dead, "mean_activation_before": mean_range}
    return result, info


def centre_biases(params, calibration_rgb01, convention: InputConvention, pooling: str = "max"):
    """Sets each filter's bias so it fires on half the calibration positions.

    Random kernels leave some filters almost never active on natural images; the
    normalisation would then multiply them by thousands, and on other pictures those
    filters dominate every Gram matrix. Centring each pre-activation at its median over
    the calibration set (layer by layer, in forward order) gives every filter a working
    range first. This is part of building the random network, not of the paper's
    normalisation, and is never applied to pretrained weights.
    """
    vgg.check_pooling(pooling)
    x = jnp.asarray(convention.to_network(np.asarray(calibration_rgb01, np.float32)))
    result = {name: {k: np.array(v, np.float32) for k, v in p.items()} for name, p in params.items()}
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            x = _pool_batch(x, pooling)
            continue
        layer = result[name]
        zero_bias = np.zeros_like(layer["bias"])
        pre_activation = _conv_batch(layer["kernel"], zero_bias, x)
        median = np.median(np.asarray(pre_activation).reshape(-1, pre_activation.shape[-1]), axis=0)
        layer["bias"] = (-median).astype(np.float32)
        x = jax.nn.relu(pre_activation + jnp.asarray(layer["bias"])[None, None, None, :])
    return result


def _next_conv(name: str) -> str | None:
    index = vgg_layers.CONV_NAMES.index(name)
    return vgg_layers.CONV_NAMES[index + 1] if index + 1 < len(vgg_layers.CONV_NAMES) else None


def mean_activations(params, calibration_rgb01, convention: InputConvention, pooling: str = "max"):
    """Each conv layer's per-filter mean activation over the images and positions."""
    x = jnp.asarray(convention.to_network(np.asarray(calibration_rgb01, np.float32)))
    batched = jax.vmap(lambda image: vgg.features(params, image, vgg_layers.CONV_NAMES, pooling))
    activations = batched(x)
    return {name: np.asarray(jnp.mean(a, axis=(0, 1, 2))) for name, a in activations.items()}
