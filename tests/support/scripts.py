"""What the end-to-end tests give a script and check of its run: fresh order IDs, cards that are
valid or expired whatever today's date, and one-line errors."""

import subprocess
import uuid
from datetime import date

from local.account import local_account

VALID_CARD = f"12/{(date.today().year + 4) % 100:02d}"
"""A card that expires in December, four years from now: valid on any day the suite runs. Tests
that show the README's own command use its literal 12/30 instead."""

BY_ME = f"{local_account()} (local account holding the order key)"
"""How an order records a decision from approve.py: the account running it, proven by its key."""
GIVEN = "(name given, not verified)"
"""How an order records a name a client typed."""

EXPIRED_CARD = f"01/{(date.today().year - 3) % 100:02d}"
"""A card that expired three years ago."""

FORGED_LINE = "\r\x1b[2K18:00:00 Order order-forged completed"
"""Text from another client that acts on a terminal: back to the line's start, erase the line,
write a log line of its own."""
FORGED_LINE_SHOWN = r"\r\x1b[2K18:00:00 Order order-forged completed"
"""FORGED_LINE as the scripts and the worker's log print it: visible, and doing nothing."""


def new_order_id(prefix: str = "e2e") -> str:
    """An order ID no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], text: str, code: int = 1
) -> None:
    """The script exited with `code`, saying `text` in its one `error:` line, with no traceback."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0]
