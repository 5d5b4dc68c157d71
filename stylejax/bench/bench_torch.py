"""stylejax against PyTorch eager on the same problem: a correctness check, then timings.

Both read the same params pytree (so the same VGG19, whatever file it came from), the
same images in the same input space, and compute the same loss (stylejax/bench/torch_vgg.py
mirrors stylejax/_src/losses.py). Before timing anything, :func:`check` requires the
losses and gradients at the white-noise init to agree within the tolerances below; a
disagreement stops the benchmark (a fast wrong answer is not a result).

Timing alternates between the two in rounds (PyTorch, then stylejax, ``repeats``
times), each with an untimed warm-up call, so drifts in the machine's speed fall on
both. Measured: one value-and-gradient evaluation, and ``adam_steps`` Adam steps
(torch.optim.Adam against optax.adam in the solver's default compiled chunks, the
kernel preparation included). PyTorch runs with its default thread count.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import jax
import numpy as np

from stylejax._src import convolution as convolution_lib
from stylejax._src import optimise, presets
from stylejax._src.errors import UserError
from stylejax.bench import bench_problem

LOSS_RTOL = 1e-4
# Relative L2 norm of a gradient difference. Float32 rounding differs between any two
# implementations (and more for Winograd, about 1e-6 relative per layer); it can flip a
# ReLU whose pre-activation lies within rounding of zero, and each flip changes the
# gradient over that unit's receptive field. Measured against PyTorch on the paper's
# images: lax path 2e-6 at 128 px and 1.4e-3 at 256 px, Winograd 5e-3 at 128 px.
GRAD_RTOL = 1e-2
# Checked separately, so the style term (a small part of the total at alpha/beta = 1e-3)
# cannot hide behind the content term: (content weight, style weight) of each check.
TERMS = {"content": (bench_problem.RATIO, 0.0), "style": (0.0, 1.0)}

def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_model(problem: bench_problem.Problem):
    from stylejax.bench import torch_vgg

    settings = problem.loss_settings
    return torch_vgg.TorchGatys(
        problem.weights.params, problem.content, problem.style,
        content_layers=settings["content_layers"], style_layers=settings["style_layers"],
        content_weight=settings["content_weight"], style_weight=settings["style_weight"],
        style_layer_weights=settings["style_layer_weights"], pooling=settings["pooling"],
    )


def check(problem: bench_problem.Problem, convolution: str, model=None) -> dict:
    """Each loss term and its gradient at the init, from both; raises if they disagree.

    Compared with PyTorch: stylejax's reference ``lax`` path and the timed path
    ``convolution``, for the content term and the style term on their own.
    """
    from stylejax.bench import torch_vgg

    model = model or torch_model(problem)
    timed = convolution_lib.resolve(convolution)
    image = jax.numpy.asarray(problem.init)
    program = bench_problem.value_and_grad_program(problem.spec)
    result = {"timed_convolution": timed, "loss_rtol": LOSS_RTOL, "grad_rtol": GRAD_RTOL, "terms": {}}
    failures = []
    for term, (content_weight, style_weight) in TERMS.items():
        model.content_weight, model.style_weight = content_weight, style_weight
        try:
            torch_value, torch_grad = model.value_and_grad(torch_vgg.to_torch_image(problem.init))
        finally:
            settings = problem.loss_settings
            model.content_weight, model.style_weight = settings["content_weight"], settings["style_weight"]
        torch_value = float(torch_value)
        torch_grad = torch_vgg.from_torch_image(torch_grad).astype(np.float64)
        weights = problem.args.weights._replace(content_weight=jax.numpy.float32(content_weight),
                                                style_weight=jax.numpy.float32(style_weight))
        for path in dict.fromkeys(("lax", timed)):
            solver = optimise.SolverSpec("adam", problem.spec, convolution=path)
            args = problem.args._replace(params=optimise.prepare_params(problem.args.params, solver), weights=weights)
            value, grad = program(image, args)
            grad = np.asarray(grad, np.float64)
            loss_error = abs(float(value) - torch_value) / abs(torch_value)
            grad_error = float(np.linalg.norm(grad - torch_grad) / np.linalg.norm(torch_grad))
            result["terms"][f"{term} ({path})"] = {"stylejax": float(value), "torch": torch_value,
                                                   "loss_relative_error": loss_error,
                                                   "grad_relative_error": grad_error}
            if not (loss_error <= LOSS_RTOL and grad_error <= GRAD_RTOL):
                failures.append(f"{term} term, {path} path: loss relative error {loss_error:.2e}, "
                                f"gradient {grad_error:.2e}")
    errors = result["terms"].values()
    result["loss_relative_error"] = max(e["loss_relative_error"] for e in errors)
    result["grad_relative_error"] = max(e["grad_relative_error"] for e in errors)
    if failures:
        raise UserError(f"stylejax and PyTorch disagree at {problem.size} px ({'; '.join(failures)}; tolerances: "
                        f"loss {LOSS_RTOL:g}, gradient {GRAD_RTOL:g}); not timing")
    return result


def _summary(seconds: list[float], per: int) -> dict:
    ms = [1000.0 * s / per for s in seconds]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "samples": len(ms)}


def compare(problem: bench_problem.Problem, *, convolution: str, repeats: int, calls: int,
            adam_steps: int, model=None, agreement: dict | None = None) -> dict:
    """The check (unless its ``agreement`` is given), then alternating timings in ms;
    ``ratio`` is stylejax time / PyTorch time."""
    import torch

    from stylejax.bench import torch_vgg

    model = model or torch_model(problem)
    agreement = agreement or check(problem, convolution, model)
    solver = optimise.SolverSpec("adam", problem.spec, convolution=convolution)
    prepared = problem.args._replace(params=optimise.prepare_params(problem.args.params, solver))
    program = bench_problem.value_and_grad_program(problem.spec)
    image = jax.numpy.asarray(problem.init)
    torch_image = torch_vgg.to_torch_image(problem.init)
    chunk = presets.default_chunk(jax.default_backend(), "adam")
    lr = float(problem.args.learning_rate)

    def stylejax_evaluation():
        jax.block_until_ready(program(image, prepared))

    def torch_evaluation():
        model.value_and_grad(torch_image)

    timings = {"stylejax_evaluation": [], "torch_evaluation": [], "stylejax_adam": [], "torch_adam": []}
    final_losses = {}
    for _ in range(repeats):
        for name, evaluate in (("torch_evaluation", torch_evaluation), ("stylejax_evaluation", stylejax_evaluation)):
            evaluate()  # warm-up: wakes the framework's threads
            for _ in range(calls):
                start = time.perf_counter()
                evaluate()
                timings[name].append(time.perf_counter() - start)
        torch_vgg.adam_steps(model, problem.init, lr, 1)
        start = time.perf_counter()
        _, torch_values = torch_vgg.adam_steps(model, problem.init, lr, adam_steps)
        timings["torch_adam"].append(time.perf_counter() - start)
        optimise.solve(image, problem.args, solver, 1, chunk_size=chunk)
        result = optimise.solve(image, problem.args, solver, adam_steps, chunk_size=chunk)
        timings["stylejax_adam"].append(result.seconds)
        final_losses = {"torch": torch_values[-1], "stylejax": result.values[-1]}
    evaluation = {k: _summary(v, 1) for k, v in timings.items() if k.endswith("evaluation")}
    adam = {k: _summary(v, adam_steps) for k, v in timings.items() if k.endswith("adam")}
    return {
        "size": problem.size, "shape": list(problem.shape), "agreement": agreement,
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "convolution": convolution, "adam_steps": adam_steps, "adam_chunk": chunk,
        "evaluation": evaluation, "adam": adam,
        "evaluation_ratio": evaluation["stylejax_evaluation"]["median"] / evaluation["torch_evaluation"]["median"],
        "adam_ratio": adam["stylejax_adam"]["median"] / adam["torch_adam"]["median"],
        "adam_last_losses": final_losses,
    }
