"""The order and OrderWorkflow's messages, as Pydantic models, with its states and failure types."""

# Every Temporal client (the scripts, the CLI, the Web UI, another SDK) sends and reads these as
# JSON. The bounds are declared on the fields, once: the starter checks an order against them
# before it places it, and the worker's converter checks whatever arrives (payloads/converter.py).

import unicodedata
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from shop.rules import (
    DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    MAX_APPROVAL_TIMEOUT_SECONDS,
    MAX_LINE_ITEMS,
    MAX_OUTAGE_ATTEMPTS,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_TOTAL_CENTS,
    MAX_UNIT_PRICE_CENTS,
    MIN_APPROVAL_TIMEOUT_SECONDS,
    format_cents,
    parse_card_expiry,
)


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


TOO_LATE_TO_CANCEL = frozenset(
    {
        OrderStep.DELIVERING,
        OrderStep.CONFIRMING,
        OrderStep.COMPLETED,
        OrderStep.COMPENSATING,
        OrderStep.FAILED,
    }
)
"""Steps at which a cancel is refused: once delivery has started the parcel is on its way, and an
order that is compensating or has ended has nothing left to cancel."""


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


class DecisionRefused(StrEnum):
    """`type` of the ApplicationError with which the `approve` and `reject` updates refuse."""

    ALREADY_DECIDED = "AlreadyDecided"
    NOT_AWAITING_APPROVAL = "NotAwaitingApproval"
    FOUR_EYES = "FourEyes"
    """Who placed the order may not approve it (both signed in)."""


class Message(BaseModel):
    """Strict (2.5 is no quantity, "2" no number), frozen, and deaf to keys it does not know, so
    a newer client's extra fields do no harm."""

    # Built on first use, so a script that never reads a message starts faster.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", defer_build=True)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return text


# Text from a client is data, never layout. Control characters (Cc: C0 and C1), format characters
# (Cf: the bidi overrides and isolates U+202A-U+202E and U+2066-U+2069, zero-width characters) and
# the line and paragraph separators (Zl, Zp) could rewrite what a terminal, a log line or a page
# shows. A lone surrogate (Cs) is no text at all: it cannot be written as UTF-8.
_LAYOUT_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _plain(text: str) -> str:
    if text.isprintable():  # The common case, at C speed: False for every character refused here.
        return text
    for char in text:
        if unicodedata.category(char) in _LAYOUT_CATEGORIES:
            raise PydanticCustomError(
                "layout_character",
                "must not contain control or format characters (found {code})",
                {"code": f"U+{ord(char):04X}"},
            )
    return text


def _card_expiry(text: str) -> str:
    try:
        parse_card_expiry(text)
    except ValueError as err:
        raise PydanticCustomError("card_expiry", str(err)) from None
    return text


# The rule of _plain, for clients in other languages: the JSON Schema of an order says it.
_PLAIN_TEXT = "No control (Cc) or format (Cf) characters, no line or paragraph separators (Zl, Zp)."
Text = Annotated[
    str,
    Field(min_length=1, max_length=MAX_TEXT_LENGTH, description=_PLAIN_TEXT),
    AfterValidator(_not_blank),
    AfterValidator(_plain),
]
Cents = Annotated[int, Field(ge=0, le=MAX_TOTAL_CENTS)]


# --- The order -----------------------------------------------------------------------------------


