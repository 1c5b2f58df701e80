"""The benchmark's processes: a Temporal server per phase, and worker processes polling it."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

# psutil ships no type hints, and types-psutil is not in the dev group.
import psutil  # type: ignore[import-untyped]
from temporalio.client import Client

from benchmarks.bench_worker import PROJECT
from command_line.connection import data_converter

# tests/processes.py: the dev server the end-to-end tests start, shared rather than copied.
from harness.processes import TEMPORAL_CLI, DevServer

WORKER_SCRIPT = Path(__file__).resolve().parent / "bench_worker.py"

# The history service moves each new workflow task to matching through its transfer queue,
# which it reads at most 20 times a second by default. Orders run back to back use up that
# budget after about four, and from then on every workflow task waits up to 50 ms for the next
# read: single-order latency would measure that limit (about 300 ms for six workflow tasks, on
# either side) instead of the workflows. Both sides run on servers set alike, so this is fair.
DEV_SERVER_OPTIONS = ("--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000")
# A fresh in-memory dev server answers in a second or two; a worker is up in about as long.
START_SECONDS = 60.0
DEV_SERVER_START_TRIES = 3

T = TypeVar("T")


class BenchmarkError(Exception):
    """The run cannot go on (a process died or did not start); said in one line."""


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
    return "\n".join(["", f"--- last lines of {path.name}:", *text]) if text else ""


@dataclass(frozen=True)
class Run:
    """What every phase of one benchmark run shares."""

    id: str
    """In the task queues and workflow IDs, so that runs never meet, even on a shared server."""
    workdir: Path
    """Logs, ledgers and the workers' bytecode cache; deleted after the run."""
    address: str | None
    """The server TEMPORAL_ADDRESS names; None for a dev server of the benchmark's own per phase."""
    namespace: str
    bytecode_cache: bool = True
    """False: workers run with PYTHONDONTWRITEBYTECODE=1, as many container images set."""
    pass_through_sample: bool = False
    """True: workers share the sample's own modules, the workflow's included, between orders, as
    worker.py did before it ran the standard sandbox (the candidate it is measured against)."""


@dataclass
class Server:
    """The Temporal server one phase runs against, and the processes whose CPU time it measures."""

    address: str
    namespace: str
    client: Client
    processes: dict[str, psutil.Process]
    """The load generator, and the dev server when the benchmark started it."""
    project_client: Client
    """`client` with the project's encrypting converter, whose key its workers share."""

    def client_for(self, kind: str) -> Client:
        return self.project_client if kind == PROJECT else self.client


def with_project_converter(client: Client, workdir: Path) -> Client:
    config = client.config()
    config["data_converter"] = data_converter(workdir)
    return Client(**config)


