"""Records the order histories that test_replay.py replays, into tests/histories/.

    uv run python tools/record_histories.py [SCENARIO ...]

With no scenario named, it records them all. Re-record only for a change to OrderWorkflow that no
running order has to survive, and commit the files with it. A change guarded by workflow.patched
must still replay the old files: keep them (under other names) beside the new ones.
"""

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The sample is a flat folder of scripts that import each other by bare name; the orders it
# records are the tests' own, placed with the tests' harness.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.orders import (
    NO_APPROVAL,
    ORDER,
    ORDER_KEY,
    changed,
    order_worker,
    register_search_attributes,
)

from deploys.releases import OrderWorkflowRelease1
from deploys.workflow_bug import BuggyOrderWorkflow
from observability.search_attributes import SEARCH_ATTRIBUTES
from orders.decision_update import decide
from payloads.converter import PLAIN
from shared import (
    ApproveOrder,
    CancelOrder,
    LineItem,
    Order,
    OrderResult,
    OrderStep,
    RejectOrder,
)
from shop.rules import CATALOG
from shop.services import Ledger, Services
from workflow import OrderWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "tests" / "histories"
BIN_DIR = Path(sys.executable).parent

OrderHandle = WorkflowHandle[Any, OrderResult]


class Recorder:
    """Places orders on one server, each on its own task queue, with a worker of OrderWorkflow."""

    def __init__(self, env: WorkflowEnvironment, services: Services) -> None:
        self.env = env
        self.services = services

    def worker(self, task_queue: str, workflow: type = OrderWorkflow) -> Worker:
        return order_worker(self.env, task_queue, self.services, workflow)

    async def place(self, name: str, order: Order, early_return: bool = False) -> OrderHandle:
        """Starts the order; with `early_return`, as starter.py does, with the payment_settled
        update, whose answer it awaits (a refusal included)."""
        if not early_return:
            return await self.env.client.start_workflow(
                OrderWorkflow.run, order, id=f"order-{name}", task_queue=name
            )
        placing = WithStartWorkflowOperation(
            OrderWorkflow.run,
            order,
            id=f"order-{name}",
            task_queue=name,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        with contextlib.suppress(WorkflowUpdateFailedError):
            await self.env.client.execute_update_with_start_workflow(
                OrderWorkflow.payment_settled, start_workflow_operation=placing
            )
        return await placing.workflow_handle()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Polls `check` until it holds: these states have no event to await."""
    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def awaiting_approval(handle: OrderHandle) -> None:
    async def check() -> bool:
        status = await handle.query(OrderWorkflow.get_status)
        return status.step == OrderStep.AWAITING_APPROVAL

    await until(check)


async def ended(handle: OrderHandle) -> None:
    # A failed order is a scenario like any other.
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


# --- Scenarios: each places one order and returns once it has ended ---------------------------

Scenario = Callable[[Recorder, str], Awaitable[OrderHandle]]

OUTAGE_ORDER = changed(ORDER, inventory_outage_attempts=100, approval_threshold_cents=NO_APPROVAL)
"""Far more failing inventory attempts than a recording lasts: the outage is on when it acts."""


async def reservation_retrying(handle: OrderHandle) -> None:
    async def check() -> bool:
        pending = (await handle.describe()).raw_description.pending_activities
        return any(a.attempt > 1 for a in pending)

    await until(check)


def placed(
    order: Order = ORDER,
    *,
    once: Callable[[OrderHandle], Awaitable[None]] | None = None,
    then: Callable[[OrderHandle], Awaitable[Any]] | None = None,
    release: type = OrderWorkflow,
    to_the_end: bool = True,
    early_return: bool = False,
) -> Scenario:
    """Places `order` on `release`; once `once` holds, does `then` to it; returns when the order
    has ended, or right away for an order recorded in flight (`to_the_end` false)."""

    async def scenario(recorder: Recorder, name: str) -> OrderHandle:
        async with recorder.worker(name, release):
            handle = await recorder.place(name, order, early_return)
            if once is not None:
                await once(handle)
            if then is not None:
                await then(handle)
            if to_the_end:
                await ended(handle)
        return handle

    return scenario


async def workflow_bug_fixed(recorder: Recorder, name: str) -> OrderHandle:
    async with recorder.worker(name, BuggyOrderWorkflow):
        handle = await recorder.place(name, ORDER)
        await awaiting_approval(handle)
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(reason="looks fine"))

        async def workflow_task_failed() -> bool:
            events = (await handle.fetch_history()).events
            return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in events)

        await until(workflow_task_failed)
    # The fix takes the same execution over when the server hands the failed task out again.
    async with recorder.worker(name):
        await ended(handle)
    return handle


async def malformed_messages(handle: OrderHandle) -> None:
    """What the Temporal CLI or another SDK could send: ignored or refused, then an approval."""
    await handle.signal("approve_order", {"reason": 5})
    await handle.signal("reject_order", "yes")
    await handle.signal("approve_order", args=[{}, {}])
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update("cancel_order", {"reason": 5})
    await handle.signal("approve_order")


async def invalid_order(recorder: Recorder, name: str) -> OrderHandle:
    async with recorder.worker(name):
        handle: OrderHandle = await recorder.env.client.start_workflow(
            "OrderWorkflow", {"customer": "x"}, id=f"order-{name}", task_queue=name
        )
        await ended(handle)
    return handle


async def decided_twice(handle: OrderHandle) -> None:
    """Two approvers, one after the other: the first decision stands, the second is refused."""
    await handle.execute_update(
        OrderWorkflow.approve, ApproveOrder(by="alice", reason="checked the address")
    )
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update(
            OrderWorkflow.reject, RejectOrder(by="bob", reason="looks fake")
        )


async def malformed_decisions(handle: OrderHandle) -> None:
    """Decision updates the Temporal CLI could send, each refused; then a rejection signal."""
    malformed: list[list[object]] = [[{"by": 5}], [{}, {}], ["yes"]]
    for args in malformed:
        with contextlib.suppress(WorkflowUpdateFailedError):
            await handle.execute_update("approve", args=args)
    await handle.signal(OrderWorkflow.reject_order, RejectOrder(by="carol"))


async def proven_decision(handle: OrderHandle) -> None:
    """approve.py's decision: its OS account, signed with the order key the worker checks."""
    await decide(handle, ApproveOrder(reason="checked the address"), ORDER_KEY)


def approved(handle: OrderHandle) -> Awaitable[None]:
    return handle.signal(OrderWorkflow.approve_order, ApproveOrder(reason="regular customer"))


# Each history's file name, and whether the scenario needs time skipped (a timer or backoffs).
SCENARIOS: dict[str, tuple[bool, Scenario]] = {
    "happy_path": (
        False,
        placed(once=awaiting_approval, then=approved),
    ),
    "approval_timed_out": (True, placed()),
    "card_expired": (False, placed(changed(ORDER, card_expiry="12/23"))),
    "inventory_outage": (
        True,
        placed(changed(ORDER, inventory_outage_attempts=4, approval_threshold_cents=NO_APPROVAL)),
    ),
    "rejected": (
        False,
        placed(
            once=awaiting_approval,
            then=lambda h: h.signal(OrderWorkflow.reject_order, RejectOrder(reason="over budget")),
        ),
    ),
    "cancelled": (
        False,
        placed(
            once=awaiting_approval,
            then=lambda h: h.execute_update(
                OrderWorkflow.cancel_order, CancelOrder(reason="changed my mind")
            ),
        ),
    ),
    "cancelled_during_outage": (
        False,
        placed(
            OUTAGE_ORDER,
            once=reservation_retrying,
            then=lambda h: h.execute_update(
                OrderWorkflow.cancel_order, CancelOrder(reason="took too long")
            ),
        ),
    ),
    # As the Web UI's Cancel or `temporal workflow cancel` would.
    "cancelled_through_temporal": (
        False,
        placed(OUTAGE_ORDER, once=reservation_retrying, then=lambda h: h.cancel()),
    ),
    "no_approval_needed": (False, placed(changed(ORDER, approval_threshold_cents=NO_APPROVAL))),
    "packed": (False, placed(changed(ORDER, pack=True, approval_threshold_cents=NO_APPROVAL))),
    "out_of_stock": (
        False,
        placed(
            changed(
                ORDER,
                items=[LineItem(sku="SOLD-OUT", quantity=1, unit_price_cents=CATALOG["SOLD-OUT"])],
                approval_threshold_cents=NO_APPROVAL,
            )
        ),
    ),
    "policy_denied": (False, placed(changed(ORDER, customer="blocked-customer"))),
    "workflow_bug_fixed": (False, workflow_bug_fixed),
    "malformed_messages": (False, placed(once=awaiting_approval, then=malformed_messages)),
    "invalid_order": (False, invalid_order),
    # Release 2 added the fraud re-check, behind workflow.patched: every history above takes it,
    # these two end in it, and two of release 1, before it, that release 2 must go on replaying.
    "fraud_recheck": (False, placed(once=awaiting_approval, then=approved)),
    "fraud_flagged": (False, placed(changed(ORDER, customer="flagged-customer"))),
    "release1_awaiting_approval": (
        False,
        placed(once=awaiting_approval, release=OrderWorkflowRelease1, to_the_end=False),
    ),
    "release1_delivered": (
        False,
        placed(once=awaiting_approval, then=approved, release=OrderWorkflowRelease1),
    ),
    # Placed as starter.py places orders, with the payment_settled update, and decided through
    # the approval updates.
    "early_return_decided": (
        False,
        placed(early_return=True, once=awaiting_approval, then=decided_twice),
    ),
    "early_return_card_expired": (
        False,
        placed(changed(ORDER, card_expiry="12/23"), early_return=True),
    ),
    "malformed_decisions": (
        False,
        placed(early_return=True, once=awaiting_approval, then=malformed_decisions),
    ),
    "proven_decision": (
        False,
        placed(early_return=True, once=awaiting_approval, then=proven_decision),
    ),
}


async def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        ledger = Ledger(Path(data) / "ledger.sqlite3")
        services = Services(ledger, delay=0, pack_delay=0)
        # Fresh in-memory servers on free ports, as in the tests (see conftest.py).
        async with (
            await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(BIN_DIR / "temporal"),
                dev_server_log_level="error",
                data_converter=PLAIN,
                search_attributes=SEARCH_ATTRIBUTES,
            ) as dev_server,
            await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
                data_converter=PLAIN,
            ) as test_server,
        ):
            await register_search_attributes(test_server)
            for name in names or list(SCENARIOS):
                time_skipping, scenario = SCENARIOS[name]
                handle = await scenario(
                    Recorder(test_server if time_skipping else dev_server, services), name
                )
                history = await handle.fetch_history()
                (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")
                print(f"{name}: {len(history.events)} events", flush=True)
        ledger.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
