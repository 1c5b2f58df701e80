"""Who runs this process: the OS account, as the system's user database names it."""

import os
import pwd


def local_account() -> str:
    """The account of this process's user ID; never LOGNAME or USER, which anyone can set."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # A user ID with no entry, as in some containers.
        return f"uid {uid}"
