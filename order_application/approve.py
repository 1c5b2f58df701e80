#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Approves (or, with --reject, rejects) an order awaiting approval, or all of them."""

import argparse

from command_line.exit import EXIT_OK, run


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
        "--by",
        metavar="NAME",
        default="",
        help="record NAME as who decides, marked as not verified (default: your account,"
        " proven by holding the order key)",
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


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: they load Pydantic and the workflow, which --help
    # and a usage error do without.
    from command_line.connection import connect, load_settings
    from orders.decision_update import decide_all_waiting, decide_order
    from shared import ApproveOrder, RejectOrder

    decision = (
        RejectOrder(by=args.by.strip(), reason=args.reject.strip())
        if args.reject is not None
        else ApproveOrder(by=args.by.strip(), reason=args.reason.strip())
    )
    settings = load_settings()
    client = await connect(settings)
    if args.all_waiting:
        return await decide_all_waiting(client, settings.task_queue, decision)
    print(await decide_order(client, args.order_id, decision))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
