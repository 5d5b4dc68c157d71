"""The ``stylejax`` command line: a thin layer over the library.

Errors the user can cause print one line and exit with status 2 (``--debug`` shows the
traceback instead); Ctrl-C during optimisation keeps the current image and exits 130.
"""

from __future__ import annotations

import argparse
import sys

from stylejax._version import __version__
from stylejax.cli import signals
from stylejax.cli.exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR, leave

MAX_MEMORY_HELP = ("refuse a run estimated to need more than this many GiB (default: the "
                   "memory available now); none: no check")


COLOR_CONTROL_HELP = ("keep the photo's colours (CVPR 2017 Sec. 5): none (default), luminance "
                      "(the objective sees luminance only; the photo's chroma put back), histogram "
                      "(the painting's colours matched to the photo's first), original (the "
                      "result's luminance with the photo's chroma)")
HISTOGRAM_MATCH_HELP = "with --color-control histogram: pca (default), cholesky or sym"
CONVOLUTION_HELP = ("3x3 convolution path: auto (default: winograd on CPU, lax on GPU and TPU), lax, "
                    "direct or winograd (docs/convolution.md)")
TILE_HELP = ("evaluate the objective in tiles of N px (a multiple of 16 for the paper's layers): the same "
             "value and gradient in the memory of one tile, for large images (docs/method.md)")
PRECISION_HELP = ("float32 precision of the objective's products: highest (default), high or default "
                  "(TF32 or bfloat16 on accelerators; the same on CPU)")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line, not usage plus a message."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message}")


