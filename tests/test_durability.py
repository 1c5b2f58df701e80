"""Durability: SIGKILLed workers and a restarted server lose no order and repeat no effect."""

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from support.durability import (
    describe_unfinished,
    kinds_per_order,
    read_ledger,
    repeated_requests,
    retried_activities,
    sigkill,
    workers,
)
from support.scripts import VALID_CARD, new_order_id
from temporalio.client import Client

from activities import PackingCheckpoint
from command_line.connection import data_converter
from harness.processes import DevServer, eventually, run_script, script_env
from shared import ApprovalState, LineItem, Order, OrderStep
from shop.rules import CATALOG
from workflow import OrderWorkflow

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PATIENCE = 120.0
"""Deadline for anything awaited: generous, because CI runs this on two shared cores."""

ONE_OF_EACH = Counter({"charge": 1, "reservation": 1, "shipment": 1, "e-mail": 1})
"""An unpacked order's effects in the ledger: no more, and no refund or release."""


@pytest.fixture
def fresh_server() -> Iterator[DevServer]:
    dev_server = DevServer()
    dev_server.start()
    try:
        yield dev_server
    finally:
        dev_server.stop()


# --- The activity worker dies mid-packing --------------------------------------------------------

PACK_UNITS = 8
PACK_SECONDS_PER_UNIT = 1.0
"""Eight seconds of packing: a checkpoint reaches the server after about four, units still to go."""


async def packing_checkpoint(client: Client, order_id: str) -> PackingCheckpoint | None:
    """The checkpoint the server holds for the order's packing activity, if it holds one."""
    description = await client.get_workflow_handle(order_id).describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == "pack_order_items" and pending.heartbeat_details.payloads:
            (checkpoint,) = await client.data_converter.decode(
                pending.heartbeat_details.payloads, [PackingCheckpoint]
            )
            assert isinstance(checkpoint, PackingCheckpoint)
            return checkpoint
    return None


