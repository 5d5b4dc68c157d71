"""Transfer settings from the command line: a preset plus flags -> one config.

Every setting has a value in each preset; a flag the user gives overrides it. The
method (stylejax/_src/settings.py) checks the values and names the setting; here its
errors name the flag. The resolved config is written into the report and the output
PNG, so a run can be repeated from either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from stylejax._src import settings as settings_lib
from stylejax._src.errors import InvalidSetting, UserError
from stylejax._src.presets import PRESETS
from stylejax._src.settings import Settings


@dataclasses.dataclass(frozen=True)
class TransferConfig(Settings):
    """Every resolved setting of one transfer from files, and the files."""

    content: str = ""
    style: str = ""  # the (first) style image
    styles: tuple[str, ...] = ()  # every style image, in order (several: blended)
    output: str = ""
    weights: str = "auto"
    report: str | None = None
    quiet: bool = False
    max_memory: str | None = None  # GiB, "none", or None: the memory available
    checkpoint: str | None = None  # write the solver's state here (stylejax/_src/files/checkpoint.py)
    checkpoint_every: int = 0  # ... also every N iterations
    resume: str | None = None  # continue the run saved in this checkpoint
    content_mask: str | None = None  # spatial control: regions by colour, one per style image
    style_masks: tuple[str, ...] = ()  # ... and optionally one mask per style image


def memory_limit(text: str | None) -> float | None:
    """``--max-memory``: GiB as bytes; ``none`` switches the check off (inf); not given:
    the memory available now (stylejax/_src/budget.py), or None where it cannot be read.

    Raises:
      UserError: not a positive number or ``none``.
    """
    from stylejax._src import budget

    if text is None:
        return budget.available_bytes()
    if str(text).strip().lower() == "none":
        return float("inf")
    return positive_finite(text, "--max-memory") * 2**30


def check_memory(what: str, needed: int, max_memory: str | None, *, tiles: bool = False) -> None:
    """Refuses a run whose estimated memory exceeds ``--max-memory`` (one line, naming it;
    ``tiles``: the command takes ``--tile``, which the line then suggests)."""
    from stylejax._src import budget

    try:
        budget.check(needed, memory_limit(max_memory), what, tiles=tiles)
    except InvalidSetting as error:
        raise user_error(error) from None


def flag(name: str) -> str:
    """The flag that sets a setting (``content_weight`` -> ``--content-weight``); other
    names (``each style layer weight``) as they are."""
    flags = (*settings_lib.NAMES, "preset", "max_memory")
    return f"--{name.replace('_', '-')}" if name in flags else name


def user_error(error: InvalidSetting) -> UserError:
    """The method's error as the command line's one-line error, naming the flag."""
    return UserError(error.named(flag))


def checked(check: Callable, value, what: str, *args):
    """``check(value, what, *args)`` (a validator of stylejax/_src/settings.py) with its
    error as a UserError naming ``what``."""
    try:
        return check(value, what, *args)
    except InvalidSetting as error:
        raise UserError(str(error)) from None


def positive_finite(value, what: str) -> float:
    """``value`` as a float > 0, or a UserError naming ``what`` and the value."""
    return checked(settings_lib.positive_finite, value, what)


def non_negative_finite(value, what: str) -> float:
    return checked(settings_lib.non_negative_finite, value, what)


def count(value, what: str, minimum: int = 0) -> int:
    """A whole number >= minimum, or a UserError naming ``what`` and the value."""
    return checked(settings_lib.count, value, what, minimum)


def resolve(content: str, style: str | list[str], output: str, overrides: dict) -> TransferConfig:
    """Merges a preset with the user's overrides (None = not given) and validates.

    Raises:
      UserError: an unknown preset, layer, optimizer, pooling, or a bad number.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    preset_name, reason = choose_preset(given)
    files = {k: given.pop(k) for k in ("report", "quiet", "max_memory", "checkpoint", "checkpoint_every",
                                       "resume", "content_mask", "style_masks") if k in given}
    weights = str(given.pop("weights", PRESETS[preset_name]["weights"]))
    given.pop("preset", None)
    try:
        resolved = settings_lib.resolve(preset_name, given, reason)
    except InvalidSetting as error:
        raise user_error(error) from None
    styles = tuple(style) if isinstance(style, (list, tuple)) else (style,)
    return TransferConfig(**resolved, content=content, style=styles[0], styles=styles, output=output,
                          weights=weights,
                          report=files.get("report"), quiet=bool(files.get("quiet", False)),
                          max_memory=files.get("max_memory"), checkpoint=files.get("checkpoint"),
                          checkpoint_every=count(files.get("checkpoint_every", 0), "--checkpoint-every"),
                          resume=files.get("resume"), content_mask=files.get("content_mask"),
                          style_masks=tuple(p.strip() for p in files.get("style_masks", "").split(",")
                                            if p.strip()))


def choose_preset(given: dict) -> tuple[str, str]:
    """The preset a run starts from, and why: ``--preset`` if given; else ``random`` for
    ``--weights random`` (the paper's numbers are for the pretrained network); else
    ``paper``.

    Raises:
      UserError: an unknown preset name.
    """
    name = given.get("preset")
    if name is not None:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
        return name, "chosen with --preset"
    if str(given.get("weights", "")) == "random":
        return "random", "the weights are random and no --preset was given"
    return "paper", "the default"
