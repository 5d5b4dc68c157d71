"""Measures the solver's loop structure: iterations per compiled chunk, per optimizer.

The default chunk length per backend (stylejax/_src/presets.py, DEFAULT_CHUNKS) comes
from this measurement. Each configuration is compiled ahead of time, warmed up with one
short run, then timed over ``--iterations`` iterations ``--repeats`` times; the table
gives the median and the spread (min..max) of milliseconds per iteration and per
value-and-gradient evaluation.

    python scripts/bench_chunks.py --sizes 64,128 --chunks 1,10,50 --iterations 20

Expected on a 2-core CPU: a few minutes. Runs on seeded random weights (the speed of
a VGG19 does not depend on its weights).
"""

from __future__ import annotations

import argparse
import json
import statistics

import jax
import jax.numpy as jnp
import numpy as np

import stylejax


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def measure(size: int, optimizer: str, chunk: int, iterations: int, repeats: int, params) -> dict:
    convention = stylejax.weights.random_weights(0).convention
    rng = np.random.default_rng(0)
    shape = (size * 3 // 4, size, 3)
    content, style, init = (
        jnp.asarray(convention.to_network(rng.uniform(size=shape).astype(np.float32))) for _ in range(3)
    )
    spec = stylejax.LossSpec(("conv4_2",), stylejax.PRESETS["paper"]["style_layers"], "avg")
    targets = jax.jit(stylejax.compute_targets, static_argnums=3)(params, content, style, spec)
    weights = stylejax.LossWeights(
        jnp.float32(1e-3), jnp.float32(1.0), jnp.ones((1,)), jnp.full((5,), 0.2), jnp.float32(0.0)
    )
    args = stylejax.SolveArgs(params, targets, weights, jnp.float32(5.0))
    solver = stylejax.SolverSpec(optimizer, spec)
    # The first run compiles (later ahead-of-time compiles of the same program hit jax's
    # cache), so it gives the compile time and is the warm-up.
    warm_up = stylejax.solve(init, args, solver, min(chunk, 2), chunk_size=chunk)
    per_iteration, per_evaluation = [], []
    for _ in range(repeats):
        result = stylejax.solve(init, args, solver, iterations, chunk_size=chunk)
        per_iteration.append(1000 * result.seconds / result.iterations)
        per_evaluation.append(1000 * result.seconds / result.evaluations)
    return {
        "size": size,
        "optimizer": optimizer,
        "chunk": chunk,
        "ms_per_iteration": statistics.median(per_iteration),
        "ms_per_iteration_range": [min(per_iteration), max(per_iteration)],
        "ms_per_evaluation": statistics.median(per_evaluation),
        "compile_seconds": warm_up.compile_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--chunks", default="1,10,50")
    parser.add_argument("--optimizers", default="lbfgs,adam")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    params = jax.tree.map(jnp.asarray, stylejax.weights.random_weights(0).params)
    print(f"device: {device_description()}, jax {jax.__version__}, random weights")
    print("| size | optimizer | chunk | ms/iteration (median, min..max) | ms/evaluation | compile s |")
    print("|---:|---|---:|---:|---:|---:|")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for optimizer in args.optimizers.split(","):
            for chunk in (int(c) for c in args.chunks.split(",")):
                row = measure(size, optimizer, chunk, args.iterations, args.repeats, params)
                rows.append(row)
                low, high = row["ms_per_iteration_range"]
                print(
                    f"| {size} | {optimizer} | {chunk} | {row['ms_per_iteration']:.0f} ({low:.0f}..{high:.0f}) "
                    f"| {row['ms_per_evaluation']:.0f} | {row['compile_seconds']:.1f} |",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": device_description(), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
