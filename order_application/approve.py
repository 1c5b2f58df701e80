#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order waiting for approval, or all of them."""

import argparse
import asyncio

from temporalio.client import Client
from temporalio.service import RPCError

from cli import run
from connection import connect, load_settings
from errors import UserError
from lookups import QUERY_TIMEOUT, OrderCannotAnswer, OrderHandle, order_status, running_order
from reports import with_reason
from shared import ApprovalState, ApproveOrder, OrderStatus, RejectOrder
from terminal import EXIT_NO, EXIT_OK
from workflow import OrderWorkflow

# A running order acts on a signal within milliseconds: ask it this often which decision stands.
DECISION_POLL_SECONDS = 0.1
# Orders decided at once by --all-waiting: enough to keep one connection busy, few enough that
# the worker answers each status query well within its timeout.
BULK_CONCURRENCY = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        usage="%(prog)s ORDER_ID [REASON] [--reject REASON]\n       %(prog)s --all-waiting"
        " [--reject REASON]",
    )
    parser.add_argument(
        "order_id", metavar="ORDER_ID", nargs="?", help="the workflow ID starter.py printed"
    )
    parser.add_argument("reason", nargs="?", default="", help="why it is approved (optional)")
    parser.add_argument("--reject", metavar="REASON", help="reject instead, saying why")
    parser.add_argument(
        "--all-waiting", action="store_true", help="decide every order awaiting approval"
    )
    args = parser.parse_args()
    if args.all_waiting == (args.order_id is not None):
        parser.error("give either an ORDER_ID or --all-waiting")
    if args.reject is not None and args.reason:
        parser.error("give the reason after --reject, not both")
    if args.reject is not None and not args.reject.strip():
        parser.error("--reject needs a reason")
    return args


async def main() -> int:
    args = parse_args()
    rejecting = args.reject is not None
    reason = (args.reject if rejecting else args.reason).strip()
    settings = load_settings()
    client = await connect(settings)
    if args.all_waiting:
        return await decide_all_waiting(client, settings.task_queue, rejecting, reason)
    handle = await running_order(client, args.order_id)
    print(await decide(handle, rejecting, reason))
    return EXIT_OK


async def decide(handle: OrderHandle, rejecting: bool, reason: str) -> str:
    """Sends the decision; what took effect, in one line, or a UserError when it did not."""
    # No status without a worker, or from a deploy that cannot replay the order: the decision
    # is sent all the same, and waits for a worker that can run it.
    unanswered: OrderCannotAnswer | None = None
    try:
        status = await order_status(handle)
    except OrderCannotAnswer as err:
        status, unanswered = None, err
    if status is not None and status.approval != ApprovalState.PENDING:
        raise UserError(f"order {handle.id} is not waiting for approval: {why_not(status)}")
    if rejecting:
        await handle.signal(OrderWorkflow.reject_order, RejectOrder(reason=reason))
    else:
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(reason=reason))
    decision = "rejection" if rejecting else "approval"

    # Another approver may have decided first (only the first decision counts), or the wait may
    # have timed out meanwhile: ask the order which decision stands.
    try:
        decided = await standing_decision(handle)
    except OrderCannotAnswer as err:
        decided, unanswered = None, err
    if decided is None:
        waits_for = (
            f"the order cannot answer right now ({unanswered.reason}), so it acts on it once a"
            " worker can run it"
            if unanswered
            else "no worker answered, so the order acts on it once a worker can run it (if one"
            " runs, its log says why it cannot)"
        )
        return f"Sent the {decision} of order {handle.id}; {waits_for}."
    wanted = ApprovalState.REJECTED if rejecting else ApprovalState.APPROVED
    if decided.approval != wanted or decided.decision_reason != reason:
        raise UserError(
            f"order {handle.id} was {with_reason(decided.approval, decided.decision_reason)}"
            " by another decision first;"
            f" your {decision} did not take effect"
        )
    verb = "Rejected" if rejecting else "Approved"
    return f"{verb} order {handle.id}" + (f": {reason}" if reason else ".")


def why_not(status: OrderStatus) -> str:
    """Why an order that is still running takes no decision."""
    return {
        ApprovalState.APPROVED: f"it was {with_reason('approved', status.decision_reason)}",
        ApprovalState.REJECTED: f"it was {with_reason('rejected', status.decision_reason)}",
        ApprovalState.TIMED_OUT: "its approval timed out",
        ApprovalState.NOT_REQUIRED: "it needs none, its total being under its approval threshold",
    }.get(status.approval, str(status.approval))


async def standing_decision(handle: OrderHandle) -> OrderStatus | None:
    """The order's status once it has decided, or None when no worker answers."""
    deadline = asyncio.get_running_loop().time() + QUERY_TIMEOUT.total_seconds()
    while True:
        status = await order_status(handle)
        if status is None or status.approval != ApprovalState.PENDING:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise UserError(f"order {handle.id} has not acted on the decision yet; see status.py")
        await asyncio.sleep(DECISION_POLL_SECONDS)


async def decide_all_waiting(client: Client, task_queue: str, rejecting: bool, reason: str) -> int:
    """Decides every running order that awaits approval; one line each, EXIT_NO if any failed."""
    waiting: list[OrderHandle] = []
    # Visibility finds the running orders; only each order knows whether it awaits approval.
    query = (
        f"WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running'"
        f" AND TaskQueue = '{task_queue}'"
    )
    candidates = [
        client.get_workflow_handle_for(OrderWorkflow.run, execution.id)
        async for execution in client.list_workflows(query)
    ]
    limit = asyncio.Semaphore(BULK_CONCURRENCY)

    async def awaiting(handle: OrderHandle) -> None:
        async with limit:
            try:
                status = await order_status(handle)
            except UserError as err:  # Such as an order whose workflow task fails: not ours.
                print(f"skipped: {err}", flush=True)
                return
        if status is not None and status.approval == ApprovalState.PENDING:
            waiting.append(handle)

    await asyncio.gather(*(awaiting(handle) for handle in candidates))
    if not waiting:
        print("No order is waiting for approval.")
        return EXIT_OK

    async def decide_one(handle: OrderHandle) -> bool:
        async with limit:
            try:
                print(await decide(handle, rejecting, reason), flush=True)
                return True
            except UserError as err:
                print(f"error: {err}", flush=True)
            except RPCError as err:  # Such as an order that ended since it was listed.
                print(f"error: order {handle.id}: {err.message}", flush=True)
            return False

    decided = await asyncio.gather(*(decide_one(handle) for handle in waiting))
    verb = "rejected" if rejecting else "approved"
    print(f"{sum(decided)} of {len(decided)} waiting orders {verb}.")
    return EXIT_OK if all(decided) else EXIT_NO


if __name__ == "__main__":
    run(main)
