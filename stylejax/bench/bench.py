"""``stylejax bench``: how fast stylejax runs here, compiled and eager, and against PyTorch.

Sections (each a Markdown table on stdout, all of them in ``bench.json`` and
``bench.md``, time per evaluation against size in ``bench.png``):

- ``modes``: compile vs eager at one size, for L-BFGS and Adam: the whole solve as one
  compiled program; one compiled step per Python call; compiled chunks of the
  backend's default length (the library's default); op by op (``jax.disable_jit``).
- ``sizes``: the default solve at each size, each in a fresh process: time per
  evaluation, one evaluation alone, compile time, peak memory.
- ``sweep``: K = 1, 4, 16 ratios in each batch mode (vmap, map, loop): throughput.
- ``torch``: side by side with PyTorch eager (stylejax/bench/bench_torch.py), when torch
  is installed; skipped with a note otherwise.

Every row is timed after a warm-up run (which also gives the compile time), ``repeats``
times; the tables give the median and the spread (min..max). Seeded random weights by
default: the cost of an evaluation does not depend on the weights' values.

    stylejax bench                 # about 15 minutes on the 2-core CPU
    stylejax bench --tiny          # seconds: the CI configuration
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import jax

from stylejax._src import budget, convolution, optimise, presets, sweep
from stylejax._src.errors import UserError
from stylejax._src.files import atomic, paths
from stylejax._src.weights.weights_source import is_random, resolve_weights
from stylejax.bench import bench_problem, bench_torch
from stylejax.cli import config, demo

SECTIONS = ("modes", "sizes", "sweep", "torch")
SWEEP_MODES = ("vmap", "map", "loop")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    sections: tuple[str, ...] = SECTIONS
    weights: str = "random"
    convolution: str = "auto"
    repeats: int = 3
    modes_size: int = 128
    iterations: int = 20
    eager_iterations: int = 2
    sizes: tuple[int, ...] = (64, 128, 256, 512)
    size_iterations: int = 10
    sweep_size: int = 64
    sweep_members: tuple[int, ...] = (1, 4, 16)
    sweep_iterations: int = 3
    sweep_optimizers: tuple[str, ...] = ("adam", "lbfgs")
    sweep_map_batch: int = 4
    torch_sizes: tuple[int, ...] = (128, 256)
    torch_calls: int = 3
    adam_steps: int = 10
    max_memory: str | None = None  # --max-memory: GiB, "none", or None (what is available)


# A few seconds of work in each section: what CI runs so the benchmark cannot rot.
TINY = BenchConfig(
    repeats=1, modes_size=32, iterations=2, eager_iterations=1, sizes=(32,), size_iterations=2,
    sweep_size=32, sweep_members=(2,), sweep_iterations=2, sweep_optimizers=("adam",), sweep_map_batch=1,
    torch_sizes=(32,), torch_calls=1, adam_steps=2,
)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": f"{device.platform}: {device.device_kind}",
            "devices": jax.device_count(), "cpu": cpu, "cpu_cores": os.cpu_count(),
            "jax": jax.__version__, "python": platform.python_version()}


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(summary: dict, digits: int = 0) -> str:
    return f"{summary['median']:.{digits}f} ({summary['min']:.{digits}f}..{summary['max']:.{digits}f})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _eager(problem, solver, iterations: int) -> tuple[float, int]:
    """``iterations`` steps op by op: every jnp operation dispatched on its own."""
    prepared = problem.args._replace(params=optimise.prepare_params(problem.args.params, solver))
    with jax.disable_jit():
        state = optimise.init_state(jax.numpy.asarray(problem.init), prepared, solver)
        start = time.perf_counter()
        for _ in range(iterations):
            state, _ = optimise.step(state, prepared, solver)
        jax.block_until_ready(state)
        return time.perf_counter() - start, int(state.evaluations)


def run_modes(cfg: BenchConfig, weights, log: Callable[[str], None]) -> dict:
    problem = bench_problem.build(cfg.modes_size, weights)
    image = jax.numpy.asarray(problem.init)
    rows = []
    for optimizer in ("lbfgs", "adam"):
        solver = optimise.SolverSpec(optimizer, problem.spec, convolution=cfg.convolution)
        default_chunk = presets.default_chunk(jax.default_backend(), optimizer)
        loops = [("whole solve, one compiled program", cfg.iterations),
                 ("one compiled step per Python call", 1),
                 (f"compiled chunks of {default_chunk} (default)", default_chunk)]
        for label, chunk in loops:
            warm_up = optimise.solve(image, problem.args, solver, min(2, cfg.iterations), chunk_size=chunk)
            per_iteration, per_evaluation = [], []
            for _ in range(cfg.repeats):
                result = optimise.solve(image, problem.args, solver, cfg.iterations, chunk_size=chunk)
                per_iteration.append(1000 * result.seconds / result.iterations)
                per_evaluation.append(1000 * result.seconds / result.evaluations)
            rows.append({"optimizer": optimizer, "mode": label, "chunk": chunk, "iterations": cfg.iterations,
                         "ms_per_iteration": _spread(per_iteration), "ms_per_evaluation": _spread(per_evaluation),
                         "compile_seconds": warm_up.compile_seconds})
            log(f"modes: {optimizer} {label}: {rows[-1]['ms_per_evaluation']['median']:.0f} ms/evaluation")
        per_iteration, per_evaluation = [], []
        for _ in range(cfg.repeats):
            seconds, evaluations = _eager(problem, solver, cfg.eager_iterations)
            per_iteration.append(1000 * seconds / cfg.eager_iterations)
            per_evaluation.append(1000 * seconds / evaluations)
        rows.append({"optimizer": optimizer, "mode": "op by op (jax.disable_jit)", "chunk": None,
                     "iterations": cfg.eager_iterations, "ms_per_iteration": _spread(per_iteration),
                     "ms_per_evaluation": _spread(per_evaluation), "compile_seconds": 0.0})
        log(f"modes: {optimizer} op by op: {rows[-1]['ms_per_evaluation']['median']:.0f} ms/evaluation")
    table = _table(
        ["optimizer", "execution", "iterations", "ms/evaluation", "ms/iteration", "compile s"],
        [[r["optimizer"], r["mode"], str(r["iterations"]), _fmt(r["ms_per_evaluation"]),
          _fmt(r["ms_per_iteration"]), f"{r['compile_seconds']:.1f}"] for r in rows],
    )
    return {"size": cfg.modes_size, "shape": list(problem.shape), "rows": rows, "table": table}


def run_sizes(cfg: BenchConfig, weights_spec: str, log: Callable[[str], None]) -> dict:
    rows = []
    for size in cfg.sizes:
        request = {"size": size, "iterations": cfg.size_iterations, "repeats": cfg.repeats,
                   "convolution": cfg.convolution, "weights": weights_spec}
        completed = subprocess.run([sys.executable, "-m", "stylejax.bench.bench_size", json.dumps(request)],
                                   capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if completed.returncode != 0:
            tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the {size} px measurement failed: {tail[0]}")
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        log(f"sizes: {size} px: {rows[-1]['ms_per_evaluation']:.0f} ms/evaluation, "
            f"peak RSS {rows[-1]['peak_host_rss_mb']:.0f} MB")
    device_memory = any(r["peak_device_mb"] is not None for r in rows)
    header = ["size", "image", "L-BFGS ms/evaluation", "one evaluation ms", "compile s", "peak host RSS MB"]
    header += ["peak device MB"] if device_memory else []
    table_rows = []
    for r in rows:
        low, high = r["ms_per_evaluation_range"]
        row = [str(r["size"]), f"{r['shape'][1]}x{r['shape'][0]}", f"{r['ms_per_evaluation']:.0f} ({low:.0f}..{high:.0f})",
               f"{r['evaluation_ms']:.0f}", f"{r['compile_seconds']:.1f}", f"{r['peak_host_rss_mb']:.0f}"]
        row += [f"{r['peak_device_mb']:.0f}"] if device_memory else []
        table_rows.append(row)
    return {"rows": rows, "table": _table(header, table_rows)}


def run_sweeps(cfg: BenchConfig, weights, log: Callable[[str], None]) -> dict:
    content, style, _ = demo.demo_pictures(cfg.sweep_size)
    rows = []
    for optimizer in cfg.sweep_optimizers:
        for count in cfg.sweep_members:
            ratios = [10.0 ** (-5 + 3 * k / max(count - 1, 1)) for k in range(count)]
            members = sweep.product(ratios=ratios)
            loop_seconds = None
            for mode in reversed(SWEEP_MODES):  # loop first: the others' speed-up is against it
                batch = min(cfg.sweep_map_batch, count) if mode == "map" else None

                def run(iterations, mode=mode, batch=batch, members=members, optimizer=optimizer):
                    return sweep.run_sweep(content, style, members, weights, optimizer=optimizer,
                                           iterations=iterations, mode=mode, batch_size=batch)

                warm_up = run(1)
                seconds = [run(cfg.sweep_iterations).seconds for _ in range(cfg.repeats)]
                median = statistics.median(seconds)
                loop_seconds = median if mode == "loop" else loop_seconds
                rows.append({"optimizer": optimizer, "members": count, "mode": mode, "batch": batch,
                             "iterations": cfg.sweep_iterations, "seconds": _spread(seconds),
                             "members_per_minute": 60.0 * count / median,
                             "speedup_vs_loop": loop_seconds / median, "compile_seconds": warm_up.compile_seconds})
                log(f"sweep: {optimizer} K={count} {mode}: {median:.1f} s")
    table = _table(
        ["optimizer", "K", "mode", "seconds", "members/minute", "vs loop", "compile s"],
        [[r["optimizer"], str(r["members"]), r["mode"] + (f" (batch {r['batch']})" if r["batch"] else ""),
          _fmt(r["seconds"], 1), f"{r['members_per_minute']:.1f}", f"{r['speedup_vs_loop']:.2f}x",
          f"{r['compile_seconds']:.1f}"] for r in rows],
    )
    return {"size": cfg.sweep_size, "shape": list(content.shape[:2]), "iterations": cfg.sweep_iterations,
            "rows": rows, "table": table}


def precheck_torch(cfg: BenchConfig, weights) -> list[tuple]:
    """(problem, torch model, agreement) per torch size; raises on a disagreement."""
    checked = []
    for size in cfg.torch_sizes:
        problem = bench_problem.build(size, weights)
        model = bench_torch.torch_model(problem)
        checked.append((problem, model, bench_torch.check(problem, cfg.convolution, model)))
    return checked


def run_torch(cfg: BenchConfig, checked: list[tuple], log: Callable[[str], None]) -> dict:
    if not bench_torch.available():
        note = "PyTorch is not installed: side-by-side skipped (install it with pip install 'stylejax[torch]')"
        log(note)
        return {"skipped": note, "table": note}
    rows = []
    for problem, model, agreement in checked:
        rows.append(bench_torch.compare(problem, convolution=cfg.convolution, repeats=cfg.repeats,
                                        calls=cfg.torch_calls, adam_steps=cfg.adam_steps,
                                        model=model, agreement=agreement))
        log(f"torch: {problem.size} px: stylejax/PyTorch {rows[-1]['evaluation_ratio']:.2f} per evaluation")
    table = _table(
        ["size", "image", "loss / gradient rel. error", "PyTorch ms/evaluation", "stylejax ms/evaluation", "ratio",
         f"PyTorch ms/Adam step ({cfg.adam_steps})", "stylejax ms/Adam step", "ratio"],
        [[str(r["size"]), f"{r['shape'][1]}x{r['shape'][0]}",
          f"{r['agreement']['loss_relative_error']:.1e} / {r['agreement']['grad_relative_error']:.1e}",
          _fmt(r["evaluation"]["torch_evaluation"]), _fmt(r["evaluation"]["stylejax_evaluation"]),
          f"{r['evaluation_ratio']:.2f}", _fmt(r["adam"]["torch_adam"]), _fmt(r["adam"]["stylejax_adam"]),
          f"{r['adam_ratio']:.2f}"] for r in rows],
    )
    return {"rows": rows, "table": table}


def plot(results: dict, path: str, title: str) -> None:
    """Time per evaluation against image size, log-log, with PyTorch where measured."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    try:
        if "sizes" in results:
            rows = results["sizes"]["rows"]
            axes.plot([r["size"] for r in rows], [r["ms_per_evaluation"] for r in rows], "o-",
                      label="stylejax: default L-BFGS solve, per evaluation")
            axes.plot([r["size"] for r in rows], [r["evaluation_ms"] for r in rows], "s--",
                      label="stylejax: one value-and-gradient")
        torch_rows = results.get("torch", {}).get("rows", [])
        if torch_rows:
            axes.plot([r["size"] for r in torch_rows],
                      [r["evaluation"]["torch_evaluation"]["median"] for r in torch_rows], "^:",
                      label="PyTorch eager: one value-and-gradient")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("image size (longest side, px)")
        axes.set_ylabel("ms per evaluation")
        axes.set_title(title, fontsize=8)
        axes.grid(True, which="both", alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8)
        figure.tight_layout()
        with atomic.atomic_path(path) as temporary:
            figure.savefig(temporary, format="png")
    finally:
        plt.close(figure)