async def connect_to_dev_server(server: DevServer, namespace: str, log: Path) -> Client:
    """Connects, retrying while the server is still coming up."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return await Client.connect(server.address, namespace=namespace)
        except RuntimeError as err:
            assert server.process is not None
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(
                    f"the dev server did not come up on {server.address}{log_tail(log)}"
                ) from err
            await asyncio.sleep(0.2)


async def start_dev_server(namespace: str, log: Path) -> tuple[DevServer, Client]:
    """A fresh dev server and a client of it. The server picks free ports of its own as it starts
    and, rarely, loses one to another process and exits: then it starts again on a new port."""
    tries_left = DEV_SERVER_START_TRIES
    while True:
        tries_left -= 1
        dev_server = DevServer(log=log, log_level="warn", options=DEV_SERVER_OPTIONS)
        # Launched without waiting for the port, so that nothing blocks the event loop; the
        # connection retries until the server answers.
        dev_server.launch()
        try:
            return dev_server, await connect_to_dev_server(dev_server, namespace, log)
        except BenchmarkError:
            exited = dev_server.process is not None and dev_server.process.poll() is not None
            dev_server.stop()
            if not exited or tries_left == 0:
                raise


@contextlib.asynccontextmanager
async def server_for_phase(run: Run) -> AsyncIterator[Server]:
    """A fresh in-memory dev server, stopped on the way out; or the one TEMPORAL_ADDRESS names.

    The dev server keeps every finished workflow in memory and slows down as they pile up: over
    four phases on one server its CPU per order grew by a quarter. A fresh server per phase
    gives every phase, whichever side and position, the same start.
    """
    load_generator = psutil.Process()
    namespace = run.namespace
    if run.address is not None:
        try:
            client = await Client.connect(run.address, namespace=namespace)
        except RuntimeError as err:
            raise BenchmarkError(f"cannot reach Temporal at {run.address}: {err}") from err
        yield Server(
            run.address,
            namespace,
            client,
            {"load_generator": load_generator},
            with_project_converter(client, run.workdir),
        )
        return
    log = run.workdir / "temporal.log"
    dev_server, client = await start_dev_server(namespace, log)
    try:
        assert dev_server.process is not None
        processes = {
            "load_generator": load_generator,
            "server": psutil.Process(dev_server.process.pid),
        }
        yield Server(
            dev_server.address,
            namespace,
            client,
            processes,
            with_project_converter(client, run.workdir),
        )
    finally:
        dev_server.stop()


@dataclass
class WorkerProcess:
    process: psutil.Process
    exited: "asyncio.Task[int]"
    log: Path


@dataclass
class Workers:
    """Worker processes of one kind, all polling one task queue."""

    kind: str
    members: list[WorkerProcess]

    @property
    def processes(self) -> list[psutil.Process]:
        return [member.process for member in self.members]

    async def guard(self, work: Awaitable[T]) -> T:
        """Awaits `work`, unless a worker dies first: then fails at once, with its log."""
        task = asyncio.ensure_future(work)
        exits = {member.exited for member in self.members}
        await asyncio.wait({task, *exits}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        dead = next(member for member in self.members if member.exited.done())
        raise BenchmarkError(
            f"a {self.kind} worker exited with code {dead.exited.result()}{log_tail(dead.log)}"
        )


def worker_environment(workdir: Path, bytecode_cache: bool) -> dict[str, str]:
    """This environment, with Python's bytecode cache on (kept in `workdir`, not the repository)
    or off (PYTHONDONTWRITEBYTECODE=1, as some machines and containers set).

    The sandbox imports a workflow's module afresh for every workflow run: without a bytecode
    cache, unless the module is passed through, that means compiling its source every time.
    """
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if bytecode_cache:
        environment["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    else:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


@contextlib.asynccontextmanager
async def worker_process(
    kind: str, task_queue: str, name: str, server: Server, run: Run
) -> AsyncIterator[WorkerProcess]:
    """A fresh worker process polling `task_queue`, logging to NAME.log; stopped on the way out."""
    workdir = run.workdir
    log = workdir / f"{name}.log"
    # Opening a local file takes microseconds: no need to hand it to a thread.
    with open(log, "wb") as stderr:  # noqa: ASYNC230
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER_SCRIPT),
            *("--kind", kind, "--address", server.address, "--namespace", server.namespace),
            # Workers of one task queue share the services' ledger, as worker.py processes
            # sharing ORDER_DATA_DIR do.
            *("--task-queue", task_queue, "--ledger", str(workdir / f"{task_queue}.sqlite3")),
            *(["--pass-through-sample"] if run.pass_through_sample else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=worker_environment(workdir, run.bytecode_cache),
        )
    assert child.stdin is not None
    assert child.stdout is not None
    worker = WorkerProcess(psutil.Process(child.pid), asyncio.create_task(child.wait()), log)
    try:
        try:
            line = await asyncio.wait_for(
                Workers(kind, [worker]).guard(child.stdout.readline()), START_SECONDS
            )
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise BenchmarkError(f"the {kind} worker did not start{log_tail(log)}")
        yield worker
    finally:
        child.stdin.close()  # The worker's cue to shut down.
        try:
            await asyncio.wait_for(asyncio.shield(worker.exited), 30)
        except TimeoutError:
            child.kill()
            await worker.exited


@contextlib.asynccontextmanager
async def workers(
    kind: str, count: int, task_queue: str, server: Server, run: Run
) -> AsyncIterator[Workers]:
    """`count` fresh worker processes of one kind on `task_queue`; stopped on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        members = [
            await stack.enter_async_context(
                worker_process(kind, task_queue, f"{task_queue}-{index}", server, run)
            )
            for index in range(1, count + 1)
        ]
        yield Workers(kind, members)


def server_description(address: str | None) -> dict[str, str]:
    """What the phases ran against, for the report."""
    if address is not None:
        return {"address": address, "kind": "TEMPORAL_ADDRESS"}
    version = subprocess.run(
        [str(TEMPORAL_CLI), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "kind": f"a fresh in-memory dev server per phase, {' '.join(DEV_SERVER_OPTIONS[1:])}",
        "version": version,
    }
