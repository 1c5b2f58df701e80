#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Cancels an order that has not started delivery, and shows what was given back."""

import argparse

from temporalio.client import WorkflowFailureError

from command_line.exit import EXIT_OK, run
from local.errors import UserError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("order_id", metavar="ORDER_ID", help="the workflow ID starter.py printed")
    parser.add_argument("reason", nargs="?", default="", help="why it is cancelled (optional)")
    args = parser.parse_args()
    # Checked before anything connects, by the model the order checks it with (a usage error).
    from orders.cancel_update import cancel_request

    try:
        cancel_request(args.reason)
    except UserError as refused:
        parser.error(str(refused))
    return args


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: they load Pydantic and the workflow, which --help
    # and a usage error do without.
    from command_line.connection import connect, load_settings
    from command_line.reports import describe_compensations
    from local.printable import printable
    from orders.cancel_update import request_cancel
    from orders.status_query import failure_reason

    client = await connect(load_settings())
    handle, accepted = await request_cancel(client, args.order_id, args.reason)
    print(printable(f"Cancelling order {args.order_id} (it was {accepted.step})..."), flush=True)
    try:
        await handle.result()
    except WorkflowFailureError as err:
        reason, compensations = await failure_reason(handle, err)
        undone = describe_compensations(compensations)
        print(printable(f"Order {args.order_id} ended: {reason}; {undone}"))
        return EXIT_OK
    raise UserError(f"order {args.order_id} completed before the cancel took effect")


if __name__ == "__main__":
    run(main)
