#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Places an order and waits for it to be delivered (or to fail)."""

import argparse
import asyncio
import uuid

from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from cli import run
from connection import connect, load_settings, web_ui_link
from errors import UserError
from lookups import failure_reason, step_after_payment
from order_options import add_order_arguments, order_from_arguments
from reports import describe_compensations, describe_items, describe_result
from rules import format_cents
from shared import Order, OrderStep
from terminal import EXIT_NO, EXIT_OK, script_command
from workflow import OrderWorkflow


def parse_args() -> tuple[argparse.Namespace, Order]:
    parser = argparse.ArgumentParser(description=__doc__, usage="%(prog)s MM/YY [options]")
    add_order_arguments(parser)
    parser.add_argument(
        "--order-id", help="the order's ID, which is also its workflow ID (default: order-<random>)"
    )
    parser.add_argument("--no-wait", action="store_true", help="place the order and exit")
    args = parser.parse_args()
    return args, order_from_arguments(parser, args)


async def main() -> int:
    args, order = parse_args()
    order_id = args.order_id or f"order-{uuid.uuid4().hex[:8]}"
    settings = load_settings()
    client = await connect(settings)
    try:
        handle = await client.start_workflow(
            OrderWorkflow.run,
            order,
            id=order_id,
            task_queue=settings.task_queue,
            # The order ID is the idempotency key: an order, even a finished one, is placed once.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError as err:
        raise UserError(
            f"order {order_id} already exists; an order ID is placed only once"
        ) from err

    total = format_cents(order.total_cents)
    print(f"Placed order {order_id}: {describe_items(order.items)}, total {total}")
    if not order.needs_approval:
        print("Below the approval threshold: no approval needed.")
    # Tell of the approval wait only for an order that gets there: not one whose card fails.
    elif (step := await step_after_payment(handle)) in (OrderStep.AWAITING_APPROVAL, None):
        lead = "It waits" if step else "Once charged, it waits"
        print(f"{lead} {order.approval_timeout_seconds:g} s for approval:")
        print(f"  {script_command('approve.py')} {order_id}")
    if link := web_ui_link(settings, order_id):
        print(f"Web UI: {link}")
    if args.no_wait:
        return EXIT_OK

    print("Waiting for the result (Ctrl-C stops waiting, not the order)...", flush=True)
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        reason, compensations = await failure_reason(handle, err)
        print(f"Order {order_id} failed: {reason}")
        if compensations:
            print(f"  undone: {describe_compensations(compensations)}")
        return EXIT_NO
    except asyncio.CancelledError:
        print(f"\nStopped waiting; order {order_id} carries on. See it with:")
        print(f"  {script_command('status.py')} {order_id}")
        raise
    print(describe_result(result))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