def check_memory(cfg: BenchConfig) -> None:
    """Refuses, before any work, a benchmark whose largest problem would not fit: the
    largest size of the sections asked for, square, with the paper's layers (and the
    largest sweep, all members at once)."""
    sides = {"modes": [cfg.modes_size], "sizes": list(cfg.sizes), "torch": list(cfg.torch_sizes)}
    layers = ("conv4_2", *presets.PRESETS["paper"]["style_layers"])
    for section in cfg.sections:
        for side in sides.get(section, []):
            config.check_memory(f"the {section} section at {side}x{side} px",
                                budget.estimate_bytes(side, side, layers, "lbfgs"), cfg.max_memory)
    if "sweep" in cfg.sections:
        members = max(cfg.sweep_members)
        needed = budget.estimate_bytes(cfg.sweep_size, cfg.sweep_size, layers, "lbfgs",
                                       members=members, members_in_flight=members)
        config.check_memory(f"the sweep section ({members} members at {cfg.sweep_size} px)",
                            needed, cfg.max_memory)


def run(cfg: BenchConfig, out_dir: str, log: Callable[[str], None] = print) -> dict:
    """Runs the sections of ``cfg``, prints their tables, writes bench.json/.md/.png."""
    unknown = [s for s in cfg.sections if s not in SECTIONS]
    if unknown:
        raise UserError(f"unknown bench section {unknown[0]!r}: expected some of {', '.join(SECTIONS)}")
    try:
        convolution.resolve(cfg.convolution)
    except ValueError as error:
        raise UserError(str(error)) from None
    check_memory(cfg)
    paths.prepare_output_folder(out_dir, "bench output")
    weights = resolve_weights(cfg.weights)
    weights_label = ("RANDOM WEIGHTS (seeded He-normal VGG19, normalised; speed does not depend on the values)"
                     if is_random(weights) else weights.source)
    about = {**machine(), "weights": weights_label, "convolution": convolution.resolve(cfg.convolution),
             "config": dataclasses.asdict(cfg)}
    header = (f"stylejax bench on {about['device']} ({about['cpu']}, {about['cpu_cores']} cores), jax {about['jax']}, "
              f"convolution {about['convolution']}, {weights_label}")
    print(header, flush=True)
    # The PyTorch correctness pre-checks first: a disagreement fails in seconds, not after the rest.
    checked = precheck_torch(cfg, weights) if "torch" in cfg.sections and bench_torch.available() else []
    results = {}
    titles = {"modes": f"Compile vs eager at {cfg.modes_size} px", "sizes": "Image size (default solve)",
              "sweep": f"Sweep throughput at {cfg.sweep_size} px", "torch": "Side by side with PyTorch eager"}
    runners = {"modes": lambda: run_modes(cfg, weights, log), "sizes": lambda: run_sizes(cfg, cfg.weights, log),
               "sweep": lambda: run_sweeps(cfg, weights, log), "torch": lambda: run_torch(cfg, checked, log)}
    for section in cfg.sections:
        results[section] = runners[section]()
        print(f"\n### {titles[section]}\n\n{results[section]['table']}\n", flush=True)
    markdown = header + "\n" + "".join(f"\n### {titles[s]}\n\n{results[s]['table']}\n" for s in cfg.sections)
    report = {"about": about, **results}
    atomic.atomic_write_json(os.path.join(out_dir, "bench.json"), report)
    atomic.atomic_write_bytes(os.path.join(out_dir, "bench.md"), markdown.encode())
    plot(results, os.path.join(out_dir, "bench.png"), f"{about['device']}, {about['cpu']}; {weights_label[:40]}")
    return report


def parse_sizes(text: str, what: str) -> tuple[int, ...]:
    sizes = []
    for part in text.split(","):
        sizes.append(config.count(part, what, minimum=16))
    return tuple(sizes)


def parse_counts(text: str, what: str) -> tuple[int, ...]:
    return tuple(config.count(part, what, minimum=1) for part in text.split(","))
