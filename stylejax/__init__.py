"""stylejax: Gatys, Ecker & Bethge (CVPR 2016) style transfer as pure JAX functions."""

from stylejax._version import __version__

__all__ = ["__version__"]
