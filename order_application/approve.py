#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order that is waiting for approval."""

import argparse

from cli import EXIT_OK, UserError, order_status, run, running_order
from connection import connect, load_settings
from shared import ApprovalState, ApproveOrder, RejectOrder
from workflow import OrderWorkflow


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
    if args.reject is not None:
        await handle.signal(OrderWorkflow.reject_order, args=[RejectOrder(args.reject)])
        print(f"Rejected order {args.order_id}: {args.reject}")
    else:
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder(args.reason)])
        print(f"Approved order {args.order_id}" + (f": {args.reason}" if args.reason else "."))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
