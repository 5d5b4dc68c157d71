"""What the Winograd path's inexact gradient does to L-BFGS, against the exact ``lax`` path.

For each content/style pair (the example pictures shipped in stylejax/examples/, the
paper preset: conv4_2 content, conv1_1..conv5_1 style with w_l = 1/5, alpha/beta = 1e-3,
average pooling, white-noise init), L-BFGS runs from the same start with
``--convolution lax`` and with ``winograd``. At each checkpoint (iteration 100 and the
last) the table gives the objective at the iterate, evaluated the same way for both
paths (the ``lax`` forward pass), the value-and-gradient evaluations used so far and
winograd/lax - 1. A second table gives each path's seconds per evaluation and the
relative L2 difference of the gradient at the start image from the ``lax`` one, and of
the float32 gradients from ``lax`` in float64 (float32 rounding, for scale); a third the
yardsticks on the first pair: ``lax`` from noise seed 1 against seed 0, and the
``direct`` path (the same arithmetic as ``lax``, rounded differently inside the compiled
loop) against ``lax``.

    python scripts/convolution_lbfgs.py --size 128 --iterations 500 -o out.json

At 128 px it took 61 minutes on a 2-core CPU shared with other jobs (docs/convolution.md).
Runs on seeded random weights by default (``--weights PATH`` takes a stylejax weights file).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import convolution, image_ops, losses, optimise, presets
from stylejax._src.files import images
from stylejax._src.weights.weights_source import resolve_weights

CONTENT = "tuebingen_neckarfront.jpg"
DEFAULT_PAIRS = ",".join(f"{CONTENT}:{style}" for style in (
    "vangogh_starry_night.jpg", "turner_shipwreck_minotaur.jpg", "kandinsky_composition_vii.jpg"))
CHECKPOINT = 100


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def paper_spec() -> losses.LossSpec:
    paper = presets.PRESETS["paper"]
    return losses.LossSpec((paper["content_layer"],), tuple(paper["style_layers"]), paper["pooling"])


def problem(pair: str, size: int, weights, seed: int):
    """(init, SolveArgs) of one ``content:style`` pair, both pictures at the content's shape."""
    content_name, style_name = pair.split(":")
    content_rgb = images.load_image(images.example_image(content_name))
    shape = image_ops.output_shape(content_rgb.shape[0], content_rgb.shape[1], size)
    style_rgb = images.load_image(images.example_image(style_name))
    convention = weights.convention
    content, style, init = (
        jnp.asarray(convention.to_network(picture), jnp.float32)
        for picture in (image_ops.resize(content_rgb, shape), image_ops.resize(style_rgb, shape),
                        image_ops.white_noise(seed, shape))
    )
    spec = paper_spec()
    params = jax.tree.map(jnp.asarray, weights.params)
    targets = losses.jitted_targets(spec)(params, content, style)
    n_style = len(spec.style_layers)
    loss_weights = losses.LossWeights(
        content_weight=jnp.float32(presets.PRESETS["paper"]["ratio"]), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.full((n_style,), 1.0 / n_style, jnp.float32),
        tv_weight=jnp.float32(0.0),
    )
    return init, optimise.SolveArgs(params, targets, loss_weights, jnp.float32(1.0))


@functools.lru_cache(maxsize=4)
def _value_and_grad(algorithm: str):
    spec = paper_spec()

    def value_and_grad(image, args):
        params = convolution.prepare(args.params, algorithm)
        return jax.value_and_grad(losses.objective)(image, params, args.targets, args.weights, spec)

    return jax.jit(value_and_grad)


def exact_objective(image, args) -> float:
    return float(_value_and_grad("lax")(image, args)[0])


def gradient_differences(init, args) -> dict:
    """Relative L2 differences of the gradients at ``init``: ||g - g_ref|| / ||g_ref||.

    ``{path}``: against the float32 ``lax`` gradient; ``{path}_float64``: against the
    ``lax`` gradient computed in float64 (the float32 rounding yardstick).
    """
    def relative(got, want):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        return float(np.linalg.norm(got - want) / np.linalg.norm(want))

    grads = {a: _value_and_grad(a)(init, args)[1] for a in convolution.ALGORITHMS}
    with jax.enable_x64(True):
        to64 = functools.partial(jax.tree.map, lambda x: jnp.asarray(x, jnp.float64)
                                 if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x)
        exact = np.asarray(jax.jit(jax.grad(losses.objective), static_argnums=4)(
            to64(init), to64(args.params), to64(args.targets), to64(args.weights), paper_spec()))
    return {**{a: relative(grads[a], grads["lax"]) for a in ("direct", "winograd")},
            **{f"{a}_float64": relative(grads[a], exact) for a in convolution.ALGORITHMS}}


