"""``stylejax sweep``: parse the sweep axes, run them, write the grid and the results."""

from __future__ import annotations

import csv
import io
import json
import os

import jax

from stylejax._src import atomic, images, sweep
from stylejax._src import config as config_lib
from stylejax._src import layers as vgg_layers
from stylejax._src.errors import UserError
from stylejax._src.grid import write_grid
from stylejax._src.transfer import device_description
from stylejax._src.weights_source import RANDOM_BANNER, is_random, resolve_weights
from stylejax._version import __version__

AXES = ("ratio", "style_layers", "content_layer", "init", "tv_weight")


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


def parse_tv_weights(text: str) -> tuple[float, ...]:
    return tuple(config_lib.non_negative_finite(p, "each --tv-weights value") for p in text.split(",") if p.strip())


_MEMBER_KEYS = {"ratio", "style_layers", "style_layer_weights", "content_layer", "init", "tv_weight"}


def read_members(path: str) -> list[sweep.Member]:
    """An explicit list of members from a JSON file (missing keys: the paper's values)."""
    try:
        with open(path) as handle:
            entries = json.load(handle)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read members file {path}: {error}") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"members file {path} must hold a non-empty JSON list of objects")
    members = []
    for number, entry in enumerate(entries):
        unknown = set(entry) - _MEMBER_KEYS
        if unknown:
            raise UserError(f"members file {path}, entry {number}: unknown keys {sorted(unknown)}")
        defaults = sweep.Member()
        style_layers = tuple(vgg_layers.canonical_name(n) for n in entry.get("style_layers", defaults.style_layers))
        weights = entry.get("style_layer_weights")
        if weights is not None:
            weights = tuple(config_lib.positive_finite(w, f"entry {number} style_layer_weights") for w in weights)
            if len(weights) != len(style_layers):
                raise UserError(f"members file {path}, entry {number}: {len(weights)} weights for "
                                f"{len(style_layers)} style layers")
        content_layer = entry.get("content_layer", defaults.content_layer)
        members.append(sweep.Member(
            ratio=config_lib.positive_finite(entry.get("ratio", defaults.ratio), f"entry {number} ratio"),
            style_layers=style_layers,
            style_layer_weights=weights,
            content_layer=None if content_layer is None else vgg_layers.canonical_name(content_layer),
            init=sweep.parse_init(str(entry.get("init", defaults.init))),
            tv_weight=config_lib.non_negative_finite(entry.get("tv_weight", 0.0), f"entry {number} tv_weight"),
        ))
    return members


def _value_text(axis: str, member: sweep.Member) -> str:
    value = getattr(member, axis)
    if axis == "style_layers":
        return "+".join(value)
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
    metadata = {"Software": f"stylejax {__version__}", "stylejax:weights_sha256": weights_info["sha256"]}
    member_rows = []
    for index, member in enumerate(result.members):
        name = f"member_{index:03d}.png"
        images.save_png(os.path.join(out_dir, name), result.images[index],
                        {**metadata, "stylejax:member": str(member.describe())})
        member_rows.append({
            "index": index,
            "image": name,
            "config": member.describe(),
            "initial": result.initial[index],
            "final": result.final[index],
            "history": result.histories[index],
            "iterations": len(result.histories[index]) - 1,
            "evaluations": result.evaluations[index],
            "seconds": result.member_seconds[index],
        })
    layout, row_labels, column_labels = grid_layout(result.members)
    cells = [[None if i is None else result.images[i] for i in row] for row in layout]
    write_grid(os.path.join(out_dir, "grid.png"), cells, row_labels=row_labels,
               column_labels=column_labels, title=title)
    report = {
        "stylejax_version": __version__,
        "config": config,
        "weights": weights_info,
        "mode": result.mode,
        "batch_size": result.batch_size,
        "devices": result.devices,
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


def run_sweep_command(content: str, style: str, out_dir: str, *, members: list[sweep.Member],
                      weights: str, size: int, iterations: int, optimizer: str, lr: float | None,
                      pooling: str, seed: int, mode: str, batch_size: int | None, chunk: int | None,
                      preset: tuple[str, str] = ("paper", "the default"), log=print,
                      progress=None) -> dict:
    content_rgb = images.load_image(content)
    style_rgb = images.load_image(style)
    shape = images.output_shape(content_rgb.shape[0], content_rgb.shape[1], size)
    images.prepare_output_folder(out_dir, "sweep output")
    loaded = resolve_weights(weights, seed=seed)
    if is_random(loaded):
        log(RANDOM_BANNER)
    log(f"sweep: {len(members)} members at {shape[1]}x{shape[0]} px, {iterations} {optimizer} iterations")
    result = sweep.run_sweep(
        images.resize(content_rgb, shape), images.resize(style_rgb, shape), members, loaded,
        optimizer=optimizer, iterations=iterations, pooling=pooling, lr=lr, mode=mode,
        batch_size=batch_size, chunk_size=chunk, progress=progress,
    )
    config = {"content": content, "style": style, "size": size, "output_shape": list(shape),
              "iterations": iterations, "optimizer": optimizer, "lr": lr, "pooling": pooling,
              "weights": weights, "seed": seed, "batch_mode": mode, "resolved_mode": result.mode,
              "batch_size": batch_size, "chunk": chunk, "preset": preset[0], "preset_why": preset[1]}
    if any(m.balance is not None for m in members):
        config["ratio_mapping"] = (
            f"balance = {config_lib.PRESETS[preset[0]]['balance']:g} * ratio / "
            f"{config_lib.PRESETS['paper']['ratio']:g} (the {preset[0]} preset's balance rule, "
            "stylejax/_src/balance.py); each member's alpha is its content_weight")
    label = "RANDOM WEIGHTS (not pretrained)" if is_random(loaded) else os.path.basename(loaded.path)
    label = f"{label}, preset {preset[0]}"
    report = write_results(out_dir, result, config=config,
                           weights_info={**loaded.describe(), "random": is_random(loaded)},
                           title=f"stylejax sweep, {label}")
    log(f"sweep: wrote {out_dir}/ (grid.png, {len(members)} member PNGs, results.json, results.csv) in "
        f"{result.seconds:.1f} s + {result.compile_seconds:.1f} s compile, mode {result.mode}")
    return report
