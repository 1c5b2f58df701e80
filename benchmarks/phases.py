"""One phase under load: a fresh server and workers, a warm-up batch, then the measured batch."""

from dataclasses import dataclass
from typing import Any

from benchmarks.bench_worker import BASELINE, PROJECT
from benchmarks.load import Batch, run_batch
from benchmarks.measure import CpuClock, latency_cuts_ms, peak_rss_mb, percentiles_ms
from benchmarks.progress import progress_bar
from benchmarks.servers import BenchmarkError, Run, server_for_phase, workers


@dataclass
class Phase:
    kind: str
    round: int
    in_flight: int
    workers: int
    batch: Batch
    cpu_seconds: dict[str, float]
    """CPU seconds during the measured batch, of the workers together, the server and the load
    generator."""
    worker_peak_rss_mb: float
    """The most memory any one of the workers ever had resident."""


def phase_order(rounds: int, project_first: bool = True) -> list[tuple[str, int]]:
    """The (side, round) of each phase: project, baseline, baseline, project, and so on.

    Drift on a shared machine (another job starting, CPU frequency) would favour whichever side
    runs in the quieter moment. Each round swaps which side goes first (ABBA), so that a linear
    drift weighs on both sides equally.
    """
    order = [(PROJECT, BASELINE), (BASELINE, PROJECT)]
    if not project_first:
        order.reverse()
    return [(side, round_) for round_ in range(1, rounds + 1) for side in order[(round_ - 1) % 2]]


async def run_phase(
    run: Run, kind: str, round_: int, in_flight: int, worker_count: int, orders: int, warm_up: int
) -> Phase:
    """Runs `orders` orders, `in_flight` at a time, on a fresh server and `worker_count` workers.

    A fresh server and worker, and a machine that may have idled, start slow: first imports,
    empty caches, clocks ramping up. An unmeasured warm-up batch of up to `warm_up` orders takes
    that out of what is measured, on both sides alike.
    """
    task_queue = f"bench-{run.id}-{kind}-{in_flight}x{worker_count}-{round_}"
    label = f"{kind} #{round_}, {in_flight} in flight" + (
        f", {worker_count} workers" if worker_count > 1 else ""
    )
    async with (
        server_for_phase(run) as server,
        workers(kind, worker_count, task_queue, server, run) as pool,
    ):
        warm_up = min(warm_up, orders)
        if warm_up:
            with progress_bar(f"{label}: warm-up", warm_up) as advance:
                await pool.guard(
                    run_batch(
                        server.client_for(kind),
                        kind,
                        task_queue,
                        warm_up,
                        in_flight,
                        f"{task_queue}-warm-up",
                        advance,
                    )
                )
        clock = CpuClock(
            {"worker": pool.processes, **{name: [p] for name, p in server.processes.items()}}
        )
        with progress_bar(label, orders) as advance:
            clock.start()
            batch = await pool.guard(
                run_batch(
                    server.client_for(kind),
                    kind,
                    task_queue,
                    orders,
                    in_flight,
                    task_queue,
                    advance,
                )
            )
            cpu = clock.stop()
        if not batch.completed:
            raise BenchmarkError(f"not one {kind} order completed; see {pool.members[0].log}")
        peak = max(peak_rss_mb(process) for process in pool.processes)
        return Phase(kind, round_, in_flight, worker_count, batch, cpu, peak)


def summary(phases: list[Phase]) -> dict[str, Any]:
    """The numbers of phases of one side and setting: totals over totals, percentiles over all."""
    completed = sum(p.batch.completed for p in phases)
    wall = sum(p.batch.wall_seconds for p in phases)
    cpu = {name: sum(p.cpu_seconds[name] for p in phases) for name in phases[0].cpu_seconds}
    latencies = [seconds for p in phases for seconds in p.batch.latencies]
    return {
        "orders": sum(p.batch.orders for p in phases),
        "completed": completed,
        "orders_per_second": completed / wall,
        "latency_ms": percentiles_ms(latencies),
        "latency_cuts_ms": latency_cuts_ms(latencies),
        "cpu_ms_per_order": {name: 1000 * seconds / completed for name, seconds in cpu.items()},
        "cpu_cores_busy": {name: seconds / wall for name, seconds in cpu.items()},
        "worker_peak_rss_mb": max(p.worker_peak_rss_mb for p in phases),
    }


def phase_json(phase: Phase) -> dict[str, Any]:
    batch = phase.batch
    return {
        "kind": phase.kind,
        "round": phase.round,
        "in_flight": phase.in_flight,
        "workers": phase.workers,
        "orders": batch.orders,
        "completed": batch.completed,
        "wall_seconds": round(batch.wall_seconds, 3),
        "orders_per_second": batch.completed / batch.wall_seconds,
        "latency_ms": percentiles_ms(batch.latencies),
        "cpu_ms_per_order": {
            name: 1000 * seconds / batch.completed for name, seconds in phase.cpu_seconds.items()
        },
        "worker_peak_rss_mb": phase.worker_peak_rss_mb,
    }


def project_over_baseline(project: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """The project's numbers over the baseline's, from two summaries; the server's CPU too when
    the benchmark ran the server (not with TEMPORAL_ADDRESS)."""
    cpu, baseline_cpu = project["cpu_ms_per_order"], baseline["cpu_ms_per_order"]
    ratios = {
        "orders_per_second": project["orders_per_second"] / baseline["orders_per_second"],
        "latency_p50": project["latency_ms"]["p50"] / baseline["latency_ms"]["p50"],
        "latency_p99": project["latency_ms"]["p99"] / baseline["latency_ms"]["p99"],
        "worker_cpu_per_order": cpu["worker"] / baseline_cpu["worker"],
        "worker_peak_rss": project["worker_peak_rss_mb"] / baseline["worker_peak_rss_mb"],
    }
    if "server" in cpu and "server" in baseline_cpu:
        ratios["server_cpu_per_order"] = cpu["server"] / baseline_cpu["server"]
    return ratios
