"""Files that hold secrets, kept as ssh keeps a private key: this user's, mode 0600."""

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from local.data_dir import make_private_dir
from local.errors import UserError


def check_private(path: Path, status: os.stat_result) -> None:
    """Refuses a secret's file that another user owns, or that group or others may open: planted
    or exposed, the secret is no longer this user's alone."""
    if status.st_uid != os.getuid():
        raise UserError(
            f"{path} belongs to another user (uid {status.st_uid}): use a file of yours"
        )
    if status.st_mode & 0o077:
        raise UserError(
            f"{path} is open to group or others (mode {stat.S_IMODE(status.st_mode):o}):"
            f" run chmod 600 {path}"
        )


def read_secret(path: Path) -> bytes:
    """The bytes of a secret's file, once `check_private` accepts it (OSError if unreadable)."""
    with path.open("rb") as file:
        check_private(path, os.fstat(file.fileno()))
        return file.read()


def create_secret(path: Path, text: str) -> None:
    """Writes `text` to `path` (mode 0600) unless the file exists."""
    make_private_dir(path.parent)
    # Written aside and linked into place, so a script starting at the same moment finds either
    # no file or a whole one, and the first to link wins for both.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
