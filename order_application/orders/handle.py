"""An order's workflow handle: finding the order, and how long a call waits for a worker."""

from typing import TYPE_CHECKING, TypeAlias

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from local.errors import UserError
from shared import OrderResult

if TYPE_CHECKING:
    # For the type checker only: at run time workflow.py would load the worker's code (the
    # activities, the metrics), which a client addressing an order by its ID does without.
    from workflow import OrderWorkflow

OrderHandle: TypeAlias = WorkflowHandle["OrderWorkflow", OrderResult]

# An update waits for a worker to run it; this long without one, no worker can run the order.
NO_WORKER_SECONDS = 10.0


def order_handle(client: Client, order_id: str) -> OrderHandle:
    """The handle of the order with this ID (its workflow ID), whether it exists or not."""
    return client.get_workflow_handle(order_id, result_type=OrderResult)


async def describe_order(
    client: Client, order_id: str
) -> tuple[OrderHandle, WorkflowExecutionDescription]:
    handle = order_handle(client, order_id)
    try:
        return handle, await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise UserError(f"no order with ID {order_id}") from err
        raise


async def running_order(client: Client, order_id: str) -> OrderHandle:
    """The order's handle; a one-line error when it does not exist or has finished."""
    handle, description = await describe_order(client, order_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise UserError(f"order {order_id} has already {finished(description)}")
    return handle


def finished(description: WorkflowExecutionDescription) -> str:
    status = description.status
    return status.name.lower().replace("_", " ") if status else "finished"
