"""Input conventions: how an RGB picture in [0, 1] becomes a network input and back.

The image is optimised in the input space of the weights in use, so the conversion
happens once on the way in (content, style, initial image) and once on the way out.

Layout changes, in order, from an RGB image ``rgb`` in [0, 1] with shape (H, W, 3):

1. multiply by ``scale`` (255 for Caffe-derived weights, 1 for torchvision's),
2. reorder channels to ``channel_order`` (BGR for Caffe-derived weights),
3. subtract ``mean`` and divide by ``std``, both given per channel in the network's order.

Caffe (original VGG19, its Keras port, Gatys' normalised net): BGR, 0..255, mean
(103.939, 116.779, 123.68), std 1. torchvision: RGB, 0..1, mean (0.485, 0.456, 0.406),
std (0.229, 0.224, 0.225).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def _array_module(array):
    # NumPy in, NumPy out: image files are prepared on the host without touching a device.
    return jnp if isinstance(array, jax.Array) else np


@dataclasses.dataclass(frozen=True)
class InputConvention:
    """The preprocessing a set of VGG19 weights expects (see the module docstring)."""

    name: str
    channel_order: str  # "RGB" or "BGR"
    scale: float
    mean: tuple[float, float, float]  # in the network's channel order
    std: tuple[float, float, float]  # in the network's channel order

    def __post_init__(self):
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need one value per channel")

    def _per_channel(self, image):
        """mean and std shaped to broadcast against ``image`` without rank promotion."""
        xp = _array_module(image)
        shape = (1,) * (image.ndim - 1) + (3,)
        mean = xp.asarray(self.mean, dtype=image.dtype).reshape(shape)
        std = xp.asarray(self.std, dtype=image.dtype).reshape(shape)
        return mean, std

    def _reorder(self, image):
        return image[..., ::-1] if self.channel_order == "BGR" else image

    def to_network(self, rgb01):
        """Maps an RGB image in [0, 1], shape (..., 3), into the network's input space."""
        mean, std = self._per_channel(rgb01)
        return (self._reorder(rgb01 * self.scale) - mean) / std

    def to_rgb01(self, network_image):
        """Inverse of :meth:`to_network` (no clipping: that happens when an image is saved)."""
        mean, std = self._per_channel(network_image)
        return self._reorder(network_image * std + mean) / self.scale

    @property
    def unit(self) -> float:
        """How far one full RGB step (0 to 1) moves an input value, averaged over channels."""
        return float(self.scale / np.mean(self.std))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "channel_order": self.channel_order,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict) -> InputConvention:
        return cls(
            name=str(data["name"]),
            channel_order=str(data["channel_order"]),
            scale=float(data["scale"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )


CAFFE = InputConvention(
    name="caffe",
    channel_order="BGR",
    scale=255.0,
    mean=(103.939, 116.779, 123.68),
    std=(1.0, 1.0, 1.0),
)

TORCHVISION = InputConvention(
    name="torchvision",
    channel_order="RGB",
    scale=1.0,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)

CONVENTIONS: dict[str, InputConvention] = {c.name: c for c in (CAFFE, TORCHVISION)}
