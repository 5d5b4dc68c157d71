"""One size of the scaling benchmark, in a process of its own so its peak memory is its own.

    python -m stylejax.bench.bench_size '{"size": 256, "iterations": 10, "repeats": 3, ...}'

prints one JSON object: the default solve's time per evaluation and per iteration
(L-BFGS, the backend's default chunk and convolution), one value-and-gradient
evaluation's time, the compile time, and the process's peak memory (host RSS; on a GPU
also the device's peak bytes in use).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import jax

from stylejax._src import optimise, presets
from stylejax._src.weights import weights_source
from stylejax.bench import bench_problem


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over from the parent across fork and exec, so a child would report the parent's peak."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(size: int, iterations: int, repeats: int, convolution: str, weights: str) -> dict:
    loaded = weights_source.resolve_weights(weights)
    problem = bench_problem.build(size, loaded)
    solver = optimise.SolverSpec("lbfgs", problem.spec, convolution=convolution)
    chunk = presets.default_chunk(jax.default_backend(), "lbfgs")
    image = jax.numpy.asarray(problem.init)
    warm_up = optimise.solve(image, problem.args, solver, 1, chunk_size=chunk)
    per_evaluation, per_iteration = [], []
    for _ in range(repeats):
        result = optimise.solve(image, problem.args, solver, iterations, chunk_size=chunk)
        per_evaluation.append(1000 * result.seconds / result.evaluations)
        per_iteration.append(1000 * result.seconds / result.iterations)
    prepared = problem.args._replace(params=optimise.prepare_params(problem.args.params, solver))
    program = bench_problem.value_and_grad_program(problem.spec)
    jax.block_until_ready(program(image, prepared))
    evaluation = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        jax.block_until_ready(program(image, prepared))
        evaluation.append(1000 * (time.perf_counter() - start))
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    return {
        "size": size, "shape": list(problem.shape), "iterations": iterations, "chunk": chunk,
        "ms_per_evaluation": statistics.median(per_evaluation),
        "ms_per_evaluation_range": [min(per_evaluation), max(per_evaluation)],
        "ms_per_iteration": statistics.median(per_iteration),
        "evaluation_ms": statistics.median(evaluation),
        "evaluation_ms_range": [min(evaluation), max(evaluation)],
        "compile_seconds": warm_up.compile_seconds,
        "peak_host_rss_mb": peak_rss_mb(),
        "peak_device_mb": stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None,
    }


def main() -> None:
    request = json.loads(sys.argv[1])
    print(json.dumps(measure(**request)))


if __name__ == "__main__":
    main()
