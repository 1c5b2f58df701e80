"""Orders for tests: a sample order, a worker of the test's own, and ways to wait on an order."""

import asyncio
import os
import uuid
from collections import Counter
from datetime import date
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel
from temporalio import client
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import OrderActivities
from harness.processes import DEADLINE_SECONDS, eventually
from observability.search_attributes import SEARCH_ATTRIBUTES
from payloads.codec import EncryptionCodec
from payloads.decision_proof import Tickets
from payloads.interceptor import DecisionProofs, OneArgumentPerMessage
from shared import (
    LineItem,
    Order,
    OrderFailure,
    OrderResult,
    OrderStatus,
    OrderStep,
    RejectOrder,
)
from shop.rules import CATALOG
from shop.services import Ledger, Services
from workflow import OrderWorkflow

M = TypeVar("M", bound=BaseModel)

ORDER_KEY = EncryptionCodec([os.urandom(32)])
"""The order key of the tests' in-process workers, which check decisions signed with it; their
payloads stay plain JSON, so a test can read and tamper with them."""


def changed(model: M, **changes: Any) -> M:
    """A copy of `model` with `changes`, unchecked: what a careless client could send."""
    return model.model_copy(update=changes)


ORDER = Order(
    customer="ada@example.com",
    items=[
        LineItem(sku="T-SHIRT", quantity=1, unit_price_cents=CATALOG["T-SHIRT"]),
        LineItem(sku="STICKERS", quantity=2, unit_price_cents=CATALOG["STICKERS"]),
    ],
    shipping_address="1 Main Street, Springfield",
    card_expiry="12/99",
)
"""$35.00 that waits for approval (the default threshold is 0); tests change what they need."""

NO_APPROVAL = 100_000_000
"""An approval threshold ($1,000,000.00) above any order here, for scenarios past the approval."""

# Every order here takes well under a second (the workflow-bug test about ten): this deadline only
# turns a hang into a failure, and is generous because the machine may be busy.
RESULT_DEADLINE_SECONDS = 60

OrderHandle = WorkflowHandle[Any, OrderResult]
T = TypeVar("T")


# --- Helpers ---------------------------------------------------------------------------------


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    """The order's search attributes, on the time-skipping test server, which takes no option for
    them: registered as an operator would."""
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )


def order_worker(
    env: WorkflowEnvironment,
    task_queue: str,
    services: Services,
    workflow: type = OrderWorkflow,
    tickets: Tickets | None = None,
) -> Worker:
    """A worker of the test's own; with `tickets`, as worker.py --approvers oidc runs."""
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=[workflow],
        activities=OrderActivities(services).all(),
        interceptors=[OneArgumentPerMessage(), DecisionProofs(ORDER_KEY, tickets)],
    )


async def place(env: WorkflowEnvironment, task_queue: str, order: Order) -> OrderHandle:
    return await env.client.start_workflow(
        OrderWorkflow.run, order, id=f"order-{uuid.uuid4()}", task_queue=task_queue
    )


async def reach(handle: OrderHandle, step: OrderStep) -> OrderStatus:
    """Waits until the status query says the order is at `step`."""

    async def status_at_step() -> OrderStatus | None:
        status = await handle.query(OrderWorkflow.get_status)
        return status if status.step == step else None

    return await eventually(status_at_step, f"order {handle.id} to reach {step}")


async def first_event(handle: OrderHandle, event_type: EventType.ValueType) -> HistoryEvent:
    """Waits until the order's history holds an event of `event_type`; returns the first."""

    async def find() -> HistoryEvent | None:
        events = (await handle.fetch_history()).events
        return next((event for event in events if event.event_type == event_type), None)

    return await eventually(find, f"{EventType.Name(event_type)} in order {handle.id}")


async def retrying(handle: OrderHandle, activity_type: str) -> PendingActivityInfo:
    """Waits until `activity_type` has failed at least once and is to be retried."""

    async def find() -> PendingActivityInfo | None:
        pending = (await handle.describe()).raw_description.pending_activities
        return next(
            (a for a in pending if a.activity_type.name == activity_type and a.attempt > 1), None
        )

    return await eventually(find, f"a retry of {activity_type} in order {handle.id}")


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
    failure = OrderFailure.model_validate(error.details[0], strict=False)
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
    async def reserve(self, order_id: str, skus: list[str]) -> str:
        await self._hold()
        return await super().reserve(order_id, skus)


class RefundHeld(HeldServices):
    async def refund(self, order_id: str) -> str:
        await self._hold()
        return await super().refund(order_id)


class PackingHeld(HeldServices):
    async def pack_unit(self, order_id: str, slip_id: str, index: int, sku: str) -> None:
        await self._hold()
        await super().pack_unit(order_id, slip_id, index, sku)


async def until_reached(services: HeldServices) -> None:
    async with asyncio.timeout(DEADLINE_SECONDS):
        await services.reached.wait()


class ChargeHeld(HeldServices):
    """Holds the charge of one order (`held`), and of no other."""

    held = ""

    async def charge(self, order_id: str, amount_cents: int) -> str:
        if order_id == self.held:
            await self._hold()
        return await super().charge(order_id, amount_cents)


class AnotherDecisionFirst(client.Interceptor):
    """Rejects the order, as bob, just before the client's own decision reaches it: the race of
    two approvers, or an order that moved on since it was listed, made certain."""

    def __init__(self, other: client.Client) -> None:
        self._other = other

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        other = self._other

        class RejectFirst(client.OutboundInterceptor):
            async def start_workflow_update(
                self, input: client.StartWorkflowUpdateInput
            ) -> client.WorkflowUpdateHandle[Any]:
                await other.get_workflow_handle(input.id).execute_update(
                    OrderWorkflow.reject, RejectOrder(by="bob", reason="looks fake")
                )
                return await super().start_workflow_update(input)

        return RejectFirst(next)
