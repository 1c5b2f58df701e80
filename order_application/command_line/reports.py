"""What the scripts and the inbox say about an order: its items, its result, what was undone."""

from local.printable import printable
from shared import (
    ApprovalState,
    CompensationResult,
    Decision,
    LineItem,
    OrderResult,
    PaymentSettled,
)
from shop.rules import format_cents

# A one-line description is the order's text as it is: whoever prints it escapes it (`printable`)
# once. describe_result, being several lines, escapes each line itself.


def describe_approval(approval: ApprovalState, decision: Decision | None) -> str:
    """`approved by alice at 12:03:04 UTC (checked the address)`, or the approval's state when
    nobody decided (`not required`, `timed out`, `pending`)."""
    return str(decision) if decision else approval


def describe_items(items: list[LineItem]) -> str:
    return ", ".join(
        f"{item.quantity} x {item.sku} @ {format_cents(item.unit_price_cents)}" for item in items
    )


def describe_result(result: OrderResult) -> str:
    """The delivered order, line by line, ready to print: each line is escaped (`printable`), so
    no field can break a line or send the terminal a command."""
    lines = [
        f"Order {result.order_id} delivered.",
        f"  customer:      {result.customer}",
        f"  items:         {describe_items(result.items)}",
        f"  total:         {format_cents(result.total_cents)}",
        "  approval:      " + describe_approval(result.approval, result.decision),
        f"  payment:       {result.payment.transaction_id}",
        f"  reservation:   {result.reservation.reservation_id}",
    ]
    if result.packing:
        lines.append(
            f"  packing slip:  {result.packing.slip_id} ({result.packing.units_packed} units)"
        )
    lines += [
        f"  tracking:      {result.shipment.tracking_number}",
        f"  arriving:      {result.shipment.estimated_delivery.isoformat()}",
        f"  confirmation:  e-mail {result.confirmation.message_id}",
    ]
    return "\n".join(printable(line) for line in lines)


def describe_compensations(compensations: list[CompensationResult]) -> str:
    if not compensations:
        return "nothing to undo"
    return "; ".join(f"{c.action}: {c.detail}" for c in compensations)


def describe_payment(order_id: str, paid: PaymentSettled, approve_with: str = "") -> str:
    """`Charged $35.00 for order order-… (txn-…); it waits 30 s for approval`, then `: ` and
    `approve_with` (how to approve it) when given."""
    charged = (
        f"Charged {format_cents(paid.amount_cents)} for order {order_id} ({paid.transaction_id})"
    )
    if not paid.awaits_approval:
        return f"{charged}; below the approval threshold: no approval needed."
    waits = f"{charged}; it waits {paid.approval_timeout_seconds:g} s for approval"
    return f"{waits}: {approve_with}" if approve_with else f"{waits}."
