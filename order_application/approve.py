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
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="decide as the user of this access token, from the issuer the worker trusts (with"
        " worker.py --approvers oidc; default: ORDER_ACCESS_TOKEN)",
    )
    args = parser.parse_args()
    if args.all_waiting == (args.order_id is not None):
        parser.error("give either an ORDER_ID or --all-waiting")
    if args.by and args.token_file:
        parser.error("give --by or --token-file, not both: a signed-in decision is its user's")
    if args.reject is not None and args.reason:
        parser.error("give the reason after --reject, not both")
    if args.reject is not None and not args.reject.strip():
        parser.error("--reject needs a reason")
    # Checked now, by the model the order checks it with: a name or reason it would refuse is a
    # usage error. (Imported here: --help and the errors above do without Pydantic.)
    from pydantic import ValidationError

    from payloads.converter import problems
    from shared import ApproveOrder, RejectOrder

    try:
        args.decision = (
            RejectOrder(by=args.by.strip(), reason=args.reject.strip())
            if args.reject is not None
            else ApproveOrder(by=args.by.strip(), reason=args.reason.strip())
        )
    except ValidationError as err:
        parser.error(f"the decision would be refused: {'; '.join(problems(err))}")
    return args


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: they load Pydantic and the workflow, which --help
    # and a usage error do without.
    from command_line.connection import connect, load_settings
    from local.printable import printable
    from orders.decision_update import decide_all_waiting, decide_order
    from orders.sign_in import SignIn

    decision = args.decision
    sign_in = SignIn.given(args.token_file)
    settings = load_settings()
    client = await connect(settings)
    if args.all_waiting:
        return await decide_all_waiting(client, settings.task_queue, decision, sign_in)
    print(printable(await decide_order(client, args.order_id, decision, sign_in)))
    return EXIT_OK


if __name__ == "__main__":
    run(main)
