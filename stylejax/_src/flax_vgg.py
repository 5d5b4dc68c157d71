"""A Flax (linen) view of the same VGG19, for code that composes flax modules.

``VGG19(layers=("conv4_2",)).apply({"params": params}, image)`` returns what
``vgg.features(params, image, ("conv4_2",))`` returns: the params pytree of the pure
function is exactly the ``params`` collection of this module (one ``nn.Conv`` named
``conv1_1`` .. ``conv5_4`` each), so weights move between the two unchanged.
"""

from __future__ import annotations

import flax.linen as nn

from stylejax._src import layers as vgg_layers
from stylejax._src import vgg


class VGG19(nn.Module):
    """The conv stack up to the deepest of ``layers``; one (H, W, 3) image in."""

    layers: tuple[str, ...]
    pooling: str = "avg"

    @nn.compact
    def __call__(self, image):
        canonical = {name: vgg_layers.canonical_name(name) for name in self.layers}
        deepest = max(vgg_layers.SEQUENCE.index(name) for name in canonical.values())
        computed = {}
        x = image[None]
        for name in vgg_layers.SEQUENCE[: deepest + 1]:
            if name.startswith("pool"):
                x = vgg.pool(x[0], self.pooling)[None]
            else:
                spec = vgg_layers.CONV_BY_NAME[name]
                x = nn.relu(nn.Conv(spec.out_channels, (3, 3), padding=1, name=name)(x))
            computed[name] = x[0]
        return {name: computed[canonical[name]] for name in self.layers}
