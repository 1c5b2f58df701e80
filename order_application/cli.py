"""What the scripts share: order options, finding an order, and answers in one line."""

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from shared import (
    CATALOG,
    DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    CompensationResult,
    LineItem,
    Order,
    OrderFailure,
    OrderResult,
    OrderStatus,
    format_cents,
    order_problems,
    parse_card_expiry,
    parse_cents,
)
from workflow import OrderWorkflow

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
"""0: done; 1: the order or the server said no; 2: bad usage (argparse's own code)."""

# A running worker answers a query in milliseconds; past this, no worker is polling.
QUERY_TIMEOUT = timedelta(seconds=5)
# An update waits for a worker to run it; this long without one, tell the user to start one.
NO_WORKER_SECONDS = 10.0

SMALL_ORDER = [
    LineItem("T-SHIRT", 1, CATALOG["T-SHIRT"]),
    LineItem("STICKERS", 2, CATALOG["STICKERS"]),
]
LARGE_ORDER = [LineItem("LAPTOP", 2, CATALOG["LAPTOP"]), LineItem("HOODIE", 5, CATALOG["HOODIE"])]
# Like the original demo: the inventory service fails four times, then the fifth attempt works.
INVENTORY_OUTAGE_ATTEMPTS = 4
DEFAULT_CUSTOMER = "ada@example.com"
DEFAULT_ADDRESS = "1 Main Street, Springfield"


class UserError(Exception):
    """A problem to tell the user in one line, then exit with EXIT_NO."""


class OrderCannotAnswer(UserError):
    """A worker took the query but could not run the order, such as a deploy that no longer
    replays its history; `reason` says why."""

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} cannot answer right now: {reason}")
        self.reason = reason


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Runs a script's main: its exit code, or one line on stderr instead of a traceback."""
    try:
        code = asyncio.run(main())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_NO
    except RPCError as err:
        print(f"error: the Temporal server said: {err.message}", file=sys.stderr)
        code = EXIT_NO
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader of our output went away (`| head -1`): what was asked is done; stop quietly,
        # with the code a process stopped by SIGPIPE has.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 128 + signal.SIGPIPE
    # Leave without interpreter finalization: the SDK's native threads can still be winding down
    # then, and a call from one of them into a finalizing interpreter aborts the process (seen as
    # exit code 134 or 139 after the script had finished). Everything worth keeping is flushed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def script_command(name: str) -> str:
    """How to run a sibling script from the current directory, for copy and paste."""
    path = Path(__file__).resolve().with_name(name)
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)


# --- Choosing an order ---------------------------------------------------------------------------


def card_expiry_argument(text: str) -> str:
    try:
        return str(parse_card_expiry(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def item_argument(text: str) -> LineItem:
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
    return LineItem(sku, quantity, price)


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


def order_from_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Order:
    """The order the options describe; a usage error (exit 2) when the workflow would refuse it."""
    order = Order(
        customer=args.customer,
        items=args.item or (LARGE_ORDER if args.large else SMALL_ORDER),
        shipping_address=args.address,
        card_expiry=args.card_expiry,
        approval_timeout_seconds=args.approval_timeout,
        approval_threshold_cents=args.approval_threshold,
        pack=args.pack,
        inventory_outage_attempts=INVENTORY_OUTAGE_ATTEMPTS if args.inventory_down else 0,
    )
    if problems := order_problems(order):
        parser.error(f"the order would be refused: {'; '.join(problems)}")
    return order


# --- Finding an order ----------------------------------------------------------------------------


async def describe_order(
    client: Client, order_id: str
) -> tuple[WorkflowHandle[OrderWorkflow, OrderResult], WorkflowExecutionDescription]:
    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
    try:
        return handle, await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise UserError(f"no order with ID {order_id}") from err
        raise


async def running_order(
    client: Client, order_id: str
) -> WorkflowHandle[OrderWorkflow, OrderResult]:
    """The order's handle; a one-line error when it does not exist or has finished."""
    handle, description = await describe_order(client, order_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise UserError(f"order {order_id} has already {finished(description)}")
    return handle


async def order_status(handle: WorkflowHandle[Any, Any]) -> OrderStatus | None:
    """The order's status, or None when no worker answers (the order waits for one)."""
    try:
        return await handle.query(OrderWorkflow.get_status, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        # The server gives up on a query no worker picked up with one of these.
        if err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            return None
        raise OrderCannotAnswer(handle.id, err.message) from err
    except WorkflowQueryFailedError as err:
        raise OrderCannotAnswer(handle.id, str(err)) from err


def finished(description: WorkflowExecutionDescription) -> str:
    status = description.status
    return status.name.lower().replace("_", " ") if status else "finished"


# --- Telling what happened -----------------------------------------------------------------------


def describe_items(items: list[LineItem]) -> str:
    return ", ".join(
        f"{item.quantity} x {item.sku} @ {format_cents(item.unit_price_cents)}" for item in items
    )


def describe_result(result: OrderResult) -> str:
    approval = result.approval.value + (
        f" ({result.approval_reason})" if result.approval_reason else ""
    )
    lines = [
        f"Order {result.order_id} delivered.",
        f"  customer:      {result.customer}",
        f"  items:         {describe_items(result.items)}",
        f"  total:         {format_cents(result.total_cents)}",
        f"  approval:      {approval}",
        f"  payment:       {result.payment.transaction_id}",
        f"  reservation:   {result.reservation.reservation_id}",
    ]
    if result.packing:
        lines.append(
            f"  packing slip:  {result.packing.slip_id} ({result.packing.units_packed} units)"
        )
    lines += [
        f"  tracking:      {result.shipment.tracking_number}",
        f"  arriving:      {result.shipment.estimated_delivery}",
        f"  confirmation:  e-mail {result.confirmation.message_id}",
    ]
    return "\n".join(lines)


async def failure_reason(
    handle: WorkflowHandle[Any, Any], err: WorkflowFailureError
) -> tuple[str, list[CompensationResult]]:
    """The one-line reason an order failed, and what was undone on the way out."""
    cause = err.cause
    while (
        isinstance(cause, FailureError) and not isinstance(cause, ApplicationError) and cause.cause
    ):
        cause = cause.cause
    if isinstance(cause, CancelledError):
        # Cancelled through Temporal itself (the Web UI, `temporal workflow cancel`): that carries
        # no details, so ask the order, which a worker replays, what it undid.
        status = await order_status(handle)
        return "cancelled through Temporal", status.compensations if status else []
    if not isinstance(cause, ApplicationError):
        return (cause.message if isinstance(cause, FailureError) else str(cause)), []
    compensations: list[CompensationResult] = []
    if cause.details:
        detail = cause.details[0]
        failure = OrderFailure(**detail) if isinstance(detail, dict) else detail
        compensations = [
            CompensationResult(**c) if isinstance(c, dict) else c for c in failure.compensations
        ]
    return cause.message, compensations


def describe_compensations(compensations: list[CompensationResult]) -> str:
    if not compensations:
        return "nothing to undo"
    return "; ".join(f"{c.action}: {c.detail}" for c in compensations)
