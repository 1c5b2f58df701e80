"""The error types every layer raises: below everything, so any module may import them."""

from enum import StrEnum


class UserError(Exception):
    """A problem to tell the user in one line; the scripts then exit with 1."""


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


class ServiceUnavailableError(Exception):
    """A downstream service did not answer; always worth retrying."""


class OutOfStockError(Exception):
    """An item cannot be reserved; retrying will not help."""


class AlreadyUndoneError(Exception):
    """The order's charge or reservation was undone before: a run of the order again (a Reset)
    must not take the old one as its own, and needs a new order ID."""
