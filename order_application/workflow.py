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
    from observability.metrics import (
        approval_waited,
        compensation_run,
        order_completed,
        order_failed,
    )
    from observability.search_attributes import ORDER_STEP, ORDER_TOTAL_CENTS
    from shared import (
        NOBODY,
        TOO_LATE_TO_CANCEL,
        ApprovalState,
        ApproveOrder,
        CancelAccepted,
        CancelOrder,
        CompensationResult,
        Confirmation,
        ConfirmationRequest,
        Decision,
        DecisionRefused,
        DeliveryRequest,
        Order,
        OrderError,
        OrderFailure,
        OrderResult,
        OrderStatus,
        OrderStep,
        Packing,
        PackingRequest,
        Payment,
        PaymentRequest,
        PaymentSettled,
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

# The patch ID of release 2's fraud re-check: recorded in the history of every order that takes it.
FRAUD_RECHECK = "fraud-recheck"
# The patch ID of the search attributes: an order placed before them replays without them.
LISTED_BY_STEP = "listed-by-step"

R = TypeVar("R")


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self._order_id = workflow.info().workflow_id
        self._total_cents = 0
        self._step = OrderStep.RECEIVED
        self._approval_required = True
        self._approval = ApprovalState.PENDING
        self._decision: Decision | None = None
        self._cancel_reason: str | None = None
        self._listed = False
        # The payment_settled update's answer, once the order is charged or cannot be.
        self._paid: PaymentSettled | None = None
        self._unpaid: ApplicationError | None = None
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
            self._settle_payment(order, payment)
            await self._wait_for_approval(order)
            reservation = await self._reserve_inventory(order)
            packing = await self._pack_items(order) if order.pack else None
        except asyncio.CancelledError:  # Cancelled through Temporal itself (e.g. the Web UI).
            self._settle_unpaid("Order cancelled through Temporal", OrderError.CANCELLED)
            await self._compensate()
            order_failed(OrderError.CANCELLED)
            await self._answer_every_message()
            raise
        except FailureError as failure:
            message, error_type = self._reason(failure)
            self._settle_unpaid(message, error_type)
            await self._compensate()
            order_failed(error_type or "Unknown")
            await self._answer_every_message()
            raise self._order_failure(message, error_type) from failure
        # From delivery on the parcel is on its way: a cancel through Temporal itself comes too late
        # as well, and the order is finished (cancel.py is told so by the update's validator).
        shipment, confirmation = await self._despite_cancel(self._deliver_and_confirm(order))
        self._move_to(OrderStep.COMPLETED)
        workflow.logger.info("Order %s completed", self._order_id)
        order_completed()
        await self._answer_every_message()
        return OrderResult(
            order_id=self._order_id,
            customer=order.customer,
            items=order.items,
            total_cents=order.total_cents,
            approval=self._approval,
            approval_reason=self._decision.reason if self._decision else "",
            decision=self._decision,
            payment=payment,
            reservation=reservation,
            packing=packing,
            shipment=shipment,
            confirmation=confirmation,
        )

    # --- Messages ------------------------------------------------------------------------------

    @workflow.update
    async def payment_settled(self) -> PaymentSettled:
        """Answers once the order is charged (and re-checked for fraud), or fails with the reason
        it could not be: starter.py sends it with the start, for an early return."""
        await workflow.wait_condition(lambda: self._paid is not None or self._unpaid is not None)
        if self._paid is None:
            assert self._unpaid is not None
            raise ApplicationError(self._unpaid.message, type=self._unpaid.type, non_retryable=True)
        return self._paid

    # A decision is an update: the order accepts it only while it awaits approval and nobody has
    # decided, and tells the caller which decision took effect. A bare one (no input, or null)
    # takes the defaults.

    @workflow.update
    def approve(self, approval: ApproveOrder | None = None) -> Decision:
        approval = approval or ApproveOrder()
        return self._decide(ApprovalState.APPROVED, approval.by, approval.reason)

    @approve.validator
    def _approve_while_awaited(self, approval: ApproveOrder | None = None) -> None:
        self._check_decidable("approve")

    @workflow.update
    def reject(self, rejection: RejectOrder | None = None) -> Decision:
        rejection = rejection or RejectOrder()
        return self._decide(ApprovalState.REJECTED, rejection.by, rejection.reason)

    @reject.validator
    def _reject_while_awaited(self, rejection: RejectOrder | None = None) -> None:
        self._check_decidable("reject")

    # The signals stay for the Web UI's Send a Signal and for bare CLI signals: the first decision
    # while the approval is pending counts, later ones are ignored. One the converter cannot read
    # is dropped by the SDK with a warning; neither can fail the order.

    @workflow.signal
    def approve_order(self, approval: ApproveOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            approval = approval or ApproveOrder()
            self._decide(ApprovalState.APPROVED, approval.by, approval.reason)

    @workflow.signal
    def reject_order(self, rejection: RejectOrder | None = None) -> None:
        if self._approval == ApprovalState.PENDING:
            rejection = rejection or RejectOrder()
            self._decide(ApprovalState.REJECTED, rejection.by, rejection.reason)

    def _decide(self, approval: ApprovalState, by: str, reason: str) -> Decision:
        if approval == ApprovalState.REJECTED:
            reason = reason.strip() or "no reason given"
        self._approval = approval
        self._decision = Decision(
            approval=approval, by=by.strip() or NOBODY, at=workflow.now(), reason=reason.strip()
        )
        return self._decision

    def _check_decidable(self, update: str) -> None:
        """Refuses a decision unless the order awaits approval and nobody has decided yet."""
        order = f"order {self._order_id}"
        if self._decision is not None:
            self._refuse(
                update, f"{order} was already {self._decision}", DecisionRefused.ALREADY_DECIDED
            )
        if self._approval == ApprovalState.NOT_REQUIRED:
            why = f"{order} needs no approval: its total is under its approval threshold"
        elif self._approval == ApprovalState.TIMED_OUT:
            why = f"{order} is no longer awaiting approval: its approval timed out"
        elif self._cancel_reason is not None:
            why = f"{order} is being cancelled: {self._cancel_reason}"
        elif self._step != OrderStep.AWAITING_APPROVAL:
            why = f"{order} is not awaiting approval: it is {self._step}"
        else:
            return
        self._refuse(update, why, DecisionRefused.NOT_AWAITING_APPROVAL)

    @workflow.update
    def cancel_order(self, request: CancelOrder | None = None) -> CancelAccepted:
        self._cancel_reason = (request or CancelOrder()).reason.strip() or "cancelled by request"
        return CancelAccepted(step=self._step)

    @cancel_order.validator
    def _only_before_delivery(self, request: CancelOrder | None = None) -> None:
        if self._cancel_reason is not None:
            self._refuse("cancel_order", "the order is already being cancelled")
        if self._step in TOO_LATE_TO_CANCEL:
            self._refuse("cancel_order", f"too late to cancel: the order is {self._step}")

    def _refuse(self, update: str, why: str, error_type: str | None = None) -> NoReturn:
        # The Web UI shows a refused update only as "Encoded failure": name it in the log too, by
        # its type where it has one, since a decision's reason is free text a person wrote.
        workflow.logger.info("Order %s: refused %s: %s", self._order_id, update, error_type or why)
        raise ApplicationError(why, type=error_type, non_retryable=True)

    @workflow.query
    def get_status(self) -> OrderStatus:
        return OrderStatus(
            step=self._step,
            approval=self._approval,
            approval_required=self._approval_required,
            total_cents=self._total_cents,
            decision_reason=self._decision.reason if self._decision else "",
            decision=self._decision,
            cancel_reason=self._cancel_reason or "",
            compensations=list(self._compensations),
        )

    def _record(self, order: Order) -> None:
        """What the status query and the search attributes tell of the order, and whether it
        waits for a person."""
        self._total_cents = order.total_cents
        self._approval_required = order.needs_approval
        if not self._approval_required:
            self._approval = ApprovalState.NOT_REQUIRED
        self._listed = self._has_search_attributes()

    def _has_search_attributes(self) -> bool:
        """Upserts of search attributes are commands in the history: an order placed before
        they were added replays without them, as it ran (as with the fraud re-check, below)."""
        return workflow.patched(LISTED_BY_STEP)

    def _move_to(self, step: OrderStep) -> None:
        """The order's step, kept current in its search attributes, with its total."""
        self._step = step
        if self._listed:
            workflow.upsert_search_attributes(
                [ORDER_STEP.value_set(step), ORDER_TOTAL_CENTS.value_set(self._total_cents)]
            )

    def _settle_payment(self, order: Order, payment: Payment) -> None:
        self._paid = PaymentSettled(
            transaction_id=payment.transaction_id,
            amount_cents=payment.amount_cents,
            awaits_approval=self._approval_required,
            approval_timeout_seconds=order.approval_timeout_seconds,
        )

    def _settle_unpaid(self, message: str, error_type: str | None) -> None:
        """The payment_settled answer of an order that ends before it is charged."""
        if self._paid is None:
            self._unpaid = ApplicationError(message, type=error_type)

    async def _answer_every_message(self) -> None:
        """Lets every update still running answer before the order ends, rather than the
        server failing it for a finished workflow."""
        await workflow.wait_condition(workflow.all_handlers_finished)

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
            # Not when the worker evicts the order from its cache: its wait has not ended then,
            # and the workflow's context is gone.
            if workflow.in_workflow():
                approval_waited(workflow.now() - waiting_since, self._approval)
        self._raise_if_cancelled()
        if self._approval == ApprovalState.REJECTED:
            assert self._decision is not None
            raise ApplicationError(
                f"Order rejected: {self._decision.reason}",
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
        self._move_to(step)

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
        self._move_to(OrderStep.COMPENSATING)
        await self._despite_cancel(self._undo_all())
        self._move_to(OrderStep.FAILED)

    async def _undo_all(self) -> None:
        for undo in reversed(self._undo):
            result = await undo()
            if result.detail:
                self._compensations.append(result)
                compensation_run(result.action)

    def _reason(self, failure: FailureError) -> tuple[str, str | None]:
        """Why the order cannot go on, and the error's type."""
        # An activity's failure wraps the service's own error: that is the reason to report.
        cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
        message = cause.message if isinstance(cause, FailureError) else str(cause)
        return message, cause.type if isinstance(cause, ApplicationError) else None

    def _order_failure(self, message: str, error_type: str | None) -> ApplicationError:
        """The error that ends the order: the reason, its type, and what was undone."""
        # The type, not the message: "card expired 12/23" is customer data, kept encrypted in the
        # history; the log is kept in clear.
        workflow.logger.info(
            "Order %s ended at %s: %s", self._order_id, self._failed_step, error_type or "failed"
        )
        return ApplicationError(
            message,
            OrderFailure(step=self._failed_step, compensations=self._compensations),
            type=error_type,
            non_retryable=True,
        )
