"""Checkpoint files: a transfer's whole solver state, to resume it later.

A checkpoint is one msgpack document written with flax.serialization (the JAX
ecosystem's own serialisation of pytrees; arrays keep their dtype and shape bit for
bit), atomically. It holds:

- ``format`` ("stylejax-checkpoint") and ``version`` (``VERSION``);
- ``iteration``: k, the iterations taken; ``state``: the solver's state after them as a
  flax state dict (the image x_k, x_{k-1}, the optimiser's state including L-BFGS's
  memory, the counters); ``history``: the objective at x_0 .. x_{k-1};
- ``objective``: what defines the run's objective (:func:`objective_of`): the settings
  that change it, and the SHA-256 of the content, style and init pictures and of the
  weights. A run resumes only a checkpoint whose ``objective`` equals its own; the
  iteration count, the output paths, the chunk and the checkpoint settings may differ.
- ``stylejax_version``, for the reader.
"""

from __future__ import annotations

import hashlib
import os

from flax import serialization

from stylejax._src.errors import UserError
from stylejax._src.files import atomic, paths
from stylejax._src.transfer import Resume

FORMAT = "stylejax-checkpoint"
VERSION = 1
# Far above any state that fits in memory here (L-BFGS at 2048 px: about 0.9 GB).
MAX_BYTES = 8 << 30
# The settings that define a transfer's objective, and so must match to resume it.
OBJECTIVE_SETTINGS = (
    "preset", "size", "optimizer", "lr", "content_weight", "style_weight", "balance", "content_layer",
    "style_layers", "style_layer_weights", "tv_weight", "tv_balance", "init", "seed", "pooling",
    "color_control", "histogram_match", "scales", "style_blend", "style_scale", "mask_method",
)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def objective_of(settings: dict, files: dict[str, str | None], weights_sha256: str) -> dict:
    """What must match between a checkpoint and the run that resumes it: the objective's
    settings (as given, before the balance rule resolves them), the pictures' and the
    weights' SHA-256."""
    objective = {name: settings.get(name) for name in OBJECTIVE_SETTINGS}
    for role, path in files.items():
        objective[role] = None if path is None else file_sha256(path)
    objective["weights"] = weights_sha256
    return _plain(objective)


def _plain(value):
    """Lists for tuples, recursively: what a msgpack round trip gives back."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def write(path: str, resume: Resume, objective: dict, version: str) -> None:
    """Writes ``resume`` with its ``objective`` to ``path``, atomically."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "stylejax_version": version,
        "iteration": int(resume.iteration),
        "history": [float(v) for v in resume.history],
        "objective": objective,
        "state": resume.state_dict(),
    }
    atomic.atomic_write_bytes(path, serialization.msgpack_serialize(document))


def read(path: str, objective: dict) -> Resume:
    """The state in the checkpoint ``path``, after checking it continues this ``objective``.

    Raises:
      UserError: not a readable regular file, over ``MAX_BYTES``, not a stylejax
        checkpoint (or a corrupt one), another format version, or made for another
        objective (the line names every setting or file that differs).
    """
    paths.check_input_file(path, "checkpoint")
    if os.path.getsize(path) > MAX_BYTES:
        raise UserError(f"checkpoint {path} is over {MAX_BYTES >> 30} GiB: not a stylejax checkpoint")
    try:
        with open(path, "rb") as handle:
            document = serialization.msgpack_restore(handle.read())
    except Exception as error:  # msgpack's errors have no common base class
        raise UserError(f"checkpoint {path} is corrupt or not a stylejax checkpoint "
                        f"({type(error).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path} is not a stylejax checkpoint")
    if document.get("version") != VERSION:
        raise UserError(f"checkpoint {path} has format version {document.get('version')!r}; this "
                        f"stylejax ({VERSION}) reads version {VERSION} only")
    try:
        saved, iteration, history, state = (document["objective"], int(document["iteration"]),
                                            [float(v) for v in document["history"]], document["state"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"checkpoint {path} is corrupt: a field is missing or malformed") from None
    differences = [_difference(key, saved.get(key), objective.get(key))
                   for key in sorted(set(saved) | set(objective)) if saved.get(key) != objective.get(key)]
    if differences:
        raise UserError(f"checkpoint {path} is for another run: {'; '.join(differences)}")
    if not isinstance(state, dict) or len(history) != iteration:
        raise UserError(f"checkpoint {path} is corrupt: its state or history does not match "
                        f"iteration {iteration}")
    return Resume(iteration, state, history)


def _difference(key: str, saved, now) -> str:
    if key.endswith(("image", "weights", "mask")) or key.startswith(("style image", "style mask")):
        return f"the {key} differs"
    return f"{key} {saved!r} there, {now!r} now"
