"""The one exception type for problems a user can cause and fix."""


class UserError(Exception):
    """A problem with the user's input: the CLI prints its message as one line, exit 2.

    The message names the problem and the offending path or value; it never needs a
    traceback to be understood.
    """
