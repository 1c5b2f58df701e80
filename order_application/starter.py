#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Places an order, says at once whether its card was charged, and waits for it to be delivered
(or to fail)."""

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

from cli import run
from connection import connect, load_settings, web_ui_link
from errors import UserError
from lookups import NO_WORKER_SECONDS, OrderHandle, failure_reason
from order_options import add_order_arguments, order_from_arguments
from reports import describe_compensations, describe_result
from rules import format_cents
from shared import CompensationResult, Order, PaymentSettled
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
    placing = WithStartWorkflowOperation(
        OrderWorkflow.run,
        order,
        id=order_id,
        task_queue=settings.task_queue,
        # The order ID is the idempotency key: an order, even a finished one, is placed once.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    # One call starts the order and sends it the payment_settled update, which answers once the
    # card is charged (or cannot be): the early return.
    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
    try:
        paid = await client.execute_update_with_start_workflow(
            OrderWorkflow.payment_settled,
            start_workflow_operation=placing,
            rpc_timeout=timedelta(seconds=NO_WORKER_SECONDS),
        )
    except WorkflowAlreadyStartedError as err:
        raise UserError(
            f"order {order_id} already exists; an order ID is placed only once"
        ) from err
    except WorkflowUpdateFailedError as err:
        # Refused or failed before it was charged: the order is undoing what it did, if anything.
        reason = err.cause.message if isinstance(err.cause, FailureError) else str(err.cause)
        print(f"Order {order_id} failed: {reason}", flush=True)
        if not args.no_wait and (compensations := await undone(handle)):
            print(f"  undone: {describe_compensations(compensations)}")
        return EXIT_NO
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        # Placed (the start is durable), but not charged yet: no worker runs, or payment retries.
        print(
            f"Placed order {order_id}; its payment has not settled within {NO_WORKER_SECONDS:.0f}"
            f" s. If no worker runs, start one ({script_command('worker.py')}); see where it is"
            f" with {script_command('status.py')} {order_id}"
        )
    else:
        print(describe_payment(order_id, paid))
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


def describe_payment(order_id: str, paid: PaymentSettled) -> str:
    """`Charged $35.00 for order order-… (txn-…); it waits 30 s for approval: ./approve.py …`."""
    charged = (
        f"Charged {format_cents(paid.amount_cents)} for order {order_id} ({paid.transaction_id})"
    )
    if not paid.awaits_approval:
        return f"{charged}; below the approval threshold: no approval needed."
    return (
        f"{charged}; it waits {paid.approval_timeout_seconds:g} s for approval:"
        f" {script_command('approve.py')} {order_id}"
    )


async def undone(handle: OrderHandle) -> list[CompensationResult]:
    """What a failed order undid, once it has ended."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        return (await failure_reason(handle, err))[1]
    return []


if __name__ == "__main__":
    run(main)
