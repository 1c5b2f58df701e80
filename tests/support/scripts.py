"""What the end-to-end tests check of a script run: fresh order IDs, and one-line errors."""

import subprocess
import uuid


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
