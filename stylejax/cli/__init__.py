"""The ``stylejax`` command line: argument parsing, settings from flags, image files,
progress, plots, grids, reports, the demo, the sweep and weights commands, figure plumbing.

A layer over the library (``stylejax``, ``stylejax._src``) and the weights I/O
(``stylejax._src.weights``); nothing below it imports from here.
"""

from stylejax.cli.commands import EXIT_INTERRUPTED, EXIT_USER_ERROR, build_parser, main

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "build_parser", "main"]
