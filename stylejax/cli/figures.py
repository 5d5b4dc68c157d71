"""Shared plumbing of the figure scripts (``scripts/fig*.py``).

A figure script parses its command line with :func:`parser` (the common options of
:func:`common_arguments` plus its own), names the pictures it needs as :class:`Need`,
opens a :class:`FigureRun` (which finds the pictures, resolves the weights, prepares the
output folder and loads and resizes the pictures), runs sweeps or transfers through it,
measures its trends with :mod:`stylejax._src.metrics`, and calls :meth:`FigureRun.write`,
which writes into ``--out``:

- ``figure.png``: the panels as a labelled grid; its title says RANDOM WEIGHTS when the
  weights are the seeded random VGG19;
- ``panel_rRcC.png``: each non-empty cell of the grid at full resolution (row R, column C);
- ``results.json``: the members' losses, the measured trend checks (booleans computed
  from the numbers, never assumed), runtime, device, the weights (with a ``random``
  flag) and a top-level ``random_weights`` boolean.

:func:`run_main` turns a ``UserError`` (a bad command line, a missing picture, no
pretrained weights under ``--weights auto``) into one line on stderr and exit status 2,
as the ``stylejax`` command does.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import budget, convolution, image_ops, metrics, precision, presets, sweep
from stylejax._src import transfer as transfer_lib
from stylejax._src.errors import InvalidSetting, UserError
from stylejax._src.files import atomic, images, paths
from stylejax._src.layers import MIN_IMAGE_SIDE
from stylejax._src.weights.weights_source import RANDOM_BANNER, is_random, resolve_weights
from stylejax._version import __version__
from stylejax.cli import config as config_lib
from stylejax.cli import exit_codes, signals
from stylejax.cli import transfer as transfer_command
from stylejax.cli.exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR
from stylejax.cli.grid import write_grid

IMAGES_ENV = images.IMAGES_ENV
leave = exit_codes.leave  # the scripts end with figures.leave(main())
DEFAULT_SIZE = 64
DEFAULT_ITERATIONS = 20
POOLING = "avg"  # the paper's choice
PAPER_STYLE_LAYERS = presets.PAPER_STYLE_LAYERS
FIGURE_FILE = "figure.png"
RESULTS_FILE = "results.json"

CONTENT_FILE = "tuebingen_neckarfront.jpg"
CREDITS = images.EXAMPLE_CREDITS  # one home: next to example_images_dir


# --------------------------------------------------------------------------- command line


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are a ``UserError`` (one line, exit 2 through run_main)."""

    def error(self, message):
        raise UserError(message)


