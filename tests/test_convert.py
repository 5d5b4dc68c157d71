"""Every weights format: fabricated in its real layout, converted, checked by golden features."""

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
import vgg_files

from stylejax._src import vgg
from stylejax._src.convention import CAFFE, TORCHVISION
from stylejax._src.errors import UserError
from stylejax._src.weights import convert, weights_file

PICTURE = np.random.default_rng(7).uniform(size=(16, 16, 3)).astype(np.float32)  # RGB in [0, 1]
LAYERS = ("conv1_1", "conv1_2", "conv2_1")


@pytest.fixture(scope="module")
def params():
    return vgg_files.random_params(0)


def _golden(converted_path, reference_kernels, reference_biases, network_input):
    """Features of the converted file vs the NumPy reference on the same input."""
    loaded = weights_file.load_weights(converted_path)
    ours = vgg.features(
        {n: {k: jnp.asarray(v) for k, v in loaded.params[n].items()} for n in LAYERS},
        jnp.asarray(loaded.convention.to_network(PICTURE)),
        ("conv2_1",),
        "avg",
    )["conv2_1"]
    expected = vgg_files.np_block_two(network_input, reference_kernels, reference_biases)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    return loaded


def _caffe_input(picture):
    """Caffe preprocessing written out by hand: BGR, 0..255, minus the mean pixel."""
    return picture[..., ::-1].astype(np.float64) * 255.0 - np.array([103.939, 116.779, 123.68])


def test_keras_h5(params, tmp_path):
    source = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    vgg_files.write_keras(source, params)
    assert convert.detect_format(str(source)) == "keras"
    out = tmp_path / "vgg19.h5"
    result, _ = convert.convert(str(source), str(out))
    assert result.convention == CAFFE and "block1_pool" in result.dropped
    with h5py.File(source, "r") as handle:  # the reference reads the fabricated file itself
        kernels = [handle[f"block{n[4]}_conv{n[6]}"][f"block{n[4]}_conv{n[6]}_W_1:0"][()] for n in LAYERS]
        biases = [handle[f"block{n[4]}_conv{n[6]}"][f"block{n[4]}_conv{n[6]}_b_1:0"][()] for n in LAYERS]
    loaded = _golden(out, kernels, biases, _caffe_input(PICTURE))
    assert loaded.source.startswith("keras:")
    assert loaded.source_sha256 == weights_file.file_sha256(source)
    for name in weights_file.CONV_NAMES:
        np.testing.assert_array_equal(loaded.params[name]["kernel"], params[name]["kernel"])


def test_keras_h5_with_other_weight_names(params, tmp_path):
    source = tmp_path / "other.h5"
    vgg_files.write_keras(source, params)
    with h5py.File(source, "a") as handle:  # Keras 2.x naming: block1_conv1/kernel:0
        for keras_name in vgg_files.KERAS_LAYER_NAMES:
            group = handle[keras_name]
            if "_conv" not in keras_name:
                continue
            kernel, bias = group[f"{keras_name}_W_1:0"][()], group[f"{keras_name}_b_1:0"][()]
            del group[f"{keras_name}_W_1:0"], group[f"{keras_name}_b_1:0"]
            group[f"{keras_name}/kernel:0"], group[f"{keras_name}/bias:0"] = kernel, bias
            group.attrs["weight_names"] = np.array([f"{keras_name}/kernel:0".encode(), f"{keras_name}/bias:0".encode()])
    result, _ = convert.convert(str(source), str(tmp_path / "w.h5"))
    np.testing.assert_array_equal(result.params["conv5_4"]["kernel"], params["conv5_4"]["kernel"])


