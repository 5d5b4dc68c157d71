"""The balance rule (stylejax/_src/balance.py) and the presets that use it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylejax._src import balance, losses, presets, samples, vgg
from stylejax._src.errors import UserError
from stylejax._src.weights.weights_source import random_weights
from stylejax.cli import config as config_lib

SPEC = losses.LossSpec(("conv2_2",), ("conv1_1", "conv2_1", "conv3_1"), "avg")


def scales(style, content, tv=2.0):
    return balance.Scales(np.asarray(style, np.float64), np.asarray(content, np.float64), tv)


def test_layer_weights_are_inverse_to_the_style_loss_at_the_content():
    weights = balance.layer_weights([1.0, 4.0, 0.5])
    expected = np.array([1.0, 0.25, 2.0]) / 3.25
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    # each layer's weighted term is then the same
    np.testing.assert_allclose(weights * [1.0, 4.0, 0.5], np.full(3, 1 / 3.25), rtol=1e-12)


def test_layer_weights_skip_zero_and_non_finite_layers():
    np.testing.assert_allclose(balance.layer_weights([0.0, 2.0, np.inf]), [0.0, 1.0, 0.0], atol=0)
    np.testing.assert_allclose(balance.layer_weights([0.0, 0.0]), [0.5, 0.5], atol=0)


def test_resolve_follows_the_documented_formulas():
    measured = scales([2.0, 8.0], [50.0], tv=400.0)
    resolved = balance.resolve(measured, balance=0.1, tv_balance=0.01)
    weights = np.array([0.5, 0.125]) / 0.625
    style_at_content = float(np.sum(weights * [2.0, 8.0]))
    np.testing.assert_allclose(resolved.style_layer_weights, weights, rtol=1e-12)
    assert resolved.content_weight == pytest.approx(0.1 * style_at_content / 50.0, rel=1e-12)
    assert resolved.tv_weight == pytest.approx(0.01 * style_at_content / 400.0, rel=1e-12)


def test_resolve_with_fixed_layer_weights_and_no_tv():
    resolved = balance.resolve(scales([2.0, 8.0], [50.0]), balance=1.0, style_layer_weights=[0.5, 0.5])
    assert resolved.style_layer_weights == (0.5, 0.5)
    assert resolved.content_weight == pytest.approx(5.0 / 50.0, rel=1e-12)
    assert resolved.tv_weight == 0.0


def test_balance_is_invariant_to_the_scale_of_each_term():
    """The rule's point: alpha * L_content(style) / (beta * S(content)) is the balance,
    however large the network's content and style terms are."""
    base = scales([2.0, 8.0, 3.0], [50.0])
    for style_factor, content_factor in ((1.0, 1.0), (1e6, 1.0), (1.0, 1e-5), (1e-7, 1e9)):
        measured = scales(base.style_at_content * style_factor, base.content_at_style * content_factor)
        resolved = balance.resolve(measured, balance=0.05)
        style = float(np.sum(np.asarray(resolved.style_layer_weights) * measured.style_at_content))
        assert resolved.content_weight * measured.content_at_style[0] / style == pytest.approx(0.05, rel=1e-9)
        np.testing.assert_allclose(resolved.style_layer_weights,
                                   balance.resolve(base, balance=0.05).style_layer_weights, rtol=1e-12)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_resolve_refuses_bad_balances(bad):
    with pytest.raises(ValueError, match="balance"):
        balance.resolve(scales([1.0], [1.0]), balance=bad)
    with pytest.raises(ValueError, match="tv_balance"):
        balance.resolve(scales([1.0], [1.0]), balance=1.0, tv_balance=bad)


def test_resolve_refuses_an_undefined_ratio():
    with pytest.raises(ValueError, match="undefined"):
        balance.resolve(scales([1.0], [0.0]), balance=1.0)
    with pytest.raises(ValueError, match="style_layer_weights"):
        balance.resolve(scales([1.0, 2.0], [1.0]), balance=1.0, style_layer_weights=[1.0])


