"""Messages, states and constants shared by the workflow, the activities and the scripts."""

import math
import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

TASK_QUEUE = "order-fulfilment"
"""Default task queue; the scripts let ORDER_TASK_QUEUE override it."""

DEFAULT_APPROVAL_TIMEOUT_SECONDS = 30.0

# What an order may hold. Any Temporal client can start one, so the workflow refuses what no
# shop would take: these bounds also keep every amount well inside a signed 64-bit integer, for
# clients written in other languages.
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 1_000
MAX_UNIT_PRICE_CENTS = 10_000_000  # $100,000.00
MAX_TOTAL_CENTS = 1_000_000_000  # $10,000,000.00
MAX_TEXT_LENGTH = 500
# An approval wait shorter than a second is no wait at all: the order would charge, then refund.
MIN_APPROVAL_TIMEOUT_SECONDS = 1.0
MAX_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_OUTAGE_ATTEMPTS = 100

CATALOG = {
    "T-SHIRT": 2_500,
    "STICKERS": 500,
    "MUG": 1_200,
    "HOODIE": 6_000,
    "LAPTOP": 149_900,
    "SOLD-OUT": 999,
}
"""Unit prices in cents by SKU. SOLD-OUT is never in stock."""


class OrderStep(StrEnum):
    """Where an order is in its life."""

    RECEIVED = "received"
    CHECKING_POLICY = "checking policy"
    CHARGING_PAYMENT = "charging payment"
    RECHECKING_FRAUD = "re-checking fraud"
    AWAITING_APPROVAL = "awaiting approval"
    RESERVING_INVENTORY = "reserving inventory"
    PACKING = "packing"
    DELIVERING = "delivering"
    CONFIRMING = "sending confirmation"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    FAILED = "failed"


class ApprovalState(StrEnum):
    PENDING = "pending"
    NOT_REQUIRED = "not required"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed out"


class OrderError(StrEnum):
    """`type` of every ApplicationError that ends an order, so callers can branch on it."""

    INVALID_ORDER = "InvalidOrder"
    CARD_EXPIRED = "CardExpired"
    INVALID_CARD = "InvalidCard"
    POLICY_DENIED = "PolicyDenied"
    OUT_OF_STOCK = "OutOfStock"
    APPROVAL_TIMED_OUT = "ApprovalTimedOut"
    REJECTED = "OrderRejected"
    CANCELLED = "OrderCancelled"
    ALREADY_UNDONE = "AlreadyUndone"


class ServiceUnavailableError(Exception):
    """A downstream service did not answer; always worth retrying."""


# --- The order -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Order:
    """Input of OrderWorkflow. The workflow ID is the order ID (and the idempotency key)."""

    customer: str
    items: list[LineItem]
    shipping_address: str
    card_expiry: str
    """MM/YY; the card is valid through the end of that month."""
    approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    approval_threshold_cents: int = 0
    """Orders whose total is below this skip the approval wait; 0 means every order waits."""
    pack: bool = False
    """Pack the items one by one (with heartbeat checkpoints) before delivery."""
    inventory_outage_attempts: int = 0
    """Demo switch: the inventory service is down for this many attempts of this order."""

    @property
    def total_cents(self) -> int:
        return sum(item.total_cents for item in self.items)


def shown(number: float) -> str:
    """A number for an error message, briefly: a client may send one of thousands of digits."""
    text = repr(number)
    return text if len(text) <= 20 else f"a number of {len(text)} digits"


def format_cents(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


_AMOUNT = re.compile(r"\$?([0-9]{1,9})(?:\.([0-9]{2}))?")


def parse_cents(text: str) -> int:
    """Parses a dollar amount such as 100, 99.95 or $1,250.00 into integer cents."""
    match = _AMOUNT.fullmatch(text.strip().replace(",", ""))
    if not match:
        raise ValueError(f"amount must be dollars with optional cents, e.g. 99.95 (got {text!r})")
    return int(match[1]) * 100 + int(match[2] or 0)


# --- Card expiry ---------------------------------------------------------------------------------

_EXPIRY = re.compile(r"([0-9]{2})/([0-9]{2})")


@dataclass(frozen=True, order=True)
class CardExpiry:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.month:02d}/{self.year % 100:02d}"

    def is_expired(self, today: date) -> bool:
        """A card works through the last day of its expiry month."""
        return (self.year, self.month) < (today.year, today.month)


def parse_card_expiry(text: str) -> CardExpiry:
    """Parses MM/YY (e.g. 12/30); raises ValueError on anything else."""
    match = _EXPIRY.fullmatch(text.strip())
    if not match:
        raise ValueError(f"card expiry must be MM/YY, e.g. 12/30 (got {text!r})")
    month, year = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"card expiry month must be 01 to 12 (got {text!r})")
    return CardExpiry(year=2000 + year, month=month)


# --- Checking an order ---------------------------------------------------------------------------


