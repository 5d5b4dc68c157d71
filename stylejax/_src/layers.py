"""The VGG19 convolutional stack as a table: names, widths, order, aliases.

Simonyan & Zisserman's configuration E: 16 3x3 convolutions (stride 1, padding 1), each
followed by a ReLU, and a 2x2 stride-2 pooling after conv1_2, conv2_2, conv3_4, conv4_4
and conv5_4. Gatys et al. use only this part of the network (no fully connected layers).

Layer names follow the paper: ``convB_K`` is the K-th convolution of block B. Because
Caffe's ReLU is applied in place, the paper's "conv4_2" is the rectified response; here
``conv4_2`` and ``relu4_2`` name the same post-ReLU activation. ``pool1`` .. ``pool5``
name the pooling outputs.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from stylejax._src.errors import invalid

# Convolutions per block and output width per block (configuration E).
_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


class ConvSpec(NamedTuple):
    """One convolution of the stack: its name and kernel shape (3, 3, in, out)."""

    name: str
    in_channels: int
    out_channels: int

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return (3, 3, self.in_channels, self.out_channels)

    @property
    def bias_shape(self) -> tuple[int]:
        return (self.out_channels,)


def _build_convs() -> tuple[ConvSpec, ...]:
    convs = []
    in_channels = 3
    for block, (count, width) in enumerate(_BLOCKS, start=1):
        for k in range(1, count + 1):
            convs.append(ConvSpec(f"conv{block}_{k}", in_channels, width))
            in_channels = width
    return tuple(convs)


CONVS: tuple[ConvSpec, ...] = _build_convs()
CONV_NAMES: tuple[str, ...] = tuple(c.name for c in CONVS)
CONV_BY_NAME: dict[str, ConvSpec] = {c.name: c for c in CONVS}

# The forward order of every named output: each conv, and a pool after each block's last.
SEQUENCE: tuple[str, ...] = tuple(
    name
    for block, (count, _) in enumerate(_BLOCKS, start=1)
    for name in (*(f"conv{block}_{k}" for k in range(1, count + 1)), f"pool{block}")
)

# 20,024,384: the number every VGG19 source must reproduce (conv kernels plus biases).
CONV_PARAMETER_COUNT: int = sum(9 * c.in_channels * c.out_channels + c.out_channels for c in CONVS)

# How many times the image has been halved before the output of each named layer.
DOWNSAMPLING: dict[str, int] = {}
_halvings = 0
for _name in SEQUENCE:
    if _name.startswith("pool"):
        _halvings += 1
    DOWNSAMPLING[_name] = 2**_halvings
del _halvings, _name

# Smallest image side for which every layer, up to pool4 and conv5_*, is non-empty.
MIN_IMAGE_SIDE: int = 16

_RELU = re.compile(r"^relu(\d)_(\d)$")


def canonical_name(name: str) -> str:
    """Maps a layer name to its canonical spelling (``relu4_2`` -> ``conv4_2``).

    Raises:
      InvalidSetting (a ValueError): the name is not a layer of the VGG19 conv stack.
    """
    stripped = name.strip()
    match = _RELU.match(stripped)
    if match:
        stripped = f"conv{match.group(1)}_{match.group(2)}"
    if stripped not in DOWNSAMPLING:
        raise invalid(
            f"unknown layer name {name!r}: expected one of conv1_1..conv5_4 "
            "(relu1_1..relu5_4 name the same layers) or pool1..pool5"
        )
    return stripped


def channels(name: str) -> int:
    """The number of channels (filters, N_l in the paper) of a named layer."""
    canonical = canonical_name(name)
    if canonical.startswith("pool"):
        block = int(canonical[4:])
        return _BLOCKS[block - 1][1]
    return CONV_BY_NAME[canonical].out_channels


def depth(name: str) -> int:
    """The position of a named layer in the forward order (0 for conv1_1)."""
    return SEQUENCE.index(canonical_name(name))


def parse_layer_list(text: str) -> tuple[str, ...]:
    """Parses a comma-separated list of layer names into canonical names, in the given order.

    Raises:
      InvalidSetting (a ValueError): a name is unknown, the list is empty or names a layer twice.
    """
    names = tuple(canonical_name(part) for part in text.split(",") if part.strip())
    if not names:
        raise invalid(f"empty layer list {text!r}")
    if len(set(names)) != len(names):
        raise invalid(f"layer list {text!r} names a layer twice")
    return names
