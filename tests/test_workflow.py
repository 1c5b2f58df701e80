"""OrderWorkflow end to end, one test per scenario, each asserting what the customer would see."""

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any, TypeVar

import pytest
from temporalio import client
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.converter import value_to_type
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import approve
from activities import OrderActivities
from boundary import OneArgumentPerMessage
from buggy_workflow import BuggyOrderWorkflow
from cli import UserError
from services import Ledger, Services
from shared import (
    CATALOG,
    ApprovalState,
    ApproveOrder,
    CancelAccepted,
    CancelOrder,
    LineItem,
    Order,
    OrderError,
    OrderFailure,
    OrderResult,
    OrderStatus,
    OrderStep,
    RejectOrder,
)
from worker import WORKFLOW_RUNNER
from workflow import OrderWorkflow

ORDER = Order(
    customer="ada@example.com",
    items=[
        LineItem("T-SHIRT", 1, CATALOG["T-SHIRT"]),
        LineItem("STICKERS", 2, CATALOG["STICKERS"]),
    ],
    shipping_address="1 Main Street, Springfield",
    card_expiry="12/99",
)
"""$35.00 that waits for approval (the default threshold is 0); tests change what they need."""

NO_APPROVAL = 100_000_000
"""An approval threshold ($1,000,000.00) above any order here, for scenarios past the approval."""

# Every order here takes well under a second (the workflow-bug test about ten): these deadlines
# only turn a hang into a failure, and are generous because the machine may be busy.
STEP_DEADLINE_SECONDS = 10
RESULT_DEADLINE_SECONDS = 60
POLL_INTERVAL_SECONDS = 0.05

OrderHandle = WorkflowHandle[Any, OrderResult]
T = TypeVar("T")


# --- Helpers ---------------------------------------------------------------------------------


def order_worker(
    env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    workflow: type = OrderWorkflow,
) -> Worker:
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=[workflow],
        activities=OrderActivities(services).all(),
        interceptors=[OneArgumentPerMessage()],
        workflow_runner=WORKFLOW_RUNNER,
    )


async def place(env: WorkflowEnvironment, task_queue: str, order: Order) -> OrderHandle:
    return await env.client.start_workflow(
        OrderWorkflow.run, args=[order], id=f"order-{uuid.uuid4()}", task_queue=task_queue
    )


async def poll(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Calls `check` until it returns something: for states that have no event to await."""
    try:
        async with asyncio.timeout(STEP_DEADLINE_SECONDS):
            while True:
                if (found := await check()) is not None:
                    return found
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
    except TimeoutError:
        pytest.fail(f"gave up waiting for {what}")


async def reach(handle: OrderHandle, step: OrderStep) -> OrderStatus:
    """Waits until the status query says the order is at `step`."""

    async def status_at_step() -> OrderStatus | None:
        status = await handle.query(OrderWorkflow.get_status)
        return status if status.step == step else None

    return await poll(status_at_step, f"order {handle.id} to reach {step}")


async def first_event(handle: OrderHandle, event_type: EventType.ValueType) -> HistoryEvent:
    """Waits until the order's history holds an event of `event_type`; returns the first."""

    async def find() -> HistoryEvent | None:
        events = (await handle.fetch_history()).events
        return next((event for event in events if event.event_type == event_type), None)

    return await poll(find, f"{EventType.Name(event_type)} in order {handle.id}")


async def retrying(handle: OrderHandle, activity_type: str) -> PendingActivityInfo:
    """Waits until `activity_type` has failed at least once and is to be retried."""

    async def find() -> PendingActivityInfo | None:
        pending = (await handle.describe()).raw_description.pending_activities
        return next(
            (a for a in pending if a.activity_type.name == activity_type and a.attempt > 1), None
        )

    return await poll(find, f"a retry of {activity_type} in order {handle.id}")


async def result_of(handle: OrderHandle) -> OrderResult:
    async with asyncio.timeout(RESULT_DEADLINE_SECONDS):
        return await handle.result()


async def failure_of(handle: OrderHandle) -> ApplicationError:
    """The error that ended the order, as the client (and starter.py) sees it."""
    with pytest.raises(WorkflowFailureError) as failed:
        await result_of(handle)
    assert isinstance(failed.value.cause, ApplicationError)
    return failed.value.cause


def undone(error: ApplicationError) -> list[str]:
    """The compensations a failed order reports, in the order they ran."""
    failure = value_to_type(OrderFailure, error.details[0])
    return [compensation.action for compensation in failure.compensations]


def effects(ledger: Ledger, order_id: str) -> Counter[str]:
    """What the services really did for an order, counted by kind."""
    return Counter(effect.kind for effect in ledger.effects(order_id))


async def started_attempts(handle: OrderHandle, activity_type: str) -> list[int]:
    """The attempt number of each start of an activity that the history records.

    The server records only the start of an activity's last attempt, so [5] means one activity
    whose first four attempts failed.
    """
    events = (await handle.fetch_history()).events
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        event.activity_task_started_event_attributes.attempt
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
        == activity_type
    ]


