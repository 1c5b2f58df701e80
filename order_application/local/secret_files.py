"""Files that hold secrets, kept as ssh keeps a private key: this user's, mode 0600."""

import contextlib
import os
import tempfile
from pathlib import Path

from local.data_dir import check_private, make_private_dir


def read_secret(path: Path) -> bytes:
    """The bytes of a secret's file, once `check_private` accepts it (OSError if unreadable)."""
    # A link is followed, as a key file the user names may be one (a mounted secret): the file
    # opened is the one checked, so a link to someone else's file is refused all the same.
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
