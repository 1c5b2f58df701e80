"""Placing an order with Update-with-Start (one call starts it and waits for its payment answer),
or on a Temporal Schedule."""

import uuid
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

from local.errors import UserError
from orders.status_query import NO_WORKER_SECONDS
from shared import Order, PaymentSettled
from workflow import OrderWorkflow


class PaymentRefused(Exception):
    """The order was refused, or failed, before it was charged; it undoes what it did, if
    anything. `reason` is the order's own one line, such as `card expired 12/23`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


async def place_order(
    client: Client, task_queue: str, order: Order, order_id: str
) -> PaymentSettled | None:
    """Starts the order and sends it the `payment_settled` update, which answers once the card
    is charged (or cannot be): the early return.

    Returns the payment, or None when it has not settled within NO_WORKER_SECONDS (no worker
    runs, or payment retries): the order is placed all the same, since the start is durable.
    Raises PaymentRefused when it cannot be charged, and a UserError when the ID was used before.
    """
    placing = WithStartWorkflowOperation(
        OrderWorkflow.run,
        order,
        id=order_id,
        task_queue=task_queue,
        # The order ID is the idempotency key: an order, even a finished one, is placed once.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    try:
        return await client.execute_update_with_start_workflow(
            OrderWorkflow.payment_settled,
            start_workflow_operation=placing,
            rpc_timeout=timedelta(seconds=NO_WORKER_SECONDS),
        )
    except WorkflowAlreadyStartedError as err:
        raise UserError(
            f"order {order_id} already exists; an order ID is placed only once"
        ) from err
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise PaymentRefused(
            cause.message if isinstance(cause, FailureError) else str(cause)
        ) from err
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return None


async def schedule_order(
    client: Client, schedule_id: str, order: Order, every_seconds: float, task_queue: str
) -> None:
    """Creates a Schedule that places the order every so many seconds; a UserError if the ID is
    taken."""
    schedule = Schedule(
        # Each run's workflow ID is this ID plus the scheduled time, so every order is its own.
        action=ScheduleActionStartWorkflow(
            OrderWorkflow.run, order, id=f"{schedule_id}-order", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError as err:
        raise UserError(f"schedule {schedule_id} already exists; delete it first") from err
