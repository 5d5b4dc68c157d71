"""Sweeps: one compilation, each member equal to the same run alone, sharding, the CLI."""

import csv
import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from stylejax import cli
from stylejax._src import losses, optimise, samples, sweep
from stylejax._src.weights import weights_source

SIZE = 32
MEMBERS = [
    sweep.Member(ratio=1e-5, style_layers=("conv1_1",), content_layer="conv2_2", init="noise:0"),
    sweep.Member(ratio=1e-3, style_layers=("conv1_1", "conv2_1"), content_layer="conv2_2", init="content"),
    sweep.Member(ratio=1e-4, style_layers=("conv2_1",), content_layer="conv1_2", init="noise:1", tv_weight=1e-4),
]


@pytest.fixture(scope="module")
def setup():
    content, style = samples.sample_images(SIZE)
    return content, style, weights_source.random_weights(0)


def _alone(member, content, style, weights, optimizer, iterations, spec):
    """The same member through the plain (unbatched) solver, with the sweep's union spec."""
    convention = weights.convention
    params = jax.tree.map(jnp.asarray, weights.params)
    targets = losses.compute_targets(params, jnp.asarray(convention.to_network(content)),
                                     jnp.asarray(convention.to_network(style)), spec)
    member_weights = jax.tree.map(lambda a: a[0], sweep.member_weights([member], spec))
    init = jnp.asarray(convention.to_network(sweep.initial_images([member], content, style)[0]))
    args = optimise.SolveArgs(params, targets, member_weights, jnp.float32(5.1))
    result = optimise.solve(init, args, optimise.SolverSpec(optimizer, spec), iterations, chunk_size=1)
    return np.clip(np.asarray(convention.to_rgb01(result.state.image)), 0, 1), result


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["vmap", "map", "loop"])
def test_adam_sweep_compiles_once_and_matches_each_member_alone(setup, mode, compile_log):
    content, style, weights = setup
    # Chunks of 3 and 1: the shorter last chunk (and, in loop mode, every member) must
    # reuse the one program.
    result = sweep.run_sweep(content, style, MEMBERS, weights, optimizer="adam", iterations=4, mode=mode,
                             batch_size=2 if mode == "map" else None, lr=5.1, chunk_size=3)
    chunk = "run_chunk" if mode == "loop" else "_batched_chunk"
    # JAX's record of the whole sweep: the chunk program traced and compiled once; the
    # reported count (the jitted chunk's cache after the run) agrees.
    assert (compile_log.traces(chunk), compile_log.compiles(chunk)) == (1, 1)
    assert result.traces == 1
    spec = sweep.loss_spec(MEMBERS, "avg")
    for k, member in enumerate(MEMBERS):
        image, alone = _alone(member, content, style, weights, "adam", 4, spec)
        # Adam takes bounded steps, so batched float32 arithmetic only moves pixels by rounding.
        np.testing.assert_allclose(result.images[k], image, atol=2e-3)
        np.testing.assert_allclose(result.histories[k][:-1], alone.values, rtol=1e-4)
        assert result.evaluations[k] == 4


@pytest.mark.slow
def test_lbfgs_vmap_members_match_their_runs_alone(setup):
    content, style, weights = setup
    result = sweep.run_sweep(content, style, MEMBERS, weights, optimizer="lbfgs", iterations=5, mode="vmap",
                             count_evaluations=True)
    assert result.traces == 1
    spec = sweep.loss_spec(MEMBERS, "avg")
    for k, member in enumerate(MEMBERS):
        _, alone = _alone(member, content, style, weights, "lbfgs", 5, spec)
        # Under vmap each member keeps its own line search (the batched cond and while_loop
        # mask finished members), so the iterates are the same algorithm; only float32
        # reduction order differs, which L-BFGS's curvature pairs can amplify. 1% on the
        # objective after 5 iterations is the tolerance this justifies; measured: 8.8e-7.
        np.testing.assert_allclose(result.histories[k][:-1], alone.values, rtol=1e-2)
        assert result.evaluations[k] == alone.evaluations
    # The lockstep costs more than the members' own evaluations: batched conds run both
    # branches and the line search runs until its slowest member is done.
    assert result.executed_evaluations * len(MEMBERS) > sum(result.evaluations)
    alone = sweep.run_sweep(content, style, MEMBERS, weights, optimizer="lbfgs", iterations=5, mode="loop",
                            count_evaluations=True)
    assert alone.executed_evaluations == sum(alone.evaluations) == sum(result.evaluations)


