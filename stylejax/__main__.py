"""``python -m stylejax`` is the ``stylejax`` command."""

from stylejax.cli.commands import console_main

console_main()