async def test_activity_worker_killed_mid_packing_resumes_from_checkpoint(
    fresh_server: DevServer, tmp_path: Path, task_queue: str
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    env = script_env(
        fresh_server,
        tmp_path,
        ORDER_TASK_QUEUE=task_queue,
        ORDER_LEDGER=str(ledger),
        ORDER_PACK_DELAY=str(PACK_SECONDS_PER_UNIT),
    )
    client = await Client.connect(fresh_server.address, data_converter=data_converter(tmp_path))
    order_id = new_order_id("durable")

    def units_packed() -> int:
        return sum(e.kind == "packed" for e in read_ledger(ledger, order_id))

    with workers(env, tmp_path) as pool:
        # The workflow worker stays up throughout; only the activity worker dies.
        await pool.start("workflows", "--workflows-only")
        packer = await pool.start("activities", "--activities-only")
        placed_at = time.monotonic()
        placed = await asyncio.to_thread(
            run_script,
            "starter.py", VALID_CARD, "--item", f"MUG:{PACK_UNITS}", "--pack",
            "--approval-threshold", "100000", "--order-id", order_id, "--no-wait",
            env=env,
        )  # fmt: skip
        assert placed.returncode == 0, placed

        # Kill in the middle of packing, between two checkpoints. The SDK sends heartbeats at
        # most every 4 s (0.8 x the heartbeat timeout), so the ledger runs ahead of the checkpoint
        # the server holds, and the retry has to pack those units again.
        async def between_checkpoints() -> bool:
            checkpoint = await packing_checkpoint(client, order_id)
            packed = units_packed()
            return checkpoint is not None and 0 < checkpoint.units_packed < packed < PACK_UNITS

        await eventually(between_checkpoints, "packing past a checkpoint, units to go", PATIENCE)
        killed_at = await sigkill(packer)
        packed_at_kill = units_packed()
        checkpoint = await packing_checkpoint(client, order_id)
        assert checkpoint is not None
        assert 0 < checkpoint.units_packed <= packed_at_kill < PACK_UNITS
        assert f"packing {PACK_UNITS} units, slip {checkpoint.slip_id}" in packer.output()

        restarted = await pool.start("activities", "--activities-only")
        resume_line = re.compile(
            rf"Order {order_id}: resuming from checkpoint, slip (\S+),"
            rf" (\d+) of {PACK_UNITS} units packed \(attempt (\d+)\)"
        )

        async def resumed() -> re.Match[str] | None:
            return resume_line.search(restarted.output())

        resume = await eventually(resumed, "the restarted worker resumes packing", PATIENCE)
        recovered_after = time.monotonic() - killed_at
        result = await asyncio.wait_for(
            client.get_workflow_handle_for(OrderWorkflow.run, order_id).result(), PATIENCE
        )
        completed_after = time.monotonic() - placed_at

    # The second attempt took up the same slip where the server's checkpoint left it.
    assert resume.groups() == (checkpoint.slip_id, str(checkpoint.units_packed), "2")
    assert result.packing is not None
    assert (result.packing.slip_id, result.packing.units_packed) == (checkpoint.slip_id, PACK_UNITS)

    # One slip, and every unit packed once, on it. The units packed after the last checkpoint
    # were asked for twice; their idempotency keys kept each to one effect.
    effects = read_ledger(ledger, order_id)
    slips = [(e.detail, e.requests) for e in effects if e.kind == "packing slip"]
    assert slips == [(checkpoint.slip_id, 1)]
    packed_twice = range(checkpoint.units_packed, packed_at_kill)
    units = {e.key: (e.detail.split(" #")[0], e.requests) for e in effects if e.kind == "packed"}
    assert units == {
        f"{order_id}/pack/{i}": (checkpoint.slip_id, 2 if i in packed_twice else 1)
        for i in range(PACK_UNITS)
    }
    assert result.shipment.tracking_number
    print(
        f"\nactivity worker SIGKILLed mid-packing (1 kill): {packed_at_kill} of {PACK_UNITS} units"
        f" packed, {checkpoint.units_packed} in the server's last checkpoint."
        f"\n  restarted worker resumed slip {checkpoint.slip_id} on attempt 2,"
        f" {recovered_after:.1f} s after the kill; units asked for twice: {len(packed_twice)}"
        f" (ledger: {len(repeated_requests(effects))} repeated requests, 1 effect each)."
        f"\n  order completed {completed_after:.1f} s after it was placed."
    )


# --- The worker dies again and again under load --------------------------------------------------

ORDERS_IN_FLIGHT = 50
KILLS = 3
KILL_SEED = 20240607
SERVICE_SECONDS = 0.2
"""Each service call takes this long, so every kill finds calls under way."""
KILL_POLL_SECONDS = 0.005
"""Watch the ledger closely, so a kill lands amid a burst of service calls finishing."""


def kill_points(rng: random.Random, total_effects: int) -> list[int]:
    """Ledger sizes to kill the worker at: one at random in each of the first KILLS fifths.

    Kills are placed by progress, not by the clock: with 0.2 s calls the 50 orders finish within
    seconds of a restart, and a kill after the last of them would prove nothing.
    """
    fifth = total_effects // 5
    return [rng.randrange(k * fifth + 1, (k + 1) * fifth) for k in range(KILLS)]


async def test_worker_killed_repeatedly_under_load_every_order_completes_once(
    fresh_server: DevServer, tmp_path: Path, task_queue: str
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    env = script_env(
        fresh_server,
        tmp_path,
        ORDER_TASK_QUEUE=task_queue,
        ORDER_LEDGER=str(ledger),
        ORDER_SERVICE_DELAY=str(SERVICE_SECONDS),
    )
    client = await Client.connect(fresh_server.address, data_converter=data_converter(tmp_path))
    order = Order(
        customer="ada@example.com",
        items=[LineItem(sku="MUG", quantity=1, unit_price_cents=CATALOG["MUG"])],
        shipping_address="1 Main Street, Springfield",
        card_expiry=VALID_CARD,
        approval_threshold_cents=100_000_00,  # Above the total: no approval to wait for.
    )
    points = kill_points(random.Random(KILL_SEED), ORDERS_IN_FLIGHT * sum(ONE_OF_EACH.values()))

    def progress() -> tuple[int, int]:
        """Effects and requests so far: this changes whenever a service is called."""
        effects = read_ledger(ledger)
        return len(effects), sum(e.requests for e in effects)

    async def progressed(since: tuple[int, int], to_effects: int = 0) -> bool:
        now = progress()
        return now != since and now[0] >= to_effects

    with workers(env, tmp_path) as pool:
        worker = await pool.start("worker")
        started_at = time.monotonic()
        # Straight from the client: 50 starts of ./starter.py would take a minute.
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    OrderWorkflow.run, order, id=new_order_id("durable"), task_queue=task_queue
                )
                for _ in range(ORDERS_IN_FLIGHT)
            )
        )
        order_ids = [handle.id for handle in handles]
        at_kills: list[tuple[int, int]] = []
        recoveries: list[float] = []
        for point in points:
            await eventually(
                partial(progressed, progress(), point),
                f"{point} effects in the ledger",
                PATIENCE,
                KILL_POLL_SECONDS,
            )
            killed_at = await sigkill(worker)
            at_kill = progress()
            completed = sum(e.kind == "e-mail" for e in read_ledger(ledger))
            at_kills.append((at_kill[0], completed))
            worker = await pool.start("worker")
            await eventually(partial(progressed, at_kill), "progress after the restart", PATIENCE)
            recoveries.append(time.monotonic() - killed_at)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(handle.result() for handle in handles)), PATIENCE
            )
        except TimeoutError:
            unfinished = await describe_unfinished(client, order_ids)
            pytest.fail(f"orders unfinished:\n{unfinished}\nworker log:\n{worker.output()}")
        completed_after = time.monotonic() - started_at

    # Every kill caught orders in flight, and they were retried, not lost.
    assert all(completed < ORDERS_IN_FLIGHT for _, completed in at_kills), at_kills
    retried = await retried_activities(client, order_ids)
    assert retried.total() > 0
    assert [result.order_id for result in results] == order_ids
    effects = read_ledger(ledger)
    per_order = kinds_per_order(effects)
    assert {o: per_order.get(o) for o in order_ids} == {o: ONE_OF_EACH for o in order_ids}
    # A call that made its effect but died before the server heard of its result is asked again,
    # and shows as a repeated request. Whether a kill catches one in that moment is luck (some
    # runs see none), so it is reported, not asserted; the mid-packing test asserts the case.
    repeated = repeated_requests(effects)
    print(
        f"\n{ORDERS_IN_FLIGHT} orders, worker SIGKILLed {KILLS} times (seed {KILL_SEED}):"
        f" (ledger effects, orders completed) at each kill: {at_kills}."
        f"\n  work resumed {', '.join(f'{s:.1f} s' for s in recoveries)} after each kill."
        f"\n  retried activities: {retried.total()} {dict(retried)};"
        f" repeated requests in the ledger: {len(repeated)}"
        f" {dict(Counter(e.kind for e in repeated))}."
        f"\n  all {ORDERS_IN_FLIGHT} completed {completed_after:.1f} s after they were placed;"
        f" every one charged, reserved and shipped once, none refunded."
    )


