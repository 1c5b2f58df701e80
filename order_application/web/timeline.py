"""What an order's history tells: what it was placed with, and when each of its steps happened."""

# The history is the record Temporal keeps of the order: the times are the server's, and the
# payloads are read with the client's own converter (so decrypted with its keys). Search
# attributes are in clear: `OrderStep` says when the order began to await approval.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import decode_typed_search_attributes
from temporalio.service import RPCError, RPCStatusCode

from local.errors import UserError
from observability.search_attributes import ORDER_STEP
from shared import (
    ApproveOrder,
    CancelOrder,
    CompensationResult,
    Confirmation,
    Decision,
    Order,
    OrderStep,
    Packing,
    Payment,
    Proof,
    RejectOrder,
    Reservation,
    Shipment,
)
from shop.rules import format_cents
from workflow import OrderWorkflow


@dataclass(frozen=True)
class Moment:
    at: datetime
    what: str


@dataclass(frozen=True)
class OrderHistory:
    order: Order | None
    """None when its input cannot be read (an invalid order, or a key this inbox lacks)."""
    moments: list[Moment]
    """Oldest first."""
    waiting_since: datetime | None
    """When the order began to await approval, if it did."""
    decision: Decision | None
    """The decision an `approve` or `reject` update made, if one did."""


def _screened(passed: str, denied: str) -> Callable[[dict[str, Any]], str]:
    """What a policy check's or fraud re-check's answer tells: {"approved": ..., "reason": ...}."""
    return lambda answer: passed if answer.get("approved") else f"{denied}: {answer.get('reason')}"


def _undone(result: CompensationResult) -> str | None:
    """A compensation with nothing to undo (a refund of a charge never made) is no moment."""
    return f"undone: {result.action}: {result.detail}" if result.detail else None


# Per activity type, as the Web UI names them: the model of its result, and what its completion
# tells. A client reads the activities' results as any client would, without the worker's code:
# the policy checks' answers as plain JSON, the rest as the models the order's result holds too.
ACTIVITY_MOMENTS: dict[str, tuple[type[Any], Callable[[Any], str | None]]] = {
    "check_policy": (dict, _screened("policy checked", "policy denied")),
    "process_payment": (
        Payment,
        lambda p: f"charged {format_cents(p.amount_cents)} ({p.transaction_id})",
    ),
    "recheck_fraud": (dict, _screened("fraud re-checked", "fraud re-check")),
    "reserve_inventory": (
        Reservation,
        lambda r: f"inventory reserved ({r.reservation_id})",
    ),
    "pack_order_items": (
        Packing,
        lambda p: f"packed {p.units_packed} units ({p.slip_id})",
    ),
    "deliver_order": (
        Shipment,
        lambda s: f"shipped ({s.tracking_number}, arriving {s.estimated_delivery.isoformat()})",
    ),
    "send_confirmation": (
        Confirmation,
        lambda c: f"confirmation e-mail sent ({c.message_id})",
    ),
    "refund_payment": (CompensationResult, _undone),
    "release_inventory": (CompensationResult, _undone),
}

_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "delivered",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled through Temporal",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
}

# Updates are named after their methods; the SDK types them without a __name__ to read.
_DECISION_UPDATES = {"approve", "reject"}
_CANCEL_UPDATE = "cancel_order"
_DECISION_SIGNALS = {
    OrderWorkflow.approve_order.__name__: ApproveOrder,
    OrderWorkflow.reject_order.__name__: RejectOrder,
}


def _as_given(decision: ApproveOrder | RejectOrder | None) -> str:
    """Who a decision signal names: always as given, since no validator checks a signal."""
    if decision is None or not decision.by:
        return "(name not given)"
    return f'"{decision.by}" ({Proof.NAME_GIVEN})'


class NoSuchOrder(UserError):
    """No order has the ID asked for."""


async def read_history(client: Client, order_id: str) -> OrderHistory:
    """The order's input and its moments; NoSuchOrder when there is no such order."""
    try:
        events = (await client.get_workflow_handle(order_id).fetch_history()).events
    except RPCError as err:
        # INVALID_ARGUMENT: an ID that no workflow can have (empty, or longer than the server's
        # limit), which a URL may still hold.
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise NoSuchOrder(f"no order with ID {order_id}") from err
        raise
    reader = _Reader(client)
    moments = [moment for event in events if (moment := await reader.read(event))]
    return OrderHistory(reader.order, moments, reader.waiting_since, reader.decision)


class _Reader:
    """Reads events in order, remembering what later events refer back to."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.order: Order | None = None
        self.waiting_since: datetime | None = None
        self.decision: Decision | None = None
        self._activities: dict[int, str] = {}
        self._updates: dict[int, str] = {}

    async def read(self, event: HistoryEvent) -> Moment | None:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        what = await self._what(event, at)
        return Moment(at, what) if what else None

    async def _what(self, event: HistoryEvent, at: datetime) -> str | None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            self.order = await self._decode(payloads[0], Order) if payloads else None
            return f"placed: {format_cents(self.order.total_cents)}" if self.order else "placed"
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity = event.activity_task_scheduled_event_attributes.activity_type.name
            self._activities[event.event_id] = activity
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            known = ACTIVITY_MOMENTS.get(self._activities.get(completed.scheduled_event_id, ""))
            if known is None:  # An activity of some other release: no moment of this one's.
                return None
            model, describe = known
            result = await self._decode(completed.result.payloads[0], model)
            return describe(result) if result is not None else None
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upserted = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            step = decode_typed_search_attributes(upserted).get(ORDER_STEP)
            if step == OrderStep.AWAITING_APPROVAL:
                self.waiting_since = at
                return "awaiting approval"
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:  # The order's one timer: its approval wait.
            return "approval timed out"
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            self._updates[event.event_id] = request.input.name
            if request.input.name == _CANCEL_UPDATE:
                args = request.input.args.payloads
                cancel = await self._decode(args[0], CancelOrder) if args else None
                return "cancel requested" + (
                    f": {cancel.reason}" if cancel and cancel.reason else ""
                )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed_update = event.workflow_execution_update_completed_event_attributes
            update = self._updates.get(completed_update.accepted_event_id)
            if update in _DECISION_UPDATES and completed_update.outcome.HasField("success"):
                payload = completed_update.outcome.success.payloads[0]
                self.decision = await self._decode(payload, Decision)
                return str(self.decision) if self.decision else None
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = event.workflow_execution_signaled_event_attributes
            if signal_model := _DECISION_SIGNALS.get(signaled.signal_name):
                args = signaled.input.payloads
                decision = await self._decode(args[0], signal_model) if args else None
                return f"{signaled.signal_name} signal from {_as_given(decision)}"
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            return "cancellation requested through Temporal"
        return _CLOSED.get(kind)

    async def _decode(self, payload: Payload, model: type[Any]) -> Any:
        """The payload as `model`, or None when it is not one (the order ignored or refused
        such a message) or this inbox lacks its key."""
        try:
            return (await self._client.data_converter.decode([payload], [model]))[0]
        except Exception:  # The converter's refusal or the codec's: either way, unreadable.
            return None
