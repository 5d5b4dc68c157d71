"""Fabricated VGG19 files in the exact layouts of the real ones, and a NumPy reference.

Each writer takes stylejax params (HWIO kernels) and stores them the way the real
source does (same names, attributes, axis order, dtype), so a converter test can check
that converting the file gives back the same network.
"""

from __future__ import annotations

import h5py
import numpy as np

from stylejax._src import layers as vgg_layers

KERAS_LAYER_NAMES = [
    "input_1",
    *[
        name
        for block, count in enumerate((2, 2, 4, 4, 4), start=1)
        for name in (*(f"block{block}_conv{k}" for k in range(1, count + 1)), f"block{block}_pool")
    ],
]


def random_params(seed: int = 0, scale: float = 0.05) -> dict:
    rng = np.random.default_rng(seed)
    return {
        spec.name: {
            "kernel": (rng.standard_normal(spec.kernel_shape, dtype=np.float32) * scale),
            "bias": (rng.standard_normal(spec.bias_shape, dtype=np.float32) * scale),
        }
        for spec in vgg_layers.CONVS
    }


def write_keras(path, params, *, layer_names=KERAS_LAYER_NAMES) -> None:
    """The layout of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.0.8"
        for keras_name in layer_names:
            group = handle.create_group(keras_name)
            if "_conv" not in keras_name:
                group.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            name = f"conv{keras_name[5]}_{keras_name[-1]}"
            kernel_name, bias_name = f"{keras_name}_W_1:0", f"{keras_name}_b_1:0"
            group.attrs["weight_names"] = np.array([kernel_name.encode(), bias_name.encode()])
            group[kernel_name] = params[name]["kernel"]
            group[bias_name] = params[name]["bias"]


def write_flaxmodels(path, params) -> None:
    """The layout of flaxmodels' vgg19_weights.h5 (with its fully connected layers)."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as handle:
        for name in vgg_layers.CONV_NAMES:
            group = handle.create_group(name)
            group["weight"] = params[name]["kernel"]
            group["bias"] = params[name]["bias"]
        for fc, shape in (("fc6", (64, 8)), ("fc7", (8, 8)), ("fc8", (8, 10))):
            group = handle.create_group(fc)
            group["weight"] = rng.standard_normal(shape).astype(np.float32)
            group["bias"] = np.zeros(shape[1], np.float32)


def torch_state_dict(params, *, layout: str = "features", classifier: bool = True) -> dict:
    """A VGG19 state_dict: (out, in, kh, kw) conv weights under torchvision or Gatys keys."""
    from stylejax._src.weights.convert import FEATURE_INDEX

    by_name = {name: index for index, name in FEATURE_INDEX.items()}
    state = {}
    for name in vgg_layers.CONV_NAMES:
        prefix = f"features.{by_name[name]}" if layout == "features" else name
        state[f"{prefix}.weight"] = np.ascontiguousarray(np.transpose(params[name]["kernel"], (3, 2, 0, 1)))
        state[f"{prefix}.bias"] = params[name]["bias"]
    if classifier:
        state["classifier.0.weight"] = np.zeros((16, 8), np.float32)
        state["classifier.0.bias"] = np.zeros((16,), np.float32)
    return state


def write_matconvnet(path, params, mean_rgb, *, old_layout: bool = False) -> None:
    """imagenet-vgg-verydeep-19.mat: layer structs, (w, h, in, out) kernels, mean image."""
    from scipy import io as scipy_io

    layers = []
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            layers.append({"name": name, "type": "pool", "method": "max"})
            continue
        kernel = np.transpose(params[name]["kernel"], (1, 0, 2, 3))
        bias = params[name]["bias"].reshape(-1, 1)
        weights = np.empty((1, 2), dtype=object)
        weights[0, 0], weights[0, 1] = kernel, bias
        layers.append({"name": name, "type": "conv", "weights": weights, "stride": [1, 1], "pad": [1, 1, 1, 1]})
        layers.append({"name": name.replace("conv", "relu"), "type": "relu"})
    fc = np.empty((1, 2), dtype=object)
    fc[0, 0], fc[0, 1] = np.zeros((1, 1, 512, 4), np.float32), np.zeros((4, 1), np.float32)
    layers.append({"name": "fc6", "type": "conv", "weights": fc})
    cells = np.empty((1, len(layers)), dtype=object)
    for i, layer in enumerate(layers):
        cells[0, i] = layer
    average = np.tile(np.asarray(mean_rgb, np.float32), (4, 4, 1))  # a small mean image
    if old_layout:
        content = {"layers": cells, "normalization": {"averageImage": average, "imageSize": [224, 224, 3]}}
    else:
        content = {"layers": cells, "meta": {"normalization": {"averageImage": average}}}
    scipy_io.savemat(path, content)


def np_conv_relu(x, kernel_hwio, bias):
    height, width, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((height, width, kernel_hwio.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + height, dx : dx + width, :] @ kernel_hwio[dy, dx]
    return np.maximum(out + bias, 0.0)


def np_block_two(x, kernels, biases):
    """conv1_1, conv1_2, 2x2 average pool, conv2_1 in float64: the NumPy reference."""
    a = np_conv_relu(x, kernels[0], biases[0])
    a = np_conv_relu(a, kernels[1], biases[1])
    height, width = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    a = a[:height, :width].reshape(height // 2, 2, width // 2, 2, -1).mean(axis=(1, 3))
    return np_conv_relu(a, kernels[2], biases[2])