# --- The server restarts while orders wait for approval ------------------------------------------

ORDERS_AWAITING_APPROVAL = 5
POLL_RETRIED = re.compile(r"gRPC call poll_\w+ retried")
"""The SDK's warning when a worker's poll cannot reach the server."""


async def test_server_restarted_while_orders_await_approval_loses_none(
    tmp_path: Path, task_queue: str
) -> None:
    database = tmp_path / "temporal.db"
    ledger = tmp_path / "ledger.sqlite3"
    server = DevServer(db_file=database)
    server.start()
    try:
        env = script_env(server, tmp_path, ORDER_TASK_QUEUE=task_queue, ORDER_LEDGER=str(ledger))
        order_ids = [new_order_id("durable") for _ in range(ORDERS_AWAITING_APPROVAL)]
        with workers(env, tmp_path) as pool:
            worker = await pool.start("worker")
            for order_id in order_ids:
                placed = await asyncio.to_thread(
                    run_script,
                    "starter.py", VALID_CARD, "--approval-timeout", "600", "--order-id", order_id,
                    "--no-wait",
                    env=env,
                )  # fmt: skip
                assert placed.returncode == 0, placed
            client = await Client.connect(server.address, data_converter=data_converter(tmp_path))

            async def all_awaiting_approval() -> bool:
                for order_id in order_ids:
                    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_id)
                    status = await handle.query(OrderWorkflow.get_status)
                    if status.step != OrderStep.AWAITING_APPROVAL:
                        return False
                return True

            await eventually(all_awaiting_approval, "every order awaits approval", PATIENCE)

            # Down until the worker notices: its polls fail, and it keeps retrying them.
            stopped_at = time.monotonic()
            await asyncio.to_thread(server.stop)

            async def worker_noticed() -> bool:
                return POLL_RETRIED.search(worker.output()) is not None

            await eventually(worker_noticed, "the worker notices the server is gone", PATIENCE)
            noticed_after = time.monotonic() - stopped_at
            server = DevServer(db_file=database, port=server.port)
            await asyncio.to_thread(server.start)
            back_at = time.monotonic()

            for order_id in order_ids:
                approved = await asyncio.to_thread(run_script, "approve.py", order_id, env=env)
                assert approved.returncode == 0, approved
                assert f"Approved order {order_id}" in approved.stdout
            client = await Client.connect(server.address, data_converter=data_converter(tmp_path))
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.get_workflow_handle_for(OrderWorkflow.run, o).result()
                        for o in order_ids
                    )
                ),
                PATIENCE,
            )
            completed_after = time.monotonic() - back_at
            # The one worker, which lived through the restart, did the work: it reconnected.
            assert worker.process is not None
            assert worker.process.poll() is None

        for order_id in order_ids:
            status = await asyncio.to_thread(run_script, "status.py", order_id, env=env)
            assert status.returncode == 0, status
            assert f"Order {order_id} delivered." in status.stdout
    finally:
        server.stop()

    assert [r.approval for r in results] == [ApprovalState.APPROVED] * ORDERS_AWAITING_APPROVAL
    per_order = kinds_per_order(read_ledger(ledger))
    assert {o: per_order.get(o) for o in order_ids} == {o: ONE_OF_EACH for o in order_ids}
    print(
        f"\ndev server restarted with {ORDERS_AWAITING_APPROVAL} orders awaiting approval:"
        f" down {back_at - stopped_at:.1f} s (the worker's polls failed after"
        f" {noticed_after:.1f} s); the same worker process reconnected by itself."
        f"\n  all approved with ./approve.py and completed {completed_after:.1f} s after the"
        f" server was back, each charged, reserved and shipped once."
    )
