"""Real processes for end-to-end tests and the benchmark: a dev server, the worker, the scripts."""

import asyncio
import inspect
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from command_line.exit import EXIT_NO
from observability.search_attributes import dev_server_options

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "order_application"
TEMPORAL_CLI = Path(sys.executable).parent / "temporal"

# First use of a script builds its uv environment; after that a script starts in about a second.
SCRIPT_TIMEOUT = 180.0


# Someone's own dev server may be on the default ports: never hand them out.
RESERVED_PORTS = frozenset({7233, 8233, 8081})

# Ports for the test's servers come from below the kernel's ephemeral range (32768 and up on
# Linux), from which every outgoing connection takes its local port: a port chosen here can then
# be taken only by another listener, and a server that finds it taken starts again on another.
LISTEN_PORTS = range(20_000, 32_768)
START_ATTEMPTS = 5

DEADLINE_SECONDS = 120.0
"""How long a test waits for anything: generous for a loaded 2-core machine. A test that hangs
instead is stopped, with its stack, by pytest-timeout."""

T = TypeVar("T")


def free_port() -> int:
    """A port nothing listens on now, for a server about to start."""
    while True:
        port = random.choice(LISTEN_PORTS)
        if port in RESERVED_PORTS:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class PortTaken(RuntimeError):
    """A server could not bind the port chosen for it: another process took it after the choice."""


def on_free_ports(start: Callable[[], T]) -> T:
    """Returns `start()`, which starts a server on ports it chooses afresh at each call; while it
    raises PortTaken, calls it again, up to START_ATTEMPTS times in all."""
    for _ in range(START_ATTEMPTS - 1):
        with suppress(PortTaken):
            return start()
    return start()


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    within: float = DEADLINE_SECONDS,
    interval: float = 0.2,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None],
    what: str,
    within: float = DEADLINE_SECONDS,
    interval: float = 0.2,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    what: str,
    within: float = DEADLINE_SECONDS,
    interval: float = 0.2,
) -> Any:
    """Calls `check` every `interval` seconds until it returns something other than None or
    False, and returns that; fails naming `what` after `within` seconds. `check` may be a
    coroutine function."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


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


def wait_until_serving(
    address: str, process: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Returns once the server at `address` answers a call on its default namespace: its frontend
    listens a moment before it serves, and refuses calls until then ("Frontend is not healthy
    yet"). Fails at once if `process` (the server) exits."""
    command = [
        str(TEMPORAL_CLI), "operator", "namespace", "describe", "--namespace", "default",
        "--address", address,
    ]  # fmt: skip
    # The CLI alone, as the dev server's own: no profile of the shell's may point it elsewhere.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    deadline = time.monotonic() + timeout
    while True:
        with suppress(subprocess.TimeoutExpired):
            answer = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=10
            )
            if answer.returncode == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server at {address} does not serve after {timeout:g} s")
        time.sleep(0.2)


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
        """Starts the server; returns once it serves. If its port was taken meanwhile, it starts
        again on another."""
        for attempt in range(START_ATTEMPTS):
            self.launch()
            assert self.process is not None
            try:
                wait_for_port(self.port, process=self.process)
                wait_until_serving(self.address, self.process)
                return
            except RuntimeError:
                if attempt == START_ATTEMPTS - 1:
                    raise
                self.port = free_port()

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


@dataclass
class RunningScript:
    """A script left running, as in a terminal of its own; what it prints goes to files, so
    reading it never blocks."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")

    async def printed(self, text: str) -> str:
        """Its output, once `text` is in it."""
        return await eventually(
            lambda: self.output() if text in self.output() else None, f"{text!r} in its output"
        )

    def finish(self, within: float = SCRIPT_TIMEOUT) -> int:
        """Its exit code, once it has ended."""
        return self.process.wait(timeout=within)


def start_script(name: str, *args: str, env: dict[str, str], logs: Path) -> RunningScript:
    """Starts ./NAME ARGS through its shebang and returns at once; its output goes into `logs`."""
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [f"./{name}", *args], cwd=SCRIPTS, env=env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return RunningScript(process, stdout, stderr)


def status_saying(env: dict[str, str], order_id: str, text: str) -> Callable[[], str | None]:
    """A check for `eventually`: status.py's output, once it says `text` about the order."""

    def check() -> str | None:
        output = run_script("status.py", order_id, env=env).stdout
        return output if text in output else None

    return check


def raise_if_port_taken(exit_code: int, output: str, *ports: int) -> None:
    """PortTaken if ./worker.py exited saying that another process listens on one of `ports` (0:
    none), where it was to serve its codec ("error: localhost:PORT is taken (Address already in
    use) by something that is not a codec server of this key file; ...") or its metrics ("error:
    cannot serve metrics on 127.0.0.1:PORT: Failed starting Prometheus exporter: Address already
    in use (os error 98)")."""
    if exit_code != EXIT_NO:
        return
    for port in filter(None, ports):
        refusals = (
            f"error: localhost:{port} is taken (",
            f"error: cannot serve metrics on 127.0.0.1:{port}: ",
        )
        for line in output.splitlines():
            if line.startswith(refusals) and "Address already in use" in line:
                raise PortTaken(line)


@dataclass
class Worker:
    """./worker.py in the background; its output goes to a log file the test can read."""

    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    codec_port: int = 0
    """The port of its codec server, unless `args` give one; 0: none."""
    metrics_port: int = 0
    """The port of its Prometheus metrics; 0: none."""

    def start(self) -> None:
        """Starts it; returns once it polls. PortTaken if its codec_port or metrics_port was taken
        by the time it came to bind it."""
        # No codec server unless the test asks for one on a port of its own: a worker holding the
        # default port, with another test's key, would make this one refuse to start.
        codec = () if "--codec-port" in self.args else ("--codec-port", str(self.codec_port))
        metrics = ("--metrics-port", str(self.metrics_port)) if self.metrics_port else ()
        logged = len(self.output())
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["./worker.py", *self.args, *codec, *metrics],
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
                said = self.output()[logged:]
                raise_if_port_taken(
                    self.process.returncode, said, self.codec_port, self.metrics_port
                )
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

    def kill(self) -> None:
        """Kills the whole worker at once, if it still runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def running_worker(
    env: dict[str, str],
    log: Path,
    *args: str,
    codec: bool = False,
    metrics: bool = False,
    choose_port: Callable[[], int] = free_port,
) -> Iterator[Worker]:
    """./worker.py ARGS until the block ends. With `codec` it serves its codec, with `metrics` its
    metrics, each on a port from `choose_port` (worker.codec_port, worker.metrics_port); should
    one be taken by the time the worker binds it, the worker starts again on fresh ones."""

    def start() -> Worker:
        worker = Worker(
            env,
            log,
            args,
            codec_port=choose_port() if codec else 0,
            metrics_port=choose_port() if metrics else 0,
        )
        worker.start()
        return worker

    worker = on_free_ports(start)
    try:
        yield worker
    finally:
        worker.kill()
