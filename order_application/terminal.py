"""How every script ends: an exit code, and one line on stderr instead of a traceback."""

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from errors import UserError

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
"""0: done; 1: the order or the server said no; 2: bad usage (argparse's own code)."""


def finish(main: Callable[[], int]) -> NoReturn:
    """Runs a script's main and exits with its code; a UserError is one line and EXIT_NO."""
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_NO
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader of our output went away (`| head -1`): what was asked is done; stop quietly,
        # with the code a process stopped by SIGPIPE has.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 128 + signal.SIGPIPE
    # Leave without interpreter finalization: the SDK's native threads can still be winding down
    # then, and a call from one of them into a finalizing interpreter aborts the process (seen as
    # exit code 134 or 139 after the script had finished). Everything worth keeping is flushed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def script_command(name: str) -> str:
    """How to run a sibling script from the current directory, for copy and paste."""
    path = Path(__file__).resolve().with_name(name)
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)
