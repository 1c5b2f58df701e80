"""Where the sample keeps its local state: ORDER_DATA_DIR, or .data beside the scripts."""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("ORDER_DATA_DIR", Path(__file__).resolve().parents[1] / ".data"))
"""Local state (git-ignored): the ledger, the encryption keys, the dev server's database and log."""

PRIVATE_DIR_MODE, PRIVATE_FILE_MODE = 0o700, 0o600
"""Readable by this user only, like ~/.ssh: the state holds customer data and the keys to it."""


def make_private_dir(directory: Path) -> None:
    """Creates `directory` (mode 0700) unless it exists; an existing one is left as it is."""
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def open_private(path: Path) -> int:
    """A file descriptor for appending to `path`, created 0600 in a private directory if new."""
    make_private_dir(path.parent)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
