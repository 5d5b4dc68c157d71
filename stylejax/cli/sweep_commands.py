"""``stylejax sweep``: parse the sweep axes, run them, write the grid and the results."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import types

import jax

from stylejax._src import budget, guides, image_ops, presets, sweep, tiling
from stylejax._src import convolution as convolution_lib
from stylejax._src import distributed as distributed_lib
from stylejax._src import layers as vgg_layers
from stylejax._src import settings as settings_lib
from stylejax._src import transfer as transfer_lib
from stylejax._src.errors import InvalidSetting, UserError
from stylejax._src.files import atomic, images, paths
from stylejax._src.transfer import device_description
from stylejax._src.weights.weights_source import RANDOM_BANNER, is_random, resolve_weights
from stylejax._version import __version__
from stylejax.cli import config as config_lib
from stylejax.cli import signals
from stylejax.cli import transfer as transfer_cli
from stylejax.cli.grid import write_grid

# A members file is a short list; anything larger is not one.
_MEMBERS_MAX_BYTES = 16 * 2**20
AXES = ("ratio", "style_layers", "content_layer", "init", "tv_weight", "style_blend")


def parse_ratios(text: str) -> tuple[float, ...]:
    return tuple(config_lib.positive_finite(p, "each --ratios value") for p in text.split(",") if p.strip())


def parse_style_layer_sets(text: str) -> tuple[tuple[str, ...], ...]:
    """``conv1_1;conv1_1,conv2_1``: sets separated by ``;``, layers by ``,``."""
    sets = tuple(vgg_layers.parse_layer_list(part) for part in text.split(";") if part.strip())
    if not sets:
        raise UserError(f"no style layer set in {text!r}")
    return sets


def parse_content_layers(text: str) -> tuple[str, ...]:
    return vgg_layers.parse_layer_list(text)


def parse_inits(text: str) -> tuple[str, ...]:
    return tuple(sweep.parse_init(part) for part in text.split(",") if part.strip())


def parse_style_blends(text: str) -> tuple[tuple[float, ...], ...]:
    """``1,0;0.5,0.5;0,1``: blends separated by ``;``, one weight per style image by ``,``."""
    blends = []
    for part in (p for p in text.split(";") if p.strip()):
        weights = tuple(config_lib.non_negative_finite(w, "each --style-blends weight")
                        for w in part.split(",") if w.strip())
        try:
            blends.append(sweep.normalised_blend(weights))
        except InvalidSetting as error:
            raise UserError(f"--style-blends: {error}") from None
    if not blends:
        raise UserError(f"no blend in --style-blends {text!r}")
    return tuple(blends)


def parse_tv_weights(text: str) -> tuple[float, ...]:
    return tuple(config_lib.non_negative_finite(p, "each --tv-weights value") for p in text.split(",") if p.strip())


_MEMBER_KEYS = ("ratio", "style_layers", "style_layer_weights", "content_layer", "init", "tv_weight",
                "style_blend")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _member(entry: dict, where: str) -> sweep.Member:
    """One JSON entry as a Member, every key checked by type, then by value; missing keys
    take the paper's values. ``where`` names the file and entry in errors."""
    unknown = sorted(set(entry) - set(_MEMBER_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown keys {unknown}; expected some of {', '.join(_MEMBER_KEYS)}")

    def wrong(key: str, expected: str) -> UserError:
        value = json.dumps(entry[key])
        return UserError(f"{where}, key {key!r}: expected {expected}, got {value[:60]}")

    for key in ("ratio", "tv_weight"):
        if key in entry and not _is_number(entry[key]):
            raise wrong(key, "a number")
    if "style_layers" in entry:
        layers = entry["style_layers"]
        if isinstance(layers, str):
            raise wrong("style_layers", f"a list of layer names such as [{json.dumps(layers)}]")
        if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
            raise wrong("style_layers", "a list of layer names")
        if not layers:
            raise wrong("style_layers", "at least one layer")
    weights = entry.get("style_layer_weights")
    if weights is not None and (not isinstance(weights, list) or not all(_is_number(w) for w in weights)):
        raise wrong("style_layer_weights", "a list of numbers, one per style layer, or null")
    if entry.get("content_layer") is not None and not isinstance(entry["content_layer"], str):
        raise wrong("content_layer", "a layer name or null")
    blend = entry.get("style_blend")
    if blend is not None and (not isinstance(blend, list) or not all(_is_number(w) for w in blend)):
        raise wrong("style_blend", "a list of numbers, one per style image, or null")
    if "init" in entry and not isinstance(entry["init"], str):
        raise wrong("init", 'a string: "content", "style" or "noise:SEED"')

    defaults = sweep.Member()
    try:
        style_layers = vgg_layers.parse_layer_list(",".join(entry.get("style_layers", defaults.style_layers)))
        if weights is not None:
            weights = tuple(config_lib.positive_finite(w, "each style_layer_weights value") for w in weights)
            if len(weights) != len(style_layers):
                raise UserError(f"{len(weights)} style_layer_weights for {len(style_layers)} style layers")
        content_layer = entry.get("content_layer", defaults.content_layer)
        return sweep.Member(
            ratio=config_lib.positive_finite(entry.get("ratio", defaults.ratio), "ratio"),
            style_layers=style_layers,
            style_layer_weights=weights,
            content_layer=None if content_layer is None else vgg_layers.canonical_name(content_layer),
            init=sweep.parse_init(entry.get("init", defaults.init)),
            tv_weight=config_lib.non_negative_finite(entry.get("tv_weight", 0.0), "tv_weight"),
            style_blend=None if blend is None else sweep.normalised_blend(blend),
        )
    except (UserError, InvalidSetting) as error:
        raise UserError(f"{where}: {error}") from None


def read_members(path: str) -> list[sweep.Member]:
    """An explicit list of members from a JSON file (missing keys: the paper's values).

    Raises:
      UserError: not a readable regular file, not UTF-8 JSON, not a non-empty list of
        objects, or an entry with an unknown key or a value of the wrong type or range
        (the entry and key named).
    """
    paths.check_input_file(path, "members file")
    try:
        with open(path, "rb") as handle:
            text = handle.read(_MEMBERS_MAX_BYTES + 1)
    except OSError as error:
        raise UserError(f"cannot read members file {path}: {os.strerror(error.errno or 0)}") from None
    if len(text) > _MEMBERS_MAX_BYTES:
        raise UserError(f"members file {path} is over {_MEMBERS_MAX_BYTES // 2**20} MiB")
    try:
        entries = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UserError(f"members file {path} is not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise UserError(f"members file {path} is not valid JSON: {error}") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"members file {path} must hold a non-empty JSON list of objects")
    return [_member(entry, f"members file {path}, entry {number}") for number, entry in enumerate(entries)]


def _value_text(axis: str, member: sweep.Member) -> str:
    value = getattr(member, axis)
    if axis == "style_layers":
        return "+".join(value)
    if axis == "style_blend":
        return "equal" if value is None else "/".join(f"{w:g}" for w in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def grid_layout(members: list[sweep.Member]):
    """Columns: the last axis that varies; rows: the others. Returns (cells index, labels)."""
    varied = [axis for axis in AXES if len({_value_text(axis, m) for m in members}) > 1]
    column_axis = varied[-1] if varied else None
    row_axes = varied[:-1]
    column_values = list(dict.fromkeys(_value_text(column_axis, m) for m in members)) if column_axis else [""]
    row_keys = list(dict.fromkeys(tuple(_value_text(a, m) for a in row_axes) for m in members))
    layout = [[None] * len(column_values) for _ in row_keys]
    for index, member in enumerate(members):
        row = row_keys.index(tuple(_value_text(a, member) for a in row_axes))
        column = column_values.index(_value_text(column_axis, member)) if column_axis else 0
        layout[row][column] = index
    row_labels = ["; ".join(f"{a}={v}" for a, v in zip(row_axes, key, strict=True)) for key in row_keys]
    column_labels = [f"{column_axis}={v}" for v in column_values] if column_axis else ["result"]
    return layout, row_labels, column_labels


def write_results(out_dir: str, result: sweep.SweepResult, *, config: dict, weights_info: dict,
                  title: str) -> dict:
    """grid.png, member_NNN.png, results.json and results.csv in ``out_dir``."""
    metadata = {"Software": f"stylejax {__version__}", "stylejax:weights_sha256": weights_info["sha256"],
                "stylejax:sweep_config": json.dumps(config, sort_keys=True)}
    member_rows = []
    for index, member in enumerate(result.members):
        name = member_image_name(index)
        images.save_png(os.path.join(out_dir, name), result.images[index],
                        {**metadata, "stylejax:member": str(member.describe())})
        member_rows.append({
            "index": index,
            "image": name,
            "status": result.statuses[index],
            "config": member.describe(),
            "initial": result.initial[index],
            "final": result.final[index],
            "history": result.histories[index],
            "iterations": max(len(result.histories[index]) - 1, 0),
            "evaluations": result.evaluations[index],
            "seconds": result.member_seconds[index],
        })
    layout, row_labels, column_labels = grid_layout(result.members)
    cells = [[None if i is None else result.images[i] for i in row] for row in layout]
    # A member that did not finish is marked in its cell's label.
    marks = [[None if i is None or result.statuses[i] == "done" else result.statuses[i] for i in row]
             for row in layout]
    write_grid(os.path.join(out_dir, "grid.png"), cells, row_labels=row_labels,
               column_labels=column_labels, title=title,
               cell_labels=marks if any(m for row in marks for m in row) else None)
    report = {
        "stylejax_version": __version__,
        "config": config,
        "weights": weights_info,
        "mode": result.mode,
        "batch_size": result.batch_size,
        "devices": result.devices,
        "processes": result.processes,
        "traces": result.traces,
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "executed_evaluations": result.executed_evaluations,
        "device": device_description(),
        "jax_version": jax.__version__,
        "members": member_rows,
    }
    atomic.atomic_write_json(os.path.join(out_dir, "results.json"), report)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    style_layers = sorted({n for row in member_rows for n in row["final"]["style"]},
                          key=vgg_layers.SEQUENCE.index)
    writer.writerow(["index", "image", *AXES, "initial_total", "final_total", "final_content",
                     *[f"final_style_{n}" for n in style_layers], "iterations", "evaluations", "seconds"])
    for row, member in zip(member_rows, result.members, strict=True):
        writer.writerow([row["index"], row["image"], *(_value_text(a, member) for a in AXES),
                         row["initial"]["total"], row["final"]["total"], row["final"]["content"],
                         *[row["final"]["style"].get(n, "") for n in style_layers],
                         row["iterations"], row["evaluations"], f"{row['seconds']:.3f}"])
    atomic.atomic_write_bytes(os.path.join(out_dir, "results.csv"), buffer.getvalue().encode())
    return report


FIXED_FILES = ("grid.png", "results.json", "results.csv")


def member_image_name(index: int) -> str:
    return f"member_{index:03d}.png"


def earlier_sweep_files(out_dir: str) -> list[str] | None:
    """The files an earlier stylejax sweep wrote in ``out_dir``, as its results.json lists
    them (its member images and the fixed files); None if there is no readable one."""
    path = os.path.join(out_dir, "results.json")
    try:
        paths.check_input_file(path, "results file")
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        if "stylejax_version" not in report:
            return None
        names = [row["image"] for row in report["members"]]
    except (UserError, OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None
    if not all(isinstance(n, str) and n == os.path.basename(n) and n.endswith(".png") for n in names):
        return None
    return [*FIXED_FILES, *names]


def check_sweep_folder(out_dir: str, members: int, overwrite: bool, inputs: dict[str, str]) -> list[str]:
    """Checks the output folder before the sweep runs; returns the earlier sweep's files to
    remove once the new results are written (``--overwrite``).

    A folder that does not exist or is empty is fine. One that holds files is refused,
    unless ``overwrite``: then every file this sweep will write must be absent or one an
    earlier sweep wrote (listed in its results.json), and only those are removed.

    Raises:
      UserError: the folder cannot be written, is not empty (without ``overwrite``), holds
        a file the sweep would overwrite that no earlier sweep wrote, or holds an input.
    """
    paths.check_output_folder(out_dir, "sweep output")
    if not os.path.isdir(out_dir):
        return []
    present = sorted(os.listdir(out_dir))
    if not present:
        return []
    if not overwrite:
        raise UserError(f"sweep output folder {out_dir} is not empty ({len(present)} entries); "
                        "choose a new folder, or --overwrite to replace an earlier sweep's files")
    earlier = earlier_sweep_files(out_dir)
    if earlier is None:
        raise UserError(f"sweep output folder {out_dir} holds no earlier sweep's results.json; "
                        "--overwrite replaces only files a sweep wrote: choose a new folder")
    ours = {*FIXED_FILES, *(member_image_name(k) for k in range(members))}
    foreign = sorted(n for n in ours & set(present) if n not in earlier)
    if foreign:
        raise UserError(f"{os.path.join(out_dir, foreign[0])} was not written by the earlier sweep "
                        "in that folder; refusing to overwrite it")
    for role, source in inputs.items():
        for name in sorted(ours | set(earlier)):
            target = os.path.join(out_dir, name)
            if os.path.lexists(target) and paths.same_file(target, source):
                raise UserError(f"the {role} {source} is {target}, a file the sweep would "
                                "replace; move it out of the folder first")
    return [n for n in earlier if n not in ours and os.path.isfile(os.path.join(out_dir, n))]


def compute_options(convolution: str | None, precision: str | None) -> dict:
    """``--convolution`` and ``--precision`` checked (settings.compute_options)."""
    try:
        chosen = settings_lib.compute_options(convolution, precision)
    except InvalidSetting as error:
        raise config_lib.user_error(error) from None
    return dict(zip(("convolution", "precision"), chosen, strict=True))


@contextlib.contextmanager
def _distributed_errors(distributed: distributed_lib.Settings | None):
    """A lost peer or a refused ``jax.distributed`` set-up as the one-line UserError."""
    if distributed is None:
        yield
        return
    try:
        with distributed_lib.failures(distributed):
            yield
    except distributed_lib.DistributedFailure as error:
        raise UserError(str(error)) from None


def sweep_flag(name: str) -> str:
    """A library setting as the sweep's flag: ``batch_size`` -> ``--batch-size``."""
    return f"--{name.replace('_', '-')}"


def plan_memory(mode: str, members: int, batch_size: int | str | None, optimizer: str, *, devices: int,
                shape: tuple[int, int], layers, chunk: int, max_memory: str | None) -> tuple[int | None, int]:
    """``map``'s batch (``auto`` or not given: the largest that fits, see
    :func:`sweep.auto_batch`) and the members this process computes at once, for the
    memory check. ``devices``: those the members are sharded over. On the CPU the
    process's devices share the host's memory; an accelerator has its own.
    """
    resolved = sweep.default_mode(jax.default_backend(), optimizer) if mode == "auto" else mode
    per_device = math.ceil(members / devices) if resolved != "loop" else members
    shared = len(jax.local_devices()) if jax.default_backend() == "cpu" and resolved != "loop" else 1
    batch = None
    if resolved == "map":
        if batch_size in (None, "auto"):
            limit = config_lib.memory_limit(max_memory)
            limit = None if limit is None else limit / shared
            batch = distributed_lib.agree_min(sweep.auto_batch(
                per_device, shape[0], shape[1], layers, optimizer, chunk=chunk, limit=limit))
        else:
            batch = int(batch_size)
    in_flight = {"vmap": per_device, "map": batch}.get(resolved, 1)
    return batch, in_flight * shared


def run_sweep_command(content: str, style: str, out_dir: str, *, members: list[sweep.Member],
                      weights: str, size: int, iterations: int, optimizer: str, lr: float | None,
                      pooling: str, seed: int, mode: str, batch_size: int | None, chunk: int | None,
                      preset: tuple[str, str] = ("paper", "the default"), overwrite: bool = False,
                      max_memory: str | None = None, color_control: str = "none",
                      histogram_match: str = "pca", convolution: str | None = None,
                      precision: str | None = None, log=print, progress=None,
                      distributed: distributed_lib.Settings | None = None,
                      content_mask: str | None = None, style_masks: tuple[str, ...] = (),
                      mask_method: str = "simple", style_scale: float | None = None,
                      tile: int | None = None) -> dict:
    """Checks everything, runs the sweep, writes its files (:func:`write_results`).

    Nothing is written, and no folder created, before the run: a bad input, an output
    folder that is not empty (without ``overwrite``) or a run too large for the memory is
    refused first.

    ``batch_size``: ``map``'s members per batch and device, or ``auto`` (also when not
    given): the largest batch that fits the memory.

    ``distributed``: join the other processes (jax.distributed) once the inputs are
    read, shard the members over every process's devices, and write the files from
    process 0 only (the others return the members' statuses, and write nothing).

    ``content_mask``, ``style_masks``, ``mask_method``: spatial control, as ``stylejax
    transfer`` reads and checks them (stylejax/cli/transfer.py ``load_masks``,
    stylejax/_src/transfer.py ``prepare_guides``), checked before anything runs; each
    member's style blend then weights the regions.

    ``style_scale``: each style image's longest side relative to the output's, its own
    aspect ratio kept (as ``stylejax transfer --style-scale``), for every member; resized
    from the pictures as read. Not with ``content_mask``.
    """
    style_paths = tuple(style) if isinstance(style, (list, tuple)) else (style,)
    inputs = {"content image": content,
              **{"style image" if k == 0 else f"style image {k + 1}": p for k, p in enumerate(style_paths)}}
    if content_mask is not None:
        inputs["content mask"] = content_mask
    inputs.update({f"style mask {k + 1}": path for k, path in enumerate(style_masks)})
    if weights not in ("auto", "random"):
        inputs["weights file"] = weights
    if mask_method not in guides.GUIDE_METHODS:
        raise UserError(f"unknown --mask-method {mask_method!r}: expected one of {', '.join(guides.GUIDE_METHODS)}")
    if style_scale is not None and content_mask is not None:  # as stylejax transfer refuses it
        raise UserError(transfer_lib.NO_SCALE_WITH_MASK)
    counts = sorted({len(m.style_blend) for m in members if m.style_blend is not None} - {len(style_paths)})
    if counts:
        raise UserError(f"a style blend has {counts[0]} weights for {len(style_paths)} style images")
    solver_options = compute_options(convolution, precision)
    if distributed is None:
        stale = check_sweep_folder(out_dir, len(members), overwrite, inputs)
    content_rgb = images.load_image(content)
    style_rgbs = [images.load_image(path) for path in style_paths]
    try:
        shape = image_ops.output_shape(content_rgb.shape[0], content_rgb.shape[1], size)
        if style_scale is not None:  # every style image's scaled shape checked before the run
            for picture in style_rgbs:
                transfer_lib.scaled_style_shape(picture.shape, shape, style_scale)
    except InvalidSetting as error:
        raise config_lib.user_error(error) from None
    # The masks read and checked as the transfer command does, at the output shape.
    mask_labels, mask_guides = transfer_cli.load_masks(
        types.SimpleNamespace(content_mask=content_mask, style_masks=tuple(style_masks)), len(style_paths))
    region_guides, own_guides = None, None
    if mask_labels is not None:
        try:
            region_guides, own_guides = transfer_lib.prepare_guides(content_rgb.shape, style_rgbs, shape,
                                                                    mask_labels, mask_guides)
        except InvalidSetting as error:
            raise config_lib.user_error(error) from None
    mesh, writer = None, True
    if distributed is not None:  # before JAX computes anything; the folder is process 0's
        try:
            with _distributed_errors(distributed):
                distributed_lib.initialize(distributed)
        except InvalidSetting as error:  # no cluster detected, and no coordinator given
            raise UserError(error.named(sweep_flag)) from None
        writer = jax.process_index() == 0
        stale = check_sweep_folder(out_dir, len(members), overwrite, inputs) if writer else []
        mesh = distributed_lib.global_mesh()
    layers = {n for m in members for n in m.style_layers} | {m.content_layer for m in members if m.content_layer}
    if tile is not None:
        try:
            tile = tiling.check_tile(tile, layers)
        except InvalidSetting as error:
            raise config_lib.user_error(error) from None
    chunk_length = min(chunk or 1, max(iterations, 1))
    requested_batch = batch_size  # as given: a number, auto, or None (map: auto)
    with _distributed_errors(distributed):
        batch_size, in_flight = plan_memory(
            mode, len(members), batch_size, optimizer,
            devices=mesh.size if mesh is not None else len(jax.local_devices()), shape=shape,
            layers=layers, chunk=chunk_length, max_memory=max_memory)
    needed = budget.estimate_bytes(shape[0], shape[1], layers, optimizer, members=len(members),
                                   members_in_flight=in_flight, chunk=chunk_length, tile=tile)
    config_lib.check_memory(f"a sweep of {len(members)} members at {shape[1]}x{shape[0]} px",
                            needed, max_memory, tiles=True)
    loaded = resolve_weights(weights, seed=seed)
    signals.raise_if_interrupted()
    if is_random(loaded):
        log(RANDOM_BANNER)
    where = f", {jax.process_count()} processes" if distributed is not None else ""
    log(f"sweep: {len(members)} members at {shape[1]}x{shape[0]} px, {iterations} {optimizer} iterations{where}")
    try:
        with _distributed_errors(distributed):
            # The style pictures at the output's shape, or, with a style scale, as read: run_sweep
            # resizes each from its original to its own scaled shape.
            fitted = tuple(p if style_scale is not None else image_ops.resize(p, shape) for p in style_rgbs)
            result = sweep.run_sweep(
                image_ops.resize(content_rgb, shape), fitted if len(fitted) > 1 else fitted[0], members,
                loaded, content_mask=region_guides, style_masks=own_guides, mask_method=mask_method,
                style_scale=style_scale, tile=tile,
                optimizer=optimizer, iterations=iterations, pooling=pooling, lr=lr, mode=mode,
                batch_size=batch_size, chunk_size=chunk, progress=signals.checking(progress),
                color_control=color_control, histogram_match=histogram_match, mesh=mesh, **solver_options,
            )
    except sweep.OutOfMemory as error:
        raise UserError(error.named(sweep_flag)) from None
    if not writer:
        log(f"sweep: process {jax.process_index()} of {jax.process_count()} done; process 0 writes {out_dir}/")
        return {"members": [{"status": status} for status in result.statuses], "written": False}
    config = {"content": content, "style": style_paths[0], "styles": list(style_paths), "size": size,
              "output_shape": list(shape),
              "iterations": iterations, "optimizer": optimizer, "lr": lr, "pooling": pooling,
              "weights": weights, "seed": seed, "batch_mode": mode, "resolved_mode": result.mode,
              "batch_size": requested_batch or ("auto" if result.mode == "map" else None), "chunk": chunk,
              "preset": preset[0], "preset_why": preset[1],
              "color_control": color_control, "histogram_match": histogram_match, "style_scale": style_scale, "tile": tile,
              "convolution": convolution_lib.resolve(solver_options["convolution"]),
              "precision": solver_options["precision"],
              "content_mask": content_mask, "style_masks": list(style_masks), "mask_method": mask_method}
    if distributed is not None:
        config["distributed"] = {"processes": jax.process_count(), "devices": mesh.size,
                                 "coordinator": distributed.coordinator, "timeout": distributed.timeout}
    if any(m.balance is not None for m in members):
        config["ratio_mapping"] = (
            f"balance = {presets.PRESETS[preset[0]]['balance']:g} * ratio / "
            f"{presets.PRESETS['paper']['ratio']:g} (the {preset[0]} preset's balance rule, "
            "stylejax/_src/balance.py); each member's alpha is its content_weight")
    label = "RANDOM WEIGHTS (not pretrained)" if is_random(loaded) else os.path.basename(loaded.path)
    label = f"{label}, preset {preset[0]}"
    paths.prepare_output_folder(out_dir, "sweep output")
    for name in stale:  # an earlier sweep's files this one does not replace (--overwrite)
        os.remove(os.path.join(out_dir, name))
    report = write_results(out_dir, result, config=config,
                           weights_info={**loaded.describe(), "random": is_random(loaded)},
                           title=f"stylejax sweep, {label}")
    log(f"sweep: wrote {out_dir}/ (grid.png, {len(members)} member PNGs, results.json, results.csv) in "
        f"{result.seconds:.1f} s + {result.compile_seconds:.1f} s compile, mode {result.mode}")
    return report
