"""Deciding orders, one or every waiting one: the `approve` or `reject` update, and what took
effect or why it did not."""

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.converter import PayloadCodec
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from command_line.exit import EXIT_NO, EXIT_OK
from local.errors import UserError
from local.printable import printable
from observability.search_attributes import orders_awaiting_approval
from orders.handle import NO_WORKER_SECONDS, OrderHandle, running_order
from orders.sign_in import SignIn, as_proven
from orders.status_query import decision_that_stood
from shared import ApproveOrder, Decision, DecisionRefused, RejectOrder
from workflow import OrderWorkflow

NO_WORKER = timedelta(seconds=NO_WORKER_SECONDS)
# Decisions in flight at once when deciding every waiting order: each waits for the worker to run
# its update.
BULK_CONCURRENCY = 50
ALSO = "; your decision did not take effect"
MOVED_ON = {DecisionRefused.ALREADY_DECIDED, DecisionRefused.NOT_AWAITING_APPROVAL}


class MovedOn(UserError):
    """The order no longer awaits approval: decided, expired, cancelled or finished meanwhile."""


async def decide_order(
    client: Client,
    order_id: str,
    decision: ApproveOrder | RejectOrder,
    sign_in: SignIn | None = None,
) -> str:
    """`decide`, for an order known by its ID: a one-line UserError when there is no such order
    or it has finished."""
    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
    try:
        return await decide(handle, decision, client.data_converter.payload_codec, sign_in)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # No such order, or one that has finished.
            await running_order(client, order_id)
        raise


async def decide_all_waiting(
    client: Client,
    task_queue: str,
    decision: ApproveOrder | RejectOrder,
    sign_in: SignIn | None = None,
) -> int:
    """Decides every order listed as awaiting approval, one update each, and prints a line per
    order as it is decided, then the count. EXIT_NO if any decision failed; an order that moved
    on since it was listed is no failure."""
    # The OrderStep search attribute lists them; visibility may lag a moment behind the orders,
    # and each order's validator has the last word.
    waiting = [
        client.get_workflow_handle_for(OrderWorkflow.run, execution.id)
        async for execution in client.list_workflows(orders_awaiting_approval(task_queue))
    ]
    if not waiting:
        print("No order is waiting for approval.")
        return EXIT_OK
    limit = asyncio.Semaphore(BULK_CONCURRENCY)
    codec = client.data_converter.payload_codec

    async def decide_listed(handle: OrderHandle) -> bool | None:
        """True: decided; None: moved on; False: failed."""
        async with limit:
            try:
                # Each line names a listed workflow, which any client may have started: escaped.
                print(printable(await decide(handle, decision, codec, sign_in)), flush=True)
                return True
            except MovedOn as err:
                print(printable(f"skipped: {err}"), flush=True)
            except UserError as err:
                print(printable(f"error: {err}"), flush=True)
                return False
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    print(printable(f"error: order {handle.id}: {err.message}"), flush=True)
                    return False
                print(
                    printable(f"skipped: order {handle.id} has finished since it was listed"),
                    flush=True,
                )
            return None

    outcomes = await asyncio.gather(*(decide_listed(handle) for handle in waiting))
    verb = "rejected" if isinstance(decision, RejectOrder) else "approved"
    moved_on = outcomes.count(None)
    print(
        f"{outcomes.count(True)} of {len(outcomes)} waiting orders {verb}"
        + (f"; {moved_on} had moved on since they were listed." if moved_on else ".")
    )
    return EXIT_NO if False in outcomes else EXIT_OK


async def decide(
    handle: OrderHandle,
    decision: ApproveOrder | RejectOrder,
    codec: PayloadCodec | None,
    sign_in: SignIn | None = None,
) -> str:
    """Sends the decision as one update; what took effect, in one line. A refusal is a UserError
    (MovedOn when the order no longer awaits approval).

    A decision that names nobody is the signed-in user's, with their ticket, or else this
    process's OS account's, signed with the order key the codec holds: the order records it as
    proven. A name given instead is recorded as given (see orders/sign_in.py).
    """
    rejecting = isinstance(decision, RejectOrder)
    what = "rejection" if rejecting else "approval"
    decision = await as_proven(decision, handle.id, codec, sign_in)
    try:
        # The order's validator accepts it only while the order awaits approval and nobody has
        # decided; the answer is the decision that took effect.
        taken = await _update(handle, decision)
    except WorkflowUpdateFailedError as err:
        refused = err.cause
        if isinstance(refused, ApplicationError) and refused.type in MOVED_ON:
            if refused.type == DecisionRefused.ALREADY_DECIDED:
                raise MovedOn(f"{refused.message}{ALSO}") from err
            raise MovedOn(refused.message) from err
        why = refused.message if isinstance(refused, FailureError) else str(refused)
        raise UserError(f"order {handle.id} refused the {what}: {why}") from err
    except RPCError as err:
        # NOT_FOUND: no such order, or one that has ended. One that ended after a decision says
        # which, as a running order does.
        if err.status == RPCStatusCode.NOT_FOUND and (stood := await _decision_if_ended(handle)):
            raise MovedOn(f"order {handle.id} was already {stood}{ALSO}") from err
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        # No worker accepted the update (none runs, or none can replay the order): a refused or
        # unanswered update leaves no trace, so send the decision as a signal, which the order's
        # history keeps and which acts once a worker runs the order, if it still awaits approval.
        await _signal(handle, decision)
        return (
            f"No worker took the {what} of order {handle.id} within {NO_WORKER_SECONDS:.0f} s,"
            " so it was sent as a signal: the order keeps it and acts on it once a worker can run"
            " it (if one runs, its log says why it cannot)."
        )
    verb = "Rejected" if rejecting else "Approved"
    return f"{verb} order {handle.id} {taken.who_and_when}" + (
        f": {taken.reason}" if taken.reason else "."
    )


async def _decision_if_ended(handle: OrderHandle) -> Decision | None:
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None
    return await decision_that_stood(handle)


def _update(handle: OrderHandle, decision: ApproveOrder | RejectOrder) -> Awaitable[Decision]:
    if isinstance(decision, RejectOrder):
        return handle.execute_update(OrderWorkflow.reject, decision, rpc_timeout=NO_WORKER)
    return handle.execute_update(OrderWorkflow.approve, decision, rpc_timeout=NO_WORKER)


def _signal(handle: OrderHandle, decision: ApproveOrder | RejectOrder) -> Awaitable[None]:
    if isinstance(decision, RejectOrder):
        return handle.signal(OrderWorkflow.reject_order, decision)
    return handle.signal(OrderWorkflow.approve_order, decision)