class HeldServices(Services):
    """The services, except that one call waits until the test lets it through."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger, delay=0, pack_delay=0)
        self.reached = asyncio.Event()
        self.let_through = asyncio.Event()

    async def _hold(self) -> None:
        self.reached.set()
        await self.let_through.wait()


class DeliveryHeld(HeldServices):
    async def ship(self, order_id: str, address: str) -> tuple[str, date]:
        await self._hold()
        return await super().ship(order_id, address)


class ReservationHeld(HeldServices):
    async def reserve(self, order_id: str, items: list[LineItem]) -> str:
        await self._hold()
        return await super().reserve(order_id, items)


class RefundHeld(HeldServices):
    async def refund(self, order_id: str) -> str:
        await self._hold()
        return await super().refund(order_id)


class PackingHeld(HeldServices):
    async def pack_unit(self, order_id: str, slip_id: str, index: int, sku: str) -> None:
        await self._hold()
        await super().pack_unit(order_id, slip_id, index, sku)


async def until_reached(services: HeldServices) -> None:
    async with asyncio.timeout(STEP_DEADLINE_SECONDS):
        await services.reached.wait()


# --- Delivered orders ------------------------------------------------------------------------


async def test_approved_order_is_delivered(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder("regular customer")])
        result = await result_of(handle)

    assert result.approval == ApprovalState.APPROVED
    assert result.approval_reason == "regular customer"
    assert result.total_cents == result.payment.amount_cents == 3_500
    assert result.packing is None
    # The result reports exactly what the services did, each once.
    assert {effect.kind: effect.detail for effect in ledger.effects(handle.id)} == {
        "charge": result.payment.transaction_id,
        "reservation": result.reservation.reservation_id,
        "shipment": f"{result.shipment.tracking_number} {result.shipment.estimated_delivery}",
        "e-mail": result.confirmation.message_id,
    }


async def test_status_while_awaiting_approval(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        waiting = await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder("ok")])
        await result_of(handle)
        done = await handle.query(OrderWorkflow.get_status)

    assert waiting == OrderStatus(
        step=OrderStep.AWAITING_APPROVAL,
        approval=ApprovalState.PENDING,
        approval_required=True,
        total_cents=3_500,
    )
    assert done == OrderStatus(
        step=OrderStep.COMPLETED,
        approval=ApprovalState.APPROVED,
        approval_required=True,
        total_cents=3_500,
        decision_reason="ok",
    )


async def test_order_below_approval_threshold_needs_no_approval(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    order = replace(ORDER, approval_threshold_cents=ORDER.total_cents + 1)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        result = await result_of(handle)  # No signal sent.
        status = await handle.query(OrderWorkflow.get_status)

    assert result.approval == ApprovalState.NOT_REQUIRED
    assert not status.approval_required


@pytest.mark.parametrize(
    "threshold_cents",
    [ORDER.total_cents, ORDER.total_cents - 1],
    ids=["total at threshold", "total above threshold"],
)
async def test_order_at_or_above_approval_threshold_waits_for_approval(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, threshold_cents: int
) -> None:
    order = replace(ORDER, approval_threshold_cents=threshold_cents)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        status = await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder()])
        result = await result_of(handle)

    assert status.approval == ApprovalState.PENDING
    assert status.approval_required
    assert result.approval == ApprovalState.APPROVED


async def test_packed_order_packs_every_unit_on_one_slip(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    items = [LineItem("MUG", 3, CATALOG["MUG"]), LineItem("HOODIE", 2, CATALOG["HOODIE"])]
    order = replace(ORDER, items=items, pack=True, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        result = await result_of(handle)

    assert result.packing is not None
    assert result.packing.units_packed == 3 + 2
    [slip] = [e.detail for e in ledger.effects(handle.id) if e.kind == "packing slip"]
    assert slip == result.packing.slip_id
    assert effects(ledger, handle.id)["packed"] == 3 + 2


async def test_inventory_outage_is_ridden_out(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    # Retries back off 1, 2, 4 and 8 s: the test server skips that time while the test awaits.
    order = replace(ORDER, inventory_outage_attempts=4, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, order)
        result = await result_of(handle)

    assert await started_attempts(handle, "reserve_inventory") == [5]
    # The failed attempts never reached the service: it was asked to reserve once.
    [reservation] = [e for e in ledger.effects(handle.id) if e.kind == "reservation"]
    assert (reservation.detail, reservation.requests) == (result.reservation.reservation_id, 1)


async def test_workflow_bug_is_fixed_by_deploying_the_fix(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services, BuggyOrderWorkflow):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, args=[ApproveOrder("looks fine")])
        failed_task = await first_event(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    assert failed_task.workflow_task_failed_event_attributes.failure.message == "workflow bug!"
    # A bug fails the workflow task, not the order: it waits for a worker that can go on.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async with order_worker(dev_server_env, task_queue, services):
        # The server retries a failed workflow task at once, but after its second failure only
        # once a workflow task timeout (10 s by default) has passed: the fix waits up to that.
        result = await result_of(handle)

    assert result.approval == ApprovalState.APPROVED
    assert result.approval_reason == "looks fine"
    # The same execution went on: its history holds the failure and the completion.
    events = [event.event_type for event in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in events
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    # The payment made before the bug stood; the fix did not charge again.
    [charge] = [e for e in ledger.effects(handle.id) if e.kind == "charge"]
    assert (charge.detail, charge.requests) == (result.payment.transaction_id, 1)


# --- Orders that end early ---------------------------------------------------------------------


async def test_approval_times_out(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    # The default 30 s approval timeout passes instantly on the time-skipping test server.
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        error = await failure_of(handle)
        status = await handle.query(OrderWorkflow.get_status)

    assert error.message == "Order approval timed out"
    assert error.type == OrderError.APPROVAL_TIMED_OUT
    assert status.approval == ApprovalState.TIMED_OUT
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_rejected_order_is_refunded(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.reject_order, args=[RejectOrder("over budget")])
        error = await failure_of(handle)
        status = await handle.query(OrderWorkflow.get_status)

    assert error.type == OrderError.REJECTED
    assert error.message == "Order rejected: over budget"
    assert status.approval == ApprovalState.REJECTED
    assert status.decision_reason == "over budget"
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


class AnotherApproverFirst(client.Interceptor):
    """Sends a rejection just before the client's own signal, in the window between approve.py's
    check that the order still waits and its signal: the race of two approvers, made certain."""

    def __init__(self, other: OrderHandle) -> None:
        self._other = other

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        other = self._other

        class RejectFirst(client.OutboundInterceptor):
            async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
                await other.signal(OrderWorkflow.reject_order, args=[RejectOrder("looks fake")])
                await super().signal_workflow(input)

        return RejectFirst(next)


async def test_approver_whose_decision_lost_the_race_is_told_so(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        config = dev_server_env.client.config()
        config["interceptors"] = [AnotherApproverFirst(handle)]
        racing = client.Client(**config)
        with pytest.raises(UserError) as lost:
            await approve.decide(racing.get_workflow_handle(handle.id), False, "fine by me")
        error = await failure_of(handle)

    assert str(lost.value) == (
        f"order {handle.id} was rejected (looks fake) by another decision first;"
        " your approval did not take effect"
    )
    assert error.type == OrderError.REJECTED
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_expired_card_is_declined_without_retrying(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, replace(ORDER, card_expiry="12/23"))
        error = await failure_of(handle)

    assert error.type == OrderError.CARD_EXPIRED
    assert error.message == "card expired 12/23"
    assert await started_attempts(handle, "process_payment") == [1]
    assert undone(error) == []
    assert effects(ledger, handle.id) == {}


async def test_unreadable_card_is_refused_before_payment(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    """A client that skips the scripts' validation still gets an answer, and is never charged."""
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, replace(ORDER, card_expiry="13/30"))
        error = await failure_of(handle)

    assert error.type == OrderError.INVALID_ORDER
    assert "card_expiry: card expiry month must be 01 to 12" in error.message
    assert await started_attempts(handle, "process_payment") == []
    assert effects(ledger, handle.id) == {}


