"""The command-line options that describe an order, and the IDs it may be started under, for
starter.py and schedule.py."""

import argparse
import re
from typing import TYPE_CHECKING, TypedDict

from shop.rules import CATALOG, DEFAULT_APPROVAL_TIMEOUT_SECONDS, parse_card_expiry, parse_cents

if TYPE_CHECKING:
    from shared import Order


class ItemFields(TypedDict):
    """A line item's fields as the options give them; the `LineItem` model checks them."""

    sku: str
    quantity: int
    unit_price_cents: int


def catalogue_item(sku: str, quantity: int) -> ItemFields:
    return ItemFields(sku=sku, quantity=quantity, unit_price_cents=CATALOG[sku])


SMALL_ORDER = [catalogue_item("T-SHIRT", 1), catalogue_item("STICKERS", 2)]
LARGE_ORDER = [catalogue_item("LAPTOP", 2), catalogue_item("HOODIE", 5)]
# Like the original demo: the inventory service fails four times, then the fifth attempt works.
INVENTORY_OUTAGE_ATTEMPTS = 4
DEFAULT_CUSTOMER = "ada@example.com"
DEFAULT_ADDRESS = "1 Main Street, Springfield"


# The IDs this sample starts orders and schedules under: an ID is also a word in a command line,
# a URL, a log line and the ledger's `<order-id>/<step>` keys, so it keeps to characters that are
# plain in all of them. It starts with a letter or digit, so that it never reads as an option
# (`-rf`) or a step up a path (`..`). 100 characters hold a shop's own order number or a UUID
# with a prefix and keep the lines that name it readable; Temporal itself takes up to 1,000.
# approve.py, status.py, cancel.py and the inbox take any ID: they address orders that others may
# have started, from the Temporal CLI or another SDK, under IDs of their own choosing.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
ORDER_ID_LENGTH = 100


def safe_id(kind: str, text: str, length: int = ORDER_ID_LENGTH) -> str:
    """`text` as an ID to start something under, or a usage error that states the rule."""
    if len(text) > length or not SAFE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{kind} must be 1 to {length} ASCII letters, digits, '-', '_', '.' or ':',"
            f" starting with a letter or digit (got {text!r})"
        )
    return text


def order_id_argument(text: str) -> str:
    return safe_id("an order ID", text)


def card_expiry_argument(text: str) -> str:
    try:
        return str(parse_card_expiry(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def item_argument(text: str) -> ItemFields:
    """SKU:QTY or SKU:QTY:PRICE (dollars); catalogue SKUs know their price."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError
        sku, quantity = parts[0].upper(), int(parts[1])
        price = parse_cents(parts[2]) if len(parts) == 3 else CATALOG[sku]
        if quantity < 1:
            raise ValueError
    except (ValueError, KeyError) as err:
        raise argparse.ArgumentTypeError(
            f"item must be SKU:QTY[:PRICE] with QTY >= 1 and a price for SKUs outside the"
            f" catalogue ({', '.join(CATALOG)}); got {text!r}"
        ) from err
    # Bounds such as the largest quantity are the model's to check, with the rest of the order.
    return ItemFields(sku=sku, quantity=quantity, unit_price_cents=price)


def amount_argument(text: str) -> int:
    try:
        return parse_cents(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 (got {text!r})")
    return seconds


def add_order_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "card_expiry", metavar="MM/YY", type=card_expiry_argument, help="card expiry, e.g. 12/30"
    )
    contents = parser.add_mutually_exclusive_group()
    contents.add_argument(
        "--small", action="store_true", help="1 T-shirt, 2 sticker packs (the default)"
    )
    contents.add_argument("--large", action="store_true", help="2 laptops, 5 hoodies")
    contents.add_argument(
        "--item",
        metavar="SKU:QTY[:PRICE]",
        type=item_argument,
        action="append",
        help=f"a line item, repeatable; catalogue: {', '.join(CATALOG)}",
    )
    parser.add_argument(
        "--customer", default=DEFAULT_CUSTOMER, help="who orders (default %(default)s)"
    )
    parser.add_argument("--address", default=DEFAULT_ADDRESS, help="where it goes")
    parser.add_argument(
        "--approval-timeout",
        metavar="SECONDS",
        type=positive_seconds,
        default=DEFAULT_APPROVAL_TIMEOUT_SECONDS,
        help="how long the order waits for approval (default %(default).0f)",
    )
    parser.add_argument(
        "--approval-threshold",
        metavar="AMOUNT",
        type=amount_argument,
        default=0,
        help="orders below this total (in dollars) skip approval (default: every order waits)",
    )
    parser.add_argument("--pack", action="store_true", help="pack unit by unit before delivery")
    parser.add_argument(
        "--inventory-down",
        action="store_true",
        help="the inventory service fails this order's first 4 attempts",
    )


def order_from_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> "Order":
    """The order the options describe, checked by the model the workflow checks it with; a usage
    error (exit 2) when the workflow would refuse it."""
    # Imported once the options are parsed: the model loads Pydantic, which --help does without.
    from pydantic import ValidationError

    from payloads.converter import problems
    from shared import Order

    outage_attempts = INVENTORY_OUTAGE_ATTEMPTS if args.inventory_down else 0
    try:
        return Order.model_validate(
            {
                "customer": args.customer,
                "items": args.item or (LARGE_ORDER if args.large else SMALL_ORDER),
                "shipping_address": args.address,
                "card_expiry": args.card_expiry,
                "approval_timeout_seconds": args.approval_timeout,
                "approval_threshold_cents": args.approval_threshold,
                "pack": args.pack,
                "inventory_outage_attempts": outage_attempts,
            }
        )
    except ValidationError as err:
        parser.error(f"the order would be refused: {'; '.join(problems(err))}")
