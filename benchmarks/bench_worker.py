"""One benchmark worker: the sample's order workflow and activities, or the baseline's."""

# throughput.py runs it as a process of its own, so that the worker's CPU time and memory are
# measured apart from the load generator's. It prints "ready" once it polls, and stops when its
# stdin closes, which also happens when the benchmark is killed.

import argparse
import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The sample is a folder of scripts that import each other by bare name (`from shared import
# ...`), not an installed package: put that folder on the path, and the repository root for
# `benchmarks.baseline`, before importing from either. Both kinds import everything, so that
# their memory differs only by what their workflows and activities hold.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import OrderActivities
from benchmarks.baseline import BaselineWorkflow, no_op
from command_line.connection import data_converter
from observability.worker_log import configure_logging
from payloads.interceptor import DecisionProofs, OneArgumentPerMessage
from shop.services import Ledger, Services
from worker import MAX_CACHED_ORDERS
from workflow import OrderWorkflow

PROJECT, BASELINE = "project", "baseline"

# What worker.py passed through the sandbox before it ran the standard one: every module of the
# sample, the workflow's own included, so none was imported afresh per order.
PASS_THROUGH_SAMPLE = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflow",
        "releases",
        "buggy_workflow",
        "shared",
        "rules",
        "errors",
        "boundary",
        "metrics",
        "activities",
        "services",
        "codec",
        "converter",
    )
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=[PROJECT, BASELINE], required=True)
    parser.add_argument("--address", required=True, help="the Temporal server, HOST:PORT")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--ledger", type=Path, help="the services' SQLite file (project only)")
    parser.add_argument(
        "--pass-through-sample",
        action="store_true",
        help="pass the sample's own modules, the workflow's too, through the sandbox, as worker.py"
        " did before it ran the SDK's standard sandbox",
    )
    args = parser.parse_args()
    if args.kind == PROJECT and args.ledger is None:
        parser.error("--ledger is required with --kind project")
    return args


def stop_on_stdin_eof(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    # A daemon thread: its blocking read must not keep the process alive once the worker stops.
    threading.Thread(target=wait_for_eof, daemon=True).start()


async def main() -> None:
    args = parse_args()
    # Log as order_application/worker.py does, so the sample's log lines cost what they cost
    # there (the benchmark sends stderr to a file).
    configure_logging()
    # The project's worker as worker.py runs it: every payload encrypted, with the key file in
    # the benchmark's folder (the ledger's), and messages read as any client may send them.
    converter = data_converter(args.ledger.parent) if args.kind == PROJECT else None
    client = await Client.connect(
        args.address, namespace=args.namespace, data_converter=converter or DataConverter.default
    )
    with contextlib.ExitStack() as stack:
        workflows: list[type]
        activities: list[Callable[..., Any]]
        if args.kind == PROJECT:
            # The services of a real run, answering at once.
            ledger = stack.enter_context(contextlib.closing(Ledger(args.ledger)))
            workflows = [OrderWorkflow]
            activities = OrderActivities(Services(ledger, delay=0, pack_delay=0)).all()
        else:
            workflows, activities = [BaselineWorkflow], [no_op]
        # The same Worker settings for both kinds, as worker.py sets them.
        worker = Worker(
            client,
            task_queue=args.task_queue,
            workflows=workflows,
            activities=activities,
            max_cached_workflows=MAX_CACHED_ORDERS,
            interceptors=[
                OneArgumentPerMessage(),
                DecisionProofs(client.data_converter.payload_codec),
            ]
            if args.kind == PROJECT
            else [],
            workflow_runner=PASS_THROUGH_SAMPLE
            if args.pass_through_sample
            else SandboxedWorkflowRunner(),
        )
        stop = asyncio.Event()
        stop_on_stdin_eof(stop)
        async with worker:
            print("ready", flush=True)
            # Nothing reads stdout after "ready": the SDK's core writes its warnings there, and a
            # full pipe would block it and stop the worker polling. They go to the log instead.
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
