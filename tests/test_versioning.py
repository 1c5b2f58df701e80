"""Changing OrderWorkflow while orders are in flight: a patched release, and deployment versions."""

import json
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.scripts import BY_ME, VALID_CARD

from command_line.dev_server import DEV_SERVER_DYNAMIC_CONFIG
from harness.processes import (
    TEMPORAL_CLI,
    DevServer,
    eventually,
    run_script,
    running_worker,
    script_env,
    status_saying,
)

pytestmark = pytest.mark.e2e

NO_CODEC = ("--codec-port", "0")


@pytest.fixture(scope="module")
def versioning_server() -> Iterator[DevServer]:
    """A dev server set up as the worker sets up its own: drains checked every few seconds."""
    dev_server = DevServer(
        options=tuple(f"--dynamic-config-value={value}" for value in DEV_SERVER_DYNAMIC_CONFIG)
    )
    dev_server.start()
    yield dev_server
    dev_server.stop()


def temporal(server: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TEMPORAL_CLI), *args, "--address", server.address],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def events(server: DevServer, order_id: str) -> list[dict[str, object]]:
    shown = temporal(server, "workflow", "show", "-w", order_id, "-o", "json")
    assert shown.returncode == 0, shown
    found: list[dict[str, object]] = json.loads(shown.stdout)["events"]
    return found


def described(server: DevServer, order_id: str) -> dict[str, Any]:
    """`temporal workflow describe`'s execution info: status, versioning, and so on."""
    shown = temporal(server, "workflow", "describe", "-w", order_id, "-o", "json")
    assert shown.returncode == 0, shown
    info: dict[str, Any] = json.loads(shown.stdout)["workflowExecutionInfo"]
    return info


def steps(server: DevServer, order_id: str) -> list[str]:
    """The activities the order scheduled, in order: the steps it took."""
    return [
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]  # type: ignore[index]
        for event in events(server, order_id)
        if event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]


RELEASE_1_STEPS = [
    "check_policy", "process_payment", "reserve_inventory", "deliver_order", "send_confirmation",
]  # fmt: skip
RELEASE_2_STEPS = [
    "check_policy", "process_payment", "recheck_fraud", "reserve_inventory", "deliver_order",
    "send_confirmation",
]  # fmt: skip


def place(env: dict[str, str], *options: str) -> str:
    order_id = f"v-{uuid.uuid4().hex[:8]}"
    placed = run_script(
        "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", *options, env=env
    )
    assert placed.returncode == 0, placed
    return order_id


async def order_waiting_on_release_1(env: dict[str, str], tmp_path: Path) -> str:
    """An order placed on release 1 that awaits approval, its worker stopped since."""
    with running_worker(env, tmp_path / "release-1.log", "--release", "1", *NO_CODEC) as release_1:
        waiting = place(env, "--approval-timeout", "600")
        await eventually(
            status_saying(env, waiting, "awaiting approval"), "the order to await approval"
        )
        assert release_1.signal(signal.SIGINT) == 0
    return waiting


async def test_an_order_waiting_on_release_1_is_approved_on_release_2_without_the_new_step(
    versioning_server: DevServer, tmp_path: Path
) -> None:
    """The patching scenario as the README runs it: restart on release 2, then approve."""
    env = script_env(versioning_server, tmp_path, ORDER_TASK_QUEUE=f"patch-{uuid.uuid4().hex[:6]}")
    waiting = await order_waiting_on_release_1(env, tmp_path)

    with running_worker(env, tmp_path / "release-2.log", *NO_CODEC) as release_2:
        approved = run_script("approve.py", waiting, env=env)
        assert re.fullmatch(
            rf"Approved order {waiting} by {re.escape(BY_ME)} at \S+ UTC\.\n", approved.stdout
        )
        await eventually(
            status_saying(env, waiting, "delivered"), "the waiting order to be delivered"
        )
        placed_after = place(env, "--approval-threshold", "1000")
        await eventually(
            status_saying(env, placed_after, "delivered"), "the new order to be delivered"
        )
        log = release_2.output()
    assert f"Order {placed_after}: fraud re-check clear" in log
    assert f"Order {waiting}: fraud re-check" not in log
    assert steps(versioning_server, waiting) == RELEASE_1_STEPS
    assert steps(versioning_server, placed_after) == RELEASE_2_STEPS


