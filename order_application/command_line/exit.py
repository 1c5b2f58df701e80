"""How every script ends: an exit code, and one line on stderr instead of a traceback; the
Temporal server's refusals too."""

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from local.errors import UserError
from local.printable import printable

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
"""0: done; 1: the order or the server said no; 2: bad usage (argparse's own code)."""


def finish(main: Callable[[], int]) -> NoReturn:
    """Runs a script's main and exits with its code; a UserError is one line and EXIT_NO."""
    try:
        code = main()
    except UserError as err:
        # Its message may quote what the server holds (an order ID, a reason): escaped here, once.
        print(f"error: {printable(str(err))}", file=sys.stderr)
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


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """`finish` for a script's async main that talks to Temporal: a refusal from the server is
    one line too."""
    # Imported here: ledger.py ends through `finish` and runs without the Temporal SDK.
    from temporalio.service import RPCError

    async def answered() -> int:
        try:
            return await main()
        except RPCError as err:
            raise UserError(f"the Temporal server said: {err.message}") from err

    finish(lambda: asyncio.run(answered()))


def script_command(name: str) -> str:
    """How to run a sibling script from the current directory, for copy and paste."""
    path = Path(__file__).resolve().parents[1] / name
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)
