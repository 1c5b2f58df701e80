"""Waiting mode: many orders waiting for approval at once on one worker, then all approved."""

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_worker import BASELINE, PROJECT
from benchmarks.load import approve, bounded, completes, place_until_waiting
from benchmarks.measure import CpuClock, peak_rss_mb, rss_mb
from benchmarks.progress import progress_bar
from benchmarks.report import target
from benchmarks.servers import BenchmarkError, Run, server_for_phase, workers

APPROVE_SCRIPT = Path(__file__).resolve().parents[1] / "order_application" / "approve.py"

# The target for the project's worker; reported as PASS or FAIL, never enforced.
MAX_WAITING_RSS_MB = 250.0
# Memory readings while the orders pile up, for the chart of RSS against waiting orders.
RSS_SAMPLES = 20


async def waiting_side(kind: str, args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """Holds `args.orders` orders waiting for approval at once, then approves them all."""
    task_queue = f"bench-{run.id}-{kind}-waiting"
    orders, concurrency = args.orders, args.concurrency
    async with (
        server_for_phase(run) as server,
        workers(kind, 1, task_queue, server, run) as pool,
    ):
        client = server.client_for(kind)
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
        with progress_bar(f"{kind}: placing until waiting", orders) as advance:

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
                        place_until_waiting(client, kind, f"{task_queue}-{index}", task_queue)
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
        if kind == PROJECT:
            # As an operator would: one run of the bulk approver over the task queue.
            await pool.guard(bulk_approve(server.address, task_queue, run))
        else:
            with progress_bar(f"{kind}: approving", orders) as advance:
                await pool.guard(
                    bounded(concurrency, [approve(handle, kind) for handle in handles], advance)
                )
        approving = time.perf_counter() - began_approving
        with progress_bar(f"{kind}: completing", orders) as advance:
            outcomes = await pool.guard(
                bounded(concurrency, [completes(handle) for handle in handles], advance)
            )
        approved_to_done = time.perf_counter() - began_approving
        return {
            "orders": orders,
            "completed": sum(outcomes),
            "seconds_to_all_waiting": all_waiting,
            "seconds_to_approve_all": approving,
            "seconds_from_approval_to_all_completed": approved_to_done,
            "worker_idle_rss_mb": samples[0]["worker_rss_mb"],
            "worker_rss_all_waiting_mb": samples[-1]["worker_rss_mb"],
            "worker_peak_rss_until_all_waiting_mb": waiting_peak_rss,
            "worker_peak_rss_mb": peak_rss_mb(worker),
            "server_rss_all_waiting_mb": samples[-1]["server_rss_mb"],
            "server_peak_rss_mb": peak_rss_mb(server_process) if server_process else None,
            "rss_samples": samples,
            "cpu_seconds_after_approval": clock.stop(),
        }


async def bulk_approve(address: str, task_queue: str, run: Run) -> None:
    """`approve.py --all-waiting`, run as a user would, with the project workers' key file."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "ORDER_TASK_QUEUE": task_queue,
        "ORDER_DATA_DIR": str(run.workdir),
    }
    with progress_bar("project: approve.py --all-waiting", 1) as advance:
        approver = await asyncio.create_subprocess_exec(
            str(APPROVE_SCRIPT), "--all-waiting",
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, errors = await approver.communicate()
        advance()
    if approver.returncode != 0:
        raise BenchmarkError(f"approve.py --all-waiting failed: {errors.decode()[-2000:]}")


async def waiting(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """Each side's memory with `args.orders` orders waiting, and the time to place and approve."""
    results = {kind: await waiting_side(kind, args, run) for kind in (PROJECT, BASELINE)}
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
