"""Waiting mode: many orders waiting for approval at once on one worker, then all approved."""

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from benchmarks.bench_worker import BASELINE, PROJECT
from benchmarks.load import approve, approve_by_update, bounded, completes, place_until_waiting
from benchmarks.measure import CpuClock, peak_rss_mb, rss_mb
from benchmarks.progress import progress_bar
from benchmarks.report import target
from benchmarks.servers import BenchmarkError, Run, Server, log_tail, server_for_phase, workers
from orders.decision_update import BULK_CONCURRENCY

APPROVE_SCRIPT = Path(__file__).resolve().parents[1] / "order_application" / "approve.py"

# Targets from the issue; reported as PASS or FAIL, never enforced.
MAX_WAITING_RSS_MB = 250.0
MAX_APPROVING_BY_UPDATE_RATIO = 1.3
MAX_FIRST_APPROVAL_TO_DONE_RATIO = 1.3
# Memory readings while the orders pile up, for the chart of RSS against waiting orders.
RSS_SAMPLES = 20


class ApprovedBy(StrEnum):
    UPDATE = "update"
    SIGNAL = "signal"


@dataclass(frozen=True)
class Side:
    """One side of the mode, on a server and a worker of its own: whose orders, approved how."""

    key: str
    """Its results' key in the JSON report."""
    kind: str
    approved_by: ApprovedBy

    @property
    def label(self) -> str:
        return f"{self.kind} by {self.approved_by}"


# An update returns only once the worker has run it, a signal once the server has stored it. So
# the project's bulk approval by update is timed against the baseline's updates, and its span
# from the first approval until every order has completed against the baseline's signals too.
# Every ratio needs every order of both sides waiting at once: each side places them all, on a
# server of its own. The project runs between the two baselines, next in time to each side it is
# set against. "baseline", the other modes' key, is approved by signal, as they approve it.
SIDES = (
    Side("baseline_update", BASELINE, ApprovedBy.UPDATE),
    Side(PROJECT, PROJECT, ApprovedBy.UPDATE),
    Side(BASELINE, BASELINE, ApprovedBy.SIGNAL),
)


