"""Where the sample keeps its local state (ORDER_DATA_DIR, or .data beside the scripts), and how
it stays this user's alone."""

import os
import stat
from pathlib import Path

from local.errors import UserError

DATA_DIR = Path(os.environ.get("ORDER_DATA_DIR", Path(__file__).resolve().parents[1] / ".data"))
"""Local state (git-ignored): the ledger, the encryption keys, the dev server's database and log."""

PRIVATE_DIR_MODE, PRIVATE_FILE_MODE = 0o700, 0o600
"""Readable by this user only, like ~/.ssh: the state holds customer data and the keys to it."""


def check_private(path: Path, status: os.stat_result) -> None:
    """Refuses a file or directory of the local state that another user owns, or that group or
    others may open: planted or exposed, it is no longer this user's alone. (Whoever may write in
    a directory can plant a link in it, or swap a file.)"""
    directory = stat.S_ISDIR(status.st_mode)
    if status.st_uid != os.getuid():
        kind = "directory" if directory else "file"
        raise UserError(
            f"{path} belongs to another user (uid {status.st_uid}): use a {kind} of yours"
        )
    if status.st_mode & 0o077:
        mode = PRIVATE_DIR_MODE if directory else PRIVATE_FILE_MODE
        raise UserError(
            f"{path} is open to group or others (mode {stat.S_IMODE(status.st_mode):o}):"
            f" run chmod {mode:o} {path}"
        )


def make_private_dir(directory: Path) -> Path:
    """`directory`, made 0700 if new; one that exists must pass `check_private`, as one that
    another user planted for us would not."""
    try:
        directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    except FileExistsError:
        check_private(directory, directory.stat())
    except OSError as err:
        raise UserError(f"cannot make the directory {directory}: {err.strerror}") from err
    return directory


def open_private(path: Path) -> int:
    """A file descriptor for appending to `path`, created 0600 in a private directory if new; a
    symbolic link there is refused, never followed. Nobody else can put one there afterwards: the
    directory is this user's, closed to others."""
    make_private_dir(path.parent)
    try:
        return os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE
        )
    except OSError:
        if path.is_symlink():  # O_NOFOLLOW's error differs by system (ELOOP, EMLINK).
            raise UserError(
                f"{path} is a symbolic link, which the scripts do not follow: run rm {path}"
            ) from None
        raise
