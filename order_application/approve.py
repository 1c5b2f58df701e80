#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order awaiting approval, or all of them."""

import argparse
import asyncio
import getpass
from collections.abc import Awaitable
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from cli import run
from connection import connect, load_settings
from errors import DecisionRefused, UserError
from lookups import NO_WORKER_SECONDS, OrderHandle, running_order
from shared import ApproveOrder, Decision, RejectOrder
from terminal import EXIT_NO, EXIT_OK
from visibility import orders_awaiting_approval
from workflow import OrderWorkflow

NO_WORKER = timedelta(seconds=NO_WORKER_SECONDS)

# Decisions in flight at once with --all-waiting: each waits for the worker to run its update.
BULK_CONCURRENCY = 50


class MovedOn(UserError):
    """The order no longer awaits approval: decided, expired, cancelled or finished meanwhile."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        usage="%(prog)s ORDER_ID [REASON] [--reject REASON] [--by NAME]\n"
        "       %(prog)s --all-waiting [--reject REASON] [--by NAME]",
    )
    parser.add_argument(
        "order_id", metavar="ORDER_ID", nargs="?", help="the workflow ID starter.py printed"
    )
    parser.add_argument("reason", nargs="?", default="", help="why it is approved (optional)")
    parser.add_argument("--reject", metavar="REASON", help="reject instead, saying why")
    parser.add_argument(
        "--by", metavar="NAME", default=local_user(), help="who decides (default: %(default)s)"
    )
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


def local_user() -> str:
    try:
        return getpass.getuser()
    except OSError:  # No user name to be found, as in some containers: the order says `not given`.
        return ""


async def main() -> int:
    args = parse_args()
    rejecting = args.reject is not None
    decision = (
        RejectOrder(by=args.by, reason=args.reject.strip())
        if rejecting
        else ApproveOrder(by=args.by, reason=args.reason.strip())
    )
    settings = load_settings()
    client = await connect(settings)
    if args.all_waiting:
        return await decide_all_waiting(client, settings.task_queue, decision)
    handle = client.get_workflow_handle_for(OrderWorkflow.run, args.order_id)
    try:
        print(await decide(handle, decision))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # No such order, or one that has finished.
            await running_order(client, args.order_id)
        raise
    return EXIT_OK


async def decide(handle: OrderHandle, decision: ApproveOrder | RejectOrder) -> str:
    """Sends the decision as one update; what took effect, in one line. A refusal is a UserError
    (MovedOn when the order no longer awaits approval)."""
    rejecting = isinstance(decision, RejectOrder)
    what = "rejection" if rejecting else "approval"
    try:
        # The order's validator accepts it only while the order awaits approval and nobody has
        # decided; the answer is the decision that took effect.
        taken = await _update(handle, decision)
    except WorkflowUpdateFailedError as err:
        refused = err.cause
        if isinstance(refused, ApplicationError) and refused.type in set(DecisionRefused):
            also = "; your decision did not take effect"
            if refused.type == DecisionRefused.ALREADY_DECIDED:
                raise MovedOn(f"{refused.message}{also}") from err
            raise MovedOn(refused.message) from err
        why = refused.message if isinstance(refused, FailureError) else str(refused)
        raise UserError(f"order {handle.id} refused the {what}: {why}") from err
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


def _update(handle: OrderHandle, decision: ApproveOrder | RejectOrder) -> Awaitable[Decision]:
    if isinstance(decision, RejectOrder):
        return handle.execute_update(OrderWorkflow.reject, decision, rpc_timeout=NO_WORKER)
    return handle.execute_update(OrderWorkflow.approve, decision, rpc_timeout=NO_WORKER)


def _signal(handle: OrderHandle, decision: ApproveOrder | RejectOrder) -> Awaitable[None]:
    if isinstance(decision, RejectOrder):
        return handle.signal(OrderWorkflow.reject_order, decision)
    return handle.signal(OrderWorkflow.approve_order, decision)


async def decide_all_waiting(
    client: Client, task_queue: str, decision: ApproveOrder | RejectOrder
) -> int:
    """Decides every order listed as awaiting approval, one update each; one line per order.
    EXIT_NO if any decision failed; an order that moved on since it was listed is no failure."""
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

    async def decide_listed(handle: OrderHandle) -> bool | None:
        """True: decided; None: moved on; False: failed."""
        async with limit:
            try:
                print(await decide(handle, decision), flush=True)
                return True
            except MovedOn as err:
                print(f"skipped: {err}", flush=True)
            except UserError as err:
                print(f"error: {err}", flush=True)
                return False
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    print(f"error: order {handle.id}: {err.message}", flush=True)
                    return False
                print(f"skipped: order {handle.id} has finished since it was listed", flush=True)
            return None

    outcomes = await asyncio.gather(*(decide_listed(handle) for handle in waiting))
    verb = "rejected" if isinstance(decision, RejectOrder) else "approved"
    moved_on = outcomes.count(None)
    print(
        f"{outcomes.count(True)} of {len(outcomes)} waiting orders {verb}"
        + (f"; {moved_on} had moved on since they were listed." if moved_on else ".")
    )
    return EXIT_NO if False in outcomes else EXIT_OK


if __name__ == "__main__":
    run(main)
