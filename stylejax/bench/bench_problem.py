"""The problem every benchmark row solves: the paper's loss on one image pair at one size.

Content conv4_2, style conv1_1..conv5_1 with w_l = 1/5, alpha/beta = 1e-3, average
pooling, white-noise init (Sec. 2-3 of the paper). The images are the paper's
Neckarfront and Starry Night (``images.example_image``: the copies shipped with stylejax,
or those in ``$STYLEJAX_IMAGES``), resized to ``size`` px on the longest side. The cost
of an evaluation depends on the sizes only, not on the weights' values or the pictures.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from stylejax._src import image_ops, losses, optimise, presets
from stylejax._src.files import images
from stylejax._src.weights.weights_file import LoadedWeights

RATIO = presets.PRESETS["paper"]["ratio"]
CONTENT_FILE = "tuebingen_neckarfront.jpg"
STYLE_FILE = "vangogh_starry_night.jpg"


@dataclasses.dataclass
class Problem:
    size: int
    shape: tuple[int, int]  # (H, W)
    weights: LoadedWeights
    pictures: str
    content: np.ndarray  # (H, W, 3) in the network's input space
    style: np.ndarray
    init: np.ndarray
    spec: losses.LossSpec
    args: optimise.SolveArgs  # unprepared params, targets, loss weights, Adam's step

    @property
    def loss_settings(self) -> dict:
        return {"content_layers": self.spec.content_layers, "style_layers": self.spec.style_layers,
                "content_weight": RATIO, "style_weight": 1.0,
                "style_layer_weights": [1.0 / len(self.spec.style_layers)] * len(self.spec.style_layers),
                "pooling": self.spec.pooling}


def paper_pictures(size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(content, style, where they came from): the Neckarfront and The Starry Night as RGB
    in [0, 1], both resized to the content's aspect ratio with ``size`` px on its longest side."""
    content_path = images.example_image(CONTENT_FILE)
    style_path = images.example_image(STYLE_FILE)
    content = images.load_image(content_path)
    shape = image_ops.output_shape(content.shape[0], content.shape[1], size)
    pictures = " and ".join(
        f"{path} ({images.EXAMPLE_CREDITS[os.path.basename(path)]})" for path in (content_path, style_path)
    )
    return image_ops.resize(content, shape), image_ops.resize(images.load_image(style_path), shape), pictures


def build(size: int, weights: LoadedWeights, seed: int = 0) -> Problem:
    content_rgb, style_rgb, pictures = paper_pictures(size)
    shape = content_rgb.shape[:2]
    convention = weights.convention
    spec = losses.LossSpec((presets.PRESETS["paper"]["content_layer"],), presets.PAPER_STYLE_LAYERS, "avg")
    n_style = len(spec.style_layers)
    content = np.asarray(convention.to_network(content_rgb), np.float32)
    style = np.asarray(convention.to_network(style_rgb), np.float32)
    init = np.asarray(convention.to_network(image_ops.white_noise(seed, (*shape, 3))), np.float32)
    params = jax.tree.map(jnp.asarray, weights.params)
    targets = losses.jitted_targets(spec)(params, jnp.asarray(content), jnp.asarray(style))
    loss_weights = losses.LossWeights(
        content_weight=jnp.float32(RATIO), style_weight=jnp.float32(1.0),
        content_layer_weights=jnp.ones((1,), jnp.float32),
        style_layer_weights=jnp.full((n_style,), 1.0 / n_style, jnp.float32),
        tv_weight=jnp.float32(0.0),
    )
    lr = jnp.float32(presets.ADAM_STEP_FRACTION * convention.unit)
    return Problem(size, tuple(shape), weights, pictures, content, style, init, spec,
                   optimise.SolveArgs(params, targets, loss_weights, lr))


@functools.lru_cache(maxsize=8)
def value_and_grad_program(spec: losses.LossSpec):
    """jit(value_and_grad) of the objective: one evaluation, as the solver runs it."""
    def value_and_grad(image, args: optimise.SolveArgs):
        return jax.value_and_grad(losses.objective)(image, args.params, args.targets, args.weights, spec)
    return jax.jit(value_and_grad)
