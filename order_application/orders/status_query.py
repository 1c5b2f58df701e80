"""Where an order is: its result, its `get_status` query, or why it failed."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from local.errors import UserError
from orders.handle import describe_order, finished
from shared import CompensationResult, Decision, OrderFailure, OrderResult, OrderStatus

# The query, by the name the worker registers it under: importing workflow.py for it would load
# the worker's code (activities, metrics) into every client that asks an order where it is.
GET_STATUS = "get_status"

# A running worker answers a query in milliseconds; past this, no worker is polling.
QUERY_TIMEOUT = timedelta(seconds=5)


class OrderCannotAnswer(UserError):
    """A worker took the query but could not run the order, such as a deploy that no longer
    replays its history; `reason` says why."""

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} cannot answer right now: {reason}")
        self.reason = reason


async def order_status(handle: WorkflowHandle[Any, Any]) -> OrderStatus | None:
    """The order's status, or None when no worker answers (the order waits for one)."""
    try:
        status: OrderStatus = await handle.query(
            GET_STATUS, result_type=OrderStatus, rpc_timeout=QUERY_TIMEOUT
        )
        return status
    except RPCError as err:
        # The server gives up on a query no worker picked up with one of these.
        if err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            return None
        raise OrderCannotAnswer(handle.id, err.message) from err
    except WorkflowQueryFailedError as err:
        raise OrderCannotAnswer(handle.id, str(err)) from err


@dataclass(frozen=True)
class Delivered:
    result: OrderResult


@dataclass(frozen=True)
class Ended:
    """An order that ended undelivered: how (`failed`, `canceled`, …), why, and what was undone."""

    how: str
    reason: str
    compensations: list[CompensationResult]


async def where_is(client: Client, order_id: str) -> Delivered | Ended | OrderStatus:
    """The delivered order's result, why an order ended undelivered, or a running order's status;
    a one-line UserError when there is no such order or no worker answers for a running one."""
    handle, description = await describe_order(client, order_id)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return Delivered(await handle.result())
    if description.status != WorkflowExecutionStatus.RUNNING:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            reason, compensations = await failure_reason(handle, err)
            return Ended(finished(description), reason, compensations)
    status = await order_status(handle)
    if status is None:
        raise UserError(
            f"order {order_id} is running but no worker answered: start ./worker.py, or, if"
            " one runs, see its log for why it cannot run this order"
        )
    return status


async def undone(handle: WorkflowHandle[Any, Any]) -> list[CompensationResult]:
    """What a failed order undid, once it has ended."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        return (await failure_reason(handle, err))[1]
    return []


async def failure_reason(
    handle: WorkflowHandle[Any, Any], err: WorkflowFailureError
) -> tuple[str, list[CompensationResult]]:
    """The one-line reason an order failed, and what was undone on the way out."""
    cause = err.cause
    while (
        isinstance(cause, FailureError) and not isinstance(cause, ApplicationError) and cause.cause
    ):
        cause = cause.cause
    if isinstance(cause, CancelledError):
        # Cancelled through Temporal itself (the Web UI, `temporal workflow cancel`): that carries
        # no details, so ask the order, which a worker replays, what it undid.
        status = await order_status(handle)
        return "cancelled through Temporal", status.compensations if status else []
    if not isinstance(cause, ApplicationError):
        return (cause.message if isinstance(cause, FailureError) else str(cause)), []
    failure = _order_failure(cause)
    return cause.message, failure.compensations if failure else []


async def decision_that_stood(handle: WorkflowHandle[Any, Any]) -> Decision | None:
    """The approval decision of an order that has ended, from its result or its failure: no
    worker needs to run for it."""
    try:
        return OrderResult.model_validate(await handle.result(), strict=False).decision
    except WorkflowFailureError as err:
        cause = err.cause
        failure = _order_failure(cause) if isinstance(cause, ApplicationError) else None
        return failure.decision if failure else None


def _order_failure(error: ApplicationError) -> OrderFailure | None:
    # Failure details arrive as plain JSON values: the error carries no type to read them as.
    return OrderFailure.model_validate(error.details[0], strict=False) if error.details else None
