"""Measures the order sample against a same-shape baseline: throughput, latency, CPU, memory."""

# Run from the repository root as `uv run benchmarks/throughput.py [--mode MODE]`; README.md next
# to this file says what each mode measures and how to read the numbers.

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The sample is a folder of scripts that import each other by bare name (`from shared import
# ...`), not an installed package: put that folder on the path, the repository root for
# `benchmarks.*`, and tests/ for the dev server the end-to-end tests start too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))

from benchmarks import charts
from benchmarks.measure import machine
from benchmarks.mode_curves import in_flight_curve, worker_curve
from benchmarks.mode_throughput import throughput
from benchmarks.mode_waiting import waiting
from benchmarks.report import table
from benchmarks.servers import BenchmarkError, Run, server_description

RESULTS = Path(__file__).resolve().parent / "results"

MODES: dict[str, Callable[[argparse.Namespace, Run], Awaitable[dict[str, Any]]]] = {
    "throughput": throughput,
    "in-flight": in_flight_curve,
    "workers": worker_curve,
    "waiting": waiting,
}
DEFAULT_ORDERS = 500
DEFAULT_WAITING_ORDERS = 2_000


def counts(text: str) -> list[int]:
    """A comma-separated list of whole numbers of at least 1, such as 1,10,50."""
    try:
        values = [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"every number must be at least 1: {text!r}")
    return values


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mode",
        choices=list(MODES),
        default="throughput",
        help="throughput: both sides at one level under load, and one order at a time;"
        " in-flight: both sides at each of --levels; workers: with each of --workers worker"
        " processes; waiting: many orders waiting for approval at once, then approved by update"
        " (the project's and a baseline's) and by signal (a baseline's) (default %(default)s)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        help=f"orders per phase (default {DEFAULT_ORDERS}); orders waiting at once on each side of"
        f" waiting mode (default {DEFAULT_WAITING_ORDERS})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="orders in flight at once in throughput and workers modes; requests in flight in"
        " waiting mode, but for the approvals by update, as many at a time as approve.py sends"
        " (default %(default)s)",
    )
    parser.add_argument(
        "--levels",
        type=counts,
        default=[1, 10, 50, 200, 500],
        help="orders in flight at each point of the in-flight mode (default 1,10,50,200,500)",
    )
    parser.add_argument(
        "--workers",
        type=counts,
        default=[1, 2],
        help="worker processes at each point of the workers mode (default 1,2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of one phase per side (per point, in the curves), alternating which side"
        " goes first (default %(default)s: project, baseline, baseline, project)",
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=100,
        help="unmeasured orders each phase runs first, at most --orders (default %(default)s)",
    )
    parser.add_argument(
        "--single-orders",
        type=int,
        default=50,
        help="orders per side run one at a time, the sides in turn, for the single-order"
        " latency of throughput mode (default %(default)s)",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the workers with PYTHONDONTWRITEBYTECODE=1, as many container images do",
    )
    parser.add_argument(
        "--pass-through-sample",
        action="store_true",
        help="run the workers with the sample's own modules passed through the sandbox (the"
        " workflow's too), as worker.py did before, to measure what the standard sandbox costs",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON result file, the charts next to it (default benchmarks/results/<mode>-<time>)",
    )
    args = parser.parse_args()
    args.orders = args.orders or (
        DEFAULT_WAITING_ORDERS if args.mode == "waiting" else DEFAULT_ORDERS
    )
    if min(args.orders, args.concurrency, args.rounds, args.single_orders) < 1:
        parser.error("--orders, --concurrency, --rounds and --single-orders must be at least 1")
    if args.warm_up < 0:
        parser.error("--warm-up must not be negative")
    return args


async def benchmark(args: argparse.Namespace, address: str | None) -> dict[str, Any]:
    # SIGTERM stops the run as Ctrl-C does: the servers and the workers are stopped on the way out.
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    with tempfile.TemporaryDirectory(prefix="order-benchmark-") as tmp:
        run = Run(
            id=uuid.uuid4().hex[:8],
            workdir=Path(tmp),
            address=address,
            namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
            bytecode_cache=not args.no_bytecode_cache,
            pass_through_sample=args.pass_through_sample,
        )
        return await MODES[args.mode](args, run)


def main() -> int:
    args = parse_args()
    started = datetime.now(UTC)
    output = args.output or RESULTS / f"{args.mode}-{started:%Y%m%dT%H%M%SZ}.json"
    # TEMPORAL_ADDRESS as every Temporal tool reads it; without it, dev servers of our own.
    address = os.environ.get("TEMPORAL_ADDRESS")
    host = machine()
    try:
        measured = asyncio.run(benchmark(args, address))
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
        "server": server_description(address),
        "settings": {
            "orders": args.orders,
            "concurrency": args.concurrency,
            "levels": args.levels,
            "workers": args.workers,
            "rounds": args.rounds,
            "warm_up": args.warm_up,
            "single_orders": args.single_orders,
            "bytecode_cache": not args.no_bytecode_cache,
            "pass_through_sample": args.pass_through_sample,
            "encryption": os.environ.get("ORDER_ENCRYPTION", "on"),
        },
        **measured,
    }
    print(table(report))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nResults: {output}")
    for chart in charts.draw(report, output):
        print(f"Chart: {chart}")
    if not report["all_completed"]:
        print("error: not every order completed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
