#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order awaiting approval, or all of them."""

import argparse
import asyncio
import getpass

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli import run
from connection import connect, load_settings
from decisions import MovedOn, decide, decide_order
from errors import UserError
from lookups import OrderHandle
from shared import ApproveOrder, RejectOrder
from terminal import EXIT_NO, EXIT_OK
from visibility import orders_awaiting_approval
from workflow import OrderWorkflow

# Decisions in flight at once with --all-waiting: each waits for the worker to run its update.
BULK_CONCURRENCY = 50


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
    print(await decide_order(client, args.order_id, decision))
    return EXIT_OK


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
