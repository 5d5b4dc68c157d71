"""The memory a run will need, estimated before it starts, and the machine's budget.

A run's memory grows with its pixels: XLA keeps the network's activations for the
backward pass, plus the optimiser's copies of the image. The estimate is

    bytes = BASE_BYTES + members_in_flight * pixels * (TEMP_BYTES_PER_ACTIVATION * a + s)
            + members * chunk * CHUNK_BYTES_PER_ITERATION

where ``a`` is the number of activation elements per input pixel up to the deepest layer
the loss reads (320 up to conv5_1: 64 * 2 channels at full resolution, 128 * 2 at a
quarter, ...), ``s`` the solver state per pixel (float32 RGB: the image, the previous
image, and L-BFGS's 2m history vectors or Adam's two moments), and ``members_in_flight``
the members computed at once (1 for a transfer or a ``loop`` sweep, all of them under
``vmap``, one batch under ``map``).

``TEMP_BYTES_PER_ACTIVATION`` is measured: XLA:CPU's compiled chunk program reports
(``compiled.memory_analysis().temp_size_in_bytes``) 3,852 bytes per pixel for L-BFGS and
3,636 for Adam at 64x48, 128x96 and 256x192 px (L-BFGS also at 512x384 and 1024x768 px),
linear in the pixels to 1% (paper layers,
so a = 320): just over 12 bytes, three float32 values, per activation element; with the
chunk's returned state (300 bytes per pixel for L-BFGS) 4,152. The whole process measures
more: a one-iteration paper-preset L-BFGS transfer peaked at 2.27 GiB resident at 512x384
px and 4.80 GiB at 1024x768 px (2026-12-07, 2-core AMD EPYC CPU, jax 0.10.2): 4,606 bytes
per pixel on 1.43 GiB. Hence 14 bytes per activation element (4,744 per pixel with the
L-BFGS state) on a base of 1.5 GiB, above both XLA's figure (tests/test_budget.py) and
the measured peaks. The
estimate is for refusing runs that cannot fit, not for packing a machine full: a run
refused here would have been killed by the system after minutes, or swapped.

With tiles (stylejax/_src/tiling.py) the activations are those of one tile with its
margin, and every pixel of the image adds ``TILED_BYTES_PER_PIXEL`` more. One-iteration
Adam transfers in tiles of 512 px peaked at 4.08 GiB at 2048x1536 px and 6.11 GiB at
4096x3072 px (2026-12-07, 2-core AMD EPYC CPU, jax 0.10.2): 230 bytes per pixel between
the two, of which 48 are Adam's state, on 3.41 GiB, against the 3.38 GiB this estimate
gives the base and one 672x672 px tile. So 224 bytes per pixel: estimates of 4.18 and 6.57 GiB.
"""

from __future__ import annotations

import contextlib
import math
import os

import jax

from stylejax._src import layers as vgg_layers
from stylejax._src import tiling
from stylejax._src.errors import InvalidSetting

# The process itself: the JAX runtime, the VGG19 parameters (80 MB) and their prepared
# copies (Winograd keeps two transformed kernels), the pictures.
BASE_BYTES = 3 << 29  # 1.5 GiB
# XLA's temporary buffers per activation element (see the module docstring).
TEMP_BYTES_PER_ACTIVATION = 14
# Tiled evaluation's whole-image buffers per pixel (the pictures, the padded image and its
# gradient, the content responses and their tiled copy), measured: see the module doc.
TILED_BYTES_PER_PIXEL = 224
# The per-iteration values a chunk returns and carries (float32 each, twice).
CHUNK_BYTES_PER_ITERATION = 8


def activations_per_pixel(deepest: str) -> float:
    """Activation elements per input pixel of every layer up to ``deepest`` (inclusive),
    counting each convolution's output and each pooling's."""
    total = 0.0
    for name in vgg_layers.SEQUENCE:
        if name.startswith("pool"):
            channels = vgg_layers.CONV_BY_NAME[f"conv{name[4]}_1"].out_channels
        else:
            channels = vgg_layers.CONV_BY_NAME[name].out_channels
        total += channels / vgg_layers.DOWNSAMPLING[name] ** 2
        if name == deepest:
            break
    return total


def state_bytes_per_pixel(optimizer: str, lbfgs_memory: int = 10) -> int:
    """The solver state's float32 RGB images per pixel, in bytes."""
    images = 2 + (2 * lbfgs_memory if optimizer == "lbfgs" else 2)
    return images * 3 * 4


