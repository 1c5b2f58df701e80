"""The orders' own metrics, beside the SDK's: served to Prometheus by worker.py --metrics-port."""

# The workflow records them through its metric meter, which records nothing while a workflow
# replays its history: each order counts once, however often a worker rebuilds it.

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from temporalio import workflow
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from local.errors import UserError

ORDERS_COMPLETED = "orders_completed"
ORDERS_FAILED = "orders_failed"
APPROVAL_WAIT = "order_approval_wait_seconds"
COMPENSATIONS = "order_compensations"

# From a quick approval to the longest timeout an order may have (7 days), in seconds.
APPROVAL_WAIT_BUCKETS = [1, 5, 15, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600]


def prometheus_runtime(bind_address: str) -> Runtime:
    """A runtime whose metrics, the SDK's and the orders', are served at http://ADDRESS/metrics;
    a UserError if the address cannot be bound."""
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=bind_address,
                    durations_as_seconds=True,
                    histogram_bucket_overrides={APPROVAL_WAIT: APPROVAL_WAIT_BUCKETS},
                )
            )
        )
    except ValueError as err:  # Such as: Failed starting Prometheus exporter: Address in use
        raise UserError(f"cannot serve metrics on {bind_address}: {err}") from err
    print(f"Metrics on http://{bind_address}/metrics (Prometheus text).", flush=True)
    return runtime


# --- Recorded from inside OrderWorkflow ----------------------------------------------------------


def order_completed() -> None:
    workflow.metric_meter().create_counter(ORDERS_COMPLETED, "Orders delivered").add(1)


def order_failed(error_type: str) -> None:
    """`error_type` is the failure's type, such as CardExpired or ApprovalTimedOut."""
    workflow.metric_meter().create_counter(
        ORDERS_FAILED, "Orders that ended without delivery, by error type"
    ).add(1, {"error_type": error_type})


@contextmanager
def approval_wait_timed(outcome: Callable[[], str]) -> Iterator[None]:
    """Times the wait for a person's decision; `outcome()` tells how it ended: approved, rejected,
    timed out, or pending (cancelled while waiting)."""
    started = workflow.now()
    try:
        yield
    finally:
        # Not when the worker evicts the order from its cache: its wait has not ended then, and
        # the workflow's context is gone.
        if workflow.in_workflow():
            workflow.metric_meter().create_histogram_float(
                APPROVAL_WAIT, "Time orders waited for a person's decision", "s"
            ).record((workflow.now() - started).total_seconds(), {"outcome": outcome()})


def compensation_run(action: str) -> None:
    """`action` names what was undone, such as refund payment."""
    workflow.metric_meter().create_counter(
        COMPENSATIONS, "Compensations that undid a step of an order"
    ).add(1, {"action": action})
