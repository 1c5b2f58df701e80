"""Placing with an early return, deciding through updates, and finding orders by their step."""

import asyncio
import contextlib
import os
import uuid

import pytest
from support.orders import (
    NO_APPROVAL,
    ORDER,
    ORDER_KEY,
    AnotherDecisionFirst,
    ChargeHeld,
    OrderHandle,
    changed,
    effects,
    failure_of,
    order_worker,
    place,
    reach,
    result_of,
    until_reached,
)
from support.scripts import GIVEN
from temporalio import client
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.converter import decode_typed_search_attributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from command_line.exit import EXIT_OK
from harness.processes import eventually
from local.account import local_account
from observability.search_attributes import ORDER_STEP, ORDER_TOTAL_CENTS, orders_awaiting_approval
from orders.decision_update import MovedOn, decide, decide_all_waiting, decide_order
from payloads.codec import EncryptionCodec
from payloads.decision_proof import PROOF_REFUSED, Tickets, proof
from payloads.interceptor import DecisionProofs, OneArgumentPerMessage
from shared import (
    NOBODY,
    ApprovalState,
    ApproveOrder,
    CancelOrder,
    DecisionRefused,
    Order,
    OrderError,
    OrderResult,
    OrderStep,
    PaymentSettled,
    Placing,
    Proof,
    RejectOrder,
)
from shop.services import Ledger, Services
from workflow import OrderWorkflow