@pytest.mark.slow
def test_measure_equals_the_loss_terms_at_the_two_pictures():
    weights = random_weights(0)
    params = jax.tree.map(jnp.asarray, weights.params)
    content_rgb, style_rgb = samples.sample_images(48)
    content = jnp.asarray(weights.convention.to_network(content_rgb))
    style = jnp.asarray(weights.convention.to_network(style_rgb))
    measured = balance.measure(params, content, style, SPEC)

    targets = losses.compute_targets(params, content, style, SPEC)
    grams = dict(zip(SPEC.style_layers, targets.style_grams, strict=True))
    at_content = vgg.features(params, content, SPEC.style_layers, "avg")
    for index, name in enumerate(SPEC.style_layers):
        expected = float(losses.style_layer_loss(at_content[name], grams[name]))
        assert measured.style_at_content[index] == pytest.approx(expected, rel=1e-5)
    at_style = vgg.features(params, style, SPEC.content_layers, "avg")["conv2_2"]
    expected_content = float(losses.content_loss(at_style, targets.content[0]))
    assert measured.content_at_style[0] == pytest.approx(expected_content, rel=1e-5)
    assert measured.tv_at_content == pytest.approx(float(losses.tv_loss(content)), rel=1e-5)
    assert np.all(measured.style_at_content > 0) and measured.content_at_style[0] > 0


# ---------------------------------------------------------------- presets


def test_random_weights_choose_the_random_preset():
    cfg = config_lib.resolve("c.png", "s.png", "o.png", {"weights": "random"})
    assert cfg.preset == "random" and "random" in cfg.preset_reason
    preset = presets.PRESETS["random"]
    assert cfg.balance == preset["balance"] and cfg.tv_balance == preset["tv_balance"]
    assert cfg.content_weight is None and cfg.tv_weight is None
    assert cfg.style_layer_weights == (0.2,) * 5 and cfg.needs_balance
    assert cfg.init == "content" and cfg.content_layer == preset["content_layer"]


def test_the_paper_preset_is_unchanged():
    """With pretrained weights (auto or a file) every number is the paper's."""
    for weights in ("auto", "weights/vgg19_normalised.h5"):
        cfg = config_lib.resolve("c.png", "s.png", "o.png", {"weights": weights})
        assert cfg.preset == "paper" and cfg.preset_reason == "the default"
        assert cfg.content_weight == 1e-3 and cfg.style_weight == 1.0 and cfg.ratio == 1e-3
        assert cfg.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
        assert cfg.style_layer_weights == (0.2,) * 5
        assert cfg.content_layer == "conv4_2" and cfg.init == "noise" and cfg.tv_weight == 0.0
        assert cfg.size == 512 and cfg.iterations == 500 and cfg.pooling == "avg"
        assert cfg.balance is None and cfg.tv_balance is None and not cfg.needs_balance


def test_an_explicit_preset_wins_over_the_weights():
    cfg = config_lib.resolve("c.png", "s.png", "o.png", {"weights": "random", "preset": "paper"})
    assert cfg.preset == "paper" and cfg.preset_reason == "chosen with --preset"
    assert cfg.ratio == 1e-3 and not cfg.needs_balance


def test_flags_override_the_balance_rule():
    cfg = config_lib.resolve("c.png", "s.png", "o.png",
                             {"weights": "random", "ratio": "1e-8", "tv_weight": "0",
                              "style_layer_weights": "1,1,1,1,1"})
    assert cfg.ratio == 1e-8 and cfg.balance is None and cfg.tv_weight == 0.0
    assert cfg.style_layer_weights == (1.0,) * 5 and not cfg.needs_balance
    cfg = config_lib.resolve("c.png", "s.png", "o.png", {"balance": "0.5"})
    assert cfg.preset == "paper" and cfg.balance == 0.5 and cfg.content_weight is None


@pytest.mark.parametrize("overrides", [
    {"ratio": "1e-3", "balance": "1"},
    {"balance": "1", "content_weight": "2"},
    {"weights": "random", "balance": "-1"},
    {"weights": "random", "tv_balance": "nan"},
    {"preset": "nope"},
])
def test_bad_weight_flags_are_one_clear_error(overrides):
    with pytest.raises(UserError):
        config_lib.resolve("c.png", "s.png", "o.png", overrides)


def test_paper_ratios_map_to_balances_around_the_preset():
    b0 = presets.PRESETS["random"]["balance"]
    assert presets.balance_for_ratio(1e-3) == pytest.approx(b0, rel=1e-12)
    assert presets.balance_for_ratio(1e-5) == pytest.approx(b0 * 1e-2, rel=1e-12)
