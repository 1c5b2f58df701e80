"""The order's activities: each one calls one simulated service with the order as its key."""

import asyncio
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from shared import (
    CompensationResult,
    Confirmation,
    ConfirmationRequest,
    DeliveryRequest,
    OrderError,
    Packing,
    PackingCheckpoint,
    PackingRequest,
    Payment,
    PaymentRequest,
    PolicyCheck,
    PolicyDecision,
    RefundRequest,
    ReleaseRequest,
    Reservation,
    ReservationRequest,
    Shipment,
)
from shop.rules import format_cents, parse_card_expiry
from shop.services import AlreadyUndoneError, OutOfStockError, ServiceUnavailableError

if TYPE_CHECKING:  # The workflow imports this module for its activities' names: keep it light.
    from shop.services import Services

PACKING_KEEPALIVE_SECONDS = 2.0
"""How often packing heartbeats while a slow unit is in hand (well inside the heartbeat timeout)."""


def already_undone(err: AlreadyUndoneError) -> ApplicationError:
    """Final: the services keep one charge and one reservation per order ID, and this one's is
    undone; the order has run before (a Reset) and needs placing again, under a new ID."""
    return ApplicationError(
        f"{err}: place the order again", type=OrderError.ALREADY_UNDONE, non_retryable=True
    )


class OrderActivities:
    """Activities as methods, so the worker hands them their services (and demo switches)."""

    def __init__(self, services: "Services") -> None:
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
