"""``python -m stylejax`` is the ``stylejax`` command."""

import sys

from stylejax.cli import main

sys.exit(main())
