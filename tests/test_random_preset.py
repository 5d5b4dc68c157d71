"""The random preset's balance in sweeps and figures: paper ratios mapped by the documented rule."""

import json

import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import balance, losses, presets, samples, sweep
from stylejax._src.weights import weights_source

SIZE = 32


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    for name, array in zip(("c.png", "s.png"), samples.sample_images(SIZE), strict=True):
        Image.fromarray((array * 255).astype(np.uint8)).save(folder / name)
        paths.append(str(folder / name))
    return paths


def test_resolve_balance_applies_the_rule_to_each_members_own_layers():
    members = [
        sweep.Member(ratio=1e-3, style_layers=("conv1_1", "conv2_1"),
                     content_layer="conv2_2").balanced(0.5, 0.1, balanced_layers=True),
        sweep.Member(ratio=1e-3, style_layers=("conv2_1",), content_layer="conv1_2").balanced(2.0, None),
        sweep.Member(ratio=7e-4, style_layers=("conv1_1",), content_layer="conv2_2"),  # untouched
    ]
    spec = sweep.loss_spec(members, "avg")
    assert spec.style_layers == ("conv1_1", "conv2_1") and spec.content_layers == ("conv1_2", "conv2_2")
    scales = balance.Scales(np.array([4.0, 1.0]), np.array([10.0, 20.0]), 8.0)
    first, second, third = sweep.resolve_balance(members, spec, scales)
    np.testing.assert_allclose(first.style_layer_weights, [0.2, 0.8], rtol=1e-12)
    assert first.content_weight == pytest.approx(0.5 * (0.2 * 4 + 0.8 * 1) / 20.0, rel=1e-12)
    assert first.tv_weight == pytest.approx(0.1 * 1.6 / 8.0, rel=1e-12)
    assert first.ratio == 1e-3  # the label keeps the paper-scale value
    assert second.style_layer_weights == (1.0,) and second.tv_weight == 0.0
    assert second.content_weight == pytest.approx(2.0 * 1.0 / 10.0, rel=1e-12)
    assert third == members[2] and third.alpha == 7e-4
    weights = sweep.member_weights([first, second, third], spec)
    np.testing.assert_allclose(weights.content_weight, [first.content_weight, second.content_weight, 7e-4],
                               rtol=1e-6)


@pytest.mark.slow
def test_sweep_with_random_weights_maps_paper_ratios_to_balances(pictures, tmp_path, capsys):
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *pictures, "-o", str(out), "--weights", "random", "--size", str(SIZE),
                       "--iterations", "2", "--ratios", "1e-4,1e-3", "--optimizer", "adam", "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["preset"] == "random" and "balance" in results["config"]["ratio_mapping"]
    low, high = (m["config"] for m in results["members"])
    preset = presets.PRESETS["random"]
    assert low["balance"] == pytest.approx(presets.balance_for_ratio(1e-4), rel=1e-12)
    assert high["balance"] == pytest.approx(preset["balance"], rel=1e-12)
    assert low["content_layer"] == preset["content_layer"] and low["init"] == "content"
    # same layers and pictures: alpha is proportional to the balance, so to the paper ratio
    assert high["content_weight"] / low["content_weight"] == pytest.approx(10.0, rel=1e-5)
    np.testing.assert_allclose(low["style_layer_weights"], high["style_layer_weights"], rtol=1e-6)
    assert sum(low["style_layer_weights"]) == pytest.approx(1.0, rel=1e-6)
    assert low["tv_weight"] > 0


@pytest.mark.slow
def test_sweep_with_the_paper_preset_keeps_the_ratios(pictures, tmp_path, capsys):
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *pictures, "-o", str(out), "--weights", "random", "--preset", "paper",
                       "--size", str(SIZE), "--iterations", "1", "--ratios", "1e-4",
                       "--optimizer", "adam", "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    member = results["members"][0]["config"]
    assert results["config"]["preset"] == "paper" and "ratio_mapping" not in results["config"]
    assert member["ratio"] == 1e-4 and "balance" not in member and member["content_layer"] == "conv4_2"


@pytest.mark.slow
def test_the_measured_scales_of_a_sweep_equal_a_transfers(pictures):
    """Sweep and transfer resolve the rule from the same numbers (one forward pass each)."""
    import jax
    import jax.numpy as jnp

    weights = weights_source.random_weights(0)
    params = jax.tree.map(jnp.asarray, weights.params)
    content, style = (jnp.asarray(weights.convention.to_network(a)) for a in samples.sample_images(SIZE))
    spec = losses.LossSpec(("conv2_2",), presets.PAPER_STYLE_LAYERS, "avg")
    measured = balance.measure(params, content, style, spec)
    targets = losses.compute_targets(params, content, style, spec)
    unit = balance.unit_weights(spec)
    from_terms = balance.scales_from_terms(losses.loss_terms(content, params, targets, unit, spec),
                                           losses.loss_terms(style, params, targets, unit, spec))
    np.testing.assert_allclose(measured.style_at_content, from_terms.style_at_content, rtol=1e-5)
    np.testing.assert_allclose(measured.content_at_style, from_terms.content_at_style, rtol=1e-5)
