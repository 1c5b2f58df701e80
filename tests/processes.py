"""Real processes for end-to-end tests: a dev server, the worker and the scripts."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "order_application"
TEMPORAL_CLI = Path(sys.executable).parent / "temporal"

# First use of a script builds its uv environment; after that a script starts in about a second.
SCRIPT_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class DevServer:
    """`temporal server start-dev` on a free port, optionally keeping its state in a file."""

    db_file: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(TEMPORAL_CLI), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.port), "--log-level", "error",
        ]  # fmt: skip
        if self.db_file is not None:
            command += ["--db-filename", str(self.db_file)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def script_env(server: DevServer, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a user would have, pointed at the test's server and state folder."""
    env = {
        key: value
        for key, value in os.environ.items()
        # The test's own virtual environment must not leak into the scripts' uv environments.
        if key not in {"VIRTUAL_ENV", "PYTHONPATH"} and not key.startswith("TEMPORAL_")
    }
    env.update(
        TEMPORAL_ADDRESS=server.address,
        ORDER_DATA_DIR=str(data_dir),
        ORDER_SERVICE_DELAY="0",
        ORDER_PACK_DELAY="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_script(
    name: str, *args: str, env: dict[str, str], cwd: Path = SCRIPTS, timeout: float = SCRIPT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Runs ./NAME ARGS through its shebang, as a user would."""
    return subprocess.run(
        [f"./{name}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Worker:
    """./worker.py in the background; its output goes to a log file the test can read."""

    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["./worker.py", *self.args],
                cwd=SCRIPTS,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group, so a kill reaches uv and the Python it runs alike.
                start_new_session=True,
            )
        deadline = time.monotonic() + SCRIPT_TIMEOUT
        while "Worker polling" not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not start:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> int:
        """Sends a signal to the whole worker (uv and Python); returns the exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, signum)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)


@contextmanager
def running_worker(env: dict[str, str], log: Path, *args: str) -> Iterator[Worker]:
    worker = Worker(env, log, tuple(args))
    worker.start()
    try:
        yield worker
    finally:
        if worker.process is not None and worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