def test_flaxmodels_h5(params, tmp_path):
    source = tmp_path / "vgg19_weights.h5"
    vgg_files.write_flaxmodels(source, params)
    assert convert.detect_format(str(source)) == "flaxmodels"
    out = tmp_path / "w.h5"
    result, _ = convert.convert(str(source), str(out))
    assert result.convention == TORCHVISION and set(result.dropped) == {"fc6", "fc7", "fc8"}
    with h5py.File(source, "r") as handle:
        kernels = [handle[n]["weight"][()] for n in LAYERS]
        biases = [handle[n]["bias"][()] for n in LAYERS]
    torchvision_input = (PICTURE.astype(np.float64) - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    _golden(out, kernels, biases, torchvision_input)


@pytest.mark.parametrize("old_layout", [False, True])
def test_matconvnet_mat(params, tmp_path, old_layout):
    pytest.importorskip("scipy")
    from scipy import io as scipy_io

    source = tmp_path / "imagenet-vgg-verydeep-19.mat"
    mean = (123.68, 116.779, 103.939)
    vgg_files.write_matconvnet(source, params, mean, old_layout=old_layout)
    assert convert.detect_format(str(source)) == "matconvnet"
    out = tmp_path / "w.h5"
    result, _ = convert.convert(str(source), str(out))
    np.testing.assert_allclose(result.convention.mean, mean, rtol=1e-6)
    assert result.convention.channel_order == "RGB" and result.convention.scale == 255.0
    # The reference reads the .mat as MatConvNet users do and indexes kernels as (w, h, in, out).
    data = scipy_io.loadmat(source, squeeze_me=True, struct_as_record=False)
    by_name = {layer.name: layer for layer in data["layers"] if layer.type == "conv"}
    kernels = [np.transpose(by_name[n].weights[0], (1, 0, 2, 3)) for n in LAYERS]
    biases = [by_name[n].weights[1].reshape(-1) for n in LAYERS]
    _golden(out, kernels, biases, PICTURE.astype(np.float64) * 255.0 - np.array(mean))
    assert "fc6" in result.dropped


def test_caffe_and_torchvision_counterparts_give_the_same_features(params):
    """conv1_1 of a BGR/0..255 network rewritten for RGB mean/std input is the same function."""
    caffe_kernel, caffe_bias = params["conv1_1"]["kernel"], params["conv1_1"]["bias"]
    std, mean_t = np.array(TORCHVISION.std), np.array(TORCHVISION.mean)
    # x_caffe[c_bgr] = 255 * rgb[2 - c_bgr] - mean_bgr, rgb = x_tv * std + mean_tv.
    rgb_kernel = caffe_kernel[:, :, ::-1, :]
    tv_kernel = (rgb_kernel * (255.0 * std)[None, None, :, None]).astype(np.float32)
    offset = 255.0 * mean_t[::-1] - np.array(CAFFE.mean)  # per BGR channel
    tv_bias = (caffe_bias + np.einsum("hwio,i->o", caffe_kernel, offset)).astype(np.float32)
    caffe_out = vgg.features({"conv1_1": {"kernel": caffe_kernel, "bias": caffe_bias}},
                             jnp.asarray(CAFFE.to_network(PICTURE)), ("conv1_1",))["conv1_1"]
    tv_out = vgg.features({"conv1_1": {"kernel": tv_kernel, "bias": tv_bias}},
                          jnp.asarray(TORCHVISION.to_network(PICTURE)), ("conv1_1",))["conv1_1"]
    # Zero padding means different pixels in the two spaces, so compare the interior.
    np.testing.assert_allclose(np.asarray(tv_out)[1:-1, 1:-1], np.asarray(caffe_out)[1:-1, 1:-1],
                               rtol=1e-4, atol=1e-3)


def test_another_network_is_refused(params, tmp_path):
    vgg16 = [n for n in vgg_files.KERAS_LAYER_NAMES if n not in ("block3_conv4", "block4_conv4", "block5_conv4")]
    source = tmp_path / "vgg16.h5"
    vgg_files.write_keras(source, params, layer_names=vgg16)
    out = tmp_path / "out.h5"
    with pytest.raises(UserError, match=r"not a VGG19 conv stack: missing block3_conv4, block4_conv4, block5_conv4"):
        convert.convert(str(source), str(out))
    assert not out.exists()


def test_unknown_and_stylejax_formats(tmp_path):
    junk = tmp_path / "model.bin"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match="unknown weights format"):
        convert.detect_format(str(junk))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(UserError, match="unknown weights format"):
        convert.detect_format(str(other))
    with pytest.raises(UserError, match="no such file"):
        convert.detect_format(str(tmp_path / "absent.pth"))