async def waiting_side(side: Side, args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """Holds `args.orders` orders waiting for approval at once, then approves them all."""
    task_queue = f"bench-{run.id}-{side.key}-waiting"
    orders, concurrency = args.orders, args.concurrency
    async with (
        server_for_phase(run) as server,
        workers(side.kind, 1, task_queue, server, run) as pool,
    ):
        client = server.client_for(side.kind)
        worker = pool.processes[0]
        server_process = server.processes.get("server")
        began = time.perf_counter()

        def rss_sample(waiting: int) -> dict[str, float | None]:
            return {
                "waiting": waiting,
                "seconds": time.perf_counter() - began,
                "worker_rss_mb": rss_mb(worker),
                "server_rss_mb": rss_mb(server_process) if server_process else None,
            }

        samples = [rss_sample(0)]
        sample_every = max(1, orders // RSS_SAMPLES)
        waiting = 0
        with progress_bar(f"{side.label}: placing until waiting", orders) as advance:

            def one_more_waiting() -> None:
                nonlocal waiting
                waiting += 1
                advance()
                if waiting % sample_every == 0 or waiting == orders:
                    samples.append(rss_sample(waiting))

            handles = await pool.guard(
                bounded(
                    concurrency,
                    [
                        place_until_waiting(client, side.kind, f"{task_queue}-{index}", task_queue)
                        for index in range(orders)
                    ],
                    one_more_waiting,
                )
            )
        all_waiting = time.perf_counter() - began
        waiting_peak_rss = peak_rss_mb(worker)

        clock = CpuClock({"worker": [worker], **{n: [p] for n, p in server.processes.items()}})
        clock.start()
        began_approving = time.perf_counter()
        # When each approval was answered: the first is when the orders begin to move on.
        answers: list[float] = []
        with progress_bar(f"{side.label}: approving", orders) as advance:

            def answered() -> None:
                answers.append(time.perf_counter())
                advance()

            await pool.guard(approve_all(side, handles, server, task_queue, run, args, answered))
        approving = time.perf_counter() - began_approving
        with progress_bar(f"{side.label}: completing", orders) as advance:
            outcomes = await pool.guard(
                bounded(concurrency, [completes(handle) for handle in handles], advance)
            )
        first_approval_to_done = time.perf_counter() - answers[0]
        return {
            "approved_by": side.approved_by,
            "orders": orders,
            "completed": sum(outcomes),
            "seconds_to_all_waiting": all_waiting,
            "seconds_to_first_approval": answers[0] - began_approving,
            "seconds_to_approve_all": approving,
            "seconds_from_first_approval_to_all_completed": first_approval_to_done,
            "worker_idle_rss_mb": samples[0]["worker_rss_mb"],
            "worker_rss_all_waiting_mb": samples[-1]["worker_rss_mb"],
            "worker_peak_rss_until_all_waiting_mb": waiting_peak_rss,
            "worker_peak_rss_mb": peak_rss_mb(worker),
            "server_rss_all_waiting_mb": samples[-1]["server_rss_mb"],
            "server_peak_rss_mb": peak_rss_mb(server_process) if server_process else None,
            "rss_samples": samples,
            "cpu_seconds_after_approval": clock.stop(),
        }


def approve_all(
    side: Side,
    handles: list[WorkflowHandle[Any, Any]],
    server: Server,
    task_queue: str,
    run: Run,
    args: argparse.Namespace,
    answered: Callable[[], None],
) -> Awaitable[object]:
    """Approves every waiting order the side's way, calling `answered` as each is answered."""
    if side.kind == PROJECT:
        # As an operator would: one run of the bulk approver over the task queue.
        return bulk_approve(server.address, task_queue, run, args.orders, answered)
    if side.approved_by == ApprovedBy.UPDATE:
        # As many updates at a time as approve.py sends.
        return bounded(BULK_CONCURRENCY, [approve_by_update(h) for h in handles], answered)
    return bounded(args.concurrency, [approve(handle, side.kind) for handle in handles], answered)


async def bulk_approve(
    address: str, task_queue: str, run: Run, orders: int, answered: Callable[[], None]
) -> None:
    """`approve.py --all-waiting`, run as a user would, with the project workers' key file.

    It prints a line per order as its update is answered: "Approved order ..." for each approval.
    """
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "ORDER_TASK_QUEUE": task_queue,
        "ORDER_DATA_DIR": str(run.workdir),
    }
    log = run.workdir / f"{task_queue}-approve.log"
    # Opening a local file takes microseconds: no need to hand it to a thread.
    with open(log, "wb") as stderr:  # noqa: ASYNC230
        approver = await asyncio.create_subprocess_exec(
            str(APPROVE_SCRIPT), "--all-waiting",
            env=environment, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    assert approver.stdout is not None
    approved, other_lines = 0, []
    try:
        async for line in approver.stdout:
            if line.startswith(b"Approved order "):
                approved += 1
                answered()
            else:
                other_lines.append(line.decode(errors="replace").rstrip())
        await approver.wait()
    finally:
        if approver.returncode is None:  # Interrupted: the benchmark is stopping.
            # SIGTERM, which uv passes on to the script (it could not pass on a SIGKILL).
            approver.terminate()
            # Reads what is left too: the wait ends only once the pipe has closed.
            await approver.communicate()
    if approver.returncode != 0 or approved != orders:
        said = "\n".join(["", *other_lines[-5:]])
        raise BenchmarkError(
            f"approve.py --all-waiting approved {approved} of {orders} orders and exited with"
            f" code {approver.returncode}:{said}{log_tail(log)}"
        )


async def waiting(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """Each side's memory with `args.orders` orders waiting, the time to place and to approve
    them, and from the first approval until every order has completed."""
    results = {side.key: await waiting_side(side, args, run) for side in SIDES}
    project, by_update, by_signal = (results[key] for key in (PROJECT, "baseline_update", BASELINE))
    approving, to_done = "seconds_to_approve_all", "seconds_from_first_approval_to_all_completed"
    ratios = {
        "approving_all_by_update": project[approving] / by_update[approving],
        "first_approval_to_all_completed_by_signal": project[to_done] / by_signal[to_done],
        "first_approval_to_all_completed_by_update": project[to_done] / by_update[to_done],
        "worker_rss_all_waiting": project["worker_rss_all_waiting_mb"]
        / by_signal["worker_rss_all_waiting_mb"],
    }
    return {
        "results": results,
        "ratios": ratios,
        "targets": [
            target(
                f"worker RSS (MB) with {args.orders} orders waiting",
                project["worker_rss_all_waiting_mb"],
                "<",
                MAX_WAITING_RSS_MB,
            ),
            target(
                "approving all, project / baseline by update",
                ratios["approving_all_by_update"],
                "<=",
                MAX_APPROVING_BY_UPDATE_RATIO,
            ),
            target(
                "first approval to all completed, project / baseline by signal",
                ratios["first_approval_to_all_completed_by_signal"],
                "<=",
                MAX_FIRST_APPROVAL_TO_DONE_RATIO,
            ),
        ],
        "all_completed": all(r["completed"] == r["orders"] for r in results.values()),
    }
