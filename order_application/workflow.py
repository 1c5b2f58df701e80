"""OrderWorkflow: check, pay, await approval, reserve, pack, deliver, confirm; undo on failure."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

# Deterministic modules with no side effects at import: the sandbox shares them with every order
# instead of importing them afresh for each, and still checks this module's own code.
with workflow.unsafe.imports_passed_through():
    from activities import OrderActivities
    from errors import OrderError
    from metrics import approval_waited, compensation_run, order_completed, order_failed
    from shared import (
        ApprovalState,
        ApproveOrder,
        CancelAccepted,
        CancelOrder,
        CompensationResult,
        Confirmation,
        ConfirmationRequest,
        DeliveryRequest,
        Order,
        OrderFailure,
        OrderResult,
        OrderStatus,
        OrderStep,
        Packing,
        PackingRequest,
        Payment,
        PaymentRequest,
        PolicyCheck,
        PolicyDecision,
        RefundRequest,
        RejectOrder,
        ReleaseRequest,
        Reservation,
        ReservationRequest,
        Shipment,
    )

# A simulated service call takes about half a second. Five seconds means the worker died or the
# service hangs, and the attempt is retried (on another worker if this one is gone).
SERVICE_CALL_TIMEOUT = timedelta(seconds=5)

# Packing takes seconds per unit, so its deadline is generous; liveness comes from heartbeats
# instead: a worker that misses one for 5 s is presumed dead and packing resumes elsewhere.
PACKING_TIMEOUT = timedelta(minutes=10)
PACKING_HEARTBEAT_TIMEOUT = timedelta(seconds=5)

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

# Inventory, packing, delivery and every compensation: no attempt cap and no overall deadline, so
# an outage of any length is ridden out; retries at most 10 s apart, so recovery follows quickly.
UNTIL_IT_WORKS = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
    non_retryable_error_types=[OrderError.OUT_OF_STOCK, OrderError.ALREADY_UNDONE],
)

# Once delivery has started the parcel is on its way: the order can no longer be cancelled.
_TOO_LATE_TO_CANCEL = {
    OrderStep.DELIVERING,
    OrderStep.CONFIRMING,
    OrderStep.COMPLETED,
    OrderStep.COMPENSATING,
    OrderStep.FAILED,
}

# The patch ID of release 2's fraud re-check: recorded in the history of every order that takes it.
FRAUD_RECHECK = "fraud-recheck"

R = TypeVar("R")


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self._order_id = workflow.info().workflow_id
        self._total_cents = 0
        self._step = OrderStep.RECEIVED
        self._approval_required = True
        self._approval = ApprovalState.PENDING
        self._decision_reason = ""
        self._cancel_reason: str | None = None
        # Compensations of the steps begun so far, run last-in-first-out if the order cannot go on.
        self._undo: list[Callable[[], Awaitable[CompensationResult]]] = []
        self._compensations: list[CompensationResult] = []
        self._failed_step = self._step

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        # The order is valid: the worker's converter refused anything else before this ran,
        # failing the workflow as InvalidOrder (see boundary.py).
        self._record(order)
        try:
            await self._check_policy(order)
            payment = await self._charge_payment(order)
            if self._has_fraud_recheck():
                await self._recheck_fraud(order)
            await self._wait_for_approval(order)
            reservation = await self._reserve_inventory(order)
            packing = await self._pack_items(order) if order.pack else None
        except asyncio.CancelledError:  # Cancelled through Temporal itself (e.g. the Web UI).
            await self._compensate()
            order_failed(OrderError.CANCELLED)
            raise
        except FailureError as failure:
            await self._compensate()
            error = self._order_failure(failure)
            order_failed(error.type or "Unknown")
            raise error from failure
        # From delivery on the parcel is on its way: a cancel through Temporal itself comes too late
        # as well, and the order is finished (cancel.py is told so by the update's validator).
        shipment, confirmation = await self._despite_cancel(self._deliver_and_confirm(order))
        self._step = OrderStep.COMPLETED
        workflow.logger.info("Order %s completed", self._order_id)
        order_completed()
        return OrderResult(
            order_id=self._order_id,
            customer=order.customer,
            items=order.items,
            total_cents=order.total_cents,
            approval=self._approval,
            approval_reason=self._decision_reason,
            payment=payment,
            reservation=reservation,
            packing=packing,
            shipment=shipment,
            confirmation=confirmation,
        )

    # --- Messages ------------------------------------------------------------------------------

    # A bare signal (no input, or null) takes the defaults. One the converter cannot read is
    # dropped by the SDK with a warning; neither can fail the order.

    @workflow.signal
    def approve_order(self, approval: ApproveOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            self._approval = ApprovalState.APPROVED
            self._decision_reason = (approval or ApproveOrder()).reason.strip()

    @workflow.signal
    def reject_order(self, rejection: RejectOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            self._approval = ApprovalState.REJECTED
            self._decision_reason = (rejection or RejectOrder()).reason.strip() or "no reason given"

    @workflow.update
    def cancel_order(self, request: CancelOrder | None = None) -> CancelAccepted:
        self._cancel_reason = (request or CancelOrder()).reason.strip() or "cancelled by request"
        return CancelAccepted(step=self._step)

    @cancel_order.validator
    def _only_before_delivery(self, request: CancelOrder | None = None) -> None:
        if self._cancel_reason is not None:
            self._refuse_cancel("the order is already being cancelled")
        if self._step in _TOO_LATE_TO_CANCEL:
            self._refuse_cancel(f"too late to cancel: the order is {self._step}")

    def _refuse_cancel(self, why: str) -> NoReturn:
        # The Web UI shows a refused update only as "Encoded failure": say why in the log too.
        workflow.logger.info("Order %s: refused cancel_order: %s", self._order_id, why)
        raise ApplicationError(why)

    @workflow.query
    def get_status(self) -> OrderStatus:
        return OrderStatus(
            step=self._step,
            approval=self._approval,
            approval_required=self._approval_required,
            total_cents=self._total_cents,
            decision_reason=self._decision_reason,
            cancel_reason=self._cancel_reason or "",
            compensations=list(self._compensations),
        )

    def _record(self, order: Order) -> None:
        """What the status query tells of the order, and whether it waits for a person."""
        self._total_cents = order.total_cents
        self._approval_required = order.needs_approval
        if not self._approval_required:
            self._approval = ApprovalState.NOT_REQUIRED

    # --- Steps, in the order they run ----------------------------------------------------------

    async def _check_policy(self, order: Order) -> None:
        await self._screen(order, OrderStep.CHECKING_POLICY, OrderActivities.check_policy)

    async def _charge_payment(self, order: Order) -> Payment:
        # The refund goes on the list first: a charge that timed out may still have gone through,
        # and a refund of nothing is harmless.
        self._add_compensation(
            OrderActivities.refund_payment, RefundRequest(order_id=self._order_id)
        )
        request = PaymentRequest(
            order_id=self._order_id,
            customer=order.customer,
            amount_cents=order.total_cents,
            card_expiry=order.card_expiry,
        )
        return await self._step_activity(
            OrderStep.CHARGING_PAYMENT, OrderActivities.process_payment, request, PAYMENT_RETRY
        )

    def _has_fraud_recheck(self) -> bool:
        """Release 2 added the fraud re-check. `patched` is True for an order that reaches this
        point on release 2, and False when a worker replays an order that passed it on release 1:
        such an order keeps the steps it already took, and its history still replays."""
        return workflow.patched(FRAUD_RECHECK)

    async def _recheck_fraud(self, order: Order) -> None:
        await self._screen(order, OrderStep.RECHECKING_FRAUD, OrderActivities.recheck_fraud)

    async def _screen(
        self,
        order: Order,
        step: OrderStep,
        check: Callable[[OrderActivities, PolicyCheck], Awaitable[PolicyDecision]],
    ) -> None:
        """A policy or fraud check: a denial ends the order (and undoes what it did)."""
        request = PolicyCheck(
            order_id=self._order_id, customer=order.customer, total_cents=order.total_cents
        )
        decision = await self._step_activity(step, check, request, UNTIL_IT_WORKS)
        if not decision.approved:
            raise ApplicationError(
                f"Order denied: {decision.reason}",
                type=OrderError.POLICY_DENIED,
                non_retryable=True,
            )

    async def _wait_for_approval(self, order: Order) -> None:
        if not self._approval_required:
            return
        self._enter(OrderStep.AWAITING_APPROVAL)
        waiting_since = workflow.now()
        try:
            await workflow.wait_condition(
                lambda: self._approval != ApprovalState.PENDING or self._cancel_reason is not None,
                timeout=timedelta(seconds=order.approval_timeout_seconds),
            )
        except TimeoutError:
            self._approval = ApprovalState.TIMED_OUT
            raise ApplicationError(
                "Order approval timed out", type=OrderError.APPROVAL_TIMED_OUT, non_retryable=True
            ) from None
        finally:
            approval_waited(workflow.now() - waiting_since, self._approval)
        self._raise_if_cancelled()
        if self._approval == ApprovalState.REJECTED:
            raise ApplicationError(
                f"Order rejected: {self._decision_reason}",
                type=OrderError.REJECTED,
                non_retryable=True,
            )

    async def _reserve_inventory(self, order: Order) -> Reservation:
        self._add_compensation(
            OrderActivities.release_inventory, ReleaseRequest(order_id=self._order_id)
        )
        request = ReservationRequest(
            order_id=self._order_id,
            items=order.items,
            outage_attempts=order.inventory_outage_attempts,
        )
        return await self._step_activity(
            OrderStep.RESERVING_INVENTORY,
            OrderActivities.reserve_inventory,
            request,
            UNTIL_IT_WORKS,
        )

    async def _pack_items(self, order: Order) -> Packing:
        return await self._step_activity(
            OrderStep.PACKING,
            OrderActivities.pack_order_items,
            PackingRequest(order_id=self._order_id, items=order.items),
            UNTIL_IT_WORKS,
            start_to_close_timeout=PACKING_TIMEOUT,
            heartbeat_timeout=PACKING_HEARTBEAT_TIMEOUT,
        )

    async def _deliver_and_confirm(self, order: Order) -> tuple[Shipment, Confirmation]:
        shipment = await self._deliver(order)
        return shipment, await self._send_confirmation(order, shipment)

    async def _deliver(self, order: Order) -> Shipment:
        # Past this point the order can no longer be cancelled (see _only_before_delivery).
        self._step = OrderStep.DELIVERING
        return await workflow.execute_activity_method(
            OrderActivities.deliver_order,
            DeliveryRequest(order_id=self._order_id, shipping_address=order.shipping_address),
            start_to_close_timeout=SERVICE_CALL_TIMEOUT,
            retry_policy=UNTIL_IT_WORKS,
        )

    async def _send_confirmation(self, order: Order, shipment: Shipment) -> Confirmation:
        self._step = OrderStep.CONFIRMING
        return await workflow.execute_activity_method(
            OrderActivities.send_confirmation,
            ConfirmationRequest(
                order_id=self._order_id,
                customer=order.customer,
                tracking_number=shipment.tracking_number,
                estimated_delivery=shipment.estimated_delivery,
            ),
            start_to_close_timeout=SERVICE_CALL_TIMEOUT,
            retry_policy=UNTIL_IT_WORKS,
        )

    # --- Cancellation and compensation ---------------------------------------------------------

    def _enter(self, step: OrderStep) -> None:
        self._raise_if_cancelled()
        self._step = step

    def _raise_if_cancelled(self) -> None:
        if self._cancel_reason is not None:
            raise ApplicationError(
                f"Order cancelled: {self._cancel_reason}",
                type=OrderError.CANCELLED,
                non_retryable=True,
            )

    async def _step_activity(
        self,
        step: OrderStep,
        activity: Callable[[OrderActivities, Any], Awaitable[R]],
        arg: Any,
        retry_policy: RetryPolicy,
        *,
        start_to_close_timeout: timedelta = SERVICE_CALL_TIMEOUT,
        heartbeat_timeout: timedelta | None = None,
    ) -> R:
        """Runs one step's activity; a cancel request stops it and ends the order."""
        self._enter(step)
        handle = workflow.start_activity_method(
            activity,
            arg,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
            # Compensate only once the interrupted call has really stopped.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        try:
            await workflow.wait_condition(lambda: handle.done() or self._cancel_reason is not None)
        finally:
            # Cancelled, by cancel_order or through Temporal itself: stop the step before
            # anything is compensated.
            if not handle.done():
                handle.cancel()
                await workflow.wait([handle])
        # A cancel accepted as the step finished still wins: the caller was told it would.
        self._raise_if_cancelled()
        return handle.result()

    async def _despite_cancel(self, work: Awaitable[R]) -> R:
        """Runs `work` to its end, even if the workflow is cancelled through Temporal meanwhile."""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            return await task

    def _add_compensation(
        self,
        compensation: Callable[[OrderActivities, Any], Awaitable[CompensationResult]],
        arg: Any,
    ) -> None:
        self._undo.append(
            lambda: workflow.execute_activity_method(
                compensation,
                arg,
                start_to_close_timeout=SERVICE_CALL_TIMEOUT,
                retry_policy=UNTIL_IT_WORKS,
            )
        )

    async def _compensate(self) -> None:
        """Undoes what the order did, newest first; a cancel coming in meanwhile cannot stop it."""
        self._failed_step = self._step
        self._step = OrderStep.COMPENSATING
        await self._despite_cancel(self._undo_all())
        self._step = OrderStep.FAILED

    async def _undo_all(self) -> None:
        for undo in reversed(self._undo):
            result = await undo()
            if result.detail:
                self._compensations.append(result)
                compensation_run(result.action)

    def _order_failure(self, failure: FailureError) -> ApplicationError:
        """The error that ends the order: the reason, its type, and what was undone."""
        # An activity's failure wraps the service's own error: that is the reason to report.
        cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
        message = cause.message if isinstance(cause, FailureError) else str(cause)
        workflow.logger.info("Order %s ended at %s: %s", self._order_id, self._failed_step, message)
        return ApplicationError(
            message,
            OrderFailure(step=self._failed_step, compensations=self._compensations),
            type=cause.type if isinstance(cause, ApplicationError) else None,
            non_retryable=True,
        )
