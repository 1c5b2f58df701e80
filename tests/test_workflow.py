"""OrderWorkflow end to end, one test per scenario, each asserting what the customer would see."""

import pytest
from support.orders import (
    NO_APPROVAL,
    ORDER,
    AnotherDecisionFirst,
    DeliveryHeld,
    PackingHeld,
    RefundHeld,
    ReservationHeld,
    changed,
    effects,
    failure_of,
    first_event,
    order_worker,
    place,
    reach,
    result_of,
    retrying,
    started_attempts,
    undone,
    until_reached,
)
from temporalio import client
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from deploys.workflow_bug import BuggyOrderWorkflow
from orders import decision_update
from shared import (
    ApprovalState,
    ApproveOrder,
    CancelAccepted,
    CancelOrder,
    Decision,
    LineItem,
    OrderError,
    OrderStatus,
    OrderStep,
    RejectOrder,
)
from shop.rules import CATALOG
from shop.services import Ledger, Services
from workflow import OrderWorkflow

# --- Delivered orders ------------------------------------------------------------------------


async def test_approved_order_is_delivered(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(reason="regular customer"))
        result = await result_of(handle)

    assert result.approval == ApprovalState.APPROVED
    assert result.decision
    assert result.decision.reason == "regular customer"
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
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(by="ann", reason="ok"))
        await result_of(handle)
        done = await handle.query(OrderWorkflow.get_status)

    assert waiting == OrderStatus(
        step=OrderStep.AWAITING_APPROVAL,
        approval=ApprovalState.PENDING,
        approval_required=True,
        total_cents=3_500,
    )
    assert done.decision is not None
    assert done == OrderStatus(
        step=OrderStep.COMPLETED,
        approval=ApprovalState.APPROVED,
        approval_required=True,
        total_cents=3_500,
        decision=Decision(
            approval=ApprovalState.APPROVED, by="ann", at=done.decision.at, reason="ok"
        ),
    )


async def test_order_below_approval_threshold_needs_no_approval(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    order = changed(ORDER, approval_threshold_cents=ORDER.total_cents + 1)
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
    order = changed(ORDER, approval_threshold_cents=threshold_cents)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        status = await reach(handle, OrderStep.AWAITING_APPROVAL)
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder())
        result = await result_of(handle)

    assert status.approval == ApprovalState.PENDING
    assert status.approval_required
    assert result.approval == ApprovalState.APPROVED


async def test_packed_order_packs_every_unit_on_one_slip(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    items = [
        LineItem(sku="MUG", quantity=3, unit_price_cents=CATALOG["MUG"]),
        LineItem(sku="HOODIE", quantity=2, unit_price_cents=CATALOG["HOODIE"]),
    ]
    order = changed(ORDER, items=items, pack=True, approval_threshold_cents=NO_APPROVAL)
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
    order = changed(ORDER, inventory_outage_attempts=4, approval_threshold_cents=NO_APPROVAL)
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
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(reason="looks fine"))
        failed_task = await first_event(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    assert failed_task.workflow_task_failed_event_attributes.failure.message == "workflow bug!"
    # A bug fails the workflow task, not the order: it waits for a worker that can go on.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async with order_worker(dev_server_env, task_queue, services):
        # The server retries a failed workflow task at once, but after its second failure only
        # once a workflow task timeout (10 s by default) has passed: the fix waits up to that.
        result = await result_of(handle)

    assert result.approval == ApprovalState.APPROVED
    assert result.decision
    assert result.decision.reason == "looks fine"
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
        await handle.signal(OrderWorkflow.reject_order, RejectOrder(reason="over budget"))
        error = await failure_of(handle)
        status = await handle.query(OrderWorkflow.get_status)

    assert error.type == OrderError.REJECTED
    assert error.message == "Order rejected: over budget"
    assert status.approval == ApprovalState.REJECTED
    assert status.decision
    assert status.decision.reason == "over budget"
    assert undone(error) == ["refund payment"]
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_approver_whose_decision_lost_the_race_is_told_so(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        config = dev_server_env.client.config()
        config["interceptors"] = [AnotherDecisionFirst(dev_server_env.client)]
        racing = client.Client(**config)
        with pytest.raises(decision_update.MovedOn) as lost:
            await decision_update.decide(
                racing.get_workflow_handle(handle.id), ApproveOrder(by="alice", reason="fine"), None
            )
        error = await failure_of(handle)
        status = await handle.query(OrderWorkflow.get_status)

    assert status.decision is not None
    assert str(lost.value) == (
        f'order {handle.id} was already rejected by "bob" (name given, not verified) at'
        f" {status.decision.at:%H:%M:%S} UTC"
        " (looks fake); your decision did not take effect"
    )
    assert error.type == OrderError.REJECTED
    assert effects(ledger, handle.id) == {"charge": 1, "refund": 1}


async def test_expired_card_is_declined_without_retrying(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, changed(ORDER, card_expiry="12/23"))
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
        handle = await place(dev_server_env, task_queue, changed(ORDER, card_expiry="13/30"))
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
            [LineItem(sku="LAPTOP", quantity=10, unit_price_cents=CATALOG["LAPTOP"])],
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
    order = changed(ORDER, customer=customer, items=items)
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
    order = changed(
        ORDER,
        items=[LineItem(sku="SOLD-OUT", quantity=1, unit_price_cents=CATALOG["SOLD-OUT"])],
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
            OrderWorkflow.cancel_order, CancelOrder(reason="changed my mind")
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
    order = changed(ORDER, inventory_outage_attempts=100, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        outage = await retrying(handle, "reserve_inventory")
        accepted = await handle.execute_update(
            OrderWorkflow.cancel_order, CancelOrder(reason="took too long")
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
    order = changed(ORDER, pack=True, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The first unit is being packed.
        accepted = await handle.execute_update(
            OrderWorkflow.cancel_order, CancelOrder(reason="found it cheaper")
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
    order = changed(ORDER, approval_threshold_cents=NO_APPROVAL)
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
        await handle.signal(OrderWorkflow.reject_order, RejectOrder(reason="address looks fake"))
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
    order = changed(ORDER, approval_threshold_cents=NO_APPROVAL)
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
    order = changed(ORDER, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, order)
        await until_reached(services)  # The parcel is being handed to the carrier.
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(OrderWorkflow.cancel_order, CancelOrder(reason="too slow"))
        services.let_through.set()
        result = await result_of(handle)

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message == "too late to cancel: the order is delivering"
    assert result.approval == ApprovalState.NOT_REQUIRED
    assert effects(ledger, handle.id) == {"charge": 1, "reservation": 1, "shipment": 1, "e-mail": 1}
