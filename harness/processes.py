"""Real processes for end-to-end tests and the benchmark: a dev server, the worker, the scripts."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from observability.search_attributes import dev_server_options

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "order_application"
TEMPORAL_CLI = Path(sys.executable).parent / "temporal"

# First use of a script builds its uv environment; after that a script starts in about a second.
SCRIPT_TIMEOUT = 180.0


# Someone's own dev server may be on the default ports: never hand them out, whatever range the
# OS takes free ports from.
RESERVED_PORTS = frozenset({7233, 8233})


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Returns once `check()` is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.3)


def wait_for_port(
    port: int, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Returns once something listens on `port`; fails at once if `process` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}") from None
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class DevServer:
    """`temporal server start-dev` on a free port, optionally keeping its state in a file."""

    db_file: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    """Where the server's output goes (appended); nowhere by default."""
    log_level: str = "error"
    options: tuple[str, ...] = ()
    """More `temporal server start-dev` options, such as `--dynamic-config-value`s."""
    search_attributes: bool = True
    """Whether to register the order's search attributes, as the worker's own dev server does."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts the server; returns once it listens."""
        self.launch()
        wait_for_port(self.port, process=self.process)

    def launch(self) -> None:
        """Starts the server's process without waiting for it to listen."""
        command = [
            str(TEMPORAL_CLI), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.port), "--log-level", self.log_level,
            *self.options,
            *(dev_server_options() if self.search_attributes else []),
        ]  # fmt: skip
        if self.db_file is not None:
            command += ["--db-filename", str(self.db_file)]
        with open(self.log or os.devnull, "ab") as output:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )

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


def says(env: dict[str, str], order_id: str, text: str) -> Callable[[], bool]:
    """A check for `eventually`: does status.py say `text` about the order?"""
    return lambda: text in run_script("status.py", order_id, env=env).stdout


@dataclass
class Worker:
    """./worker.py in the background; its output goes to a log file the test can read."""

    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # No codec server unless the test asks for one on a port of its own: a worker holding the
        # default port, with another test's key, would make this one refuse to start.
        codec = () if "--codec-port" in self.args else ("--codec-port", "0")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["./worker.py", *self.args, *codec],
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