def _np_block_two_oihw(x, state, prefixes):
    """The reference for a state_dict: reads (out, in, kh, kw) weights as torch does."""

    def conv_relu(a, weight, bias):
        height, width, _ = a.shape
        padded = np.pad(a, ((1, 1), (1, 1), (0, 0)))
        out = np.zeros((height, width, weight.shape[0]))
        for dy in range(3):
            for dx in range(3):
                out += padded[dy : dy + height, dx : dx + width, :] @ weight[:, :, dy, dx].T.astype(np.float64)
        return np.maximum(out + bias, 0.0)

    a = conv_relu(x, state[f"{prefixes[0]}.weight"], state[f"{prefixes[0]}.bias"])
    a = conv_relu(a, state[f"{prefixes[1]}.weight"], state[f"{prefixes[1]}.bias"])
    height, width = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    a = a[:height, :width].reshape(height // 2, 2, width // 2, 2, -1).mean(axis=(1, 3))
    return conv_relu(a, state[f"{prefixes[2]}.weight"], state[f"{prefixes[2]}.bias"])


TORCH_CASES = {
    # file name -> (key layout, writer, expected convention)
    "vgg19-dcbb9e9d.pth": ("features", "zip", TORCHVISION),  # torchvision
    "vgg19-d01eb7cb.pth": ("features", "legacy", CAFFE),  # jcjohnson, an old (legacy) file
    "vgg19-74e45263.pth": ("features", "zip", CAFFE),  # pystiche
    "vgg_conv.pth": ("named", "zip", CAFFE),  # Gatys
}


@pytest.mark.parametrize("filename", list(TORCH_CASES))
def test_torch_state_dicts(params, tmp_path, filename):
    import torch_files

    layout, writer, expected_convention = TORCH_CASES[filename]
    state = vgg_files.torch_state_dict(params, layout=layout)
    if filename == "vgg19-d01eb7cb.pth":  # the old classifier keys of jcjohnson's file
        del state["classifier.0.weight"], state["classifier.0.bias"]
        for index in (1, 4, 6):
            state[f"classifier.{index}.weight"] = np.zeros((4, 4), np.float32)
    source = tmp_path / filename
    (torch_files.write_zip_checkpoint if writer == "zip" else torch_files.write_legacy_checkpoint)(source, state)
    assert convert.detect_format(str(source)) == "torch"
    out = tmp_path / "w.h5"
    result, _ = convert.convert(str(source), str(out))
    assert result.convention == expected_convention
    assert all(key.startswith("classifier.") for key in result.dropped) and result.dropped
    prefixes = ["features.0", "features.2", "features.5"] if layout == "features" else list(LAYERS)
    if expected_convention == CAFFE:
        network_input = _caffe_input(PICTURE)
    else:
        network_input = (PICTURE.astype(np.float64) - np.array(TORCHVISION.mean)) / np.array(TORCHVISION.std)
    loaded = weights_file.load_weights(out)
    ours = vgg.features({n: {k: jnp.asarray(v) for k, v in loaded.params[n].items()} for n in LAYERS},
                        jnp.asarray(loaded.convention.to_network(PICTURE)), ("conv2_1",))["conv2_1"]
    expected = _np_block_two_oihw(network_input, state, prefixes)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_array_equal(loaded.params["conv5_4"]["kernel"], params["conv5_4"]["kernel"])


def test_torchvision_layout_of_unknown_origin_needs_a_convention(params, tmp_path):
    import torch_files

    source = tmp_path / "my_vgg.pth"
    torch_files.write_zip_checkpoint(source, vgg_files.torch_state_dict(params))
    with pytest.raises(UserError, match="--convention"):
        convert.convert(str(source), str(tmp_path / "w.h5"))
    result, _ = convert.convert(str(source), str(tmp_path / "w.h5"), convention="caffe")
    assert result.convention == CAFFE


def test_vgg16_and_resnet_state_dicts_are_refused(params, tmp_path):
    import torch_files

    vgg16 = {f"features.{i}.weight": np.zeros((4, 4, 3, 3), np.float32) for i in (0, 2, 5, 7, 10, 12, 14, 17)}
    resnet = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32), "bn1.weight": np.ones(64, np.float32),
              "layer1.0.conv1.weight": np.zeros((64, 64, 3, 3), np.float32)}
    for name, state, expected in (("vgg16.pth", vgg16, "features.17.weight"), ("resnet.pth", resnet, "conv1.weight")):
        source = tmp_path / name
        torch_files.write_zip_checkpoint(source, state)
        out = tmp_path / f"{name}.h5"
        with pytest.raises(UserError, match="not a VGG19 conv stack") as raised:
            convert.convert(str(source), str(out))
        assert expected in str(raised.value) and "missing" in str(raised.value)
        assert not out.exists()