def order_problems(order: Order) -> list[str]:
    """Everything wrong with an order, or nothing: the one check the starter makes before
    placing an order and the workflow makes before any effect, whoever started it."""
    problems: list[str] = []
    texts = (("customer", order.customer), ("shipping_address", order.shipping_address))
    for name, text in texts:
        if not text.strip() or len(text) > MAX_TEXT_LENGTH:
            problems.append(f"{name}: must be 1 to {MAX_TEXT_LENGTH} characters")
    if not order.items:
        problems.append("items: an order needs at least one item")
    if len(order.items) > MAX_LINE_ITEMS:
        problems.append(f"items: at most {MAX_LINE_ITEMS} line items")
    for i, item in enumerate(order.items):
        if not item.sku.strip() or len(item.sku) > MAX_TEXT_LENGTH:
            problems.append(f"items[{i}].sku: must be 1 to {MAX_TEXT_LENGTH} characters")
        if not 1 <= item.quantity <= MAX_QUANTITY:
            problems.append(
                f"items[{i}].quantity: must be 1 to {MAX_QUANTITY} (got {shown(item.quantity)})"
            )
        if not 0 <= item.unit_price_cents <= MAX_UNIT_PRICE_CENTS:
            problems.append(
                f"items[{i}].unit_price_cents: must be 0 to {MAX_UNIT_PRICE_CENTS}"
                f" (got {shown(item.unit_price_cents)})"
            )
    if not problems and order.total_cents > MAX_TOTAL_CENTS:
        problems.append(
            f"total: at most {format_cents(MAX_TOTAL_CENTS)}"
            f" (got {format_cents(order.total_cents)})"
        )
    try:
        parse_card_expiry(order.card_expiry)
    except ValueError as err:
        problems.append(f"card_expiry: {err}")
    timeout = order.approval_timeout_seconds
    if not (
        math.isfinite(timeout)
        and MIN_APPROVAL_TIMEOUT_SECONDS <= timeout <= MAX_APPROVAL_TIMEOUT_SECONDS
    ):
        problems.append(
            f"approval_timeout_seconds: must be {MIN_APPROVAL_TIMEOUT_SECONDS:.0f} to"
            f" {MAX_APPROVAL_TIMEOUT_SECONDS:.0f} seconds (7 days) (got {shown(timeout)})"
        )
    if not 0 <= order.approval_threshold_cents <= MAX_TOTAL_CENTS:
        problems.append(
            f"approval_threshold_cents: must be 0 to {MAX_TOTAL_CENTS}"
            f" (got {shown(order.approval_threshold_cents)})"
        )
    if not 0 <= order.inventory_outage_attempts <= MAX_OUTAGE_ATTEMPTS:
        problems.append(
            f"inventory_outage_attempts: must be 0 to {MAX_OUTAGE_ATTEMPTS}"
            f" (got {shown(order.inventory_outage_attempts)})"
        )
    return problems


# --- Activity inputs and results -----------------------------------------------------------------


@dataclass(frozen=True)
class PolicyCheck:
    order_id: str
    customer: str
    total_cents: int


@dataclass(frozen=True)
class PolicyDecision:
    approved: bool
    reason: str = ""


@dataclass(frozen=True)
class PaymentRequest:
    order_id: str
    customer: str
    amount_cents: int
    card_expiry: str


@dataclass(frozen=True)
class Payment:
    transaction_id: str
    amount_cents: int


@dataclass(frozen=True)
class ReservationRequest:
    order_id: str
    items: list[LineItem]
    outage_attempts: int = 0


@dataclass(frozen=True)
class Reservation:
    reservation_id: str


@dataclass(frozen=True)
class PackingRequest:
    order_id: str
    items: list[LineItem]


@dataclass(frozen=True)
class Packing:
    slip_id: str
    units_packed: int


@dataclass(frozen=True)
class PackingCheckpoint:
    """Heartbeat details of pack_order_items: enough to resume after a crash."""

    slip_id: str
    units_packed: int


@dataclass(frozen=True)
class DeliveryRequest:
    order_id: str
    shipping_address: str


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    estimated_delivery: str
    """ISO date."""


@dataclass(frozen=True)
class ConfirmationRequest:
    order_id: str
    customer: str
    tracking_number: str
    estimated_delivery: str


@dataclass(frozen=True)
class Confirmation:
    message_id: str


@dataclass(frozen=True)
class RefundRequest:
    order_id: str


@dataclass(frozen=True)
class ReleaseRequest:
    order_id: str


@dataclass(frozen=True)
class CompensationResult:
    """What one compensation undid; `detail` is empty when there was nothing to undo."""

    action: str
    detail: str = ""


# --- Messages to and from the workflow -----------------------------------------------------------


@dataclass(frozen=True)
class ApproveOrder:
    reason: str = ""


@dataclass(frozen=True)
class RejectOrder:
    reason: str = ""


@dataclass(frozen=True)
class CancelOrder:
    reason: str = ""


@dataclass(frozen=True)
class CancelAccepted:
    step: OrderStep


@dataclass
class OrderStatus:
    step: OrderStep
    approval: ApprovalState
    approval_required: bool
    total_cents: int
    decision_reason: str = ""
    cancel_reason: str = ""
    compensations: list[CompensationResult] = field(default_factory=list)


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    customer: str
    items: list[LineItem]
    total_cents: int
    approval: ApprovalState
    approval_reason: str
    payment: Payment
    reservation: Reservation
    packing: Packing | None
    shipment: Shipment
    confirmation: Confirmation


@dataclass(frozen=True)
class OrderFailure:
    """Details carried by the ApplicationError that ends an unsuccessful order."""

    step: OrderStep
    compensations: list[CompensationResult]