@pytest.mark.parametrize("mode", ["vmap", pytest.param("loop", marks=pytest.mark.slow)])
def test_smallest_sweep_compiles_once_and_counts_its_own_evaluations(setup, mode, compile_log):
    """The fast tier's sweep: 2 members, 3 Adam iterations in chunks of 2 and 1, 22 px, conv1 only."""
    _, _, weights = setup
    content, style = samples.sample_images(22)
    members = [sweep.Member(ratio=r, style_layers=("conv1_1",), content_layer="conv1_2") for r in (1e-4, 1e-2)]
    result = sweep.run_sweep(content, style, members, weights, optimizer="adam", iterations=3, mode=mode,
                             chunk_size=2, lr=5.1, count_evaluations=True)
    chunk = "run_chunk" if mode == "loop" else "_batched_chunk"
    assert (compile_log.traces(chunk), compile_log.compiles(chunk)) == (1, 1)
    assert result.traces == 1 and result.mode == mode
    assert result.evaluations == [3, 3]
    # Adam evaluates once per iteration: in lockstep a batched evaluation counts once; in
    # a loop each member's count. Only this sweep's evaluations are counted.
    assert result.executed_evaluations == (3 if mode == "vmap" else 6)
    assert [len(h) for h in result.histories] == [4, 4]
    assert all(h[-1] < h[0] for h in result.histories)


def test_product_and_union_spec():
    members = sweep.product(ratios=(1e-4, 1e-3), style_layer_sets=(("conv1_1",), ("conv1_1", "relu2_1")),
                            inits=("content", "noise:3"))
    assert len(members) == 8
    spec = sweep.loss_spec(members, "avg")
    assert spec.style_layers == ("conv1_1", "conv2_1") and spec.content_layers == ("conv4_2",)
    weights = sweep.member_weights(members, spec)
    np.testing.assert_allclose(np.asarray(weights.style_layer_weights[0]), [1.0, 0.0])
    np.testing.assert_allclose(np.asarray(weights.style_layer_weights[2]), [0.5, 0.5])
    np.testing.assert_allclose(np.asarray(weights.content_weight), [1e-4] * 4 + [1e-3] * 4, rtol=1e-6)