def run(init, args, algorithm: str, iterations: int) -> dict:
    """L-BFGS from ``init``; the exact objective and evaluations at every checkpoint."""
    spec = optimise.SolverSpec("lbfgs", paper_spec(), convolution=algorithm)
    chunk = presets.DEFAULT_CHUNKS.get((jax.default_backend(), "lbfgs"), presets.ACCELERATOR_CHUNK)
    kept = []  # (iteration, evaluations, image): copies, the state is donated to the next chunk

    def on_checkpoint(iteration, state, values):
        kept.append((iteration, int(state.evaluations), np.array(state.image, copy=True)))

    result = optimise.solve(init, args, spec, iterations, chunk_size=chunk,
                            checkpoint_every=CHECKPOINT, on_checkpoint=on_checkpoint)
    if not kept or kept[-1][0] != result.iterations:
        kept.append((result.iterations, result.evaluations, np.array(result.state.image, copy=True)))
    return {
        "algorithm": algorithm,
        "status": result.status,
        "iterations": result.iterations,
        "evaluations": result.evaluations,
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "seconds_per_evaluation": result.seconds / max(result.evaluations, 1),
        "checkpoints": [
            {"iteration": i, "evaluations": e, "objective": exact_objective(jnp.asarray(x), args)}
            for i, e, x in kept
        ],
    }


def at(record: dict, iteration: int) -> dict | None:
    return next((c for c in record["checkpoints"] if c["iteration"] == iteration), None)


def short(pair: str) -> str:
    return " x ".join(name.split(".")[0] for name in pair.split(":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="longest side in px (default 128)")
    parser.add_argument("--iterations", type=int, default=500,
                        help=f"L-BFGS iterations (default 500; also reported at {CHECKPOINT})")
    parser.add_argument("--pairs", default=DEFAULT_PAIRS,
                        help="comma-separated content:style file names from stylejax/examples/")
    parser.add_argument("--weights", default="random", help="random (seeded, default) or a weights file")
    parser.add_argument("-o", "--output", help="also write every number here (JSON)")
    args = parser.parse_args()

    started = time.perf_counter()
    weights = resolve_weights(args.weights)
    pairs = args.pairs.split(",")
    checkpoints = sorted({min(CHECKPOINT, args.iterations), args.iterations})
    print(f"device: {device_description()}, jax {jax.__version__}, weights: {args.weights}, "
          f"{args.size} px, {args.iterations} L-BFGS iterations, paper preset, noise seed 0", flush=True)

    rows = []
    for pair in pairs:
        init, solve_args = problem(pair, args.size, weights, seed=0)
        row = {"pair": pair, "shape": list(init.shape[:2]),
               "gradient_difference": gradient_differences(init, solve_args),
               "runs": {a: run(init, solve_args, a, args.iterations) for a in ("lax", "winograd")}}
        rows.append(row)
        print(f"  {short(pair)}: done ({time.perf_counter() - started:.0f} s)", flush=True)

    # Yardsticks on the first pair: the seed-to-seed spread of lax, and direct against lax.
    first = rows[0]
    init1, args1 = problem(first["pair"], args.size, weights, seed=1)
    seed_one = run(init1, args1, "lax", args.iterations)
    init0, args0 = problem(first["pair"], args.size, weights, seed=0)
    direct = run(init0, args0, "direct", args.iterations)
    seconds = time.perf_counter() - started

    print("\n| pair | iteration | lax objective | lax evaluations | winograd objective "
          "| winograd evaluations | winograd/lax - 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        for iteration in checkpoints:
            lax, wino = at(row["runs"]["lax"], iteration), at(row["runs"]["winograd"], iteration)
            if lax is None or wino is None:
                print(f"| {short(row['pair'])} | {iteration} | stopped early | | | | |")
                continue
            print(f"| {short(row['pair'])} | {iteration} | {lax['objective']:.6g} | {lax['evaluations']} "
                  f"| {wino['objective']:.6g} | {wino['evaluations']} "
                  f"| {wino['objective'] / lax['objective'] - 1:+.3%} |")

    print("\n| pair | lax s/evaluation | winograd s/evaluation | winograd/lax time "
          "| gradient at the start, winograd vs lax | direct vs lax | lax vs float64 | winograd vs float64 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        lax, wino, diff = row["runs"]["lax"], row["runs"]["winograd"], row["gradient_difference"]
        print(f"| {short(row['pair'])} | {lax['seconds_per_evaluation']:.4f} | {wino['seconds_per_evaluation']:.4f} "
              f"| {wino['seconds_per_evaluation'] / lax['seconds_per_evaluation']:.2f} "
              f"| {diff['winograd']:.2e} | {diff['direct']:.2e} | {diff['lax_float64']:.2e} "
              f"| {diff['winograd_float64']:.2e} |")

    print(f"\nYardsticks ({short(first['pair'])}):\n")
    print("| comparison | iteration | objective | reference (lax, seed 0) | ratio - 1 |")
    print("|---|---:|---:|---:|---:|")
    for label, record in (("lax, noise seed 1", seed_one), ("direct, noise seed 0", direct)):
        for iteration in checkpoints:
            mine, reference = at(record, iteration), at(first["runs"]["lax"], iteration)
            if mine is None or reference is None:
                continue
            print(f"| {label} | {iteration} | {mine['objective']:.6g} | {reference['objective']:.6g} "
                  f"| {mine['objective'] / reference['objective'] - 1:+.3%} |")
    print(f"\ntotal {seconds:.0f} s")

    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"device": device_description(), "jax": jax.__version__, "weights": args.weights,
                       "size": args.size, "iterations": args.iterations, "rows": rows,
                       "lax_seed_1": seed_one, "direct": direct, "seconds": seconds}, handle, indent=2)
