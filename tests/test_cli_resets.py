"""Resets from the official Temporal CLI: an order run again from an earlier point does no effect
twice, and one whose charge was refunded is refused rather than charged again."""

import json

import pytest
from support.scripts import new_order_id
from support.temporal_cli import (
    VALID,
    as_input,
    ledger,
    signal,
    start,
    temporal,
    waiting_order,
)

from harness.processes import (
    DevServer,
    Worker,
    eventually,
    status_saying,
)

pytestmark = pytest.mark.e2e


async def test_reset_of_a_delivered_order_runs_it_again_with_no_second_effect(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    """The Web UI's Reset, from the CLI: the new run repeats every step, and the services,
    keyed by the order ID, answer with what they did the first time."""
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    signal(e2e_server, codec_port, order_id, "approve_order")
    await eventually(status_saying(e2e_env, order_id, "delivered"), "delivered")
    reset = temporal(
        e2e_server, codec_port, "workflow", "reset", "-w", order_id,
        "--type", "FirstWorkflowTask", "--reason", "run it again", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset

    def completed_runs() -> int:
        listed = temporal(
            e2e_server, codec_port, "workflow", "list", "--query",
            f"WorkflowId = '{order_id}' AND ExecutionStatus = 'Completed'", "-o", "json",
        )  # fmt: skip
        return len(json.loads(listed.stdout or "[]"))

    # The approval came after the reset point: it is sent again, and the new run completes.
    await eventually(lambda: completed_runs() >= 2, "the reset run to complete")
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


async def test_reset_of_a_refunded_order_is_refused_and_ships_nothing(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    """Reset after the approval expired and the payment was refunded: the new run cannot take
    the refunded charge as its own, so it fails at the payment instead of shipping unpaid."""
    order_id = new_order_id("cli")
    start(
        e2e_server,
        e2e_env,
        codec_port,
        order_id,
        "-i",
        as_input(VALID | {"approval_timeout_seconds": 1}),
    )
    # The reason, not the step: status.py may catch the order at step `failed` just before it ends.
    await eventually(
        status_saying(e2e_env, order_id, "Order approval timed out"), "Order approval timed out"
    )
    reset = temporal(
        e2e_server, codec_port, "workflow", "reset", "-w", order_id,
        "--type", "FirstWorkflowTask", "--reason", "approve it this time", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset
    status = await eventually(
        status_saying(e2e_env, order_id, "refunded before"), "the expected status"
    )
    assert (
        f"Order {order_id} failed: the payment of order {order_id} was refunded before:" in status
    )
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 refund"