async def test_release_2_takes_over_release_1_orders_through_its_patch(
    versioning_server: DevServer, tmp_path: Path
) -> None:
    env = script_env(versioning_server, tmp_path, ORDER_TASK_QUEUE=f"patch-{uuid.uuid4().hex[:6]}")
    waiting = await order_waiting_on_release_1(env, tmp_path)

    # The same change without the patch: the order's history no longer replays.
    log = tmp_path / "release-2-unpatched.log"
    with running_worker(env, log, "--release", "2-unpatched", *NO_CODEC) as unpatched:
        approved = run_script("approve.py", waiting, env=env)
        assert approved.returncode == 0, approved
        # The unpatched release cannot run the order, so no worker takes the update: the
        # approval goes as a signal, kept in the history until a release that can run it.
        assert approved.stdout.startswith(
            f"No worker took the approval of order {waiting} within 10 s, so it was sent as a"
            " signal"
        ), approved

        def failed_as_nondeterministic() -> bool:
            return any(
                event["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED"
                and "NON_DETERMINISTIC" in json.dumps(event)
                for event in events(versioning_server, waiting)
            )

        await eventually(
            failed_as_nondeterministic, "the workflow task to fail as nondeterministic"
        )
        assert "[TMPRL1100] Nondeterminism error" in unpatched.output()
        assert (
            described(versioning_server, waiting)["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
        )
        assert unpatched.signal(signal.SIGINT) == 0

    # The patched release: the order carries on where it was, on release 1's steps.
    with running_worker(env, tmp_path / "release-2.log", *NO_CODEC) as release_2:
        await eventually(
            status_saying(env, waiting, "delivered"), "the waiting order to be delivered"
        )
        placed_after = place(env, "--approval-threshold", "1000")
        await eventually(
            status_saying(env, placed_after, "delivered"), "the new order to be delivered"
        )
        assert f"Order {placed_after}: fraud re-check clear" in release_2.output()
    assert steps(versioning_server, waiting) == RELEASE_1_STEPS
    assert steps(versioning_server, placed_after) == RELEASE_2_STEPS
    ledger = run_script("ledger.py", waiting, env=env).stdout.splitlines()[0]
    assert ledger == f"{waiting}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


async def test_an_order_pinned_to_v1_finishes_on_v1_while_v2_is_current(
    versioning_server: DevServer, tmp_path: Path
) -> None:
    deployment = f"orders-{uuid.uuid4().hex[:6]}"
    env = script_env(versioning_server, tmp_path, ORDER_TASK_QUEUE=deployment)

    async def make_current(build_id: str) -> None:
        # The version exists once its worker has polled: the first tries may come too early.
        def made() -> bool:
            return temporal(
                versioning_server, "worker", "deployment", "set-current-version",
                "--deployment-name", deployment, "--build-id", build_id, "--yes",
            ).returncode == 0  # fmt: skip

        await eventually(made, f"{build_id} to become current")

    def drainage() -> dict[str, str]:
        described = temporal(versioning_server, "worker", "deployment", "describe",
                             "--name", deployment, "-o", "json")  # fmt: skip
        assert described.returncode == 0, described
        summaries = json.loads(described.stdout)["versionSummaries"]
        return {summary["BuildID"]: summary["drainageStatus"] for summary in summaries}

    v1_options = ("--release", "1", "--deployment", deployment, "--build-id", "v1", *NO_CODEC)
    v2_options = ("--deployment", deployment, "--build-id", "v2", *NO_CODEC)
    with running_worker(env, tmp_path / "v1.log", *v1_options) as v1:
        assert f"DEPLOYMENT {deployment} BUILD v1" in v1.output()
        await make_current("v1")
        pinned = place(env, "--approval-timeout", "600")
        await eventually(
            status_saying(env, pinned, "awaiting approval"), "the v1 order to await approval"
        )

        with running_worker(env, tmp_path / "v2.log", *v2_options) as v2:
            await make_current("v2")
            await eventually(lambda: drainage().get("v1") == "draining", "v1 to be draining")
            placed_after = place(env, "--approval-threshold", "1000")
            await eventually(
                status_saying(env, placed_after, "delivered"), "the v2 order to be delivered"
            )
            assert run_script("approve.py", pinned, env=env).returncode == 0
            await eventually(
                status_saying(env, pinned, "delivered"), "the v1 order to be delivered"
            )
            await eventually(lambda: drainage().get("v1") == "drained", "v1 to be drained")
            assert f"Order {placed_after}: fraud re-check clear" in v2.output()
            assert pinned not in v2.output()
    assert steps(versioning_server, pinned) == RELEASE_1_STEPS
    assert steps(versioning_server, placed_after) == RELEASE_2_STEPS
    for order_id, build_id in ((pinned, "v1"), (placed_after, "v2")):
        versioning = described(versioning_server, order_id)["versioningInfo"]
        assert versioning["behavior"] == "VERSIONING_BEHAVIOR_PINNED"
        assert versioning["version"] == f"{deployment}.{build_id}"
