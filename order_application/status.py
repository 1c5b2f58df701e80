#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Shows where an order is: its step, its approval, and anything given back."""

import argparse

from command_line.exit import EXIT_OK, run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("order_id", metavar="ORDER_ID", help="the workflow ID starter.py printed")
    return parser.parse_args()


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: they load Pydantic and the encryption codec, which
    # --help and a usage error do without.
    from command_line.connection import connect, load_settings
    from command_line.reports import describe_approval, describe_compensations, describe_result
    from local.printable import printable
    from orders.status_query import Delivered, Ended, where_is
    from shop.rules import format_cents

    client = await connect(load_settings())
    status = await where_is(client, args.order_id)
    # The order's text may come from any client: each line is escaped as it is printed.
    if isinstance(status, Delivered):
        print(describe_result(status.result))
        return EXIT_OK
    if isinstance(status, Ended):
        print(printable(f"Order {args.order_id} {status.how}: {status.reason}"))
        print(printable(f"  undone: {describe_compensations(status.compensations)}"))
        return EXIT_OK
    print(printable(f"Order {args.order_id}: {status.step}"))
    approval = describe_approval(status.approval, status.decision)
    print(printable(f"  approval:      {approval}"))
    print(f"  total:         {format_cents(status.total_cents)}")
    if status.cancel_reason:
        print(printable(f"  cancelling:    {status.cancel_reason}"))
    if status.compensations:
        print(printable(f"  undone:        {describe_compensations(status.compensations)}"))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
