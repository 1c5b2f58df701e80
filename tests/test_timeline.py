"""The inbox's timeline: each activity's result read by the type name the worker registers, and
who a decision signal names, always as given."""

import uuid
from pathlib import Path

from support.orders import ORDER
from temporalio.testing import WorkflowEnvironment

from activities import OrderActivities
from shared import ApproveOrder, RejectOrder
from shop.services import Ledger, Services
from web.timeline import ACTIVITY_MOMENTS, read_history
from workflow import OrderWorkflow


def test_the_timeline_knows_every_activity_by_its_registered_name(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    registered = {activity.__name__ for activity in OrderActivities(Services(ledger)).all()}
    ledger.close()
    assert set(ACTIVITY_MOMENTS) == registered


async def test_a_decision_signal_shows_its_name_as_given_never_as_the_approver(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    # No worker: the history keeps the signals as any client sent them, which is what is read.
    order_id = f"timeline-{uuid.uuid4().hex[:8]}"
    handle = await dev_server_env.client.start_workflow(
        OrderWorkflow.run, ORDER, id=order_id, task_queue=task_queue
    )
    try:
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder(by="bob"))
        await handle.signal(OrderWorkflow.reject_order, RejectOrder(reason="no name"))
        moments = [
            moment.what for moment in (await read_history(dev_server_env.client, order_id)).moments
        ]
    finally:
        await handle.terminate()
    assert moments == [
        "placed: $35.00",
        'approve_order signal from "bob" (name given, not verified)',
        "reject_order signal from (name not given)",
    ]