@pytest.mark.parametrize(
    ("customer", "items", "message"),
    [
        pytest.param(
            "blocked-customer",
            ORDER.items,
            "Order denied: customer blocked-customer is blocked",
            id="blocked customer",
        ),
        pytest.param(
            ORDER.customer,
            [LineItem("LAPTOP", 10, CATALOG["LAPTOP"])],
            "Order denied: order total is over the $10,000.00 limit",
            id="over $10,000",
        ),
    ],
)
async def test_policy_denies_order_before_payment(
    dev_server_env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    ledger: Ledger,
    customer: str,
    items: list[LineItem],
    message: str,
) -> None:
    order = replace(ORDER, customer=customer, items=items)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        error = await failure_of(handle)

    assert error.type == OrderError.POLICY_DENIED
    assert error.message == message
    assert undone(error) == []
    assert effects(ledger, handle.id) == {}


async def test_out_of_stock_order_is_refunded(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    order = replace(
        ORDER,
        items=[LineItem("SOLD-OUT", 1, CATALOG["SOLD-OUT"])],
        approval_threshold_cents=NO_APPROVAL,
    )
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        error = await failure_of(handle)

    assert error.type == OrderError.OUT_OF_STOCK
    assert error.message == "out of stock: SOLD-OUT"
    assert await started_attempts(handle, "reserve_inventory") == [1]
    # Nothing was reserved, so only the payment is given back.
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


# --- Cancellation ------------------------------------------------------------------------------


async def test_cancel_while_awaiting_approval(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        accepted = await handle.execute_update(
            OrderWorkflow.cancel_order, args=[CancelOrder("changed my mind")]
        )
        error = await failure_of(handle)

    assert accepted == CancelAccepted(step=OrderStep.AWAITING_APPROVAL)
    assert error.type == OrderError.CANCELLED
    assert error.message == "Order cancelled: changed my mind"
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_cancel_during_inventory_outage_refunds_and_releases_nothing(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    # Far more failing attempts than the test lasts: the outage is still on when it cancels.
    order = replace(ORDER, inventory_outage_attempts=100, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        outage = await retrying(handle, "reserve_inventory")
        accepted = await handle.execute_update(
            OrderWorkflow.cancel_order, args=[CancelOrder("took too long")]
        )
        error = await failure_of(handle)

    assert outage.last_failure.message.startswith("inventory service is down")
    assert accepted == CancelAccepted(step=OrderStep.RESERVING_INVENTORY)
    assert error.type == OrderError.CANCELLED
    assert error.message == "Order cancelled: took too long"
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_cancel_while_packing_releases_inventory_then_refunds(
    dev_server_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = PackingHeld(ledger)
    order = replace(ORDER, pack=True, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The first unit is being packed.
        accepted = await handle.execute_update(
            OrderWorkflow.cancel_order, args=[CancelOrder("found it cheaper")]
        )
        # The packing activity learns of the cancellation from its next heartbeat (seconds).
        error = await failure_of(handle)

    assert accepted == CancelAccepted(step=OrderStep.PACKING)
    assert error.type == OrderError.CANCELLED
    # Newest first: the reservation is released before the payment is refunded.
    assert undone(error) == ["release inventory", "refund payment"]
    assert effects(ledger, handle.id) == {
        "charge": 1,
        "reservation": 1,
        "packing slip": 1,
        "release": 1,
        "refund": 1,
    }


async def test_cancel_through_temporal_waits_for_the_step_in_flight_then_undoes_it(
    dev_server_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = ReservationHeld(ledger)
    order = replace(ORDER, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The inventory service has the request in hand.
        await handle.cancel()  # As the Web UI or `temporal workflow cancel` would.
        await first_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
        services.let_through.set()  # The reservation goes through after all.
        with pytest.raises(WorkflowFailureError) as failed:
            await result_of(handle)

    assert isinstance(failed.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    # The reservation made while the cancel was on its way is released, not leaked.
    assert [effect.kind for effect in ledger.effects(handle.id)] == [
        "charge",
        "reservation",
        "release",
        "refund",
    ]


async def test_cancel_through_temporal_cannot_stop_a_refund_under_way(
    dev_server_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = RefundHeld(ledger)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.reject_order, args=[RejectOrder("address looks fake")])
        await until_reached(services)  # The refund is under way.
        await handle.cancel()
        await first_event(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        services.let_through.set()
        error = await failure_of(handle)

    # It ends as it was ending, rejected and refunded: the cancel came too late to change that.
    assert error.type == OrderError.REJECTED
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_cancel_through_temporal_after_delivery_started_is_too_late(
    dev_server_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = DeliveryHeld(ledger)
    order = replace(ORDER, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The parcel is being handed to the carrier.
        await handle.cancel()
        await first_event(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        services.let_through.set()
        result = await result_of(handle)

    assert result.shipment.tracking_number.startswith("trk-")
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert effects(ledger, handle.id) == {"charge": 1, "reservation": 1, "shipment": 1, "e-mail": 1}


async def test_cancel_after_delivery_started_is_refused(
    dev_server_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = DeliveryHeld(ledger)
    order = replace(ORDER, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The parcel is being handed to the carrier.
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(OrderWorkflow.cancel_order, args=[CancelOrder("too slow")])
        services.let_through.set()
        result = await result_of(handle)

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message == "too late to cancel: the order is delivering"
    assert result.approval == ApprovalState.NOT_REQUIRED
    assert effects(ledger, handle.id) == {"charge": 1, "reservation": 1, "shipment": 1, "e-mail": 1}
