#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Places an order, says at once whether its card was charged, and waits for it to be delivered
(or to fail)."""

import argparse
import asyncio

from temporalio.client import WorkflowFailureError

from command_line.exit import EXIT_NO, EXIT_OK, run, script_command
from command_line.order_options import add_order_arguments, order_from_arguments, order_id_argument


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, usage="%(prog)s MM/YY [options]")
    add_order_arguments(parser)
    parser.add_argument(
        "--order-id",
        type=order_id_argument,
        help="the order's ID, which is also its workflow ID: letters, digits and -_.:"
        " (default: order-<random>)",
    )
    parser.add_argument("--no-wait", action="store_true", help="place the order and exit")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="an access token from the issuer the worker trusts (with worker.py --approvers oidc;"
        " default: ORDER_ACCESS_TOKEN)",
    )
    args = parser.parse_args()
    args.order = order_from_arguments(parser, args)
    return args


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: they load the models and the encryption codec,
    # which --help and a usage error do without. None of them loads workflow.py, the worker's
    # code: a client names the workflow and its handlers (see orders/update_with_start.py).
    from command_line.connection import connect, load_settings, web_ui_link
    from command_line.reports import describe_compensations, describe_payment, describe_result
    from local.printable import printable
    from orders.handle import NO_WORKER_SECONDS, order_handle
    from orders.sign_in import SignIn, placing
    from orders.status_query import failure_reason, undone
    from orders.update_with_start import PaymentRefused, new_order_id, place_order

    order_id = args.order_id or new_order_id()
    settings = load_settings()
    client = await connect(settings)
    handle = order_handle(client, order_id)
    placed_by = await placing(order_id, SignIn.given(args.token_file))
    try:
        paid = await place_order(client, settings.task_queue, args.order, order_id, placed_by)
    except PaymentRefused as refused:
        # Ended before its payment answer (policy, card or fraud re-check): it undoes what it did.
        # Why it failed, as the order says it: server-held text, escaped like every such line.
        print(printable(f"Order {order_id} failed: {refused.reason}"), flush=True)
        if not args.no_wait and (compensations := await undone(handle)):
            print(printable(f"  undone: {describe_compensations(compensations)}"))
        return EXIT_NO
    if paid is None:
        # Placed (the start is durable), but not charged yet: no worker runs, or payment retries.
        print(
            f"Placed order {order_id}; its payment has not settled within {NO_WORKER_SECONDS:.0f}"
            f" s. If no worker runs, start one ({script_command('worker.py')}); see where it is"
            f" with {script_command('status.py')} {order_id}"
        )
    else:
        approve_with = f"{script_command('approve.py')} {order_id}"
        print(printable(describe_payment(order_id, paid, approve_with)))
    if link := web_ui_link(settings, order_id):
        print(f"Web UI: {link}")
    if args.no_wait:
        return EXIT_OK

    print("Waiting for the result (Ctrl-C stops waiting, not the order)...", flush=True)
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        reason, compensations = await failure_reason(handle, err)
        print(printable(f"Order {order_id} failed: {reason}"))
        if compensations:
            print(printable(f"  undone: {describe_compensations(compensations)}"))
        return EXIT_NO
    except asyncio.CancelledError:
        print(f"\nStopped waiting; order {order_id} carries on. See it with:")
        print(f"  {script_command('status.py')} {order_id}")
        raise
    print(describe_result(result))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
