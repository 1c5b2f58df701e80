"""Placing an order and asking where it is name OrderWorkflow, its update and its query instead of
importing workflow.py: the names reach the workflow the worker runs, and starter.py and status.py
load none of the worker's code."""

import uuid

import pytest
from support.orders import ORDER, order_worker
from support.scripts import VALID_CARD, new_order_id
from temporalio.testing import WorkflowEnvironment

from harness.processes import Worker, run_script
from orders.handle import order_handle
from orders.status_query import order_status
from orders.update_with_start import place_order
from shared import OrderStep
from shop.services import Services

# workflow.py and what only the worker runs: its activities, services, saga, metrics, deploys and
# the local dev server it starts.
WORKER_MODULES = (
    "workflow",
    "activities",
    "shop.services",
    "saga",
    "observability.metrics",
    "deploys",
    "command_line.dev_server",
)


async def test_placing_and_asking_reach_the_workflow_by_its_names(
    dev_server_env: WorkflowEnvironment, task_queue: str, services: Services
) -> None:
    order_id = f"order-{uuid.uuid4()}"
    async with order_worker(dev_server_env, task_queue, services):
        paid = await place_order(dev_server_env.client, task_queue, ORDER, order_id)
        status = await order_status(order_handle(dev_server_env.client, order_id))

    # A wrong workflow name leaves the order unstarted (None after 10 s), a wrong update name
    # refuses it (PaymentRefused), and a wrong query name fails the query.
    assert paid is not None
    assert (paid.amount_cents, paid.awaits_approval) == (3500, True)
    assert status is not None
    assert status.step == OrderStep.AWAITING_APPROVAL


def imported_modules(stderr: str) -> set[str]:
    """The modules a script imported, from Python's account of each (PYTHONPROFILEIMPORTTIME=1):
    an `import time: ... | <module>` line on stderr."""
    return {
        line.rpartition("|")[2].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }


def workers_code(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        for worker_module in WORKER_MODULES
        if name == worker_module or name.startswith(f"{worker_module}.")
    )


@pytest.mark.e2e
def test_the_starter_and_status_load_none_of_the_workers_code(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    env = {**e2e_env, "PYTHONPROFILEIMPORTTIME": "1"}
    placed = run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=env)
    asked = run_script("status.py", order_id, env=env)

    assert placed.returncode == 0, placed
    assert placed.stdout.startswith(f"Charged $35.00 for order {order_id} (txn-"), placed
    assert asked.returncode == 0, asked
    assert asked.stdout.startswith(f"Order {order_id}: awaiting approval\n"), asked
    for script in (placed, asked):
        modules = imported_modules(script.stderr)
        assert {"shared", "orders.handle", "payloads.codec"} <= modules
        assert workers_code(modules) == []
