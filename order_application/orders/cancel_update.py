"""Cancelling an order: the `cancel_order` update, which the order accepts only before delivery."""

import asyncio

from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError

from local.errors import UserError
from orders.handle import NO_WORKER_SECONDS, OrderHandle, running_order
from payloads.converter import problems
from shared import CancelAccepted, CancelOrder
from workflow import OrderWorkflow


def cancel_request(reason: str) -> CancelOrder:
    """The cancel_order update's input, checked by the model the order checks it with."""
    try:
        return CancelOrder(reason=reason)
    except ValidationError as err:
        raise UserError(f"the cancel would be refused: {'; '.join(problems(err))}") from None


async def request_cancel(
    client: Client, order_id: str, reason: str
) -> tuple[OrderHandle, CancelAccepted]:
    """The order's handle and the step it was at when it accepted the cancel; a one-line
    UserError when the reason would be refused, or the order does not exist, has finished,
    refused or no worker answered."""
    request = cancel_request(reason)
    handle = await running_order(client, order_id)
    # An update, not a signal: the order itself accepts or refuses, and the caller hears which.
    try:
        accepted = await asyncio.wait_for(
            handle.execute_update(OrderWorkflow.cancel_order, request),
            NO_WORKER_SECONDS,
        )
    except WorkflowUpdateFailedError as err:
        raise UserError(f"order {order_id} was not cancelled: {err.cause}") from err
    except TimeoutError as err:
        raise UserError(
            f"no worker answered within {NO_WORKER_SECONDS:.0f} s; start ./worker.py and try again"
        ) from err
    return handle, accepted
