"""The same VGG19 features and Gatys loss in PyTorch eager, for the side-by-side benchmark.

It mirrors :mod:`stylejax._src.vgg` and :mod:`stylejax._src.losses` term by term (Eq. 1,
3, 4, 5, 7; avg or max 2x2 pooling rounding down), reading the very same params pytree,
so the benchmark compares two implementations of one computation. Layout changes, once,
when the module is built: kernels HWIO (stylejax) -> OIHW (torch), images (H, W, 3) ->
(1, 3, H, W); no colour or scale change (both take the image in the weights' input
space). Only the image needs a gradient: the weights are created with
``requires_grad=False``, so PyTorch's autograd computes no weight gradients, the same
work stylejax's compiled program does.

torch is optional (the ``torch`` extra) and imported by the functions that use it, not
when this module is imported; calling them without torch raises ImportError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from stylejax._src import layers as vgg_layers

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch


class TorchGatys:
    """VGG19 up to the deepest loss layer, the targets, and the objective, in PyTorch."""

    def __init__(
        self,
        params: dict,
        content_image: np.ndarray,
        style_image: np.ndarray,
        *,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_weight: float,
        style_weight: float,
        style_layer_weights: Sequence[float],
        pooling: str = "avg",
    ):
        import torch
        self.content_layers = tuple(vgg_layers.canonical_name(n) for n in content_layers)
        self.style_layers = tuple(vgg_layers.canonical_name(n) for n in style_layers)
        wanted = set(self.content_layers + self.style_layers)
        deepest = max(vgg_layers.SEQUENCE.index(n) for n in wanted)
        self.sequence = vgg_layers.SEQUENCE[: deepest + 1]
        self.pooling = pooling
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.style_layer_weights = [float(w) for w in style_layer_weights]
        self.kernels = {}
        self.biases = {}
        for name in self.sequence:
            if name.startswith("conv"):
                kernel = np.asarray(params[name]["kernel"], np.float32)  # (3, 3, in, out)
                self.kernels[name] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
                self.biases[name] = torch.from_numpy(np.asarray(params[name]["bias"], np.float32).copy())
        with torch.no_grad():
            content = self.features(to_torch_image(content_image))
            style = self.features(to_torch_image(style_image))
            self.content_targets = [content[n] for n in self.content_layers]
            self.style_grams = [gram(style[n]) for n in self.style_layers]

    def features(self, image: torch.Tensor) -> dict:
        """Post-ReLU activations (1, N, H, W) of every loss layer."""
        import torch
        import torch.nn.functional as torch_functional

        wanted = set(self.content_layers + self.style_layers)
        out = {}
        x = image
        for name in self.sequence:
            if name.startswith("pool"):
                x = torch_functional.avg_pool2d(x, 2) if self.pooling == "avg" else torch_functional.max_pool2d(x, 2)
            else:
                x = torch.relu(torch_functional.conv2d(x, self.kernels[name], self.biases[name], padding=1))
            if name in wanted:
                out[name] = x
        return out

    def objective(self, image: torch.Tensor) -> torch.Tensor:
        """alpha * L_content + beta * sum_l w_l E_l (Eq. 7) at a (1, 3, H, W) image."""
        import torch

        feats = self.features(image)
        content = sum(
            0.5 * torch.sum(torch.square(feats[n] - p)) for n, p in zip(self.content_layers, self.content_targets, strict=True)
        )
        style = 0.0
        for name, target, weight in zip(self.style_layers, self.style_grams, self.style_layer_weights, strict=True):
            _, channels, height, width = feats[name].shape
            positions = height * width
            scale = 1.0 / (4.0 * channels**2 * positions**2)
            style = style + weight * scale * torch.sum(torch.square(gram(feats[name]) - target))
        return self.content_weight * content + self.style_weight * style

    def value_and_grad(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The objective and its gradient with respect to the image only."""
        import torch

        variable = image.detach().requires_grad_(True)
        value = self.objective(variable)
        (grad,) = torch.autograd.grad(value, variable)
        return value.detach(), grad


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T (Eq. 3) of a (1, N, H, W) activation: (N, N)."""
    flat = features.reshape(features.shape[1], -1)
    return flat @ flat.T


def to_torch_image(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) in the network's input space -> (1, 3, H, W) float32."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)[None]))


def from_torch_image(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) NumPy."""
    return image.detach().numpy()[0].transpose(1, 2, 0)


def adam_steps(model: TorchGatys, init: np.ndarray, learning_rate: float, steps: int) -> tuple[np.ndarray, list]:
    """``steps`` iterations of torch.optim.Adam on the image: (final image, losses at x_0..)."""
    import torch

    variable = to_torch_image(init).requires_grad_(True)
    optimiser = torch.optim.Adam([variable], lr=learning_rate)
    values = []
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        value = model.objective(variable)
        value.backward()
        optimiser.step()
        values.append(float(value.detach()))
    return from_torch_image(variable), values