def _add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """Every transfer flag; None means "take the preset's value"."""
    add = parser.add_argument
    add("--weights", help="auto (pretrained file in the weights directory), random, or a PATH")
    add("--preset", help="settings to start from: paper (default), or random (the default "
                         "with --weights random)")
    add("--size", help="longest side of the output in px (paper: 512)")
    add("--iterations", help="optimiser iterations (paper: 500), or one count per --scales; 0 writes "
                             "the initial image")
    add("--scales", help="coarse to fine, e.g. 256,512: each size in turn, from the previous result "
                         "upsampled (instead of --size)")
    add("--optimizer", choices=("lbfgs", "adam"), help="lbfgs (paper) or adam")
    add("--lr", help="Adam step size in the weights' input space (default: 2%% of the RGB range)")
    add("--ratio", help="alpha/beta, content over style weight (paper: 1e-3)")
    add("--content-weight", dest="content_weight", help="alpha, instead of --ratio")
    add("--style-weight", dest="style_weight", help="beta, instead of --ratio")
    add("--balance", help="alpha from the pictures: balance * S(content) / L_content(style) "
                          "(random preset: 0.03), instead of --ratio")
    add("--content-layer", dest="content_layer", help="content layer (paper: conv4_2)")
    add("--style-layers", dest="style_layers", help="comma list (paper: conv1_1,...,conv5_1)")
    add("--style-layer-weights", dest="style_layer_weights",
        help="comma list, one per style layer (paper: 1/n), or balanced (w_l ~ 1/E_l(content))")
    add("--tv-weight", dest="tv_weight", help="total-variation weight (paper: 0)")
    add("--tv-balance", dest="tv_balance",
        help="TV weight from the pictures: X * S(content) / L_tv(content), instead of --tv-weight")
    add("--init", help="noise (paper), content, style, or an image PATH")
    add("--seed", help="seed of the noise init and of random weights (default 0)")
    add("--pooling", choices=("avg", "max"), help="avg (paper) or max")
    add("--style-blend", dest="style_blend", help="with several style images: their weights, e.g. "
                                                  "0.7,0.3 (normalised to sum 1; default equal)")
    add("--style-scale", dest="style_scale", help="each style image's longest side relative to the "
                                                  "output's (default: resized to the content's shape)")
    add("--content-mask", dest="content_mask",
        help="spatial control: a PNG over the content whose distinct colours, in ascending RGB "
             "order, are regions 1..R, styled by the style images in order")
    add("--style-masks", dest="style_masks",
        help="with --content-mask: comma list, one mask per style image (white: the part to take)")
    add("--mask-method", dest="mask_method", help="masks at each layer: simple (default) or inside")
    add("--color-control", dest="color_control", help=COLOR_CONTROL_HELP)
    add("--histogram-match", dest="histogram_match", help=HISTOGRAM_MATCH_HELP)
    add("--save-every", dest="save_every", help="also save the image every N iterations")
    add("--chunk", help="iterations per compiled chunk (default: measured per backend)")
    add("--convolution", help=CONVOLUTION_HELP)
    add("--precision", help=PRECISION_HELP)
    add("--tile", help=TILE_HELP)
    add("--report", help="write the JSON report here")
    add("--max-memory", dest="max_memory", help=MAX_MEMORY_HELP)
    add("--checkpoint", help="write the solver's whole state here when the run ends or is "
                             "interrupted (Ctrl-C, SIGTERM), to --resume it")
    add("--checkpoint-every", dest="checkpoint_every", help="also write the checkpoint every N iterations")
    add("--resume", help="continue the run saved in this checkpoint; --iterations stays the total")
    add("--quiet", action="store_true", default=None, help="no progress bar or messages")
    add("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stylejax", description="Gatys et al. (CVPR 2016) style transfer in JAX.")
    parser.add_argument("--version", action="version", version=f"stylejax {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    transfer = commands.add_parser("transfer", help="render CONTENT in the style of STYLE")
    transfer.add_argument("content", help="content image (photo)")
    transfer.add_argument("style", nargs="+", help="style image (painting); several are blended "
                                                   "(--style-blend)")
    transfer.add_argument("-o", "--output", required=True, help="output PNG")
    _add_transfer_options(transfer)

    demo = commands.add_parser("demo", help="the offline main job: a small transfer and its report")
    demo.add_argument("-o", "--out", default="demo-output", help="output folder (default demo-output)")
    demo.add_argument("--weights", default="auto-or-random",
                      help="pretrained weights if present, else seeded random ones; or random, or a PATH")
    demo.add_argument("--size", default=None, help="longest side in px (default 192)")
    demo.add_argument("--iterations", default=None,
                      help="L-BFGS iterations (default: the preset's; 150)")
    demo.add_argument("--offline", action="store_true",
                      help="never fetch weights (also STYLEJAX_OFFLINE=1): random weights unless "
                           "a pretrained file is present")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--debug", action="store_true", help="show tracebacks")

    sweep = commands.add_parser("sweep", help="many configurations of one pair in one compiled program")
    sweep_options = []  # every sweep argument, for a --distributed run's worker command line

    def add(*names, **kwargs):
        sweep_options.append(sweep.add_argument(*names, **kwargs))

    add("content")
    add("style", nargs="+", help="style image; several are blended (--style-blends)")
    add("-o", "--output", required=True, help="output folder")
    add("--preset", help="paper (default), or random (the default with --weights random)")
    add("--ratios", help="alpha/beta values on the paper's scale, comma list (default "
                         "1e-3; random preset: mapped to balances, see README)")
    add("--style-layer-sets", dest="style_layer_sets", default="conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
        help="sets separated by ';', layers by ',' (weights 1/n within a set; balanced in the random preset)")
    add("--content-layers", dest="content_layers", help="comma list (default: the preset's, conv4_2 or conv2_2)")
    add("--inits", help="comma list of content, style, noise:SEED (default: the preset's)")
    add("--tv-weights", dest="tv_weights", help="comma list (default: the preset's: 0, or its TV balance)")
    add("--style-blends", dest="style_blends",
        help="with several style images: blends separated by ';', one weight per "
             "image by ',', e.g. '1,0;0.5,0.5;0,1' (traced: one compilation)")
    add("--style-scale", dest="style_scale",
        help="each style image's longest side relative to the output's, its aspect ratio kept, for "
             "every member (default: resized to the content's shape); not with --content-mask")
    add("--content-mask", dest="content_mask",
        help="spatial control: a picture whose colours are regions, one per style image (in ascending "
             "RGB order); each member's --style-blends weight then weights its region")
    add("--style-masks", dest="style_masks",
        help="with --content-mask: comma list, one mask per style image (white: the part to take)")
    add("--mask-method", dest="mask_method", default="simple", choices=("simple", "inside"),
        help="masks at each layer: simple (default) or inside")
    add("--members", dest="members_file",
        help="a JSON list of members instead of the product, e.g. "
             '[{"ratio": 1e-3, "style_layers": ["conv1_1"], "init": "content"}]')
    add("--batch-mode", dest="batch_mode", default="auto", choices=("auto", "vmap", "map", "loop"))
    add("--batch-size", dest="batch_size",
        help="members per batch and device in map mode, or auto (the default): the largest batch whose "
             "estimated memory fits the device")
    add("--weights", default="auto")
    add("--size", help="longest side in px (default: the preset's)")
    add("--iterations", help="iterations (default: the preset's)")
    add("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    add("--lr")
    add("--pooling", default="avg", choices=("avg", "max"))
    add("--color-control", dest="color_control", default="none",
        choices=("none", "luminance", "histogram", "original"), help=COLOR_CONTROL_HELP)
    add("--histogram-match", dest="histogram_match", default="pca",
        choices=("pca", "cholesky", "sym"), help=HISTOGRAM_MATCH_HELP)
    add("--seed", default="0", help="seed of --weights random")
    add("--chunk")
    add("--convolution", help=CONVOLUTION_HELP)
    add("--precision", help=PRECISION_HELP)
    add("--tile", help=TILE_HELP)
    add("--max-memory", dest="max_memory", help=MAX_MEMORY_HELP)
    add("--overwrite", action="store_true",
        help="replace the files of an earlier sweep in the output folder (only those its results.json lists)")
    add("--distributed", action="store_true",
        help="one sweep over several processes and hosts (jax.distributed): run the same command in "
             "each; process 0 writes the files (docs/scaling.md)")
    add("--coordinator", help="with --distributed: process 0's HOST:PORT (default: the cluster's, "
                              "detected by JAX on SLURM, Open MPI, Cloud TPU, Kubernetes)")
    add("--num-processes", dest="num_processes", help="with --coordinator: the number of processes")
    add("--process-id", dest="process_id", help="with --coordinator: this process's id, 0 .. N-1")
    add("--distributed-timeout", dest="distributed_timeout",
        help="with --distributed: seconds to wait for every process to join, for a silent process, "
             "and at the end, before every process stops with one line (default 120)")
    add("--quiet", action="store_true")
    add("--debug", action="store_true")
    sweep.set_defaults(sweep_options=tuple(sweep_options))

    bench = commands.add_parser("bench", help="compile vs eager, image sizes, sweeps, and PyTorch side by side")
    bench.add_argument("-o", "--out", default="bench-output", help="output folder (default bench-output)")
    bench.add_argument("--tiny", action="store_true", help="seconds of work per section (the CI configuration)")
    bench.add_argument("--sections", default=None, help="comma-separated: modes,sizes,sweep,torch (default all)")
    bench.add_argument("--sizes", default=None, help="image sizes of the sizes section (default 64,128,256,512)")
    bench.add_argument("--size", default=None, help="image size of the modes section (default 128)")
    bench.add_argument("--iterations", default=None, help="iterations per timed solve in the modes section (default 20)")
    bench.add_argument("--repeats", default=None, help="timed repeats per row (default 3)")
    bench.add_argument("--sweep-members", default=None, help="sweep sizes K (default 1,4,16)")
    bench.add_argument("--sweep-size", default=None, help="image size of the sweep section (default 64)")
    bench.add_argument("--torch-sizes", default=None, help="image sizes of the PyTorch comparison (default 128,256)")
    bench.add_argument("--convolution", default="auto", help=CONVOLUTION_HELP)
    bench.add_argument("--weights", default="random", help="random (default) or a stylejax weights file")
    bench.add_argument("--max-memory", dest="max_memory", help=MAX_MEMORY_HELP)
    bench.add_argument("--quiet", action="store_true", help="tables only, no progress lines")
    bench.add_argument("--debug", action="store_true", help="show tracebacks")

    weights = commands.add_parser("weights", help="fetch, convert, normalise and inspect VGG19 weights")
    actions = weights.add_subparsers(dest="action", parser_class=_Parser, required=True)
    fetch = actions.add_parser("fetch", help="download a published VGG19, verify it, convert it")
    fetch.add_argument("--source", default="keras",
                       help="keras (default, 80 MB), torchvision, jcjohnson or pystiche")
    fetch.add_argument("-o", "--output", help="converted file (default: the weights directory's vgg19.h5)")
    convert = actions.add_parser("convert", help="convert a VGG19 file you have")
    convert.add_argument("src", help="Keras .h5, flaxmodels .h5, PyTorch .pth or MatConvNet .mat")
    convert.add_argument("-o", "--output", required=True, help="the stylejax weights file to write")
    convert.add_argument("--format", choices=("keras", "torch", "flaxmodels", "matconvnet"),
                         help="the source format (default: detected from the content)")
    convert.add_argument("--convention", choices=("caffe", "torchvision"),
                         help="input convention of a .pth in torchvision key layout")
    normalise = actions.add_parser("normalise", help="the paper's normalisation (mean activation 1)")
    normalise.add_argument("src", nargs="?", help="weights file (default: the weights directory's vgg19.h5)")
    normalise.add_argument("-o", "--output", help="default: the weights directory's vgg19_normalised.h5")
    normalise.add_argument("--images", help="calibration image folder, or 'builtin' (default: scikit-image's photos)")
    normalise.add_argument("--pooling", choices=("max", "avg"), default="max",
                           help="pooling while measuring (default max: the network as trained)")
    info = actions.add_parser("info", help="what a weights file holds")
    info.add_argument("file")
    for sub in (fetch, convert, normalise, info):
        sub.add_argument("--quiet", action="store_true", help="no progress or messages")
        sub.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _transfer(args, say) -> int:
    from stylejax.cli import config as config_lib
    from stylejax.cli import transfer
    from stylejax.cli.progress import ProgressBar

    overrides = {
        key: getattr(args, key)
        for key in (
            "weights", "preset", "size", "iterations", "optimizer", "lr", "ratio",
            "content_weight", "style_weight", "content_layer", "style_layers",
            "style_layer_weights", "tv_weight", "balance", "tv_balance", "init", "seed", "pooling", "save_every",
            "chunk", "report", "quiet", "max_memory", "color_control", "histogram_match", "scales",
            "checkpoint", "checkpoint_every", "resume", "style_blend", "style_scale",
            "content_mask", "style_masks", "mask_method", "convolution", "precision", "tile",
        )
    }
    cfg = config_lib.resolve(args.content, args.style, args.output, overrides)
    if cfg.weights == "auto" and not cfg.quiet:
        _offer_fetch(say)
    bar = ProgressBar(cfg.iterations, cfg.quiet)
    try:
        outcome = transfer.run_transfer(cfg, progress=bar, log=say)
    finally:
        bar.close()
    if outcome.status == "interrupted":
        print(f"stylejax transfer: interrupted after {outcome.report['iterations']} iterations; "
              f"the current image is in {outcome.output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    report = outcome.report
    say(f"wrote {outcome.output}: loss {report['initial']['total']:.4g} -> "
        f"{report['final']['total']:.4g} in {report['iterations']} iterations "
        f"({report['evaluations']} evaluations, {report['seconds']:.1f} s + "
        f"{report['compile_seconds']:.1f} s compile)")
    return 0


def _offer_fetch(say) -> None:
    """At a terminal, offers to download the default weights when none are present."""
    from stylejax._src.weights import weights_commands, weights_file

    if weights_file.find_pretrained() is not None or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return
    print(f"No pretrained VGG19 weights in {weights_file.weights_dir()}. Download the Keras "
          "VGG19 (80 MB) now? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        weights_commands.fetch("keras", log=say)


def _demo(args, say) -> int:
    from stylejax.cli import demo

    result = demo.run_demo(
        out_dir=args.out, weights=args.weights, size=args.size, iterations=args.iterations,
        quiet=args.quiet, offline=args.offline, log=say,
    )
    return EXIT_INTERRUPTED if result.status == "interrupted" else 0


def _bench(args, say) -> int:
    import dataclasses

    from stylejax.bench import bench
    from stylejax.cli import config as config_lib

    cfg = bench.TINY if args.tiny else bench.BenchConfig()
    changes = {}
    if args.sections:
        changes["sections"] = tuple(part.strip() for part in args.sections.split(","))
    if args.sizes:
        changes["sizes"] = bench.parse_sizes(args.sizes, "--sizes")
    if args.size:
        changes["modes_size"] = config_lib.count(args.size, "--size", minimum=16)
    if args.iterations:
        changes["iterations"] = config_lib.count(args.iterations, "--iterations", minimum=1)
    if args.repeats:
        changes["repeats"] = config_lib.count(args.repeats, "--repeats", minimum=1)
    if args.sweep_members:
        changes["sweep_members"] = bench.parse_counts(args.sweep_members, "--sweep-members")
    if args.sweep_size:
        changes["sweep_size"] = config_lib.count(args.sweep_size, "--sweep-size", minimum=16)
    if args.torch_sizes:
        changes["torch_sizes"] = bench.parse_sizes(args.torch_sizes, "--torch-sizes")
    cfg = dataclasses.replace(cfg, convolution=args.convolution, weights=args.weights,
                              max_memory=args.max_memory, **changes)
    bench.run(cfg, args.out, log=say)
    return 0


def _weights(args, say) -> int:
    from stylejax._src.weights import weights_commands

    if args.action == "fetch":
        weights_commands.fetch(args.source, args.output, progress=not args.quiet, log=say)
    elif args.action == "convert":
        weights_commands.convert(args.src, args.output, fmt=args.format, convention=args.convention, log=say)
    elif args.action == "normalise":
        weights_commands.normalise_file(args.src, args.output, images_dir=args.images,
                                        pooling=args.pooling, log=say)
    else:
        for line in weights_commands.info(args.file):
            print(line)
    return 0


def _sweep(args, say) -> int:
    import os

    from stylejax._src import distributed as distributed_lib
    from stylejax._src.errors import InvalidSetting, UserError

    distributed = None
    manual = [f"--{n.replace('_', '-')}" for n in ("coordinator", "num_processes", "process_id",
                                                   "distributed_timeout") if getattr(args, n) is not None]
    if manual and not args.distributed:
        raise UserError(f"{manual[0]} needs --distributed")
    if args.distributed:  # checked without loading JAX: the supervising process never does
        try:
            distributed = distributed_lib.settings(args.coordinator, args.num_processes, args.process_id,
                                                   args.distributed_timeout)
        except InvalidSetting as error:
            raise UserError(error.named(lambda n: f"--{n.replace('_', '-')}")) from None
        messages = distributed_lib.worker_messages()
        if messages is None:
            # This process supervises; a child runs the sweep, so that JAX's runtime ending
            # it (a lost peer, an unreachable coordinator) is still one line and status 2.
            options, positionals = [], []
            for action in args.sweep_options:
                value = getattr(args, action.dest, None)
                if not action.option_strings:
                    positionals += [value] if isinstance(value, str) else list(value)
                elif action.nargs == 0:
                    options += [action.option_strings[-1]] if value else []
                elif value is not None and value != action.default:
                    options.append(f"{action.option_strings[-1]}={value}")
            command = [sys.executable, "-m", "stylejax", "sweep", *options, "--", *positionals]
            try:
                return distributed_lib.supervise(command, distributed, debug=args.debug)
            except distributed_lib.DistributedFailure as error:
                if args.debug:
                    raise
                # Printed here: the generic handler would load JAX first, seconds late.
                print(f"stylejax sweep: error: {error}", file=sys.stderr)
                return EXIT_USER_ERROR
        # The supervised child: its messages go to the parent's stderr, JAX's C++ log to the parent.
        sys.stderr = os.fdopen(messages, "w", buffering=1, errors="backslashreplace")
        distributed_lib.follow_parent()
    try:
        return _sweep_run(args, say, distributed)
    except BaseException as error:
        if distributed is not None:  # stop alone, at once: do not wait for the others at exit
            distributed_lib.abandon(EXIT_USER_ERROR if isinstance(error, (UserError, InvalidSetting)) else 1)
        raise


def _sweep_run(args, say, distributed) -> int:
    from stylejax._src import presets, sweep
    from stylejax.cli import config as config_lib
    from stylejax.cli import sweep_commands

    given = {"preset": args.preset, "weights": args.weights}
    preset_name, reason = config_lib.choose_preset({k: v for k, v in given.items() if v})
    preset = presets.PRESETS[preset_name]
    if args.members_file:
        members = sweep_commands.read_members(args.members_file)
    else:
        members = sweep.product(
            ratios=sweep_commands.parse_ratios(args.ratios or str(presets.PRESETS["paper"]["ratio"])),
            style_layer_sets=sweep_commands.parse_style_layer_sets(args.style_layer_sets),
            content_layers=sweep_commands.parse_content_layers(args.content_layers or preset["content_layer"]),
            inits=sweep_commands.parse_inits(args.inits or preset["init"]),
            tv_weights=sweep_commands.parse_tv_weights(args.tv_weights or str(preset["tv_weight"] or 0)),
            style_blends=(sweep_commands.parse_style_blends(args.style_blends) if args.style_blends
                          else (None,)),
        )
    if preset["balance"] is not None:
        tv_balance = None if args.tv_weights else preset["tv_balance"]
        balanced_layers = preset["style_layer_weights"] == presets.BALANCED
        members = [m.balanced(presets.balance_for_ratio(m.ratio, preset_name), tv_balance,
                              balanced_layers) for m in members]
    batch_size = args.batch_size
    if batch_size is not None and batch_size.strip().lower() != "auto":
        batch_size = config_lib.count(batch_size, "--batch-size", 1)
    report = sweep_commands.run_sweep_command(
        args.content, args.style, args.output, members=members, weights=args.weights,
        size=config_lib.count(args.size or preset["size"], "--size", minimum=16),
        iterations=config_lib.count(args.iterations or preset["iterations"], "--iterations"),
        optimizer=args.optimizer,
        lr=None if args.lr is None else config_lib.positive_finite(args.lr, "--lr"),
        pooling=args.pooling, seed=config_lib.count(args.seed, "--seed"), mode=args.batch_mode,
        batch_size=None if batch_size is None else (batch_size if isinstance(batch_size, int) else "auto"),
        chunk=None if args.chunk is None else config_lib.count(args.chunk, "--chunk", 1),
        preset=(preset_name, reason), overwrite=args.overwrite, max_memory=args.max_memory,
        color_control=args.color_control, histogram_match=args.histogram_match,
        convolution=args.convolution, precision=args.precision, log=say, distributed=distributed,
        content_mask=args.content_mask, mask_method=args.mask_method,
        style_masks=tuple(p.strip() for p in (args.style_masks or "").split(",") if p.strip()),
        style_scale=None if args.style_scale is None else config_lib.positive_finite(args.style_scale,
                                                                                      "--style-scale"),
        tile=None if args.tile is None else config_lib.count(args.tile, "--tile", 1),
    )
    statuses = [member["status"] for member in report["members"]]
    for index, status in enumerate(statuses):
        if status != "done":
            print(f"stylejax sweep: member {index}: {status}; its image is the last finite one"
                  if status.startswith("non-finite") else f"stylejax sweep: member {index}: {status}",
                  file=sys.stderr)
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    # A member that did not finish is a failed run, as a transfer's non-finite objective is.
    return 0 if all(status == "done" for status in statuses) else EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        print(f"{error}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR

    quiet = bool(getattr(args, "quiet", False))

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    with signals.handled() as received:
        code = _run(args, say, debug)
    if code == EXIT_INTERRUPTED and received.terminated:
        return EXIT_TERMINATED
    return code


def _run(args, say, debug: bool) -> int:
    """Runs the command; a user error becomes one line and status 2, an interruption
    (Ctrl-C, or SIGTERM through it) status 130, wherever it strikes: the imports (JAX's
    take seconds) included."""
    try:
        return _dispatch(args, say)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"stylejax {args.command}: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        from stylejax._src.errors import InvalidSetting, UserError
        from stylejax.cli.config import flag

        if debug or not isinstance(error, (UserError, InvalidSetting)):
            raise
        message = error.named(flag) if isinstance(error, InvalidSetting) else error
        print(f"stylejax {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


def _dispatch(args, say) -> int:
    if args.command == "transfer":
        return _transfer(args, say)
    if args.command == "weights":
        return _weights(args, say)
    if args.command == "sweep":
        return _sweep(args, say)
    if args.command == "bench":
        return _bench(args, say)
    return _demo(args, say)


def console_main() -> None:
    """The ``stylejax`` executable: :func:`main`, then the exit (:func:`exit_codes.leave`)."""
    leave(main())


if __name__ == "__main__":
    console_main()
