"""The orders' metrics: once per order though every step replays, served by worker.py."""

import re
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from support.orders import NO_APPROVAL, ORDER, changed, place
from support.scripts import VALID_CARD
from temporalio.client import Client, WorkflowFailureError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker as SdkWorker

from activities import OrderActivities
from harness.processes import (
    DevServer,
    eventually,
    run_script,
    running_worker,
    script_env,
    status_saying,
)
from observability.metrics import APPROVAL_WAIT, COMPENSATIONS, ORDERS_COMPLETED, ORDERS_FAILED
from payloads.converter import PLAIN
from payloads.interceptor import OneArgumentPerMessage
from shared import ApproveOrder, RejectOrder
from shop.services import Services
from workflow import OrderWorkflow

# --- In process: a worker that keeps no order cached, so each step replays the whole history ---


async def test_each_order_counts_once_though_every_step_replays_its_history(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    address = dev_server_env.client.service_client.config.target_host
    client = await Client.connect(address, runtime=runtime, data_converter=PLAIN)
    worker = SdkWorker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=OrderActivities(services).all(),
        interceptors=[OneArgumentPerMessage()],
        max_cached_workflows=0,
    )
    async with worker:
        delivered = await place(dev_server_env, task_queue, ORDER)
        await delivered.signal(OrderWorkflow.approve_order, ApproveOrder(reason="checked"))
        await delivered.result()
        rejected = await place(dev_server_env, task_queue, ORDER)
        await rejected.signal(OrderWorkflow.reject_order, RejectOrder(reason="looks fake"))
        expired = await place(
            dev_server_env,
            task_queue,
            changed(ORDER, card_expiry="12/23", approval_threshold_cents=NO_APPROVAL),
        )
        for failing in (rejected, expired):
            with pytest.raises(WorkflowFailureError):
                await failing.result()

    recorded: Counter[tuple[str, str]] = Counter()
    for update in buffer.retrieve_updates():
        name, attributes = update.metric.name, update.attributes
        if name in {ORDERS_COMPLETED, ORDERS_FAILED, COMPENSATIONS}:
            label = str(attributes.get("error_type") or attributes.get("action") or "")
            recorded[name, label] += int(update.value)
        elif name == APPROVAL_WAIT:
            recorded[name, str(attributes["outcome"])] += 1
    assert recorded == {
        (ORDERS_COMPLETED, ""): 1,
        (ORDERS_FAILED, "OrderRejected"): 1,
        (ORDERS_FAILED, "CardExpired"): 1,
        (COMPENSATIONS, "refund payment"): 1,  # The expired card was never charged.
        (APPROVAL_WAIT, "approved"): 1,
        (APPROVAL_WAIT, "rejected"): 1,
    }


# --- End to end: what Prometheus scrapes from ./worker.py --metrics-port ----------------------


@pytest.fixture
def metrics_env(e2e_server: DevServer, tmp_path: Path) -> dict[str, str]:
    return script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"metrics-{uuid.uuid4().hex[:6]}")


def scrape(port: int) -> dict[str, float]:
    """Each series of /metrics, by its name and labels as Prometheus prints them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    series = re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in series}


def value(series: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name` over every series that has these labels."""
    return sum(
        number
        for key, number in series.items()
        if key.partition("{")[0] == name
        and all(f'{label}="{text}"' in key for label, text in labels.items())
    )


@pytest.mark.e2e
async def test_worker_serves_the_sdk_series_and_the_orders_own(
    metrics_env: dict[str, str], tmp_path: Path
) -> None:
    with running_worker(metrics_env, tmp_path / "worker.log", metrics=True) as worker:
        port = worker.metrics_port
        assert f"Metrics on http://127.0.0.1:{port}/metrics" in worker.output()
        order_id = f"metrics-{uuid.uuid4().hex[:8]}"
        placed = run_script(
            "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=metrics_env
        )
        assert placed.returncode == 0, placed
        assert run_script("approve.py", order_id, env=metrics_env).returncode == 0
        expired = run_script("starter.py", "12/23", env=metrics_env)
        assert expired.returncode == 1, expired
        await eventually(
            status_saying(metrics_env, order_id, "delivered"), "the approved order to be delivered"
        )

        series = scrape(port)
        assert value(series, "temporal_workflow_completed", workflow_type="OrderWorkflow") == 1
        assert value(series, "temporal_workflow_failed", workflow_type="OrderWorkflow") == 1
        assert value(series, ORDERS_COMPLETED, task_queue=metrics_env["ORDER_TASK_QUEUE"]) == 1
        assert value(series, ORDERS_FAILED, error_type="CardExpired") == 1
        # Seconds, in buckets up to the longest approval timeout (7 days).
        assert value(series, f"{APPROVAL_WAIT}_count", outcome="approved") == 1
        assert value(series, f"{APPROVAL_WAIT}_bucket", outcome="approved", le="604800") == 1

        # The port is taken now: a second worker says so in one line and does not start.
        second = run_script(
            "worker.py", "--metrics-port", str(port), "--codec-port", "0", env=metrics_env
        )
        assert second.returncode == 1, second
        assert second.stderr.startswith(f"error: cannot serve metrics on 127.0.0.1:{port}: ")
        assert "Traceback" not in second.stderr
