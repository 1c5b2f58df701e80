"""OrderWorkflow: check, pay, await approval, reserve, pack, deliver, confirm; undo on failure."""

import asyncio
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.workflow import ActivityHandle

# Deterministic modules with no side effects at import: the sandbox shares them with every order
# instead of importing them afresh for each, and still checks this module's own code.
with workflow.unsafe.imports_passed_through():
    from activities import (
        PACKING_HEARTBEAT_TIMEOUT,
        PACKING_TIMEOUT,
        PAYMENT_RETRY,
        SERVICE_CALL_TIMEOUT,
        STOP_BEFORE_UNDOING,
        UNTIL_IT_WORKS,
        ConfirmationRequest,
        DeliveryRequest,
        OrderActivities,
        PackingRequest,
        PaymentRequest,
        PolicyCheck,
        RefundRequest,
        ReleaseRequest,
        ReservationRequest,
        Screening,
    )
    from observability.metrics import approval_wait_timed
    from observability.outcome import order_ended
    from observability.search_attributes import StepListing
    from saga.compensations import Compensations, despite_cancel, done_or_stopped, reason
    from shared import (
        ApprovalState,
        ApproveOrder,
        CancelAccepted,
        CancelOrder,
        Confirmation,
        Decision,
        Order,
        OrderError,
        OrderFailure,
        OrderResult,
        OrderStatus,
        OrderStep,
        Packing,
        Payment,
        PaymentSettled,
        Placing,
        Proof,
        RejectOrder,
        Reservation,
        Shipment,
    )