def common_arguments(*, images: bool = True) -> ArgumentParser:
    """The options every figure script shares, as an argparse parent (``add_help=False``)."""
    parent = ArgumentParser(add_help=False)
    add = parent.add_argument
    if images:
        add("--images", metavar="DIR",
            help=f"folder holding the paper's pictures (default: ${IMAGES_ENV} if set, else "
                 f"the 512 px copies shipped with stylejax)")
        add("--replace", metavar="KEY=PATH", action="append", default=[],
            help="use PATH for the picture KEY (a panel key, or a file name in --images); repeatable")
    add("--size", default=str(DEFAULT_SIZE), metavar="N",
        help=f"longest side of the output in px (default {DEFAULT_SIZE}; the paper: about 512)")
    add("--iterations", default=str(DEFAULT_ITERATIONS), metavar="N",
        help=f"optimiser iterations per result (default {DEFAULT_ITERATIONS}; the authors' code: 500)")
    add("--weights", default="auto",
        help="auto (pretrained file in the weights directory), random (seeded, NOT pretrained), or a PATH")
    add("--seed", default="0", metavar="N", help="seed of --weights random (default 0)")
    add("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    add("--batch-mode", dest="batch_mode", default="auto", choices=sweep.BATCH_MODES,
        help="how a sweep runs its members (default auto: per backend)")
    add("--optimizer", default="lbfgs", choices=("lbfgs", "adam"), help="lbfgs (the paper) or adam")
    add("--convolution", default="auto", choices=("auto", *convolution.ALGORITHMS),
        help="3x3 convolution path (default auto: winograd on CPU, lax on GPU and TPU)")
    add("--precision", default=precision.DEFAULT_PRECISION, choices=precision.PRECISIONS,
        help="float32 precision of the objective's products (default highest)")
    add("--max-memory", dest="max_memory", metavar="GIB",
        help="refuse a figure estimated to need more than this many GiB (default: the memory "
             "available now); none: no check")
    add("--quiet", action="store_true", help="no progress messages")
    add("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return parent


def parser(prog: str, doc: str | None, *, images: bool = True) -> ArgumentParser:
    """A figure script's parser: the common options; the module docstring as help."""
    return ArgumentParser(prog=prog, description=doc, parents=[common_arguments(images=images)],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def run_main(fn: Callable[[list[str]], int | None]) -> Callable[..., int]:
    """Decorates ``fn(argv) -> status`` into ``main(argv=None) -> int``.

    A ``UserError`` prints ``<script>: error: <message>`` (one line) and returns 2;
    Ctrl-C returns 130 (SIGTERM, which acts as Ctrl-C: 143); ``--help`` returns 0;
    ``--debug`` re-raises instead. Scripts end with ``figures.leave(main())``.
    """
    name = os.path.splitext(os.path.basename(fn.__code__.co_filename))[0]

    @functools.wraps(fn)
    def main(argv: Sequence[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        with signals.handled() as received:
            status = _call(argv, debug)
        return EXIT_TERMINATED if status == EXIT_INTERRUPTED and received.terminated else status

    def _call(argv: list[str], debug: bool) -> int:
        try:
            status = fn(argv)
        except (UserError, InvalidSetting) as error:
            if debug:
                raise
            print(f"{name}: error: {error}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            if debug:
                raise
            print(f"{name}: interrupted; {RESULTS_FILE} was not written", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except SystemExit as exit_:  # --help
            return exit_.code if isinstance(exit_.code, int) else 0
        return int(status or 0)

    return main


# --------------------------------------------------------------------------- pictures


@dataclasses.dataclass(frozen=True)
class Need:
    """A picture a figure needs.

    ``key`` names it in ``--replace KEY=PATH`` and in the results; ``filename`` is the
    reference file looked for in ``--images`` (None: it must come from ``path``);
    ``path`` is an explicit file (e.g. ``--style PATH``), used as given; an ``optional``
    picture that is not found is None instead of an error.
    """

    key: str
    filename: str | None
    label: str
    optional: bool = False
    path: str | None = None


def reference_or_path(value: str, label: str, key: str = "style") -> Need:
    """``--style VALUE``: an existing file, else a file name in the ``--images`` folder."""
    if os.path.isfile(value) or os.sep in value or (os.altsep and os.altsep in value):
        return Need(key, None, label, path=value)
    return Need(key, value, label)


def photo_and_painting(name: str, doc: str | None, argv, default_style: str):
    """The parsed arguments and the two pictures of a one-painting figure (Fig. 5, 6).

    ``--style`` takes a file name in ``--images`` or an image path.
    """
    figure_parser = parser(name, doc)
    figure_parser.add_argument("--style", default=default_style,
                               help=f"the painting: a file name in --images or an image PATH (default {default_style})")
    args = figure_parser.parse_args(argv)
    needs = (Need("content", CONTENT_FILE, "Neckarfront"), reference_or_path(args.style, "painting"))
    return args, needs


def parse_replacements(items: Sequence[str]) -> dict[str, str]:
    replacements = {}
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise UserError(f"--replace expects KEY=PATH, got {item!r}")
        replacements[key.strip()] = path.strip()
    return replacements


def _check_file(path: str, what: str) -> str:
    if os.path.isdir(path):
        raise UserError(f"{what}: expected an image file but found a folder: {path}")
    if not os.path.isfile(path):
        raise UserError(f"{what}: no such file: {path}")
    return path


def locate(args, needs: Sequence[Need]) -> dict[str, str | None]:
    """The file of each need (None for a missing optional one); fails on anything else.

    Order: an explicit ``path``; a ``--replace`` for the key, the file name or its stem;
    the file in ``--images``, else in ``images.example_images_dir()``: ``$STYLEJAX_IMAGES``
    when set, else the copies shipped with stylejax.
    """
    replacements = parse_replacements(getattr(args, "replace", []) or [])
    names = {}
    for need in needs:
        names[need.key] = need
        if need.filename:
            names[need.filename] = need
            names[os.path.splitext(need.filename)[0]] = need
    unknown = sorted(set(replacements) - set(names))
    if unknown:
        raise UserError(f"--replace {unknown[0]}=...: this figure has no picture {unknown[0]!r} "
                        f"(keys: {', '.join(n.key for n in needs)})")
    given = {names[k].key: path for k, path in replacements.items()}
    folder = getattr(args, "images", None)
    origin = "from --images"
    if not folder:
        folder = images.example_images_dir()
        origin = (f"from ${IMAGES_ENV}" if os.environ.get(IMAGES_ENV)
                  else "the copies shipped with stylejax; reinstall it")
    found: dict[str, str | None] = {}
    for need in needs:
        what = f"{need.label} ({need.key})"
        if need.key in given:
            found[need.key] = _check_file(given[need.key], what)
        elif need.path is not None:
            found[need.key] = _check_file(need.path, what)
        elif not os.path.isdir(folder):
            problem = "is not a folder" if os.path.exists(folder) else "does not exist"
            raise UserError(f"reference images folder {folder} ({origin}) {problem}")
        elif os.path.isfile(os.path.join(folder, need.filename)):
            found[need.key] = os.path.join(folder, need.filename)
        elif need.optional:
            found[need.key] = None
        else:
            raise UserError(f"{need.filename} not found in {folder}: add it there or pass "
                            f"--replace {need.key}=PATH")
    return found


def credit(path: str | None) -> str | None:
    return CREDITS.get(os.path.basename(path)) if path else None


# --------------------------------------------------------------------------- panels


@dataclasses.dataclass
class Panel:
    """One cell of a figure: a picture shown (``input``) or an optimised one (``result``)."""

    image: np.ndarray  # RGB [0, 1], (H, W, 3)
    label: str
    kind: str = "result"  # input | result
    member: dict | None = None  # the configuration that made a result
    losses: dict = dataclasses.field(default_factory=dict)  # initial, final, iterations, ...
    metrics: dict = dataclasses.field(default_factory=dict)
    source: str | None = None  # the file an input came from


def monotone(values: Sequence[float], direction: str) -> bool:
    """Whether ``values`` strictly increase (``rising``) or decrease (``falling``) in order."""
    pairs = list(itertools.pairwise(values))
    if direction == "rising":
        return all(b > a for a, b in pairs)
    if direction == "falling":
        return all(b < a for a, b in pairs)
    raise ValueError(f"direction must be rising or falling, got {direction!r}")


def ratio_text(ratio: float) -> str:
    return f"{ratio:.0e}".replace("e-0", "e-").replace("e+0", "e+")


# --------------------------------------------------------------------------- one figure


class FigureRun:
    """One figure: its pictures, weights, runs, and finally its files."""

    def __init__(self, args, *, name: str, title: str, paper: str, needs: Sequence[Need],
                 argv: Sequence[str] = ()):
        self.started = time.perf_counter()
        self.args = args
        self.name = name
        self.title = title
        self.paper = paper
        self.argv = list(argv)
        self.size = config_lib.count(args.size, "--size", minimum=MIN_IMAGE_SIDE)
        self.iterations = config_lib.count(args.iterations, "--iterations", minimum=1)
        self.seed = config_lib.count(args.seed, "--seed")
        self.paths = locate(args, needs)
        self.needs = {need.key: need for need in needs}
        content_key = needs[0].key
        content = images.load_image(self.paths[content_key])
        self.shape = image_ops.output_shape(content.shape[0], content.shape[1], self.size)
        layers = ("conv4_2", *PAPER_STYLE_LAYERS)
        config_lib.check_memory(f"a {self.shape[1]}x{self.shape[0]} px figure",
                                budget.estimate_bytes(*self.shape, layers, args.optimizer),
                                args.max_memory)
        paths.check_output_folder(args.out, "figure output")
        self.weights = resolve_weights(args.weights, seed=self.seed)
        self.random = is_random(self.weights)
        self._device_params = None
        paths.prepare_output_folder(args.out, "figure output")
        self.out = args.out
        self.log(RANDOM_BANNER if self.random else f"weights: {self.weights.path or self.weights.source}")
        self.images = {content_key: image_ops.resize(content, self.shape)}
        for key, path in self.paths.items():
            if key != content_key and path is not None:
                self.images[key] = image_ops.resize(images.load_image(path), self.shape)
        self.runs: list[dict] = []
        self.log(f"{name}: {self.shape[1]}x{self.shape[0]} px, {self.iterations} {args.optimizer} "
                 f"iterations per result")

    # ---- logging and labels

    def log(self, line: str) -> None:
        if not self.args.quiet:
            print(line, file=sys.stderr, flush=True)

    @property
    def weights_label(self) -> str:
        if self.random:
            return "RANDOM WEIGHTS (not pretrained)"
        return f"weights {os.path.basename(str(self.weights.path or self.weights.source))}"

    def style_distances(self, pictures: Sequence[np.ndarray], style: np.ndarray,
                        layers: Sequence[str] = PAPER_STYLE_LAYERS) -> list[float]:
        """``metrics.style_gram_distances`` of ``pictures`` to ``style`` with this run's weights."""
        if self._device_params is None:  # copied to the device once, not per call
            self._device_params = jax.tree.map(jnp.asarray, self.weights.params)
        return metrics.style_gram_distances(self._device_params, pictures, style, layers,
                                            self.weights.convention, POOLING)

    def style_distance(self, picture: np.ndarray, style: np.ndarray) -> float:
        return self.style_distances([picture], style)[0]

    def input_panel(self, key: str, label: str | None = None) -> Panel:
        return Panel(self.images[key], label or self.needs[key].label, kind="input",
                     source=self.paths[key])

    # ---- runs

    def adapt(self, members: list[sweep.Member], *, content_layer: bool = True) -> list[sweep.Member]:
        """The paper's members as this run's weights need them.

        Pretrained weights: unchanged. Random weights: the ``random`` preset's balance
        rule (stylejax/_src/balance.py), each paper ratio r mapped to the balance
        ``presets.balance_for_ratio(r)``, the preset's w_l and TV balance; with ``content_layer``, the paper's conv4_2 becomes the
        preset's content layer (a random conv4_2 does not keep the photo's layout). A
        figure whose subject is the content layer passes ``content_layer=False``.
        """
        if not self.random:
            return list(members)
        preset = presets.PRESETS["random"]
        adapted = []
        for member in members:
            if content_layer and member.content_layer == "conv4_2":
                member = dataclasses.replace(member, content_layer=preset["content_layer"])
            balance = presets.balance_for_ratio(member.ratio) if member.content_layer else None
            adapted.append(member.balanced(balance, preset["tv_balance"],
                                           preset["style_layer_weights"] == presets.BALANCED))
        return adapted

    def sweep(self, label: str, members: list[sweep.Member], *, content_key: str = "content",
              style_key: str = "style") -> sweep.SweepResult:
        """One ``run_sweep`` of ``members`` on two of the loaded pictures."""
        self.log(f"{label}: sweep of {len(members)} members")
        count = len(members)

        def progress(done, total):
            self.log(f"{label}: {done}/{total} {'members' if total == count else 'iterations'}")

        result = sweep.run_sweep(
            self.images[content_key], self.images[style_key], members, self.weights,
            optimizer=self.args.optimizer, iterations=self.iterations, pooling=POOLING,
            mode=self.args.batch_mode, progress=signals.checking(None if self.args.quiet else progress),
            convolution=self.args.convolution, precision=self.args.precision,
        )
        if "interrupted" in result.statuses:
            raise KeyboardInterrupt
        for member, status in zip(members, result.statuses, strict=True):
            if status != "done":
                self.log(f"{label}: {member.describe()}: {status}")
        self.runs.append({"label": label, "runner": "run_sweep", "members": count, "mode": result.mode,
                          "seconds": result.seconds, "compile_seconds": result.compile_seconds,
                          "traces": result.traces, "executed_evaluations": result.executed_evaluations})
        self.log(f"{label}: {result.seconds:.1f} s + {result.compile_seconds:.1f} s compile, "
                 f"mode {result.mode}")
        return result

    def sweep_panels(self, result: sweep.SweepResult, labels: Sequence[str]) -> list[Panel]:
        return [
            Panel(result.images[k], labels[k], member=member.describe(), losses={
                "initial": result.initial[k], "final": result.final[k],
                "iterations": len(result.histories[k]) - 1, "evaluations": result.evaluations[k],
                "seconds": result.member_seconds[k], "history": result.histories[k],
            })
            for k, member in enumerate(result.members)
        ]

    def transfer(self, label: str, *, style_key: str | Sequence[str], ratio: float, init: str = "noise:0",
                 content_key: str = "content", output: str, color_control: str = "none",
                 histogram_match: str = "pca", mask_key: str | None = None,
                 scales: tuple[tuple[int, int], ...] = ()) -> Panel:
        """One paper-settings transfer (conv4_2; conv1_1..conv5_1, 1/5) with ``stylejax transfer``'s code
        (``color_control``: CVPR 2017 Sec. 5, stylejax/_src/colour.py). Several ``style_key``
        are blended equally, or with ``mask_key`` (a picture whose colours are regions)
        each styles its region (CVPR 2017 Sec. 4, stylejax/_src/guides.py). ``scales``:
        (size, iterations) pairs run coarse to fine instead of one size (CVPR 2017 Sec. 6).

        Successive transfers with the same settings and shape reuse one compilation.
        """
        init = sweep.parse_init(init)
        noise_seed = int(init.split(":")[1]) if init.startswith("noise:") else 0
        overrides = {
            "weights": self.args.weights, "size": self.size, "iterations": self.iterations,
            "optimizer": self.args.optimizer, "ratio": ratio, "content_layer": "conv4_2",
            "style_layers": PAPER_STYLE_LAYERS, "init": "noise" if init.startswith("noise") else init,
            "seed": noise_seed, "pooling": POOLING, "quiet": True, "preset": "paper",
            "color_control": color_control, "histogram_match": histogram_match,
            "content_mask": None if mask_key is None else self.paths[mask_key],
            "mask_method": getattr(self.args, "mask_method", None),
            "convolution": self.args.convolution, "precision": self.args.precision,
        }
        if scales:
            overrides.update(size=None, scales=tuple(size for size, _ in scales),
                             iterations=tuple(count for _, count in scales))
        if self.random:  # as adapt() does for sweeps
            preset = presets.PRESETS["random"]
            overrides.update(ratio=None, balance=presets.balance_for_ratio(ratio),
                             style_layer_weights=preset["style_layer_weights"],
                             tv_balance=preset["tv_balance"], content_layer=preset["content_layer"])
        keys = [style_key] if isinstance(style_key, str) else list(style_key)
        cfg = config_lib.resolve(self.paths[content_key], [self.paths[k] for k in keys], output, overrides)
        self.log(f"{label}: transfer")
        outcome = transfer_command.run_transfer(cfg, weights=self.weights)
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
        report = outcome.report
        self.runs.append({"label": label, "runner": "transfer", "members": 1, "mode": None,
                          "seconds": report["seconds"], "compile_seconds": report["compile_seconds"],
                          "traces": None, "executed_evaluations": report["evaluations"]})
        self.log(f"{label}: {report['seconds']:.1f} s + {report['compile_seconds']:.1f} s compile")
        member = {**sweep.Member(ratio=ratio, init=init).describe(), "color_control": color_control,
                  "histogram_match": histogram_match, "styles": keys, "content_mask": mask_key,
                  "scales": [list(pair) for pair in scales]}
        return Panel(outcome.image, label, member=member, losses={
            "initial": report["initial"], "final": report["final"], "iterations": report["iterations"],
            "evaluations": report["evaluations"], "seconds": report["seconds"],
            "history": report["history"],
        })

    def panel_path(self, row: int, column: int) -> str:
        return os.path.join(self.out, f"panel_r{row}c{column}.png")

    # ---- output

    def write(self, cells: list[list[Panel | None]], *, row_labels: list[str], column_labels: list[str],
              trends: dict, notes: Sequence[str] = (), config: dict | None = None) -> dict:
        """figure.png, the panel PNGs and results.json; returns the results."""
        metadata = {"Software": f"stylejax {__version__}", "stylejax:figure": self.name,
                    "stylejax:weights_sha256": self.weights.sha256,
                    "stylejax:random_weights": str(self.random)}
        inputs, members, files = [], [], []
        for r, row in enumerate(cells):
            files.append([])
            for c, panel in enumerate(row):
                if panel is None:
                    files[-1].append(None)
                    continue
                path = self.panel_path(r, c)
                images.save_png(path, panel.image, {**metadata, "stylejax:panel": panel.label,
                                                    "stylejax:member": str(panel.member)})
                files[-1].append(os.path.basename(path))
                record = {"row": r, "column": c, "label": panel.label, "image": os.path.basename(path)}
                if panel.kind == "input":
                    inputs.append({**record, "source": panel.source, "credit": credit(panel.source)})
                else:
                    members.append({**record, "config": panel.member, **panel.losses,
                                    "metrics": panel.metrics})
        title = f"{self.weights_label} | {self.title}"
        write_grid(os.path.join(self.out, FIGURE_FILE),
                   [[None if p is None else p.image for p in row] for row in cells],
                   row_labels=row_labels, column_labels=column_labels, title=title)
        total = time.perf_counter() - self.started
        credits = sorted({c for c in (credit(p) for p in self.paths.values()) if c})
        report = {
            "figure": self.name,
            "title": title,
            "paper": self.paper,
            "random_weights": self.random,
            "warning": RANDOM_BANNER if self.random else None,
            "weights": {**self.weights.describe(), "random": self.random, "requested": self.args.weights},
            "stylejax_version": __version__,
            "jax_version": jax.__version__,
            "device": transfer_lib.device_description(),
            "argv": self.argv,
            "config": {
                "size": self.size, "output_shape": list(self.shape), "iterations": self.iterations,
                "optimizer": self.args.optimizer, "batch_mode": self.args.batch_mode,
                "convolution": convolution.resolve(self.args.convolution), "precision": self.args.precision,
                "pooling": POOLING, "weights_seed": self.seed, "images": dict(self.paths),
                **(config or {}),
            },
            "figure_png": FIGURE_FILE,
            "grid": {"rows": len(cells), "columns": max(len(row) for row in cells),
                     "cell_shape": list(self.shape), "row_labels": row_labels,
                     "column_labels": column_labels, "panels": files},
            "inputs": inputs,
            "members": members,
            "trends": trends,
            "notes": list(notes),
            "credits": credits,
            "runtime": {
                "total_seconds": total,
                "optimise_seconds": sum(run["seconds"] for run in self.runs),
                "compile_seconds": sum(run["compile_seconds"] for run in self.runs),
                "runs": self.runs,
            },
        }
        atomic.atomic_write_json(os.path.join(self.out, RESULTS_FILE), report)
        for note in notes:
            self.log(f"note: {note}")
        for key, value in trends.items():
            if isinstance(value, bool):
                self.log(f"trend {key}: {value}")
        self.log(f"{self.name}: wrote {os.path.join(self.out, FIGURE_FILE)} and {RESULTS_FILE} "
                 f"in {total:.1f} s ({self.weights_label})")
        return report
