"""Exit statuses of the ``stylejax`` command and the figure scripts, and the exit itself."""

import os
import sys

EXIT_USER_ERROR = 2  # a problem the user can fix, printed as one line
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), after doing what Ctrl-C does


def leave(code: int) -> None:
    """Ends the process with ``code``.

    After an interruption it leaves with ``os._exit``: a signal that arrives while XLA
    compiles leaves the runtime mid-way, and tearing the interpreter down around it
    crashed (SIGSEGV) instead of exiting 130. Every file is written and closed by then;
    only the streams need flushing.
    """
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
