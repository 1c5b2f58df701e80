"""Placing an order with Update-with-Start: one call starts it and waits for its payment answer."""

import asyncio
import uuid
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

from local.errors import UserError
from orders.handle import NO_WORKER_SECONDS
from shared import Order, OrderResult, PaymentSettled, Placing

# The workflow and its update, by the names the worker registers them under: a client needs no
# more, and importing workflow.py for them would load the worker's code (activities, metrics).
ORDER_WORKFLOW = "OrderWorkflow"
PAYMENT_SETTLED = "payment_settled"


class PaymentRefused(Exception):
    """The order ended before its payment answer: refused by the policy, its card declined, or
    flagged by the fraud re-check that follows the charge; it undoes what it did, if anything.
    `reason` is the order's own one line, such as `card expired 12/23`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


async def place_order(
    client: Client, task_queue: str, order: Order, order_id: str, placed_by: Placing | None = None
) -> PaymentSettled | None:
    """Starts the order and sends it the `payment_settled` update, which answers once the card
    is charged (or cannot be): the early return.

    Returns the payment, or None when it has not settled within NO_WORKER_SECONDS (no worker
    runs, or payment retries): the order is placed all the same, since the start is durable.
    Raises PaymentRefused when it cannot be charged, and a UserError when the ID was used before.
    `placed_by` says who places it, when they signed in (see orders/sign_in.py).
    """
    placing: WithStartWorkflowOperation[Any, OrderResult] = WithStartWorkflowOperation(
        ORDER_WORKFLOW,
        order,
        id=order_id,
        task_queue=task_queue,
        result_type=OrderResult,
        # The order ID is the idempotency key: an order, even a finished one, is placed once.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    try:
        # The bound is on the whole call: an `rpc_timeout` would bound only its first request,
        # and once a worker has taken the update the SDK polls for its answer for as long as the
        # payment takes (for ever, while a service never answers in time).
        return await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                PAYMENT_SETTLED,
                placed_by,
                start_workflow_operation=placing,
                result_type=PaymentSettled,
            ),
            NO_WORKER_SECONDS,
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
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK reports the cancel that ends its wait as WorkflowUpdateRPCTimeoutOrCancelledError.
        return None
