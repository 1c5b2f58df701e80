"""The order's activities: each one calls one simulated service with the order as its key."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ActivityCancellationType

from shared import (
    CompensationResult,
    Confirmation,
    LineItem,
    Message,
    Order,
    OrderError,
    Packing,
    Payment,
    Reservation,
    Shipment,
)
from shop.rules import format_cents, parse_card_expiry
from shop.services import (
    AlreadyUndoneError,
    OutOfStockError,
    Services,
    ServiceUnavailableError,
)

PACKING_KEEPALIVE_SECONDS = 2.0
"""How often packing heartbeats while a slow unit is in hand (well inside the heartbeat timeout)."""

# --- How OrderWorkflow calls them: timeouts and retries, from what the services do ----------

# A simulated service call takes about half a second. Five seconds means the worker died or the
# service hangs, and the attempt is retried (on another worker if this one is gone).
SERVICE_CALL_TIMEOUT = timedelta(seconds=5)

# Packing takes seconds per unit, so its deadline is generous; liveness comes from heartbeats
# instead: a worker that misses one for 5 s is presumed dead and packing resumes elsewhere.
PACKING_TIMEOUT = timedelta(minutes=10)
PACKING_HEARTBEAT_TIMEOUT = timedelta(seconds=5)

# A step stopped by a cancel is compensated only once its activity has really stopped.
STOP_BEFORE_UNDOING = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED

# Payment retries transient errors; a bad card, or a payment refunded before, never works again.
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[
        OrderError.CARD_EXPIRED,
        OrderError.INVALID_CARD,
        OrderError.ALREADY_UNDONE,
    ],
)

# Every other call, and every compensation: no attempt cap and no overall deadline, so an outage
# of any length is ridden out; retries at most 10 s apart, so recovery follows quickly. Only an
# answer that retrying cannot change ends it: out of stock, or a step that was already undone.
UNTIL_IT_WORKS = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
    non_retryable_error_types=[OrderError.OUT_OF_STOCK, OrderError.ALREADY_UNDONE],
)


def already_undone(err: AlreadyUndoneError) -> ApplicationError:
    """Final: the services keep one charge and one reservation per order ID, and this one's is
    undone; the order has run before (a Reset) and needs placing again, under a new ID."""
    return ApplicationError(
        f"{err}: place the order again", type=OrderError.ALREADY_UNDONE, non_retryable=True
    )


# --- What each activity takes (and the policy checks give back) ------------------------------


class PolicyCheck(Message):
    order_id: str
    customer: str
    total_cents: int

    @classmethod
    def of(cls, order_id: str, order: Order) -> "PolicyCheck":
        return cls(order_id=order_id, customer=order.customer, total_cents=order.total_cents)


class PolicyDecision(Message):
    approved: bool
    reason: str = ""


class PaymentRequest(Message):
    order_id: str
    customer: str
    amount_cents: int
    card_expiry: str

    @classmethod
    def of(cls, order_id: str, order: Order) -> "PaymentRequest":
        return cls(
            order_id=order_id,
            customer=order.customer,
            amount_cents=order.total_cents,
            card_expiry=order.card_expiry,
        )


class ReservationRequest(Message):
    order_id: str
    items: list[LineItem]
    outage_attempts: int = 0

    @classmethod
    def of(cls, order_id: str, order: Order) -> "ReservationRequest":
        return cls(
            order_id=order_id, items=order.items, outage_attempts=order.inventory_outage_attempts
        )


class PackingRequest(Message):
    order_id: str
    items: list[LineItem]


class PackingCheckpoint(Message):
    """Heartbeat details of pack_order_items: enough to resume after a crash."""

    slip_id: str
    units_packed: int


class DeliveryRequest(Message):
    order_id: str
    shipping_address: str


class ConfirmationRequest(Message):
    order_id: str
    customer: str
    tracking_number: str
    estimated_delivery: date

    @classmethod
    def of(cls, order_id: str, order: Order, shipment: Shipment) -> "ConfirmationRequest":
        return cls(
            order_id=order_id,
            customer=order.customer,
            tracking_number=shipment.tracking_number,
            estimated_delivery=shipment.estimated_delivery,
        )


class RefundRequest(Message):
    order_id: str


class ReleaseRequest(Message):
    order_id: str


class OrderActivities:
    """Activities as methods, so the worker hands them their services (and demo switches)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @activity.defn
    async def check_policy(self, check: PolicyCheck) -> PolicyDecision:
        denial = await self._services.policy_denial(check.customer, check.total_cents)
        if denial:
            # Not the denial's text: it may name the customer.
            activity.logger.info("Order %s denied by the policy", check.order_id)
        return PolicyDecision(approved=not denial, reason=denial)

    @activity.defn
    async def recheck_fraud(self, check: PolicyCheck) -> PolicyDecision:
        """Asks the fraud service about the charge just made (added in release 2)."""
        flag = await self._services.fraud_flag(check.order_id, check.customer)
        activity.logger.info(
            "Order %s: fraud re-check %s", check.order_id, "flagged" if flag else "clear"
        )
        return PolicyDecision(approved=not flag, reason=flag)

    @activity.defn
    async def process_payment(self, request: PaymentRequest) -> Payment:
        try:
            expiry = parse_card_expiry(request.card_expiry)
        except ValueError as err:
            raise ApplicationError(
                str(err), type=OrderError.INVALID_CARD, non_retryable=True
            ) from err
        if expiry.is_expired(date.today()):
            raise ApplicationError(
                f"card expired {expiry}", type=OrderError.CARD_EXPIRED, non_retryable=True
            )
        try:
            transaction_id = await self._services.charge(request.order_id, request.amount_cents)
        except AlreadyUndoneError as err:
            raise already_undone(err) from err
        activity.logger.info(
            "Charged %s for order %s: %s",
            format_cents(request.amount_cents),
            request.order_id,
            transaction_id,
        )
        return Payment(transaction_id=transaction_id, amount_cents=request.amount_cents)

    @activity.defn
    async def reserve_inventory(self, request: ReservationRequest) -> Reservation:
        attempt = activity.info().attempt
        if attempt <= request.outage_attempts:
            raise ServiceUnavailableError(
                f"inventory service is down (attempt {attempt} of {request.outage_attempts})"
            )
        try:
            reservation_id = await self._services.reserve(
                request.order_id, [item.sku for item in request.items]
            )
        except OutOfStockError as err:
            raise ApplicationError(
                str(err), type=OrderError.OUT_OF_STOCK, non_retryable=True
            ) from err
        except AlreadyUndoneError as err:
            raise already_undone(err) from err
        activity.logger.info(
            "Reserved inventory for order %s: %s", request.order_id, reservation_id
        )
        return Reservation(reservation_id=reservation_id)

    @activity.defn
    async def pack_order_items(self, request: PackingRequest) -> Packing:
        """Packs unit by unit, checkpointing in heartbeats so a retry resumes where it stopped."""
        info = activity.info()
        units = [item.sku for item in request.items for _ in range(item.quantity)]
        if info.heartbeat_details:
            checkpoint = PackingCheckpoint.model_validate(info.heartbeat_details[0], strict=False)
            activity.logger.info(
                "Order %s: resuming from checkpoint, slip %s, %d of %d units packed (attempt %d)",
                request.order_id,
                checkpoint.slip_id,
                checkpoint.units_packed,
                len(units),
                info.attempt,
            )
        else:
            slip_id = await self._services.open_packing_slip(request.order_id)
            checkpoint = PackingCheckpoint(slip_id=slip_id, units_packed=0)
            activity.logger.info(
                "Order %s: packing %d units, slip %s", request.order_id, len(units), slip_id
            )
        # The slip is an external resource: record it before packing anything.
        activity.heartbeat(checkpoint)

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(PACKING_KEEPALIVE_SECONDS)
                activity.heartbeat(checkpoint)

        keepalive = asyncio.create_task(keep_alive())
        try:
            for index in range(checkpoint.units_packed, len(units)):
                await self._services.pack_unit(
                    request.order_id, checkpoint.slip_id, index, units[index]
                )
                checkpoint = PackingCheckpoint(slip_id=checkpoint.slip_id, units_packed=index + 1)
                activity.heartbeat(checkpoint)
        finally:
            keepalive.cancel()
        activity.logger.info(
            "Order %s: packed %d units on slip %s", request.order_id, len(units), checkpoint.slip_id
        )
        return Packing(slip_id=checkpoint.slip_id, units_packed=len(units))

    @activity.defn
    async def deliver_order(self, request: DeliveryRequest) -> Shipment:
        tracking, eta = await self._services.ship(request.order_id, request.shipping_address)
        activity.logger.info("Order %s shipped: %s, due %s", request.order_id, tracking, eta)
        return Shipment(tracking_number=tracking, estimated_delivery=eta)

    @activity.defn
    async def send_confirmation(self, request: ConfirmationRequest) -> Confirmation:
        message_id = await self._services.send_email(request.order_id, request.customer)
        activity.logger.info(
            "Order %s: sent the confirmation, tracking number %s",
            request.order_id,
            request.tracking_number,
        )
        return Confirmation(message_id=message_id)

    @activity.defn
    async def refund_payment(self, request: RefundRequest) -> CompensationResult:
        refund_id = await self._services.refund(request.order_id)
        activity.logger.info("Order %s: refund %s", request.order_id, refund_id or "not needed")
        return CompensationResult(action="refund payment", detail=refund_id)

    @activity.defn
    async def release_inventory(self, request: ReleaseRequest) -> CompensationResult:
        release_id = await self._services.release(request.order_id)
        activity.logger.info("Order %s: release %s", request.order_id, release_id or "not needed")
        return CompensationResult(action="release inventory", detail=release_id)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for registering with a worker."""
        return [
            self.check_policy,
            self.process_payment,
            self.recheck_fraud,
            self.reserve_inventory,
            self.pack_order_items,
            self.deliver_order,
            self.send_confirmation,
            self.refund_payment,
            self.release_inventory,
        ]


Screening = Callable[[OrderActivities, PolicyCheck], Awaitable[PolicyDecision]]
"""check_policy or recheck_fraud: a check whose denial ends the order."""
