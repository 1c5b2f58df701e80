#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = []
# ///
"""Prints what the simulated services really did, per order: the proof of exactly-once."""

import argparse
from collections import Counter
from itertools import groupby

from command_line.exit import EXIT_OK, finish
from local.errors import UserError
from local.printable import printable
from shop.services import Ledger, ledger_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("order_id", metavar="ORDER_ID", nargs="?", help="one order (default: all)")
    args = parser.parse_args()
    path = ledger_path()
    if not path.exists():
        raise UserError(f"no ledger at {path} yet; run an order first")
    ledger = Ledger(path)
    effects = ledger.effects(args.order_id)
    ledger.close()
    if not effects:
        raise UserError(f"the ledger has nothing for {args.order_id}")
    for order_id, group in groupby(
        sorted(effects, key=lambda e: (e.order_id, e.created_at)), key=lambda e: e.order_id
    ):
        order_effects = list(group)
        counts = Counter(effect.kind for effect in order_effects)
        # The order ID and the details come from orders any client may have placed.
        print(printable(f"{order_id}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())))
        for effect in order_effects:
            repeats = f"  (asked {effect.requests} times)" if effect.requests > 1 else ""
            print(printable(f"  {effect.created_at}  {effect.kind:<13} {effect.detail}{repeats}"))
    return EXIT_OK


if __name__ == "__main__":
    finish(main)
