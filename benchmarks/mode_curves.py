"""Cost curves: both sides at several in-flight levels, or with one worker against several."""

import argparse
from typing import Any

from benchmarks.bench_worker import BASELINE, PROJECT
from benchmarks.phases import (
    Phase,
    phase_json,
    phase_order,
    project_over_baseline,
    run_phase,
    summary,
)
from benchmarks.servers import Run

IN_FLIGHT, WORKERS = "in_flight", "workers"


async def in_flight_curve(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """Throughput, latency and CPU of both sides at each of `args.levels` orders in flight."""
    return await curve(args, run, IN_FLIGHT, args.levels)


async def worker_curve(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """The same, at `args.concurrency` in flight, with each of `args.workers` worker processes."""
    return await curve(args, run, WORKERS, args.workers)


async def curve(args: argparse.Namespace, run: Run, axis: str, points: list[int]) -> dict[str, Any]:
    phases: list[Phase] = []
    for index, point in enumerate(points):
        in_flight, worker_count = (point, 1) if axis == IN_FLIGHT else (args.concurrency, point)
        # A point must reach its level at least once, however few orders were asked for.
        orders = max(args.orders, in_flight)
        # Each point swaps which side goes first, so that drift over the run weighs on both.
        for kind, round_ in phase_order(args.rounds, project_first=index % 2 == 0):
            phases.append(
                await run_phase(run, kind, round_, in_flight, worker_count, orders, args.warm_up)
            )
    results = {
        kind: [
            {axis: point, **summary([p for p in phases if p.kind == kind and at(p, axis) == point])}
            for point in points
        ]
        for kind in (PROJECT, BASELINE)
    }
    return {
        "axis": axis,
        "points": points,
        "phases": [phase_json(p) for p in phases],
        "results": results,
        "ratios": [
            project_over_baseline(project, baseline)
            for project, baseline in zip(results[PROJECT], results[BASELINE], strict=True)
        ],
        "all_completed": all(p.batch.completed == p.batch.orders for p in phases),
    }


def at(phase: Phase, axis: str) -> int:
    return phase.in_flight if axis == IN_FLIGHT else phase.workers
