"""The official Temporal CLI as a person runs it against the end-to-end tests' worker: starting,
signalling and updating orders, and reading their histories."""

import json
import os
import shutil
import subprocess

import pytest

from harness.processes import (
    TEMPORAL_CLI,
    DevServer,
    eventually,
    run_script,
    status_saying,
)
from support.scripts import VALID_CARD, new_order_id

VALID = {
    "customer": "ada@example.com",
    "items": [{"sku": "MUG", "quantity": 2, "unit_price_cents": 1200}],
    "shipping_address": "1 Main Street, Springfield",
    "card_expiry": VALID_CARD,
    "approval_timeout_seconds": 600,
}
"""An order as JSON, as someone would type it; it waits for approval (threshold 0)."""


def temporal(
    server: DevServer, codec_port: int | None, *args: str, as_user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The official CLI, as a person who has read the README runs it: with the codec endpoint,
    or with none (`codec_port` None), when it sends plain JSON; run as another local account
    with `as_user` (see another_local_user)."""
    codec = ["--codec-endpoint", f"http://127.0.0.1:{codec_port}"] if codec_port else []
    user = ["runuser", "-u", as_user, "--"] if as_user else []
    return subprocess.run(
        [*user, str(TEMPORAL_CLI), *args, "--address", server.address, *codec],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def start(
    server: DevServer, env: dict[str, str], codec_port: int | None, order_id: str, *inputs: str
) -> None:
    started = temporal(
        server, codec_port, "workflow", "start", "--type", "OrderWorkflow",
        "--task-queue", env["ORDER_TASK_QUEUE"], "--workflow-id", order_id, *inputs,
    )  # fmt: skip
    assert started.returncode == 0, started


def ledger(env: dict[str, str], order_id: str) -> str:
    """The first line of ledger.py: what the services did for the order, or that it has nothing."""
    result = run_script("ledger.py", order_id, env=env)
    return (result.stdout or result.stderr).splitlines()[0]


def failed_workflow_tasks(server: DevServer, codec_port: int, order_id: str) -> int:
    shown = temporal(server, codec_port, "workflow", "show", "-w", order_id, "-o", "json")
    assert shown.returncode == 0, shown
    events = json.loads(shown.stdout)["events"]
    return sum(event["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED" for event in events)


def as_input(value: object) -> str:
    return json.dumps(value)


async def waiting_order(server: DevServer, env: dict[str, str], codec_port: int) -> str:
    order_id = new_order_id("cli")
    start(server, env, codec_port, order_id, "-i", as_input(VALID))
    await eventually(status_saying(env, order_id, "awaiting approval"), "awaiting approval")
    return order_id


def signal(
    server: DevServer, codec_port: int | None, order_id: str, name: str, *inputs: str
) -> None:
    sent = temporal(
        server, codec_port, "workflow", "signal", "-w", order_id, "--name", name, *inputs
    )
    assert sent.returncode == 0, sent


def cancel(
    server: DevServer, codec_port: int, order_id: str, *inputs: str
) -> subprocess.CompletedProcess[str]:
    return temporal(
        server, codec_port, "workflow", "update", "execute", "-w", order_id,
        "--name", "cancel_order", *inputs,
    )  # fmt: skip


def update(
    server: DevServer, codec_port: int, order_id: str, name: str, *inputs: str
) -> subprocess.CompletedProcess[str]:
    return temporal(
        server, codec_port, "workflow", "update", "execute", "-w", order_id, "--name", name,
        *inputs,
    )  # fmt: skip


def update_with_start(
    server: DevServer, env: dict[str, str], codec_port: int, order_id: str, order: object
) -> subprocess.CompletedProcess[str]:
    return temporal(
        server, codec_port, "workflow", "execute-update-with-start",
        "--update-name", "payment_settled", "--workflow-id", order_id,
        "--type", "OrderWorkflow", "--task-queue", env["ORDER_TASK_QUEUE"],
        "--id-conflict-policy", "Fail", "--id-reuse-policy", "RejectDuplicate",
        "-i", as_input(order),
    )  # fmt: skip


def another_local_user() -> str:
    """`nobody`, an account that cannot read this user's files: the attacker on the same machine.
    Skips, saying why, where the tests cannot act as another user (CI fails instead)."""
    if os.getuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("acting as another local user takes root and runuser")
    return "nobody"