@pytest.mark.slow
def test_sharded_over_four_host_devices_matches_one_device(tmp_path):
    script = tmp_path / "shard.py"
    script.write_text(
        "import json, sys, numpy as np, jax\n"
        "import stylejax\n"
        "from stylejax import weights\n"
        "content, style = stylejax.sample_images(32)\n"
        "members = stylejax.product(ratios=(1e-5, 1e-4, 1e-3), style_layer_sets=(('conv1_1',),), content_layers=('conv1_2',))\n"
        "r = stylejax.run_sweep(content, style, members, weights.random_weights(0), optimizer='adam',"
        " iterations=3, mode='vmap', lr=5.1, shard=sys.argv[1] == '1')\n"
        "json.dump({'devices': r.devices, 'count': len(jax.devices()), 'totals': [f['total'] for f in r.final]},"
        " sys.stdout)\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    runs = {}
    for shard in ("1", "0"):
        out = subprocess.run([sys.executable, str(script), shard], env=env, capture_output=True, text=True, check=True)
        runs[shard] = json.loads(out.stdout)
    assert runs["1"]["count"] == 4 and runs["1"]["devices"] == 4 and runs["0"]["devices"] == 1
    np.testing.assert_allclose(runs["1"]["totals"], runs["0"]["totals"], rtol=1e-4)


@pytest.mark.slow
def test_sweep_cli_writes_grid_results_and_csv(setup, tmp_path, capsys):
    content, style, _ = setup
    paths = []
    for name, array in (("c.png", content), ("s.png", style)):
        Image.fromarray((array * 255).astype(np.uint8)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    out = tmp_path / "sweep"
    status = cli.main(["sweep", *paths, "-o", str(out), "--weights", "random", "--size", "32",
                       "--iterations", "2", "--ratios", "1e-4,1e-3", "--style-layer-sets", "conv1_1;conv1_1,conv2_1",
                       "--content-layers", "conv2_2", "--optimizer", "adam", "--quiet"])
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert len(results["members"]) == 4 and results["traces"] == 1 and results["weights"]["random"]
    member = results["members"][0]
    assert {"config", "status", "initial", "final", "history", "evaluations", "seconds"} <= set(member)
    assert [m["status"] for m in results["members"]] == ["done"] * 4
    assert (out / member["image"]).is_file()
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and rows[3]["style_layers"] == "conv1_1+conv2_1"
    with Image.open(out / "grid.png") as grid:
        width, height = grid.size
    assert width > 2 * 32 and height > 2 * 24  # 2 rows (ratios) x 2 columns (layer sets)


def test_bad_sweep_axes_are_one_line_errors(setup, tmp_path, capsys):
    content, _, _ = setup
    path = tmp_path / "c.png"
    Image.fromarray((content * 255).astype(np.uint8)).save(path)
    for flag, value, word in (("--ratios", "1e-3,-1", "-1"), ("--style-layer-sets", "conv1_1;conv9_1", "conv9_1"),
                              ("--inits", "noise:x", "noise:x"), ("--batch-size", "0", "--batch-size")):
        status = cli.main(["sweep", str(path), str(path), "-o", str(tmp_path / "o"), "--weights", "random",
                           flag, value])
        err = capsys.readouterr().err
        assert status == 2 and word in err and len(err.strip().splitlines()) == 1


def test_members_file_gives_an_explicit_list(tmp_path):
    from stylejax._src.errors import UserError
    from stylejax.cli import sweep_commands

    path = tmp_path / "members.json"
    path.write_text(json.dumps([
        {"ratio": 1e-4, "style_layers": ["relu1_1", "conv2_1"], "style_layer_weights": [0.25, 0.75]},
        {"init": "content", "content_layer": "conv2_2"},
    ]))
    members = sweep_commands.read_members(str(path))
    assert members[0].style_layers == ("conv1_1", "conv2_1") and members[0].layer_weights() == (0.25, 0.75)
    assert members[1].init == "content" and members[1].ratio == 1e-3 and members[1].content_layer == "conv2_2"
    path.write_text(json.dumps([{"ratio": 1e-3, "colour": "blue"}]))
    with pytest.raises(UserError, match="unknown keys"):
        sweep_commands.read_members(str(path))


@pytest.mark.parametrize("mode", ["vmap", pytest.param("loop", marks=pytest.mark.slow)])
def test_a_diverging_member_stops_alone_and_keeps_its_last_finite_image(setup, mode, tmp_path):
    """alpha = 1e38 overflows the objective at x_0 (noise): that member stops there (its
    image is its init, its history empty), the other runs every iteration, in the same program."""
    _, _, weights = setup
    content, style = samples.sample_images(22)
    members = [sweep.Member(ratio=r, style_layers=("conv1_1",), content_layer="conv1_2", init="noise:0")
               for r in (1e-3, 1e38)]
    result = sweep.run_sweep(content, style, members, weights, optimizer="adam", iterations=3, mode=mode,
                             chunk_size=2, lr=5.1)
    assert result.statuses == ["done", "non-finite at iteration 0"]
    assert len(result.histories[0]) == 4 and result.histories[1] == []
    assert np.isfinite(result.images).all()
    np.testing.assert_allclose(result.images[1], np.clip(sweep.initial_images(members[1:], content, style)[0], 0, 1), atol=1e-5)
    from stylejax.cli import sweep_commands

    report = sweep_commands.write_results(str(tmp_path), result, config={}, title="diverging",
                                          weights_info={**weights.describe(), "random": True})
    assert [m["status"] for m in report["members"]] == ["done", "non-finite at iteration 0"]
    assert report["members"][1]["history"] == [] and (tmp_path / "grid.png").is_file()


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_after_the_running_chunk_and_marks_its_members(setup):
    _, _, weights = setup
    content, style = samples.sample_images(22)
    members = [sweep.Member(ratio=r, style_layers=("conv1_1",), content_layer="conv1_2") for r in (1e-4, 1e-2)]

    def interrupt(done, total):
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)

    # The handler the sweep must put back: Python's default, or SIG_IGN where the process
    # was started in the background by a non-interactive shell.
    before = signal.getsignal(signal.SIGINT)
    result = sweep.run_sweep(content, style, members, weights, optimizer="adam", iterations=6, mode="vmap",
                             chunk_size=1, lr=5.1, progress=interrupt)
    assert result.statuses == ["interrupted", "interrupted"]
    assert all(2 <= len(h) < 7 for h in result.histories)
    assert signal.getsignal(signal.SIGINT) is before