class LineItem(Message):
    sku: Text
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    unit_price_cents: Annotated[int, Field(ge=0, le=MAX_UNIT_PRICE_CENTS)]

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Order(Message):
    """Input of OrderWorkflow. The workflow ID is the order ID (and the idempotency key)."""

    customer: Text
    items: Annotated[list[LineItem], Field(min_length=1, max_length=MAX_LINE_ITEMS)]
    shipping_address: Text
    card_expiry: Annotated[
        str,
        AfterValidator(_card_expiry),
        Field(description="MM/YY; the card is valid through the end of that month."),
    ]
    approval_timeout_seconds: Annotated[
        float,
        Field(
            ge=MIN_APPROVAL_TIMEOUT_SECONDS, le=MAX_APPROVAL_TIMEOUT_SECONDS, allow_inf_nan=False
        ),
    ] = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    approval_threshold_cents: Annotated[
        Cents, Field(description="Orders whose total is below this skip the approval wait.")
    ] = 0
    pack: Annotated[bool, Field(description="Pack the items one by one before delivery.")] = False
    inventory_outage_attempts: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_OUTAGE_ATTEMPTS,
            description="Demo switch: the inventory service is down for this many attempts.",
        ),
    ] = 0

    @property
    def total_cents(self) -> int:
        return sum(item.total_cents for item in self.items)

    @property
    def needs_approval(self) -> bool:
        """Whether a person must approve the order before it ships."""
        return self.total_cents >= self.approval_threshold_cents

    @model_validator(mode="after")
    def _total_within_limit(self) -> "Order":
        if self.total_cents > MAX_TOTAL_CENTS:
            raise PydanticCustomError(
                "total",
                "the total may be at most {limit} (got {total})",
                {"limit": format_cents(MAX_TOTAL_CENTS), "total": format_cents(self.total_cents)},
            )
        return self


# --- What the steps give back, as the order's result reports it ---------------------------------


class Payment(Message):
    transaction_id: str
    amount_cents: int


class Reservation(Message):
    reservation_id: str


class Packing(Message):
    slip_id: str
    units_packed: int


class Shipment(Message):
    tracking_number: str
    estimated_delivery: date


class Confirmation(Message):
    message_id: str


class CompensationResult(Message):
    """What one compensation undid; `detail` is empty when there was nothing to undo."""

    action: str
    detail: str = ""


# --- Messages to and from the workflow -----------------------------------------------------------


class PaymentSettled(Message):
    """What the `payment_settled` update answers once the order is charged (and re-checked)."""

    transaction_id: str
    amount_cents: int
    awaits_approval: bool
    approval_timeout_seconds: float

    @classmethod
    def of(cls, payment: Payment, order: Order) -> "PaymentSettled":
        return cls(
            transaction_id=payment.transaction_id,
            amount_cents=payment.amount_cents,
            awaits_approval=order.needs_approval,
            approval_timeout_seconds=order.approval_timeout_seconds,
        )


NOBODY = "not given"
"""Who decided, when a decision names nobody."""

Name = Annotated[
    str, Field(max_length=MAX_TEXT_LENGTH, description="Who decides."), AfterValidator(_plain)
]
Reason = Annotated[str, Field(max_length=MAX_TEXT_LENGTH), AfterValidator(_plain)]
# A signature of the decision under a key derived from the order key (payloads/decision_proof.py):
# the ID of that key, a colon, and an HMAC-SHA256 in hex; or a ticket, `signed-in:` and an HMAC.
ProofText = Annotated[
    str, Field(max_length=100, pattern="^[0-9a-z:-]*$", description="Leave empty: see approve.py.")
]


class Proof(StrEnum):
    """How the sender of a decision showed who they are."""

    SIGNED_IN = "signed in"
    ORDER_KEY = "local account holding the order key"
    NAME_GIVEN = "name given, not verified"

    @classmethod
    def of(cls, proof: str) -> "Proof":
        """What a message's `proof` shows, once the worker has checked it: a ticket the worker
        gave a signed-in user (`signed-in:` and an HMAC), or a signature under the order key."""
        if not proof:
            return cls.NAME_GIVEN
        return cls.SIGNED_IN if proof.startswith(SIGNED_IN_PROOF) else cls.ORDER_KEY


SIGNED_IN_PROOF = "signed-in:"


class Placing(Message):
    """Input of the `payment_settled` update: who places the order, when they signed in to do so
    (see payloads/decision_proof.py); empty otherwise."""

    by: Name = ""
    proof: ProofText = ""


class ApproveOrder(Message):
    """Input of the `approve` update and the `approve_order` signal."""

    by: Name = ""
    reason: Reason = ""
    proof: ProofText = ""


class RejectOrder(Message):
    """Input of the `reject` update and the `reject_order` signal."""

    by: Name = ""
    reason: Reason = ""
    proof: ProofText = ""


