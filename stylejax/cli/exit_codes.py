"""Exit statuses of the ``stylejax`` command and the figure scripts."""

EXIT_USER_ERROR = 2  # a problem the user can fix, printed as one line
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
