"""``scripts/device_check.py``: stylejax on whatever accelerator is here, in one command.

Sections (``--sections`` picks some), in the order they run:

- ``memory`` (f): peak device memory (``memory_stats()['peak_bytes_in_use']``; None
  where the backend keeps none, e.g. the CPU) of one value-and-gradient evaluation at
  512, 1024 and 2048 px, then the size doubled until an evaluation runs out of memory
  (RESOURCE_EXHAUSTED) and bisected between the last that fitted and the first that did
  not. In a child process of its own, first, while this process holds almost no device
  memory: a peak reading is then the evaluation's own, and an out-of-memory error cannot
  poison the runtime the other sections use.
- ``lbfgs`` (b): the paper preset (512 px, 500 L-BFGS iterations, the default chunk and
  convolution) per precision (stylejax/_src/precision.py): seconds, evaluations, compile
  seconds; then the objective and its gradient at each precision against ``highest``,
  at the init and at the solved image, and which precisions stay within 1e-3 relative.
- ``sweep`` (e): a 16-ratio sweep at 256 px in the loop, vmap and map batch modes:
  throughput (members x iterations / s) and its ratio to the loop's.
- ``adam`` (c): as ``lbfgs`` for Adam (512 px, 500 iterations, per precision).
- ``convolutions`` (d): one value-and-gradient evaluation per convolution path (lax,
  direct, winograd) at 512 px: seconds after a warm-up call.
- ``torch`` (g): PyTorch eager side by side (stylejax/bench/bench_torch.py: its
  correctness check, then alternating timings) where torch has CUDA; skipped with a note
  otherwise. Both sides in full float32 (TF32 off in torch, ``highest`` in stylejax).
- ``tests`` (a): the fast test tier, ``python -m pytest -q`` in a child process, last,
  with whatever time is left (at most ``tests_timeout``): passed/failed counts, seconds.

Every section runs in its own try/except (a failure is recorded as an error string and
the next section runs); ``results.json`` and ``results.md`` are rewritten atomically after
every section, so a run cut short keeps what finished; once ``budget_seconds`` have passed
the remaining sections (and the remaining items of a running one) are skipped and
marked so. Seeded random weights by default: the cost does not depend on their values.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import gc
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import convolution, image_ops, losses, optimise, presets, sweep, vgg
from stylejax._src import precision as precision_lib
from stylejax._src.convention import CAFFE
from stylejax._src.errors import InvalidSetting, UserError
from stylejax._src.files import atomic, paths
from stylejax._src.weights import weights_source
from stylejax._src.weights.weights_file import LoadedWeights
from stylejax.bench import bench, bench_problem, bench_torch

SECTIONS = ("memory", "lbfgs", "sweep", "adam", "convolutions", "torch", "tests")
SWEEP_MODES = ("loop", "vmap", "map")  # loop first: the others' ratio is against it
DEFAULT_ROOT = "bench-output"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RANDOM_LABEL = "seeded random weights"
# The cut-down network of --smoke (content and style conv1_1): with the paper's layers a
# solver program took 24-31 s to compile at 32 px on the shared 2-core CPU (Adam,
# L-BFGS), and the smoke run compiles about fifteen.
SMOKE_LAYERS = ("conv1_1", ("conv1_1",))
_PAPER = presets.PRESETS["paper"]
_MEMORY_PREFIX = "DEVICE_CHECK_MEMORY "
_TAIL_LINES = 30


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    sections: tuple[str, ...] = SECTIONS
    weights: str = "random"
    convolution: str = "auto"
    precision: str = precision_lib.DEFAULT_PRECISION  # of the sweep, convolution and memory rows
    budget_seconds: float = 450.0
    smoke: bool = False
    # None: the paper's layers; else (content layer, style layers)
    layers: tuple[str, tuple[str, ...]] | None = None
    # (b), (c): the paper preset
    size: int = _PAPER["size"]
    iterations: int = _PAPER["iterations"]
    adam_iterations: int = _PAPER["iterations"]
    precisions: tuple[str, ...] = precision_lib.PRECISIONS
    tolerance: float = 1e-3
    # (d)
    evaluation_repeats: int = 5
    # (e)
    sweep_size: int = 256
    sweep_members: int = 16
    sweep_iterations: int = 100
    sweep_map_batch: int = 4
    sweep_optimizer: str = "lbfgs"
    # (f)
    memory_sizes: tuple[int, ...] = (512, 1024, 2048)
    memory_limit: int = 16384  # largest size the search tries
    memory_steps: int = 2  # bisection steps after the first size that did not fit
    memory_seconds: float = 120.0
    # (g)
    torch_size: int = 512
    torch_repeats: int = 3
    torch_calls: int = 3
    torch_adam_steps: int = 10
    # (a)
    tests_args: tuple[str, ...] = ()
    tests_timeout: float = 300.0


SMOKE = CheckConfig(
    smoke=True, layers=SMOKE_LAYERS, size=32, iterations=3, adam_iterations=3, evaluation_repeats=2,
    sweep_size=32, sweep_members=2, sweep_iterations=2, sweep_map_batch=1, sweep_optimizer="adam",
    memory_sizes=(32, 48), memory_limit=64, memory_steps=1, memory_seconds=90.0,
    torch_size=32, torch_repeats=1, torch_calls=1, torch_adam_steps=2,
    tests_args=("tests/test_device_check.py", "-k", "test_device_slug"), tests_timeout=90.0,
)

# name, what, comparison, threshold, unit: against one H100
TARGETS = (
    ("lbfgs_seconds", "512 px x 500 L-BFGS iterations (default precision)", "<=", 3.0, "s"),
    ("sweep_vs_loop", "16-ratio sweep at 256 px, throughput vs loop (best batched mode)", ">=", 4.0, "x"),
    ("compile_seconds", "L-BFGS compile at 512 px (default precision)", "<", 15.0, "s"),
)


# --------------------------------------------------------------------------- helpers


def device_slug(kind: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``; ``cpu`` -> ``cpu``."""
    slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
    return slug or "device"


