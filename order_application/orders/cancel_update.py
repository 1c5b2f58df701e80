"""Cancelling an order: the `cancel_order` update, which the order accepts only before delivery."""

import asyncio

from temporalio.client import Client, WorkflowUpdateFailedError

from local.errors import UserError
from orders.handle import NO_WORKER_SECONDS, OrderHandle, running_order
from shared import CancelAccepted, CancelOrder
from workflow import OrderWorkflow


async def request_cancel(
    client: Client, order_id: str, reason: str
) -> tuple[OrderHandle, CancelAccepted]:
    """The order's handle and the step it was at when it accepted the cancel; a one-line
    UserError when it does not exist, has finished, refused or no worker answered."""
    handle = await running_order(client, order_id)
    # An update, not a signal: the order itself accepts or refuses, and the caller hears which.
    try:
        accepted = await asyncio.wait_for(
            handle.execute_update(OrderWorkflow.cancel_order, CancelOrder(reason=reason)),
            NO_WORKER_SECONDS,
        )
    except WorkflowUpdateFailedError as err:
        raise UserError(f"order {order_id} was not cancelled: {err.cause}") from err
    except TimeoutError as err:
        raise UserError(
            f"no worker answered within {NO_WORKER_SECONDS:.0f} s; start ./worker.py and try again"
        ) from err
    return handle, accepted
