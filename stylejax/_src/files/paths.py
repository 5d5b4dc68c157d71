"""The checks every path the user gives goes through, before anything is opened or run.

Inputs (:func:`check_input_file`): only a regular file is opened. A FIFO would block the
reader forever, a device could stream without end, a folder or a socket cannot be read
as a file; each is refused by its ``stat`` before ``open``. A symlink is followed; a
dangling one or a loop is named as such.

Outputs (:func:`check_outputs`): no output of a run may be one of its inputs, whether by
the same name, another spelling, a symlink or a hard link (same device and inode), nor
another output of the same run; and each output's folder must exist and take new
files. Checked up front, so a refused run has read nothing heavy and written nothing.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from stylejax._src.errors import UserError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _describe_os_error(error: OSError) -> str:
    return os.strerror(error.errno) if error.errno else str(error)


def check_input_file(path: str | os.PathLike[str], what: str = "file") -> str:
    """``path`` as a str if it names a readable regular file (after symlinks).

    Raises:
      UserError: missing, a dangling symlink, a symlink loop, a folder, a FIFO, a device,
        a socket, or not readable; the message names ``what`` and the path.
    """
    path = os.fspath(path)
    if not path:
        raise UserError(f"empty {what} path")
    try:
        info = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError(f"{what} {path} is a symlink loop") from None
        if error.errno == errno.ENOENT:
            if os.path.lexists(path):
                target = os.readlink(path) if os.path.islink(path) else "a missing file"
                raise UserError(f"{what} {path} is a symlink to {target}, which does not exist") from None
            raise UserError(f"no such file: {path}") from None
        if error.errno == errno.ENOTDIR:
            raise UserError(f"no such file: {path} (a part of the path is not a folder)") from None
        raise UserError(f"cannot read {what} {path}: {_describe_os_error(error)}") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder, not a file")
    for test, kind in _KINDS:
        if test(mode):
            raise UserError(f"{what} {path} is {kind}, not a regular file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise UserError(f"permission denied reading {what}: {path}")
    return path


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names after symlinks, or None if none exists."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def same_file(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one file: equal after resolving symlinks and ``..``, or
    one inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    ia, ib = _identity(a), _identity(b)
    return ia is not None and ia == ib


def check_outputs(outputs: dict[str, str | None], inputs: dict[str, str | None]) -> None:
    """Refuses an output that is an input, or two outputs that are one file, and checks each
    output can be created (:func:`check_writable_file`).

    Args:
      outputs: what -> path (None: not asked for), e.g. ``{"output": "out.png"}``.
      inputs: what -> path of every file the run reads (None: none).

    Raises:
      UserError: naming both roles and the path.
    """
    given_outputs = [(what, path) for what, path in outputs.items() if path]
    given_inputs = [(what, path) for what, path in inputs.items() if path]
    for what, path in given_outputs:
        check_writable_file(path, what)
        for role, source in given_inputs:
            if same_file(path, source):
                which = "is also" if path == source else f"is the same file as {source},"
                raise UserError(f"the {what} {path} {which} the {role}: refusing to overwrite an input")
    for i, (what, path) in enumerate(given_outputs):
        for other_what, other in given_outputs[i + 1:]:
            if same_file(path, other):
                raise UserError(f"the {what} and the {other_what} are the same file: {path}")


def names_folder(path: str) -> bool:
    """Whether ``path`` is spelled as a folder (ends with a separator, or ``.``/``..``)."""
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    return path.endswith(seps) or os.path.basename(path) in (".", "..")


def check_writable_file(path: str | os.PathLike[str], what: str = "output") -> None:
    """Fails early, before any computation, if a file cannot be written at ``path``.

    Checks that ``path`` is spelled as a file (not ``dir/``), that its folder exists and is
    a folder, that ``path`` is not a folder or another non-regular file, and that a file
    can be created in the folder: by creating and removing an empty hidden probe file,
    because ``os.access`` answers "yes" to root even where the file system refuses
    (read-only mounts, /proc). Leaves nothing behind.

    Raises:
      UserError: the ``what`` (e.g. "output", "report") cannot be written at ``path``.
    """
    path = os.fspath(path)
    if not path:
        raise UserError(f"empty {what} path")
    if names_folder(path) or os.path.isdir(path):
        raise UserError(f"cannot write {what} {path}: it names a folder, expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        raise UserError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {what} {path}: {folder} is not a folder")
    if os.path.exists(path) and not os.path.isfile(path):
        raise UserError(f"cannot write {what} {path}: it exists and is not a regular file")
    check_folder_writable(folder, f"{what} {path}")


def check_folder_writable(folder: str, what: str) -> None:
    """Creates and removes a hidden probe file in ``folder``.

    Raises:
      UserError: the folder does not take new files (read-only, a pseudo file system,
        no permission).
    """
    probe = os.path.join(folder, f".stylejax-write-probe-{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        reason = _describe_os_error(error)
        if error.errno == errno.ENOENT:
            reason = "the file system does not allow creating files there"
        raise UserError(f"cannot write {what}: cannot create files in folder {folder} ({reason})") from None
    os.close(fd)
    os.remove(probe)


def check_output_folder(folder: str, what: str) -> None:
    """Checks that ``folder`` can be used for a run's files, creating nothing: an existing
    folder must take new files; a missing one needs a parent folder that does.

    Raises:
      UserError: the parent is missing or not a folder, ``folder`` is a file, or files
        cannot be created.
    """
    if not folder:
        raise UserError(f"empty {what} folder path")
    if os.path.exists(folder):
        if not os.path.isdir(folder):
            raise UserError(f"{what} folder {folder} exists and is not a folder")
        check_folder_writable(folder, f"{what} in {folder}")
        return
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UserError(f"cannot create {what} folder {folder}: {parent} is not a folder")
    check_folder_writable(parent, f"{what} folder {folder}")


def prepare_output_folder(folder: str, what: str) -> None:
    """:func:`check_output_folder`, then creates ``folder`` if it is missing.

    Raises:
      UserError: as :func:`check_output_folder`, or the folder cannot be created.
    """
    check_output_folder(folder, what)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {what} folder {folder}: {_describe_os_error(error)}") from None
