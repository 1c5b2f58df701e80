#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order that is waiting for approval."""

import argparse
import asyncio

from temporalio.client import WorkflowHandle

from cli import EXIT_OK, QUERY_TIMEOUT, UserError, order_status, run, running_order
from connection import connect, load_settings
from shared import ApprovalState, ApproveOrder, OrderResult, OrderStatus, RejectOrder
from workflow import OrderWorkflow

# A running order acts on a signal within milliseconds: ask it this often which decision stands.
DECISION_POLL_SECONDS = 0.1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("order_id", metavar="ORDER_ID", help="the workflow ID starter.py printed")
    parser.add_argument("reason", nargs="?", default="", help="why it is approved (optional)")
    parser.add_argument("--reject", metavar="REASON", help="reject the order, saying why")
    args = parser.parse_args()
    if args.reject is not None and args.reason:
        parser.error("give the reason after --reject, not both")
    if args.reject is not None and not args.reject.strip():
        parser.error("--reject needs a reason")
    return args


async def main() -> int:
    args = parse_args()
    client = await connect(load_settings())
    handle = await running_order(client, args.order_id)
    status = await order_status(handle)
    # Without a worker there is no status to check; the decision still waits for the order.
    if status is not None and status.approval != ApprovalState.PENDING:
        raise UserError(
            f"order {args.order_id} is not waiting for approval: approval {status.approval}"
        )
    rejecting = args.reject is not None
    if rejecting:
        reason = args.reject.strip()
        await handle.signal(OrderWorkflow.reject_order, args=[RejectOrder(reason)])
    else:
        reason = args.reason.strip()
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder(reason)])

    # Another approver may have decided first (only the first decision counts), or the wait may
    # have timed out meanwhile: ask the order which decision stands.
    decided = await decision(handle)
    if decided is None:
        print(
            f"Sent the {'rejection' if rejecting else 'approval'} of order {args.order_id};"
            " no worker answered, so the order acts on it once one runs."
        )
        return EXIT_OK
    wanted = ApprovalState.REJECTED if rejecting else ApprovalState.APPROVED
    if decided.approval != wanted or decided.decision_reason != reason:
        said = f" ({decided.decision_reason})" if decided.decision_reason else ""
        raise UserError(
            f"order {args.order_id} was {decided.approval}{said} by another decision first;"
            f" your {'rejection' if rejecting else 'approval'} did not take effect"
        )
    verb = "Rejected" if rejecting else "Approved"
    print(f"{verb} order {args.order_id}" + (f": {reason}" if reason else "."))
    return EXIT_OK


async def decision(handle: WorkflowHandle[OrderWorkflow, OrderResult]) -> OrderStatus | None:
    """The order's status once it has decided, or None when no worker answers."""
    deadline = asyncio.get_running_loop().time() + QUERY_TIMEOUT.total_seconds()
    while True:
        status = await order_status(handle)
        if status is None or status.approval != ApprovalState.PENDING:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise UserError(f"order {handle.id} has not acted on the decision yet; see status.py")
        await asyncio.sleep(DECISION_POLL_SECONDS)


if __name__ == "__main__":
    run(main)