def placing(
    task_queue: str, order: Order, order_id: str | None = None
) -> WithStartWorkflowOperation[OrderWorkflow, OrderResult]:
    return WithStartWorkflowOperation(
        OrderWorkflow.run,
        order,
        id=order_id or f"order-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )


async def place_early(
    env: WorkflowEnvironment, operation: WithStartWorkflowOperation[OrderWorkflow, OrderResult]
) -> PaymentSettled:
    """As starter.py places an order: started together with the payment_settled update."""
    return await env.client.execute_update_with_start_workflow(
        OrderWorkflow.payment_settled, start_workflow_operation=operation
    )


def placed_with_charge_held(
    env: WorkflowEnvironment, task_queue: str, services: ChargeHeld
) -> tuple["asyncio.Future[PaymentSettled]", OrderHandle]:
    """Places an order early-return style and holds its charge: the payment answer to come, and
    the order's handle (not the operation's, which waits for the update's first answer)."""
    services.held = f"order-{uuid.uuid4()}"
    paying = asyncio.ensure_future(place_early(env, placing(task_queue, ORDER, services.held)))
    return paying, env.client.get_workflow_handle(services.held)


def refusal(err: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    assert isinstance(err.value.cause, ApplicationError)
    return err.value.cause


# --- Update-with-Start: the payment's answer at once ----------------------------------------------


async def test_early_return_answers_once_the_card_is_charged(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services, ledger: Ledger
) -> None:
    operation = placing(task_queue, ORDER)
    async with order_worker(time_skipping_env, task_queue, services):
        paid = await place_early(time_skipping_env, operation)
        handle = await operation.workflow_handle()
        # Answered with the payment settled, and before the approval: the order still waits.
        status = await handle.query(OrderWorkflow.get_status)

    assert paid == PaymentSettled(
        transaction_id=ledger.effects(handle.id)[0].detail,
        amount_cents=3_500,
        awaits_approval=True,
        approval_timeout_seconds=30,
    )
    assert status.step == OrderStep.AWAITING_APPROVAL
    assert effects(ledger, handle.id) == {"charge": 1}


async def test_early_return_of_an_order_below_the_threshold_says_it_needs_no_approval(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    order = changed(ORDER, approval_threshold_cents=NO_APPROVAL)
    async with order_worker(time_skipping_env, task_queue, services):
        paid = await place_early(time_skipping_env, placing(task_queue, order))
    assert not paid.awaits_approval


@pytest.mark.parametrize(
    ("order", "error_type", "message"),
    [
        (changed(ORDER, card_expiry="12/23"), OrderError.CARD_EXPIRED, "card expired 12/23"),
        (
            changed(ORDER, customer="blocked-customer"),
            OrderError.POLICY_DENIED,
            "Order denied: customer blocked-customer is blocked",
        ),
        (
            changed(ORDER, customer="flagged-customer"),
            OrderError.POLICY_DENIED,
            "Order denied: the charge of order {order_id} was flagged as fraud",
        ),
    ],
    ids=["expired card", "policy denial", "fraud re-check"],
)
async def test_early_return_of_an_order_that_cannot_be_charged_gives_the_reason(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    ledger: Ledger,
    order: Order,
    error_type: str,
    message: str,
) -> None:
    operation = placing(task_queue, order)
    async with order_worker(time_skipping_env, task_queue, services):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await place_early(time_skipping_env, operation)
        handle: OrderHandle = await operation.workflow_handle()
        ended = await failure_of(handle)

    message = message.format(order_id=handle.id)
    assert (refusal(refused).type, refusal(refused).message) == (error_type, message)
    # The order itself ends the same way, and nothing stays charged.
    assert (ended.type, ended.message) == (error_type, message)
    assert effects(ledger, handle.id)["charge"] == effects(ledger, handle.id)["refund"]


async def test_early_return_of_an_order_cancelled_while_charging_says_so(
    time_skipping_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = ChargeHeld(ledger)
    async with order_worker(time_skipping_env, task_queue, services):
        paying, handle = placed_with_charge_held(time_skipping_env, task_queue, services)
        await until_reached(services)
        await handle.execute_update(OrderWorkflow.cancel_order, CancelOrder(reason="too slow"))
        services.let_through.set()
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await paying
        await failure_of(handle)

    assert refusal(refused).type == OrderError.CANCELLED
    assert refusal(refused).message == "Order cancelled: too slow"


async def test_an_order_id_is_placed_once_only(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    order_id = f"order-{uuid.uuid4()}"
    async with order_worker(dev_server_env, task_queue, services):
        await place_early(dev_server_env, placing(task_queue, ORDER, order_id))
        with pytest.raises(WorkflowAlreadyStartedError):
            await place_early(dev_server_env, placing(task_queue, ORDER, order_id))


# --- Decisions: updates, first one wins, who and when ---------------------------------------------


async def test_first_decision_wins_and_a_second_is_refused_with_the_one_that_stands(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        taken = await handle.execute_update(
            OrderWorkflow.approve, ApproveOrder(by="alice", reason=" checked the address ")
        )
        with pytest.raises(WorkflowUpdateFailedError) as second:
            await handle.execute_update(
                OrderWorkflow.reject, RejectOrder(by="bob", reason="looks fake")
            )
        result = await result_of(handle)

    assert (taken.approval, taken.by, taken.reason) == (
        ApprovalState.APPROVED,
        "alice",
        "checked the address",
    )
    assert refusal(second).type == DecisionRefused.ALREADY_DECIDED
    assert refusal(second).message == (
        f'order {handle.id} was already approved by "alice" (name given, not verified) at'
        f" {taken.at:%H:%M:%S} UTC"
        " (checked the address)"
    )
    # Who decided, and when in workflow time, in the result the Web UI decodes too.
    assert result.decision == taken
    assert result.approval == ApprovalState.APPROVED


async def test_a_decision_that_names_nobody_records_not_given(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        taken = await handle.execute_update(OrderWorkflow.reject)
        await failure_of(handle)
    assert (taken.by, taken.reason) == (NOBODY, "no reason given")
    assert str(taken).startswith("rejected by (name not given) at ")


@pytest.mark.parametrize(
    "signalled",
    [ApproveOrder(by="carol", reason="known customer"), None],
    ids=["signal naming carol", "bare signal"],
)
async def test_a_decision_by_signal_records_who_and_when_too(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    signalled: ApproveOrder | None,
) -> None:
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        status = await reach(handle, OrderStep.AWAITING_APPROVAL)
        if signalled is None:
            await handle.signal(OrderWorkflow.approve_order)
        else:
            await handle.signal(OrderWorkflow.approve_order, signalled)
        result = await result_of(handle)

    assert result.decision is not None
    assert result.decision.by == (signalled.by if signalled else NOBODY)
    assert result.decision.reason == (signalled.reason if signalled else "")
    assert result.decision.at.tzinfo is not None
    assert status.decision is None


async def test_a_decision_before_the_order_awaits_approval_is_refused_and_leaves_no_trace(
    time_skipping_env: WorkflowEnvironment, task_queue: str, ledger: Ledger
) -> None:
    services = ChargeHeld(ledger)
    async with order_worker(time_skipping_env, task_queue, services):
        paying, handle = placed_with_charge_held(time_skipping_env, task_queue, services)
        await until_reached(services)
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await handle.execute_update(OrderWorkflow.approve, ApproveOrder(by="alice"))
        services.let_through.set()
        await paying
        status = await reach(handle, OrderStep.AWAITING_APPROVAL)

    assert refusal(early).type == DecisionRefused.NOT_AWAITING_APPROVAL
    assert refusal(early).message == (
        f"order {handle.id} is not awaiting approval: it is charging payment"
    )
    assert (status.approval, status.decision) == (ApprovalState.PENDING, None)


# --- Orders listed by their step ------------------------------------------------------------------


async def listed(env: WorkflowEnvironment, query: str) -> list[str]:
    return [execution.id async for execution in env.client.list_workflows(query)]


async def test_an_order_is_listed_by_its_step_and_total(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        waiting = (await handle.describe()).typed_search_attributes
        query = orders_awaiting_approval(task_queue)

        async def listed_ids() -> list[str] | None:
            return ids if (ids := await listed(dev_server_env, query)) else None

        assert await eventually(listed_ids, "the order in the list of waiting orders") == [
            handle.id
        ]
        await handle.execute_update(OrderWorkflow.approve, ApproveOrder(by="alice"))
        await result_of(handle)
        done = (await handle.describe()).typed_search_attributes
        history = await handle.fetch_history()

    assert waiting.get(ORDER_STEP) == OrderStep.AWAITING_APPROVAL
    assert waiting.get(ORDER_TOTAL_CENTS) == 3_500
    assert done.get(ORDER_STEP) == OrderStep.COMPLETED
    # Only where orders are listed: each upsert is an event and a write to the visibility store.
    assert upserted_steps(history) == [
        OrderStep.AWAITING_APPROVAL,
        OrderStep.RESERVING_INVENTORY,
        OrderStep.COMPLETED,
    ]


async def test_an_order_that_needs_no_approval_is_listed_once_it_ends(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(
            dev_server_env, task_queue, changed(ORDER, approval_threshold_cents=NO_APPROVAL)
        )
        await result_of(handle)
        history = await handle.fetch_history()

    assert upserted_steps(history) == [OrderStep.COMPLETED]


def upserted_steps(history: WorkflowHistory) -> list[str]:
    """The OrderStep of each upsert that sets one (the SDK upserts TemporalChangeVersion on its
    own, once per patch an order takes)."""
    upserts = (
        event.upsert_workflow_search_attributes_event_attributes.search_attributes
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    )
    return [
        step
        for upserted in upserts
        if (step := decode_typed_search_attributes(upserted).get(ORDER_STEP))
    ]


async def test_search_attributes_hold_no_customer_data(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    """They are stored and shown in clear, even with every payload encrypted."""
    orders = [ORDER, changed(ORDER, card_expiry="12/23")]
    async with order_worker(dev_server_env, task_queue, services):
        handles = [await place(dev_server_env, task_queue, order) for order in orders]
        await reach(handles[0], OrderStep.AWAITING_APPROVAL)
        await failure_of(handles[1])
        values = [
            str(pair.value)
            for handle in handles
            for pair in (await handle.describe()).typed_search_attributes
        ]

    assert values
    for secret in (ORDER.customer, ORDER.shipping_address, ORDER.card_expiry, "12/23"):
        assert not any(secret in value for value in values), (secret, values)


# --- Bulk decisions -------------------------------------------------------------------------------


async def test_bulk_approval_decides_only_orders_that_await_approval(
    dev_server_env: WorkflowEnvironment,
    task_queue: str,
    ledger: Ledger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = ChargeHeld(ledger)
    async with order_worker(dev_server_env, task_queue, services):
        waiting = await place(dev_server_env, task_queue, ORDER)
        await reach(waiting, OrderStep.AWAITING_APPROVAL)
        paying, charging = placed_with_charge_held(dev_server_env, task_queue, services)
        await until_reached(services)

        async def only_the_waiting_one_listed() -> bool | None:
            ids = await listed(dev_server_env, orders_awaiting_approval(task_queue))
            return True if ids == [waiting.id] else None

        await eventually(only_the_waiting_one_listed, "the waiting order, and it alone, listed")
        code = await decide_all_waiting(dev_server_env.client, task_queue, ApproveOrder(by="alice"))
        still_charging = await charging.query(OrderWorkflow.get_status)
        services.let_through.set()
        await paying
        await result_of(waiting)

    assert code == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f'Approved order {waiting.id} by "alice" {GIVEN} at ')
    assert lines[1:] == ["1 of 1 waiting orders approved."]
    assert still_charging.step == OrderStep.CHARGING_PAYMENT
    assert (still_charging.approval, still_charging.decision) == (ApprovalState.PENDING, None)


async def test_bulk_approval_reports_an_order_that_moved_on_and_still_succeeds(
    dev_server_env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with order_worker(dev_server_env, task_queue, services):
        handle = await place(dev_server_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)

        async def listed_ids() -> list[str] | None:
            return ids if (ids := await listed(dev_server_env, query)) else None

        query = orders_awaiting_approval(task_queue)
        await eventually(listed_ids, "the order in the list of waiting orders")
        config = dev_server_env.client.config()
        config["interceptors"] = [AnotherDecisionFirst(dev_server_env.client)]
        code = await decide_all_waiting(
            client.Client(**config), task_queue, ApproveOrder(by="alice")
        )
        error = await failure_of(handle)

    assert code == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        f'skipped: order {handle.id} was already rejected by "bob" {GIVEN} at '
    )
    assert lines[0].endswith("(looks fake); your decision did not take effect")
    assert lines[1] == "0 of 1 waiting orders approved; 1 had moved on since they were listed."
    assert error.type == OrderError.REJECTED


# --- Who decided: proven by the order key, or a name as given ------------------------------------


def sign(
    codec: EncryptionCodec, order_id: str, update: str, decision: ApproveOrder
) -> ApproveOrder:
    return decision.model_copy(update={"proof": proof(codec, order_id, update, decision)})


async def test_a_decision_signed_with_the_order_key_records_the_account_as_proven(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        said = await decide(handle, ApproveOrder(reason="checked"), ORDER_KEY)
        status = await handle.query(OrderWorkflow.get_status)
        result = await result_of(handle)

    assert status.decision is not None
    assert (status.decision.by, status.decision.proof) == (local_account(), Proof.ORDER_KEY)
    assert said.startswith(
        f"Approved order {handle.id} by {local_account()} (local account holding the order key) at"
    )
    assert result.decision == status.decision


@pytest.mark.parametrize(
    "forgery",
    [
        "a proof made up",
        "a proof signed for another order",
        "an approval's proof on a rejection",
        "a proof under another key",
        "another name under a proof",
    ],
)
async def test_a_decision_whose_proof_does_not_hold_is_refused_and_nothing_recorded(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services, forgery: str
) -> None:
    approval = ApproveOrder(by="root", reason="ok")
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        update, decision = {
            "a proof made up": ("approve", approval.model_copy(update={"proof": "0" * 16 + ":00"})),
            "a proof signed for another order": (
                "approve",
                sign(ORDER_KEY, "other", "approve", approval),
            ),
            "an approval's proof on a rejection": (
                "reject",
                RejectOrder(
                    by="root",
                    reason="ok",
                    proof=sign(ORDER_KEY, handle.id, "approve", approval).proof,
                ),
            ),
            "a proof under another key": (
                "approve",
                sign(EncryptionCodec([os.urandom(32)]), handle.id, "approve", approval),
            ),
            "another name under a proof": (
                "approve",
                sign(ORDER_KEY, handle.id, "approve", approval).model_copy(update={"by": "alice"}),
            ),
        }[forgery]
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(update, decision)
        status = await handle.query(OrderWorkflow.get_status)

    assert refusal(refused).type == PROOF_REFUSED
    assert refusal(refused).message == (
        f"the proof of this {update} does not hold: it was not signed for order {handle.id} with"
        " its key"
    )
    assert (status.step, status.approval, status.decision) == (
        OrderStep.AWAITING_APPROVAL,
        ApprovalState.PENDING,
        None,
    )


async def test_a_signal_is_recorded_as_a_name_given_even_with_a_proof(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    """A signal has no validator, so no proof of one can be checked: its name is as given."""
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        proven = sign(ORDER_KEY, handle.id, "approve", ApproveOrder(by="root"))
        await handle.signal(OrderWorkflow.approve_order, proven)
        result = await result_of(handle)

    assert result.decision is not None
    assert (result.decision.by, result.decision.proof) == ("root", Proof.NAME_GIVEN)
    assert result.decision.who == '"root" (name given, not verified)'


@pytest.mark.parametrize(
    "first",
    [ApproveOrder(by="alice"), RejectOrder(by="bob", reason="fake")],
    ids=["approved", "rejected"],
)
async def test_a_decision_on_an_ended_order_names_the_decision_that_stood(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    first: ApproveOrder | RejectOrder,
) -> None:
    async with order_worker(time_skipping_env, task_queue, services):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        if isinstance(first, RejectOrder):
            taken = await handle.execute_update(OrderWorkflow.reject, first)
        else:
            taken = await handle.execute_update(OrderWorkflow.approve, first)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    # No worker runs now: the decision is read from the order's result or failure.
    with pytest.raises(MovedOn) as late:
        await decide_order(time_skipping_env.client, handle.id, ApproveOrder())

    assert (
        str(late.value)
        == f"order {handle.id} was already {taken}; your decision did not take effect"
    )


async def test_a_signed_in_decision_replays_after_the_ticket_secret_and_the_token_are_gone(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    """The ticket is checked when the decision arrives, never on replay: a worker with another
    secret, and no issuer at all, replays the order, which still says its approver signed in."""
    tickets = Tickets(os.urandom(32))
    async with order_worker(time_skipping_env, task_queue, services, tickets=tickets):
        handle = await place(time_skipping_env, task_queue, ORDER)
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        ticket = tickets.issue(handle.id, "approve", "grace@example.com", "")
        approval = ApproveOrder(by="grace@example.com", proof=ticket)
        taken = await handle.execute_update(OrderWorkflow.approve, approval)
        await result_of(handle)
    history = await handle.fetch_history()

    other = DecisionProofs(None, Tickets(os.urandom(32)))
    await Replayer(
        workflows=[OrderWorkflow],
        interceptors=[OneArgumentPerMessage(), other],
        data_converter=time_skipping_env.client.data_converter,
    ).replay_workflow(history)
    assert taken.who == "grace@example.com (signed in)"


async def test_a_placing_proves_its_ticket_and_the_first_placer_stands(
    time_skipping_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    """Who placed the order is checked like a decision, and cannot be changed afterwards: a
    forged ticket is refused, and a later, valid one leaves the first placer in place, whom four
    eyes then keeps from approving."""
    tickets = Tickets(os.urandom(32))
    async with order_worker(time_skipping_env, task_queue, services, tickets=tickets):
        handle = await place(time_skipping_env, task_queue, ORDER)

        def placing(by: str) -> Placing:
            return Placing(by=by, proof=tickets.issue(handle.id, "place", by, ""))

        await handle.execute_update(OrderWorkflow.payment_settled, placing("grace@example.com"))
        with pytest.raises(WorkflowUpdateFailedError) as forged:
            await handle.execute_update(
                OrderWorkflow.payment_settled, Placing(by="heidi@example.com", proof="signed-in:00")
            )
        await handle.execute_update(OrderWorkflow.payment_settled, placing("heidi@example.com"))
        await reach(handle, OrderStep.AWAITING_APPROVAL)
        grace = ApproveOrder(
            by="grace@example.com",
            proof=tickets.issue(handle.id, "approve", "grace@example.com", ""),
        )
        with pytest.raises(WorkflowUpdateFailedError) as own:
            await handle.execute_update(OrderWorkflow.approve, grace)

    assert refusal(forged).type == PROOF_REFUSED
    assert refusal(own).type == DecisionRefused.FOUR_EYES
