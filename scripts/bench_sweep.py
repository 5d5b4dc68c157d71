"""Measures sweep throughput per batch mode: K members (ratios) at a given size.

    python scripts/bench_sweep.py --sizes 64,128 --members 4 --iterations 10

For each optimizer and batch mode (vmap, map with batch 2, loop) it runs the sweep once
to compile and warm up, then times one run, and prints the wall time, the time per
member, the members' own value-and-gradient evaluations and the evaluations that
actually ran, counted by a host callback in the objective (a batched evaluation counts
once, for a batch of members). The auto batch
mode (stylejax/_src/sweep.py, SWEEP_MODES) comes from this table. Runs on seeded random
weights (the cost does not depend on the weights). Expected on a 2-core CPU: about
5 minutes at the default settings.
"""

from __future__ import annotations

import argparse
import json

import jax

import stylejax


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--optimizers", default="lbfgs,adam")
    parser.add_argument("--modes", default="vmap,map,loop")
    parser.add_argument("--json")
    args = parser.parse_args()

    weights = stylejax.weights.random_weights(0)
    ratios = [10.0 ** (-5 + 3 * k / max(args.members - 1, 1)) for k in range(args.members)]
    members = stylejax.product(ratios=ratios)
    print(f"device: {device_description()}, jax {jax.__version__}, random weights, "
          f"{args.members} members (ratios 1e-5..1e-2), {args.iterations} iterations")
    print("| size | optimizer | mode | seconds | per member | member evaluations | executed evaluations | compile s |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        content, style = stylejax.sample_images(size)
        for optimizer in args.optimizers.split(","):
            for mode in args.modes.split(","):
                batch = 2 if mode == "map" else None

                def run(content=content, style=style, optimizer=optimizer, mode=mode, batch=batch):
                    return stylejax.run_sweep(content, style, members, weights, optimizer=optimizer,
                                           iterations=args.iterations, mode=mode, batch_size=batch,
                                           count_evaluations=True)

                warm = run()
                result = run()
                executed = result.executed_evaluations
                batch_members = {"vmap": len(members), "map": 2, "loop": 1}[mode]
                row = {
                    "size": size, "optimizer": optimizer, "mode": mode, "batch": batch_members,
                    "seconds": result.seconds, "per_member": result.seconds / len(members),
                    "member_evaluations": sum(result.evaluations), "executed_evaluations": executed,
                    "compile_seconds": warm.compile_seconds,
                }
                rows.append(row)
                label = f"{mode}" + (f" (batch {batch})" if batch else "")
                print(f"| {size} | {optimizer} | {label} | {row['seconds']:.1f} | {row['per_member']:.2f} | "
                      f"{row['member_evaluations']} | {executed} x {batch_members} | {row['compile_seconds']:.1f} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": device_description(), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