def estimate_bytes(height: int, width: int, layers, optimizer: str, *, members: int = 1,
                   members_in_flight: int = 1, chunk: int = 1, tile: int | None = None) -> int:
    """The memory (bytes) a solve or sweep of ``members`` at ``height`` x ``width`` px needs.

    Args:
      layers: every layer the loss reads (content and style); the deepest one counts.
      members_in_flight: members computed at once (see the module docstring).
      chunk: iterations per compiled chunk.
      tile: the objective's tile size (stylejax/_src/tiling.py), or None: the
        activations are then those of one tile with its margin, plus
        ``TILED_BYTES_PER_PIXEL`` of the whole image.
    """
    order = vgg_layers.SEQUENCE.index
    deepest = max((vgg_layers.canonical_name(n) for n in layers), key=order)
    activation_pixels, tiled_bytes = height * width, 0
    if tile is not None and (height > tile or width > tile):
        activation_pixels = math.prod(tiling.piece_shape(height, width, tile, layers))
        tiled_bytes = height * width * TILED_BYTES_PER_PIXEL
    per_member = (activation_pixels * TEMP_BYTES_PER_ACTIVATION * activations_per_pixel(deepest)
                  + height * width * state_bytes_per_pixel(optimizer) + tiled_bytes)
    return int(BASE_BYTES + members_in_flight * per_member + members * chunk * CHUNK_BYTES_PER_ITERATION)


def member_bytes(height: int, width: int, layers, optimizer: str) -> int:
    """The memory one more member computed at once adds to :func:`estimate_bytes`: its
    activations (``TEMP_BYTES_PER_ACTIVATION`` each, measured) and its solver state."""
    order = vgg_layers.SEQUENCE.index
    deepest = max((vgg_layers.canonical_name(n) for n in layers), key=order)
    return int(height * width * (TEMP_BYTES_PER_ACTIVATION * activations_per_pixel(deepest)
                                 + state_bytes_per_pixel(optimizer)))


def auto_batch_size(height: int, width: int, layers, optimizer: str, *, members: int, limit: float | None,
                    chunk: int = 1) -> int:
    """The most members, 1 .. ``members``, that can be computed at once (a ``map`` batch)
    with :func:`estimate_bytes` within ``limit`` bytes:

        floor((limit - BASE_BYTES - members * chunk * CHUNK_BYTES_PER_ITERATION) / member_bytes)

    ``members`` where ``limit`` is None or infinite (no budget); 1 where not even one
    member fits (the memory check then refuses the run, naming the estimate).
    """
    if limit is None or math.isinf(limit):
        return members
    fixed = BASE_BYTES + members * chunk * CHUNK_BYTES_PER_ITERATION
    fitting = int((limit - fixed) // member_bytes(height, width, layers, optimizer))
    return max(1, min(members, fitting))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) still allows this process: memory.max - memory.current."""
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as handle:
            used = int(handle.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """The memory a run may use: an accelerator's own memory limit (``memory_stats``), or
    on the CPU the host's available memory (``MemAvailable``, and the cgroup's limit where
    one is set). None where neither can be read."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    candidates = [b for b in (_meminfo_available(), _cgroup_available()) if b is not None]
    if not candidates and hasattr(os, "sysconf"):
        with contextlib.suppress(ValueError, OSError):
            candidates.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(candidates) if candidates else None


def format_bytes(count: float) -> str:
    """``count`` bytes in GiB (or TiB, MiB), for one-line messages."""
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if count >= 2**power or unit == "MiB":
            return f"{count / 2**power:.1f} {unit}"
    raise AssertionError  # unreachable


def check(needed: int, limit: float | None, what: str, *, tiles: bool = False) -> None:
    """Refuses a run whose estimated memory ``needed`` exceeds ``limit`` bytes.

    ``limit`` None or infinite: no check (the budget was switched off, or the machine's
    memory cannot be read). ``tiles``: the run can evaluate its objective in tiles, so the
    message suggests the ``tile`` setting.

    Raises:
      InvalidSetting: naming ``what`` (e.g. "a 4000x3000 px transfer"), the estimate and
        the limit, and the ``max_memory`` setting that overrides it.
    """
    if limit is None or math.isinf(limit) or needed <= limit:
        return
    message = (f"{what} needs about {format_bytes(needed)} of memory (estimate), more than the "
               f"{format_bytes(limit)} available; lower the size or the members")
    if tiles:
        raise InvalidSetting(message + ", evaluate it in tiles ({}), or set {} to override", "tile", "max_memory")
    raise InvalidSetting(message + ", or set {} to override", "max_memory")