R = TypeVar("R")


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self._order_id = workflow.info().workflow_id
        self._total_cents = 0
        self._step = OrderStep.RECEIVED
        self._approval = ApprovalState.PENDING
        self._decision: Decision | None = None
        self._cancel_reason: str | None = None
        self._placed_by = ""  # Who placed the order, when they signed in to (see payment_settled).
        # The payment_settled update's answer, once the order is charged or cannot be.
        self._paid: PaymentSettled | None = None
        self._unpaid: ApplicationError | None = None
        self._undo = Compensations()  # What undoes each step taken, run if the order cannot go on.
        self._listing = StepListing()

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        # The order is valid: the worker's converter refused anything else before this ran,
        # failing the workflow as InvalidOrder (see payloads/converter.py).
        self._total_cents = order.total_cents
        if not order.needs_approval:
            self._approval = ApprovalState.NOT_REQUIRED
        try:
            await self._screen(order, OrderStep.CHECKING_POLICY, OrderActivities.check_policy)
            payment = await self._charge_payment(order)
            if self.takes_fraud_recheck():
                await self._screen(order, OrderStep.RECHECKING_FRAUD, OrderActivities.recheck_fraud)
            self._paid = PaymentSettled.of(payment, order)  # payment_settled's answer
            if order.needs_approval:
                await self._wait_for_approval(order)
            reservation = await self._reserve_inventory(order)
            packing = await self._pack_items(order) if order.pack else None
        except asyncio.CancelledError:  # Cancelled through Temporal itself (e.g. the Web UI).
            await self._end_undelivered("Order cancelled through Temporal", OrderError.CANCELLED)
            raise
        except FailureError as failure:
            raise await self._end_undelivered(*reason(failure)) from failure
        # From delivery on the parcel is on its way: a cancel through Temporal itself comes too late
        # as well, and the order is finished (cancel.py is told so by the update's validator).
        shipment = await despite_cancel(self._deliver(order))
        confirmation = await despite_cancel(self._send_confirmation(order, shipment))
        await self._end_delivered()
        return OrderResult(
            order_id=self._order_id,
            customer=order.customer,
            items=order.items,
            total_cents=order.total_cents,
            approval=self._approval,
            decision=self._decision,
            payment=payment,
            reservation=reservation,
            packing=packing,
            shipment=shipment,
            confirmation=confirmation,
        )

    # --- Steps, in the order they run ----------------------------------------------------------

    async def _screen(self, order: Order, step: OrderStep, check: Screening) -> None:
        """The policy check, or release 2's fraud re-check: a denial ends the order."""
        self._enter(step)
        decision = await self._unless_cancelled(
            workflow.start_activity_method(
                check,
                PolicyCheck.of(self._order_id, order),
                start_to_close_timeout=SERVICE_CALL_TIMEOUT,
                retry_policy=UNTIL_IT_WORKS,
                cancellation_type=STOP_BEFORE_UNDOING,
            )
        )
        if not decision.approved:
            raise _failure(f"Order denied: {decision.reason}", OrderError.POLICY_DENIED)

    async def _charge_payment(self, order: Order) -> Payment:
        self._undo.add(OrderActivities.refund_payment, RefundRequest(order_id=self._order_id))
        self._enter(OrderStep.CHARGING_PAYMENT)
        return await self._unless_cancelled(
            workflow.start_activity_method(
                OrderActivities.process_payment,
                PaymentRequest.of(self._order_id, order),
                start_to_close_timeout=SERVICE_CALL_TIMEOUT,
                retry_policy=PAYMENT_RETRY,
                cancellation_type=STOP_BEFORE_UNDOING,
            )
        )

    async def _wait_for_approval(self, order: Order) -> None:
        """A person approves or rejects within the order's timeout."""
        self._enter(OrderStep.AWAITING_APPROVAL)
        with approval_wait_timed(lambda: self._approval):
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None or self._cancel_reason is not None,
                    timeout=timedelta(seconds=order.approval_timeout_seconds),
                )
            except TimeoutError:
                self._approval = ApprovalState.TIMED_OUT
                raise _failure("Order approval timed out", OrderError.APPROVAL_TIMED_OUT) from None
        self._raise_if_cancelled()
        if self._decision and self._decision.approval == ApprovalState.REJECTED:
            raise _failure(f"Order rejected: {self._decision.reason}", OrderError.REJECTED)

    async def _reserve_inventory(self, order: Order) -> Reservation:
        self.before_reserving(order)
        self._undo.add(OrderActivities.release_inventory, ReleaseRequest(order_id=self._order_id))
        self._enter(OrderStep.RESERVING_INVENTORY)
        return await self._unless_cancelled(
            workflow.start_activity_method(
                OrderActivities.reserve_inventory,
                ReservationRequest.of(self._order_id, order),
                start_to_close_timeout=SERVICE_CALL_TIMEOUT,
                retry_policy=UNTIL_IT_WORKS,
                cancellation_type=STOP_BEFORE_UNDOING,
            )
        )

    async def _pack_items(self, order: Order) -> Packing:
        self._enter(OrderStep.PACKING)
        return await self._unless_cancelled(
            workflow.start_activity_method(
                OrderActivities.pack_order_items,
                PackingRequest(order_id=self._order_id, items=order.items),
                start_to_close_timeout=PACKING_TIMEOUT,
                heartbeat_timeout=PACKING_HEARTBEAT_TIMEOUT,
                retry_policy=UNTIL_IT_WORKS,
                cancellation_type=STOP_BEFORE_UNDOING,
            )
        )

    async def _deliver(self, order: Order) -> Shipment:
        self._move_to(OrderStep.DELIVERING)
        return await workflow.execute_activity_method(
            OrderActivities.deliver_order,
            DeliveryRequest(order_id=self._order_id, shipping_address=order.shipping_address),
            start_to_close_timeout=SERVICE_CALL_TIMEOUT,
            retry_policy=UNTIL_IT_WORKS,
        )

    async def _send_confirmation(self, order: Order, shipment: Shipment) -> Confirmation:
        self._move_to(OrderStep.CONFIRMING)
        return await workflow.execute_activity_method(
            OrderActivities.send_confirmation,
            ConfirmationRequest.of(self._order_id, order, shipment),
            start_to_close_timeout=SERVICE_CALL_TIMEOUT,
            retry_policy=UNTIL_IT_WORKS,
        )

    # --- Seams: the two places where other deploys of this workflow differ (see deploys/) -------

    def takes_fraud_recheck(self) -> bool:
        """Release 2 added the fraud re-check as the patch "fraud-recheck": True for an order that
        reaches this point on release 2; False when a worker replays one that passed it on release
        1, which keeps the steps it took, so that its history still replays."""
        return workflow.patched("fraud-recheck")

    def before_reserving(self, order: Order) -> None:
        """Nothing in this release. The deploy with a bug raises here: after the approval, before
        the reservation's first command."""

    # --- Messages: the early return, decisions, cancel and status -------------------------------

    @workflow.update
    async def payment_settled(self, placing: Placing | None = None) -> PaymentSettled:
        """The early return: starter.py sends it with the start, and it answers once the order is
        charged and the charge re-checked, or fails with the reason why not. The first signed-in
        placing stands."""
        if placing and Proof.of(placing.proof) == Proof.SIGNED_IN and not self._placed_by:
            self._placed_by = placing.by
        await workflow.wait_condition(lambda: self._paid is not None or self._unpaid is not None)
        if self._unpaid is not None:
            raise self._unpaid
        assert self._paid is not None
        return self._paid

    @payment_settled.validator
    def _placing_checked(self, placing: Placing | None = None) -> None:
        """Nothing of the order's to check; with a validator declared, the SDK runs the worker's
        check of a placing's ticket (payloads/interceptor.py) before the update is accepted."""

    # A decision is an update: the order accepts it only while it awaits approval and nobody has
    # decided, and tells the caller which decision took effect. A bare one (no input, or null)
    # takes the defaults.

    @workflow.update
    def approve(self, approval: ApproveOrder | None = None) -> Decision:
        return self._decide(ApprovalState.APPROVED, approval or ApproveOrder(), checked=True)

    @approve.validator
    def _approve_while_awaited(self, approval: ApproveOrder | None = None) -> None:
        self._check_decidable("approve", approval)

    @workflow.update
    def reject(self, rejection: RejectOrder | None = None) -> Decision:
        return self._decide(ApprovalState.REJECTED, rejection or RejectOrder(), checked=True)

    @reject.validator
    def _reject_while_awaited(self, rejection: RejectOrder | None = None) -> None:
        self._check_decidable("reject", rejection)

    # The signals stay for the Web UI's Send a Signal and bare CLI signals: the first decision while
    # the approval is pending counts. One the converter cannot read is dropped with a warning.

    @workflow.signal
    def approve_order(self, approval: ApproveOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            self._decide(ApprovalState.APPROVED, approval or ApproveOrder(), checked=False)

    @workflow.signal
    def reject_order(self, rejection: RejectOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            self._decide(ApprovalState.REJECTED, rejection or RejectOrder(), checked=False)

    @workflow.update
    def cancel_order(self, request: CancelOrder | None = None) -> CancelAccepted:
        self._cancel_reason = (request or CancelOrder()).reason.strip() or "cancelled by request"
        return CancelAccepted(step=self._step)

    @cancel_order.validator
    def _while_cancellable(self, request: CancelOrder | None = None) -> None:
        if why := self.get_status().cancel_refusal():
            self._refuse("cancel_order", why)

    @workflow.query
    def get_status(self) -> OrderStatus:
        return OrderStatus(
            step=self._step,
            approval=self._approval,
            approval_required=self._approval != ApprovalState.NOT_REQUIRED,
            total_cents=self._total_cents,
            decision=self._decision,
            cancel_reason=self._cancel_reason or "",
            compensations=list(self._undo.undone),
        )

    def _decide(
        self, approval: ApprovalState, decided: ApproveOrder | RejectOrder, *, checked: bool
    ) -> Decision:
        # The worker checked an update's proof before its validator ran, and refused one that
        # does not hold (payloads/decision_proof.py); a signal's cannot be checked.
        proof = Proof.of(decided.proof) if checked else Proof.NAME_GIVEN
        self._approval = approval
        self._decision = Decision.made(approval, decided, workflow.now(), proof)
        return self._decision

    def _check_decidable(self, update: str, decided: ApproveOrder | RejectOrder | None) -> None:
        """Refuses a decision unless the order awaits approval and nobody has decided yet, and an
        approval by whoever signed in to place the order (four eyes)."""
        if refusal := self.get_status().decision_refusal(decided, self._placed_by):
            error_type, why = refusal
            self._refuse(update, f"order {self._order_id} {why}", error_type)

    def _refuse(self, update: str, why: str, error_type: str | None = None) -> NoReturn:
        # The Web UI shows a refused update only as "Encoded failure": name it in the log too, by
        # its type where it has one, since a decision's reason is free text a person wrote.
        workflow.logger.info("Order %s: refused %s: %s", self._order_id, update, error_type or why)
        raise ApplicationError(why, type=error_type, non_retryable=True)

    # --- How a step starts, how a cancel stops it, and how the order ends -----------------------

    def _enter(self, step: OrderStep) -> None:
        """Starts a step, unless a cancel was accepted meanwhile."""
        self._raise_if_cancelled()
        self._move_to(step)

    def _move_to(self, step: OrderStep) -> None:
        """The order's step, and its search attributes where orders are listed by them."""
        self._step = step
        self._listing.show(step, self._total_cents)

    def _raise_if_cancelled(self) -> None:
        if self._cancel_reason is not None:
            raise _failure(f"Order cancelled: {self._cancel_reason}", OrderError.CANCELLED)

    async def _unless_cancelled(self, activity: ActivityHandle[R]) -> R:
        """The step's result, unless a cancel request stops it and ends the order."""
        await done_or_stopped(activity, lambda: self._cancel_reason is not None)
        # A cancel accepted as the step finished still wins: the caller was told it would.
        self._raise_if_cancelled()
        return activity.result()

    async def _end_undelivered(self, message: str, error_type: str | None) -> ApplicationError:
        """Compensates what the order did, newest first, even if a cancel comes in meanwhile; then
        returns the error that ends the order: the reason, its type, and what was undone."""
        failed_step = self._step
        if self._paid is None:  # The payment_settled answer of an order never charged.
            self._unpaid = ApplicationError(message, type=error_type, non_retryable=True)
        self._move_to(OrderStep.COMPENSATING)
        await despite_cancel(self._undo.run())
        self._move_to(OrderStep.FAILED)
        order_ended(self._order_id, failed_step, error_type)
        await workflow.wait_condition(workflow.all_handlers_finished)
        undone = self._undo.undone
        failure = OrderFailure(step=failed_step, compensations=undone, decision=self._decision)
        return ApplicationError(message, failure, type=error_type, non_retryable=True)

    async def _end_delivered(self) -> None:
        self._move_to(OrderStep.COMPLETED)
        order_ended(self._order_id)
        # Every update still running answers before the order ends; the server would fail it.
        await workflow.wait_condition(workflow.all_handlers_finished)


def _failure(message: str, error_type: OrderError) -> ApplicationError:
    """A failure that ends the order, as OrderError names it: retrying would not help."""
    return ApplicationError(message, type=error_type, non_retryable=True)
