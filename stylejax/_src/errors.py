"""The project's exceptions.

``InvalidSetting`` is the method's (stylejax/_src): a ``ValueError`` that names the setting
or value. ``UserError`` is the weights I/O's and the command line's: a problem the user
can fix, printed as one line with exit status 2.
"""


class InvalidSetting(ValueError):
    """A bad setting or argument of the method. ``template`` holds one ``{}`` per name in
    ``names``; the message fills them with the setting names (``ratio must be ...``),
    :meth:`named` with other spellings (the command line's ``--ratio``)."""

    def __init__(self, template: str, *names: str):
        self.template, self.names = template, names
        super().__init__(template.format(*names))

    def named(self, spell) -> str:
        """The message with every setting name ``n`` written as ``spell(n)``."""
        return self.template.format(*(spell(n) for n in self.names))


def quote(value) -> str:
    """``repr(value)``, safe inside an :class:`InvalidSetting` template."""
    return repr(value).replace("{", "{{").replace("}", "}}")


def literal(text: str) -> str:
    """``text`` as an :class:`InvalidSetting` template that names no setting."""
    return text.replace("{", "{{").replace("}", "}}")


class UserError(Exception):
    """A problem with the user's input: the CLI prints its message as one line, exit 2.

    The message names the problem and the offending path or value; it never needs a
    traceback to be understood.
    """


def invalid(message: str) -> InvalidSetting:
    """An :class:`InvalidSetting` with ``message`` as it is (no setting to rename)."""
    return InvalidSetting(literal(message))