def project_root() -> str:
    """The folder holding the stylejax package (the repository under an editable install)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", project_root(), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:500] if lines else ''}".rstrip(": ")


def is_out_of_memory(error: BaseException) -> bool:
    """XLA's RESOURCE_EXHAUSTED (jax's XlaRuntimeError / JaxRuntimeError), or a MemoryError."""
    text = str(error)
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def peak_device_bytes() -> int | None:
    """``peak_bytes_in_use`` of the first device, or None where the backend keeps none."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.linalg.norm(a - b))


def _child_env() -> dict:
    """The environment of the child processes: this one's, with the package importable and
    no up-front device allocation (this process may hold some of the memory)."""
    env = dict(os.environ)
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root(), env.get("PYTHONPATH")) if p)
    return env


def _run_child(command: list[str], timeout: float) -> tuple[int | None, str, float]:
    """(exit status or None when killed at the timeout, stdout and stderr, seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=project_root(), env=_child_env(), start_new_session=True)
    try:
        output, _ = process.communicate(timeout=max(timeout, 0.1))
        status = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child's own group: pytest, XLA's threads
        output, _ = process.communicate()
        status = None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return status, output or "", time.perf_counter() - start


def build_problem(size: int, weights: LoadedWeights, layers=None) -> bench_problem.Problem:
    """:func:`bench_problem.build` (the paper's problem), or the same with ``layers``
    (content layer, style layers) instead of the paper's."""
    if layers is None:
        return bench_problem.build(size, weights)
    content_layer, style_layers = layers
    content_rgb, style_rgb, pictures = bench_problem.paper_pictures(size)
    shape = content_rgb.shape[:2]
    convention = weights.convention
    spec = losses.LossSpec((content_layer,), tuple(style_layers), "avg")
    content = np.asarray(convention.to_network(content_rgb), np.float32)
    style = np.asarray(convention.to_network(style_rgb), np.float32)
    init = np.asarray(convention.to_network(image_ops.white_noise(0, (*shape, 3))), np.float32)
    params = jax.tree.map(jnp.asarray, weights.params)
    targets = losses.jitted_targets(spec)(params, jnp.asarray(content), jnp.asarray(style))
    count = len(spec.style_layers)
    loss_weights = losses.LossWeights(
        content_weight=jnp.float32(bench_problem.RATIO), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.full((count,), 1.0 / count, jnp.float32), tv_weight=jnp.float32(0.0))
    lr = jnp.float32(presets.ADAM_STEP_FRACTION * convention.unit)
    return bench_problem.Problem(size, tuple(shape), weights, pictures, content, style, init, spec,
                                 optimise.SolveArgs(params, targets, loss_weights, lr))


def _prepared(problem: bench_problem.Problem, path: str):
    solver = optimise.SolverSpec("lbfgs", problem.spec, convolution=path)
    return problem.args._replace(params=optimise.prepare_params(problem.args.params, solver))


def _evaluate(problem, prepared, image, precision: str):
    """One value-and-gradient evaluation traced at ``precision``: (value, gradient) on the host."""
    with precision_lib.context(precision):
        value, grad = bench_problem.value_and_grad_program(problem.spec)(image, prepared)
        return float(value), np.asarray(grad)


# --------------------------------------------------------------------------- the run


class Context:
    """What the sections share: the config, the deadline, the weights, the 512 px problem."""

    def __init__(self, cfg: CheckConfig, log: Callable[[str], None], deadline: float, weights=None):
        self.cfg, self.log, self.deadline = cfg, log, deadline
        self._weights = weights
        self._problems: dict[int, bench_problem.Problem] = {}
        self.solved_image = None  # highest precision's L-BFGS result, for the comparison

    @property
    def weights(self) -> LoadedWeights:
        if self._weights is None:
            self._weights = weights_source.resolve_weights(self.cfg.weights)
        return self._weights

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def problem(self, size: int) -> bench_problem.Problem:
        if size not in self._problems:
            self._problems[size] = build_problem(size, self.weights, self.cfg.layers)
        return self._problems[size]

    def out_of_time(self, rows: list, what: dict) -> bool:
        """True (and a skipped row for ``what``) once the budget is spent."""
        if self.remaining() > 0:
            return False
        rows.append({**what, "skipped": f"budget of {self.cfg.budget_seconds:g} s spent"})
        return True


def _solver_rows(ctx: Context, optimizer: str, iterations: int) -> list[dict]:
    cfg = ctx.cfg
    problem = ctx.problem(cfg.size)
    image = jnp.asarray(problem.init)
    default = presets.default_chunk(jax.default_backend(), optimizer)
    chunk = optimise.chunk_length(default, iterations, default)
    rows = []
    for precision in cfg.precisions:
        if ctx.out_of_time(rows, {"precision": precision}):
            continue
        spec = optimise.SolverSpec(optimizer, problem.spec, convolution=cfg.convolution, precision=precision)
        warm_up = optimise.solve(image, problem.args, spec, min(2, iterations), chunk_size=chunk)
        result = optimise.solve(image, problem.args, spec, iterations, chunk_size=chunk)
        rows.append({
            "precision": precision, "iterations": result.iterations, "evaluations": result.evaluations,
            "seconds": result.seconds, "compile_seconds": warm_up.compile_seconds,
            "ms_per_evaluation": 1000.0 * result.seconds / max(result.evaluations, 1), "chunk": chunk,
            "final_objective": result.values[-1] if result.values else None, "status": result.status,
        })
        if optimizer == "lbfgs" and precision == "highest":
            ctx.solved_image = result.state.image
        ctx.log(f"{optimizer}: {precision}: {iterations} iterations in {result.seconds:.2f} s "
                f"({result.evaluations} evaluations), compile {warm_up.compile_seconds:.1f} s")
    return rows


def _agreement(ctx: Context, rows: list[dict]) -> dict:
    """Objective and gradient at each precision against ``highest``, at the init and at
    highest's solved image; the cheapest precision within the tolerance at both."""
    cfg = ctx.cfg
    problem = ctx.problem(cfg.size)
    prepared = _prepared(problem, convolution.resolve(cfg.convolution))
    images = {"init": jnp.asarray(problem.init)}
    if ctx.solved_image is not None:
        images["solved"] = ctx.solved_image
    reference = {name: _evaluate(problem, prepared, image, "highest") for name, image in images.items()}
    compared = []
    for precision in cfg.precisions:
        if ctx.out_of_time(compared, {"precision": precision}):
            continue
        objective, gradient = {}, {}
        for name, image in images.items():
            value, grad = _evaluate(problem, prepared, image, precision)
            ref_value, ref_grad = reference[name]
            objective[name] = abs(value - ref_value) / abs(ref_value) if ref_value else abs(value)
            gradient[name] = _relative(grad, ref_grad)
        within = max(*objective.values(), *gradient.values()) <= cfg.tolerance
        compared.append({"precision": precision, "objective_relative_difference": objective,
                         "gradient_relative_difference": gradient, "within_tolerance": within})
    fits = [r["precision"] for r in compared if r.get("within_tolerance")]
    cheapest_first = tuple(reversed(precision_lib.PRECISIONS))  # default, high, highest
    recommended = next((p for p in cheapest_first if p in fits), None)
    return {"reference": "highest", "tolerance": cfg.tolerance, "images": list(images), "rows": compared,
            "recommended": recommended,
            "rule": f"the cheapest precision ({', '.join(cheapest_first)}) whose objective and gradient are "
                    f"within {cfg.tolerance:g} relative of highest at every image compared"}


def run_lbfgs(ctx: Context) -> dict:
    rows = _solver_rows(ctx, "lbfgs", ctx.cfg.iterations)
    problem = ctx.problem(ctx.cfg.size)
    return {"size": ctx.cfg.size, "shape": list(problem.shape), "iterations": ctx.cfg.iterations,
            "convolution": convolution.resolve(ctx.cfg.convolution), "rows": rows,
            "agreement": _agreement(ctx, rows)}


def run_adam(ctx: Context) -> dict:
    rows = _solver_rows(ctx, "adam", ctx.cfg.adam_iterations)
    problem = ctx.problem(ctx.cfg.size)
    return {"size": ctx.cfg.size, "shape": list(problem.shape), "iterations": ctx.cfg.adam_iterations,
            "convolution": convolution.resolve(ctx.cfg.convolution), "rows": rows}


def run_convolutions(ctx: Context) -> dict:
    cfg = ctx.cfg
    problem = ctx.problem(cfg.size)
    image = jnp.asarray(problem.init)
    program = bench_problem.value_and_grad_program(problem.spec)
    rows, reference = [], None
    for path in convolution.ALGORITHMS:
        if ctx.out_of_time(rows, {"convolution": path}):
            continue
        prepared = _prepared(problem, path)
        with precision_lib.context(cfg.precision):
            start = time.perf_counter()
            value, grad = jax.block_until_ready(program(image, prepared))
            first = time.perf_counter() - start
            seconds = []
            for _ in range(cfg.evaluation_repeats):
                start = time.perf_counter()
                jax.block_until_ready(program(image, prepared))
                seconds.append(time.perf_counter() - start)
        grad = np.asarray(grad)
        reference = reference or (float(value), grad)
        rows.append({"convolution": path, "seconds": statistics.median(seconds), "min_seconds": min(seconds),
                     "max_seconds": max(seconds), "repeats": len(seconds), "first_call_seconds": first,
                     "objective": float(value),
                     "gradient_relative_difference_vs_first": _relative(grad, reference[1])})
        ctx.log(f"convolutions: {path}: {1000 * rows[-1]['seconds']:.1f} ms per evaluation")
    return {"size": cfg.size, "shape": list(problem.shape), "precision": cfg.precision,
            "default": convolution.resolve("auto"), "rows": rows}


def run_sweep(ctx: Context) -> dict:
    cfg = ctx.cfg
    content, style, _ = bench_problem.paper_pictures(cfg.sweep_size)
    count, iterations = cfg.sweep_members, cfg.sweep_iterations
    ratios = [10.0 ** (-5 + 3 * k / max(count - 1, 1)) for k in range(count)]
    layers = {} if cfg.layers is None else {"content_layers": (cfg.layers[0],), "style_layer_sets": (cfg.layers[1],)}
    members = sweep.product(ratios=ratios, **layers)
    rows, loop = [], None
    for mode in SWEEP_MODES:
        if ctx.out_of_time(rows, {"mode": mode}):
            continue
        batch = min(cfg.sweep_map_batch, count) if mode == "map" else None
        result = sweep.run_sweep(content, style, members, ctx.weights, optimizer=cfg.sweep_optimizer,
                                 iterations=iterations, mode=mode, batch_size=batch,
                                 convolution=cfg.convolution, precision=cfg.precision)
        throughput = count * iterations / result.seconds
        row = {"mode": mode, "batch": batch, "seconds": result.seconds, "compile_seconds": result.compile_seconds,
               "throughput": throughput}
        if mode == "loop":
            # The first member's time includes compiling the per-member init, which run_sweep
            # does inside its timed loop: the reference is the loop without it (conservative).
            rest = sum(result.member_seconds[1:])
            loop = (count - 1) * iterations / rest if count > 1 and rest > 0 else throughput
            row.update(steady_throughput=loop, member_seconds=result.member_seconds)
        ratio = 1.0 if mode == "loop" else throughput / loop if loop else None
        row.update(ratio_to_loop=ratio, member_evaluations=sum(result.evaluations),
                   members_done=sum(s == "done" for s in result.statuses), devices=result.devices)
        rows.append(row)
        ctx.log(f"sweep: {mode}: {throughput:.1f} member-iterations/s, compile {result.compile_seconds:.1f} s")
    batched = [r for r in rows if r["mode"] != "loop" and r.get("ratio_to_loop")]
    best = max(batched, key=lambda r: r["ratio_to_loop"]) if batched else None
    return {"size": cfg.sweep_size, "shape": list(content.shape[:2]), "members": count, "iterations": iterations,
            "optimizer": cfg.sweep_optimizer, "precision": cfg.precision, "ratios": ratios, "rows": rows,
            "loop_reference": "the loop's throughput over its members after the first (steady_throughput)",
            "auto_mode": sweep.default_mode(jax.default_backend(), cfg.sweep_optimizer),
            "best_batched": None if best is None else {"mode": best["mode"], "ratio_to_loop": best["ratio_to_loop"]}}


def run_memory(ctx: Context) -> dict:
    cfg = ctx.cfg
    request = {"sizes": sorted(cfg.memory_sizes), "limit": cfg.memory_limit, "steps": cfg.memory_steps,
               "layers": cfg.layers, "convolution": cfg.convolution, "precision": cfg.precision}
    timeout = min(ctx.remaining(), cfg.memory_seconds)
    status, output, seconds = _run_child(
        [sys.executable, "-m", "stylejax.bench.device_check", "memory", json.dumps(request)], timeout)
    attempts = [json.loads(line[len(_MEMORY_PREFIX):]) for line in output.splitlines()
                if line.startswith(_MEMORY_PREFIX)]
    if status not in (0, None) and not attempts:
        raise RuntimeError(f"the memory probe exited with status {status}: "
                           f"{(output.strip().splitlines() or ['no output'])[-1]}")
    fitted = [a["size"] for a in attempts if a["ok"]]
    failed = [a["size"] for a in attempts if not a["ok"] and a.get("out_of_memory")]
    result = {
        "probe": "one value-and-gradient evaluation (he-normal weights: memory does not depend on the values)",
        "precision": cfg.precision, "attempts": attempts,
        "peak_bytes": {str(a["size"]): a.get("peak_bytes") for a in attempts if a["size"] in cfg.memory_sizes},
        "largest_fitting": max(fitted) if fitted else None,
        "smallest_out_of_memory": min(failed) if failed else None,
        "limit": cfg.memory_limit, "timed_out": status is None, "seconds": seconds,
        "allocator": {k: os.environ.get(k) for k in ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION")},
    }
    if status is None:
        result["note"] = f"stopped after {timeout:.0f} s; sizes not reached were not tried"
    elif status != 0:
        result["note"] = f"the probe exited with status {status}: {output.strip().splitlines()[-1][:300]}"
    ctx.log(f"memory: peak {result['peak_bytes']}, largest fitting {result['largest_fitting']} px")
    return result


def device_model(problem: bench_problem.Problem, device: str):
    """bench_torch's PyTorch model with its weights, targets and activations on ``device``;
    images come in and gradients go back on the host, as bench_torch passes them."""
    import torch

    from stylejax.bench import torch_vgg

    target = torch.device(device)

    class OnDevice(torch_vgg.TorchGatys):
        def features(self, image):
            for table in (self.kernels, self.biases):
                for name, tensor in table.items():
                    if tensor.device != target:
                        table[name] = tensor.to(target)
            return super().features(image.to(target))

    settings = problem.loss_settings
    return OnDevice(
        problem.weights.params, problem.content, problem.style,
        content_layers=settings["content_layers"], style_layers=settings["style_layers"],
        content_weight=settings["content_weight"], style_weight=settings["style_weight"],
        style_layer_weights=settings["style_layer_weights"], pooling=settings["pooling"],
    )


def run_torch(ctx: Context) -> dict:
    cfg = ctx.cfg
    if not bench_torch.available():
        return {"skipped": "PyTorch is not installed: side-by-side skipped (pip install 'stylejax[torch]')"}
    import torch

    if not torch.cuda.is_available():
        return {"skipped": f"torch {torch.__version__} has no CUDA device here: side-by-side skipped"}
    problem = ctx.problem(cfg.torch_size)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with precision_lib.context("highest"):
            model = device_model(problem, "cuda")
            agreement = bench_torch.check(problem, cfg.convolution, model)
            row = bench_torch.compare(problem, convolution=cfg.convolution, repeats=cfg.torch_repeats,
                                      calls=cfg.torch_calls, adam_steps=cfg.torch_adam_steps, model=model,
                                      agreement=agreement)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    ctx.log(f"torch: stylejax/PyTorch {row['evaluation_ratio']:.2f} per evaluation")
    return {**row, "torch_device": torch.cuda.get_device_name(0),
            "note": "float32 on both sides (torch TF32 off, stylejax highest); PyTorch's image and "
                    "gradient cross host<->device in each call, as bench_torch passes them"}


def parse_pytest(output: str) -> dict:
    """Counts from pytest -q's output: its summary line, or (cut short) its progress lines."""
    names = ("passed", "failed", "errors", "skipped", "deselected", "xfailed", "xpassed")
    counts = dict.fromkeys(names, 0)
    lines = output.splitlines()
    summary = next((line.strip(" =") for line in reversed(lines)
                    if re.search(r"\b(passed|failed|errors?|no tests ran)\b.* in [\d.]+s", line)), None)
    if summary is not None:
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", summary):
            counts["errors" if word.startswith("error") else word] += int(number)
    else:
        symbols = {".": "passed", "F": "failed", "E": "errors", "s": "skipped", "x": "xfailed", "X": "xpassed"}
        for line in lines:
            progress = re.fullmatch(r"([.FEsxX]+)\s*(\[\s*\d+%\])?", line.strip())
            if progress:
                for symbol in progress.group(1):
                    counts[symbols[symbol]] += 1
    failed = [line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR ")) and len(line.split()) > 1]
    return {"counts": counts, "summary": summary, "complete": summary is not None, "failed_tests": failed[:50]}


def run_tests(ctx: Context) -> dict:
    cfg = ctx.cfg
    if not os.path.isdir(os.path.join(project_root(), "tests")):
        raise RuntimeError(f"no tests folder in {project_root()} (stylejax is not a source checkout)")
    timeout = min(ctx.remaining(), cfg.tests_timeout)
    if timeout < 10:
        return {"skipped": f"{max(timeout, 0):.0f} s left of the budget: too little to start the tests"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *cfg.tests_args]
    status, output, seconds = _run_child(command, timeout)
    parsed = parse_pytest(output)
    if status not in (None, 0, 1):  # 1: some tests failed; anything else: pytest itself did not run them
        last = parsed["summary"] or (output.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pytest exited with status {status}: {last[:300]}")
    result = {"command": " ".join(["python", *command[1:]]), "exit_status": status, "timed_out": status is None,
              "timeout_seconds": timeout, "seconds": seconds, **parsed,
              "tail": output.strip().splitlines()[-_TAIL_LINES:]}
    counts = parsed["counts"]
    ctx.log(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors "
            f"in {seconds:.0f} s" + (" (timed out)" if status is None else ""))
    return result


RUNNERS: dict[str, Callable[[Context], dict]] = {
    "memory": run_memory, "lbfgs": run_lbfgs, "sweep": run_sweep, "adam": run_adam,
    "convolutions": run_convolutions, "torch": run_torch, "tests": run_tests,
}


# --------------------------------------------------------------------------- targets and tables


def _ok(results: dict, name: str) -> dict | None:
    section = results["sections"].get(name, {})
    return section if section.get("status") == "ok" else None


def _row_at(section: dict | None, key: str, value: str) -> dict | None:
    rows = (section or {}).get("rows", [])
    return next((r for r in rows if r.get(key) == value and "skipped" not in r), None)


def targets(results: dict) -> list[dict]:
    default = precision_lib.DEFAULT_PRECISION
    lbfgs = _row_at(_ok(results, "lbfgs"), "precision", default)
    best = (_ok(results, "sweep") or {}).get("best_batched")
    measured = {
        "lbfgs_seconds": lbfgs["seconds"] if lbfgs else None,
        "sweep_vs_loop": best["ratio_to_loop"] if best else None,
        "compile_seconds": lbfgs["compile_seconds"] if lbfgs else None,
    }
    rows = []
    for name, what, comparison, threshold, unit in TARGETS:
        value = measured[name]
        if value is None:
            status = "n/a"
        else:
            passed = value <= threshold if comparison == "<=" else value >= threshold if comparison == ">=" else value < threshold
            status = "PASS" if passed else "MISS"
        rows.append({"name": name, "what": what, "target": f"{comparison} {threshold:g} {unit}", "value": value,
                     "unit": unit, "status": status,
                     **({"mode": best["mode"]} if name == "sweep_vs_loop" and best else {})})
    return rows


def _number(value, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def readme_rows(results: dict) -> list[str]:
    """The README table's header, separator and this device's row, as Markdown lines."""
    about = results["about"]
    cfg = about["config"]
    header = ["device", "jax", f"{cfg['size']} px x {cfg['iterations']} L-BFGS s", "compile s",
              f"cheapest precision within {cfg['tolerance']:g}: L-BFGS s", f"{cfg['size']} px x {cfg['adam_iterations']} Adam s",
              f"one evaluation ms ({' / '.join(convolution.ALGORITHMS)})",
              f"{cfg['sweep_members']}-ratio sweep at {cfg['sweep_size']} px vs loop",
              f"peak MB ({' / '.join(str(s) for s in cfg['memory_sizes'])} px)", "largest size px", "fast tests"]
    default = precision_lib.DEFAULT_PRECISION
    lbfgs_section = _ok(results, "lbfgs")
    lbfgs = _row_at(lbfgs_section, "precision", default)
    recommended = ((lbfgs_section or {}).get("agreement") or {}).get("recommended")
    fast = _row_at(lbfgs_section, "precision", recommended) if recommended else None
    adam = _row_at(_ok(results, "adam"), "precision", default)
    conv = _ok(results, "convolutions")
    evaluation = " / ".join(_number(1000 * r["seconds"], 1) if (r := _row_at(conv, "convolution", path)) else "-"
                            for path in convolution.ALGORITHMS)
    sweep_section = _ok(results, "sweep") or {}
    best = sweep_section.get("best_batched")
    memory = _ok(results, "memory") or {}
    peaks = memory.get("peak_bytes", {})
    peak = " / ".join(_number(peaks[str(s)] / 2**20, 0) if peaks.get(str(s)) is not None else "-"
                      for s in cfg["memory_sizes"])
    tests = _ok(results, "tests")
    tests_cell = "-"
    if tests and "counts" in tests:
        counts = tests["counts"]
        tests_cell = (f"{counts['passed']} passed, {counts['failed'] + counts['errors']} failed"
                      + (" (cut short)" if tests.get("timed_out") else ""))
    device = about["device_kind"] + (f" x{about['devices']}" if about["devices"] > 1 else "")
    cells = [
        device + (" (smoke)" if about["smoke"] else ""), about["jax"],
        _number(lbfgs and lbfgs["seconds"]), _number(lbfgs and lbfgs["compile_seconds"], 1),
        f"{recommended}: {_number(fast and fast['seconds'])} s" if recommended else "-",
        _number(adam and adam["seconds"]), evaluation,
        f"{best['ratio_to_loop']:.2f}x ({best['mode']})" if best else "-", peak,
        str(memory["largest_fitting"]) if memory.get("largest_fitting") else "-", tests_cell,
    ]
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            "| " + " | ".join(cells) + " |"]


def _section_markdown(name: str, section: dict) -> list[str]:
    status = section.get("status")
    if status != "ok":
        detail = section.get("error") or section.get("reason") or ""
        return [f"{status}" + (f": {detail}" if detail else "")]
    if "skipped" in section:
        return [f"skipped: {section['skipped']}"]
    table = {
        "lbfgs": (["precision", "seconds", "iterations", "evaluations", "ms/evaluation", "compile s", "final objective"],
                  lambda r: [r["precision"], _number(r["seconds"]), str(r["iterations"]), str(r["evaluations"]),
                             _number(r["ms_per_evaluation"], 1), _number(r["compile_seconds"], 1),
                             f"{r['final_objective']:.6g}" if r.get("final_objective") is not None else "-"]),
        "convolutions": (["convolution", "ms per evaluation (median)", "min..max", "first call s"],
                         lambda r: [r["convolution"], _number(1000 * r["seconds"], 1),
                                    f"{1000 * r['min_seconds']:.1f}..{1000 * r['max_seconds']:.1f}",
                                    _number(r["first_call_seconds"], 1)]),
        "sweep": (["mode", "seconds", "member-iterations/s", "vs loop", "compile s"],
                  lambda r: [r["mode"] + (f" (batch {r['batch']})" if r.get("batch") else ""), _number(r["seconds"]),
                             _number(r["throughput"], 1) + (f" ({r['steady_throughput']:.1f} after the first member)"
                                                            if "steady_throughput" in r else ""),
                             _number(r.get("ratio_to_loop"), 2, "x"), _number(r["compile_seconds"], 1)]),
    }
    table["adam"] = table["lbfgs"]
    lines = []
    if name in table:
        header, cells = table[name]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for row in section.get("rows", []):
            first = next(iter(row.values()))
            lines.append(f"| {first} | skipped: {row['skipped']} |" if "skipped" in row
                         else "| " + " | ".join(cells(row)) + " |")
    if name == "lbfgs" and section.get("agreement"):
        agreement = section["agreement"]
        lines += ["", f"Against highest ({', '.join(agreement['images'])}), tolerance {agreement['tolerance']:g}:", "",
                  "| precision | objective rel. difference | gradient rel. difference | within |", "|---|---|---|---|"]
        for row in agreement["rows"]:
            if "skipped" in row:
                continue
            lines.append(f"| {row['precision']} | "
                         + " / ".join(f"{v:.1e}" for v in row["objective_relative_difference"].values()) + " | "
                         + " / ".join(f"{v:.1e}" for v in row["gradient_relative_difference"].values()) + " | "
                         + ("yes" if row["within_tolerance"] else "no") + " |")
        lines += ["", f"Recommended default: {agreement['recommended']} ({agreement['rule']})."]
    if name == "sweep":
        lines += ["", f"{section['members']} members x {section['iterations']} {section['optimizer']} iterations at "
                      f"{section['shape'][1]}x{section['shape'][0]} px; auto mode here: {section['auto_mode']}."]
    if name == "memory":
        lines += ["| size | image | fits | peak MB | seconds | error |", "|---|---|---|---|---|---|"]
        for a in section["attempts"]:
            shape = f"{a['shape'][1]}x{a['shape'][0]}" if a.get("shape") else "-"
            peak = _number(a["peak_bytes"] / 2**20, 0) if a.get("peak_bytes") is not None else "-"
            lines.append(f"| {a['size']} | {shape} | {'yes' if a['ok'] else 'no'} | {peak} | "
                         f"{_number(a.get('seconds'))} | {a.get('error') or ''} |")
        lines += ["", f"Largest size that fitted: {section['largest_fitting']}; smallest out of memory: "
                      f"{section['smallest_out_of_memory']} (search limit {section['limit']})."
                      + (f" {section['note']}" if section.get("note") else "")]
    if name == "torch":
        lines += [f"PyTorch {section['torch_version']} on {section['torch_device']}: stylejax/PyTorch "
                  f"{section['evaluation_ratio']:.2f} per evaluation, {section['adam_ratio']:.2f} per Adam step; "
                  f"loss / gradient rel. error {section['agreement']['loss_relative_error']:.1e} / "
                  f"{section['agreement']['grad_relative_error']:.1e}. {section['note']}."]
    if name == "tests":
        counts = section["counts"]
        ran = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no tests ran"
        lines += [f"`{section['command']}`: {ran} in {section['seconds']:.0f} s"
                  + (" (timed out: the counts so far)" if section["timed_out"] else "")]
        lines += [f"- {name}" for name in section["failed_tests"]]
    return lines


def markdown(results: dict) -> str:
    about = results["about"]
    lines = [f"# stylejax device check: {about['device_kind']}", "",
             f"{about['date']}; {about['device']} x{about['devices']}, jax {about['jax']} ({about['backend']}); "
             f"commit {about['git_commit'] or 'unknown'}{' (with local changes)' if about['git_dirty'] else ''}; "
             f"{about['weights']}; budget {about['budget_seconds']:g} s, {results['elapsed_seconds']:.0f} s so far"
             + ("; SMOKE RUN: tiny sizes, not comparable with the targets" if about["smoke"] else "") + ".", "",
             "## Targets (on one H100)", "", "| target | wanted | measured | status |", "|---|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['what']} | {t['target']} | {_number(t['value'])} {t['unit']} | {t['status']} |")
    lines += ["", "## README row", "", *results["readme_rows"]]
    for name in SECTIONS:
        section = results["sections"][name]
        try:
            body = _section_markdown(name, section)
        except Exception as error:  # a table must never cost the results: they are in results.json
            body = [f"{section.get('status')}: see {RESULTS_JSON} (no table: {_error_text(error)})"]
        lines += ["", f"## {name}", "", *body]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def about(cfg: CheckConfig, weights: LoadedWeights | None) -> dict:
    device = jax.devices()[0]
    random = weights is None or weights_source.is_random(weights)
    return {
        **bench.machine(), "device_kind": device.device_kind, "platform": device.platform,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "weights": RANDOM_LABEL if random else weights.source,
        "weights_source": weights_source.random_source(0) if weights is None else weights.source,
        "weights_random": random, "convolution": convolution.resolve(cfg.convolution),
        "default_precision": precision_lib.DEFAULT_PRECISION, "smoke": cfg.smoke,
        "budget_seconds": cfg.budget_seconds,
        "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
        "config": dataclasses.asdict(cfg),
    }


def _runtime_started() -> bool | None:
    """Whether JAX's backends already exist (then XLA_PYTHON_CLIENT_PREALLOCATE comes too late)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:  # a private API: unknown where it moved
        return None


def check_config(cfg: CheckConfig) -> None:
    unknown = [s for s in cfg.sections if s not in SECTIONS]
    if unknown:
        raise UserError(f"unknown section {unknown[0]!r}: expected some of {', '.join(SECTIONS)}")
    if not cfg.sections:
        raise UserError(f"no section chosen: expected some of {', '.join(SECTIONS)}")
    if not (cfg.budget_seconds > 0 and np.isfinite(cfg.budget_seconds)):
        raise UserError(f"--budget-seconds must be a positive number of seconds, got {cfg.budget_seconds:g}")
    try:
        convolution.resolve(cfg.convolution)
        precision_lib.check(cfg.precision)
    except ValueError as error:
        raise UserError(str(error)) from None


def run(cfg: CheckConfig, root: str = DEFAULT_ROOT, log: Callable[[str], None] = print) -> dict:
    """Runs the chosen sections, writing ``root/device/<device slug>/results.json`` and
    ``results.md`` after each; returns the results (with ``out_dir``)."""
    start = time.monotonic()
    # Before the runtime starts (check_config asks for the backend): allocate device memory
    # as it is needed, so the child processes (memory probe, tests) find the device free.
    started = _runtime_started()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    check_config(cfg)
    slug = device_slug(jax.devices()[0].device_kind)
    out_dir = os.path.join(root, "device", slug)
    paths.check_output_folder(root, "device check output")
    weights = None if cfg.weights == "random" else weights_source.resolve_weights(cfg.weights)
    paths.prepare_output_folder(root, "device check output")
    paths.prepare_output_folder(os.path.join(root, "device"), "device check output")
    paths.prepare_output_folder(out_dir, "device check output")
    ctx = Context(cfg, log, start + cfg.budget_seconds, weights)
    results = {"about": {**about(cfg, weights), "runtime_started_before_the_check": started},
               "sections": {}, "out_dir": out_dir}
    for name in SECTIONS:
        results["sections"][name] = {"status": "pending" if name in cfg.sections else "not selected"}

    def write(finished: bool = False) -> None:
        results["elapsed_seconds"] = time.monotonic() - start
        results["finished"] = finished
        results["targets"] = targets(results)
        results["readme_rows"] = readme_rows(results)
        atomic.atomic_write_json(os.path.join(out_dir, RESULTS_JSON), results)
        atomic.atomic_write_bytes(os.path.join(out_dir, RESULTS_MD), markdown(results).encode())

    log(f"device check on {results['about']['device']} ({jax.device_count()} device(s)), jax {jax.__version__}, "
        f"{results['about']['weights']}, budget {cfg.budget_seconds:g} s -> {out_dir}")
    write()
    for name in SECTIONS:
        if name not in cfg.sections:
            continue
        if ctx.remaining() <= 0:
            results["sections"][name] = {"status": "skipped", "reason": f"budget of {cfg.budget_seconds:g} s spent"}
            log(f"{name}: skipped (budget spent)")
            write()
            continue
        section_start = time.perf_counter()
        try:
            section = {"status": "ok", **RUNNERS[name](ctx)}
            if "skipped" in section:  # the section found nothing to run (no CUDA torch, no time left)
                section["status"], section["reason"] = "skipped", section.pop("skipped")
                log(f"{name}: skipped: {section['reason']}")
        except Exception as error:  # one failing section must not lose the others
            section = {"status": "error", "error": _error_text(error),
                       "traceback": traceback.format_exc().strip().splitlines()[-_TAIL_LINES:]}
            log(f"{name}: error: {section['error']}")
        section["section_seconds"] = time.perf_counter() - section_start
        results["sections"][name] = section
        gc.collect()
        write()
    write(finished=True)
    for t in results["targets"]:
        log(f"{t['status']}: {t['what']}: {_number(t['value'])} {t['unit']} (target {t['target']} on one H100)"
            + (" [smoke: tiny sizes, not comparable]" if cfg.smoke else ""))
    log("\n".join(results["readme_rows"]))
    log(f"wrote {os.path.join(out_dir, RESULTS_JSON)} and {RESULTS_MD}")
    return results


def _positive_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{what} must be a number of seconds, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise UserError(f"{what} must be a positive number of seconds, got {text!r}")
    return value


def parse_args(argv: list[str]) -> tuple[CheckConfig, str, bool]:
    from stylejax.cli import figures

    parser = figures.ArgumentParser(
        prog="device_check.py",
        description="Checks stylejax on whatever accelerator it finds (docs/device-check.md).")
    parser.add_argument("-o", "--out", default=DEFAULT_ROOT, metavar="ROOT",
                        help=f"output root: writes ROOT/device/<device>/results.json and .md (default {DEFAULT_ROOT})")
    parser.add_argument("--smoke", action="store_true",
                        help="the same code path at tiny sizes, a cut-down network and a one-test selection (CPU, minutes)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, some of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--budget-seconds", default=None, metavar="S",
                        help=f"skip what is left after this many seconds (default {CheckConfig.budget_seconds:g})")
    parser.add_argument("--weights", default="random",
                        help="random (seeded, default: the cost does not depend on the values), auto or a PATH")
    parser.add_argument("--convolution", default="auto", help="auto (the backend's default) or one of lax, direct, winograd")
    parser.add_argument("--tests-timeout", default=None, metavar="S",
                        help=f"at most this long for the test tier (default {CheckConfig.tests_timeout:g})")
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else CheckConfig()
    changes = {"sections": tuple(s.strip() for s in args.sections.split(",") if s.strip()),
               "weights": args.weights, "convolution": args.convolution}
    if args.budget_seconds is not None:
        changes["budget_seconds"] = _positive_seconds(args.budget_seconds, "--budget-seconds")
    if args.tests_timeout is not None:
        changes["tests_timeout"] = _positive_seconds(args.tests_timeout, "--tests-timeout")
    return dataclasses.replace(cfg, **changes), args.out, args.debug


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when every chosen section ran, 1 when one failed, 2 on a usage error."""
    from stylejax.cli import exit_codes

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cfg, root, debug = parse_args(argv)
        results = run(cfg, root)
    except (UserError, InvalidSetting) as error:
        if debug:
            raise
        print(f"device_check: error: {error}", file=sys.stderr, flush=True)
        return exit_codes.EXIT_USER_ERROR
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        print("device_check: interrupted; results.json holds the sections that finished", file=sys.stderr, flush=True)
        return exit_codes.EXIT_INTERRUPTED
    return 1 if any(s.get("status") == "error" for s in results["sections"].values()) else 0


# --------------------------------------------------------------------------- the memory probe (child process)


def _memory_attempt(size: int, weights: LoadedWeights, request: dict, own_peak: bool) -> dict:
    row = {"size": size, "ok": False}
    start = time.perf_counter()
    try:
        problem = build_problem(size, weights, request["layers"] and (request["layers"][0], tuple(request["layers"][1])))
        row["shape"] = list(problem.shape)
        prepared = _prepared(problem, convolution.resolve(request["convolution"]))
        _evaluate(problem, prepared, jnp.asarray(problem.init), request["precision"])
        row.update(ok=True, peak_bytes=peak_device_bytes() if own_peak else None)
    except Exception as error:
        row.update(error=_error_text(error)[:300], out_of_memory=is_out_of_memory(error))
    finally:
        problem = prepared = None
        gc.collect()
    row["seconds"] = time.perf_counter() - start
    print(_MEMORY_PREFIX + json.dumps(row), flush=True)
    return row


def memory_probe(request: dict) -> None:
    """Tries sizes in increasing order (peak_bytes_in_use only grows, so each reading
    before the first failure is that size's own), then doubles, then bisects."""
    weights = LoadedWeights.from_params(vgg.he_normal_params(0), convention=CAFFE, source="he-normal (memory probe)")
    attempt = functools.partial(_memory_attempt, weights=weights, request=request)
    fitted, failed, row = 0, None, {}
    for size in request["sizes"]:
        row = attempt(size, own_peak=True)
        if not row["ok"]:
            failed = size
            break
        fitted = size
    else:
        while fitted < request["limit"]:
            size = min(2 * fitted, request["limit"])
            row = attempt(size, own_peak=True)
            if not row["ok"]:
                failed = size
                break
            fitted = size
    if failed is None or not fitted or not row.get("out_of_memory"):
        return
    low, high = fitted, failed
    for _ in range(request["steps"]):
        middle = (low + high) // 2 // 16 * 16
        if not low < middle < high:
            break
        if attempt(middle, own_peak=False)["ok"]:
            low = middle
        else:
            high = middle


def child_main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "memory":
        raise SystemExit("usage: python -m stylejax.bench.device_check memory REQUEST_JSON")
    memory_probe(json.loads(argv[1]))


if __name__ == "__main__":
    child_main(sys.argv[1:])
