"""Running a benchmark as a test would: to its end, on servers of its own, stopped if it hangs."""

import os
import signal
import subprocess
import sys
from pathlib import Path


def run_to_end(script: Path, *args: str, timeout_seconds: float) -> str:
    """What `script` printed, once it exited 0. Without TEMPORAL_ADDRESS it starts (and stops) a
    server of its own; past `timeout_seconds` it is stopped and the test fails, showing why."""
    with subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"},
    ) as benchmark:
        try:
            stdout, stderr = benchmark.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: the benchmark then stops its server and workers itself.
            benchmark.send_signal(signal.SIGTERM)
            stdout, stderr = benchmark.communicate(timeout=30)
            raise AssertionError(f"the benchmark hung:\n{stdout}\n{stderr}") from None
    assert benchmark.returncode == 0, f"exit code {benchmark.returncode}:\n{stdout}\n{stderr}"
    return stdout