class Decision(Message):
    """The approval decision that took effect: which, who gave it, when (workflow time), why."""

    approval: ApprovalState
    by: str
    at: datetime
    reason: str = ""
    proof: Proof = Proof.NAME_GIVEN

    @classmethod
    def made(
        cls,
        approval: ApprovalState,
        decided: ApproveOrder | RejectOrder,
        at: datetime,
        proof: Proof,
    ) -> "Decision":
        """The decision a person sent; a rejection always says why."""
        reason = decided.reason.strip()
        if approval == ApprovalState.REJECTED:
            reason = reason or "no reason given"
        return cls(
            approval=approval, by=decided.by.strip() or NOBODY, at=at, reason=reason, proof=proof
        )

    @property
    def who(self) -> str:
        """`root (local account holding the order key)`, or `"alice" (name given, not verified)`:
        a name nobody proved is never shown as if it were."""
        if self.by == NOBODY:
            return "(name not given)"
        name = f'"{self.by}"' if self.proof == Proof.NAME_GIVEN else self.by
        return f"{name} ({self.proof})"

    @property
    def who_and_when(self) -> str:
        """`by root (local account holding the order key) at 12:03:04 UTC`."""
        return f"by {self.who} at {self.at:%H:%M:%S} UTC"

    def __str__(self) -> str:
        """`approved by alice at 12:03:04 UTC (checked the address)`."""
        said = f" ({self.reason})" if self.reason else ""
        return f"{self.approval} {self.who_and_when}{said}"


class CancelOrder(Message):
    reason: Reason = ""


class CancelAccepted(Message):
    step: OrderStep


class OrderStatus(Message):
    step: OrderStep
    approval: ApprovalState
    approval_required: bool
    total_cents: int
    decision: Decision | None = None
    cancel_reason: str = ""
    compensations: list[CompensationResult] = []

    def decision_refusal(
        self, decided: ApproveOrder | RejectOrder | None = None, placed_by: str = ""
    ) -> tuple[DecisionRefused, str] | None:
        """Why an approval or rejection would be refused now; None while the order awaits one.
        Four eyes: whoever signed in to place the order (`placed_by`) may not sign in to approve
        it too."""
        if self.decision is not None:
            return DecisionRefused.ALREADY_DECIDED, f"was already {self.decision}"
        if self.approval == ApprovalState.NOT_REQUIRED:
            why = "needs no approval: its total is under its approval threshold"
        elif self.approval == ApprovalState.TIMED_OUT:
            why = "is no longer awaiting approval: its approval timed out"
        elif self.cancel_reason:
            why = f"is being cancelled: {self.cancel_reason}"
        elif self.step != OrderStep.AWAITING_APPROVAL:
            why = f"is not awaiting approval: it is {self.step}"
        elif (
            isinstance(decided, ApproveOrder)
            and Proof.of(decided.proof) == Proof.SIGNED_IN
            and decided.by == placed_by
            and placed_by
        ):
            return (
                DecisionRefused.FOUR_EYES,
                f"was placed by {placed_by}, who may not approve it too",
            )
        else:
            return None
        return DecisionRefused.NOT_AWAITING_APPROVAL, why

    def cancel_refusal(self) -> str | None:
        """Why a cancel would be refused now: the parcel is on its way, or the order has ended."""
        if self.cancel_reason:
            return "the order is already being cancelled"
        if self.step in TOO_LATE_TO_CANCEL:
            return f"too late to cancel: the order is {self.step}"
        return None


class OrderResult(Message):
    order_id: str
    customer: str
    items: list[LineItem]
    total_cents: int
    approval: ApprovalState
    decision: Decision | None = None
    payment: Payment
    reservation: Reservation
    packing: Packing | None
    shipment: Shipment
    confirmation: Confirmation


class OrderFailure(Message):
    """Details carried by the ApplicationError that ends an unsuccessful order."""

    step: OrderStep
    compensations: list[CompensationResult]
    decision: Decision | None = None
    """The approval decision, if one was taken before the order failed."""
