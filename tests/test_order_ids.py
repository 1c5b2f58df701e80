"""The IDs the sample starts orders and schedules under are safe by construction: starter.py and
schedule.py refuse any other in one line, exit 2, and start nothing; the IDs the sample makes
keep to the same rule."""

import re
import subprocess
import uuid

import pytest
from support.scripts import VALID_CARD, new_order_id
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from command_line.order_options import ORDER_ID_LENGTH, order_id_argument
from harness.processes import Worker, eventually, run_script, status_saying
from orders import update_with_start

pytestmark = pytest.mark.e2e

RULE = "ASCII letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
"""The rule as the one-line refusal states it, after `1 to <bound>`."""

UNSAFE_IDS = [
    pytest.param("innocent-order/../../orders/victim", id="a path"),
    pytest.param("order-\x1b[2J", id="ESC, which clears a terminal"),
    pytest.param("order-\u202e1", id="a right-to-left override"),
    pytest.param("order 1", id="a space"),
    pytest.param("", id="empty"),
    pytest.param("ordér-1", id="a letter outside ASCII"),
    pytest.param("..", id="a step up a path"),
    pytest.param("-rf", id="an option"),
]
SCHEDULE_ID_LENGTH = 73
"""100, less what the orders' IDs add: `-order` and the scheduled time, `-2009-11-10T23:00:00Z`."""


def test_the_ids_the_sample_makes_keep_to_the_rule() -> None:
    for _ in range(100):
        order_id = update_with_start.new_order_id()
        assert order_id_argument(order_id) == order_id


def assert_refused(result: subprocess.CompletedProcess[str], error: str) -> None:
    """Exit 2, and nothing printed but the usage and the one line `error`."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "usage: " in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [error]


@pytest.mark.parametrize(
    "order_id", [*UNSAFE_IDS, pytest.param("order-" + "0" * 95, id="101 characters")]
)
async def test_starter_refuses_an_unsafe_order_id_and_places_nothing(
    e2e_env: dict[str, str], order_id: str
) -> None:
    # A task queue of the test's own, so that any order placed on it is this test's.
    task_queue = f"ids-{uuid.uuid4().hex[:6]}"
    env = e2e_env | {"ORDER_TASK_QUEUE": task_queue}
    # --no-wait: were the ID taken, no worker would run the order to wait for.
    result = run_script("starter.py", VALID_CARD, f"--order-id={order_id}", "--no-wait", env=env)
    assert_refused(
        result,
        f"starter.py: error: argument --order-id: an order ID must be 1 to {ORDER_ID_LENGTH}"
        f" {RULE} (got {order_id!r})",
    )
    client = await Client.connect(e2e_env["TEMPORAL_ADDRESS"])
    placed = [o.id async for o in client.list_workflows(f"TaskQueue = '{task_queue}'")]
    assert placed == []


@pytest.mark.parametrize(
    "schedule_id",
    [*UNSAFE_IDS, pytest.param("s" * (SCHEDULE_ID_LENGTH + 1), id="74 characters")],
)
async def test_schedule_refuses_an_unsafe_schedule_id_and_creates_nothing(
    e2e_env: dict[str, str], schedule_id: str
) -> None:
    result = run_script(
        "schedule.py", "create", VALID_CARD, f"--schedule-id={schedule_id}", env=e2e_env
    )
    assert_refused(
        result,
        f"schedule.py create: error: argument --schedule-id: a schedule ID must be 1 to"
        f" {SCHEDULE_ID_LENGTH} {RULE} (got {schedule_id!r})",
    )
    client = await Client.connect(e2e_env["TEMPORAL_ADDRESS"])
    with pytest.raises(RPCError) as described:
        await client.get_schedule_handle(schedule_id).describe()
    # Not found, or an ID the server cannot hold at all (the empty one).
    assert described.value.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT)


def test_an_order_id_with_every_allowed_character_at_the_bound_is_delivered(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = f"{new_order_id()}_Z.9:-".ljust(ORDER_ID_LENGTH, "x")
    placed = run_script(
        "starter.py", VALID_CARD, "--approval-threshold", "100", "--order-id", order_id,
        env=e2e_env,
    )  # fmt: skip
    assert placed.returncode == 0, placed
    assert f"Order {order_id} delivered." in placed.stdout
    status = run_script("status.py", order_id, env=e2e_env)
    assert status.stdout.startswith(f"Order {order_id} delivered.\n"), status


async def test_a_schedule_id_at_its_bound_places_orders_whose_ids_keep_to_the_rule(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    schedule_id = f"s_{uuid.uuid4().hex[:6]}.Z:9-".ljust(SCHEDULE_ID_LENGTH, "x")
    created = run_script(
        "schedule.py", "create", VALID_CARD, "--every", "1", "--approval-threshold", "100",
        "--schedule-id", schedule_id, env=e2e_env,
    )  # fmt: skip
    assert created.returncode == 0, created

    def first_order() -> str | None:
        listed = run_script("schedule.py", "list", env=e2e_env).stdout
        found = re.search(rf"recent: ({re.escape(schedule_id)}-order-\S+)", listed)
        return found[1] if found else None

    try:
        order_id = await eventually(first_order, "the schedule to place an order")
        status = await eventually(
            status_saying(e2e_env, order_id, f"Order {order_id} "), f"order {order_id} to end"
        )
    finally:
        run_script("schedule.py", "delete", schedule_id, env=e2e_env)
    assert len(order_id) == ORDER_ID_LENGTH
    assert order_id_argument(order_id) == order_id
    assert status.startswith(f"Order {order_id} delivered.\n"), status
