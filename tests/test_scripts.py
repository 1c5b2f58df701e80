"""The scripts, run through their shebangs against a real dev server, as the README tells users."""

import json
import re
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from support.scripts import (
    BY_ME,
    FORGED_LINE,
    FORGED_LINE_SHOWN,
    VALID_CARD,
    assert_one_line_error,
    new_order_id,
)
from support.temporal_cli import VALID, as_input, start, temporal

from harness.processes import (
    SCRIPT_TIMEOUT,
    SCRIPTS,
    TEMPORAL_CLI,
    DevServer,
    Worker,
    eventually,
    free_port,
    run_script,
    running_worker,
    script_env,
    start_script,
    status_saying,
    wait_for_port,
)

pytestmark = pytest.mark.e2e


async def test_happy_path_place_approve_deliver(
    e2e_env: dict[str, str], e2e_worker: Worker, tmp_path: Path
) -> None:
    order_id = new_order_id()
    starter = start_script(
        "starter.py", "12/30", "--order-id", order_id, env=e2e_env, logs=tmp_path
    )
    placed = await starter.printed("Waiting for the result")
    # The early return: the payment's answer before anything else.
    assert placed.startswith(f"Charged $35.00 for order {order_id} (txn-"), placed
    assert f"; it waits 30 s for approval: ./approve.py {order_id}\n" in placed
    assert f"/namespaces/default/workflows/{order_id}" in placed

    approved = run_script("approve.py", order_id, "looks good", env=e2e_env)
    assert approved.returncode == 0, approved
    assert re.fullmatch(
        rf"Approved order {order_id} by {re.escape(BY_ME)} at \d\d:\d\d:\d\d UTC: looks good\n",
        approved.stdout,
    ), approved

    assert starter.finish() == 0, starter.errors()
    out = starter.output()
    assert f"Order {order_id} delivered." in out
    for field in ("payment:       txn-", "reservation:   rsv-", "tracking:      trk-"):
        assert field in out
    assert re.search(
        rf"approval:      approved by {re.escape(BY_ME)} at \S+ UTC \(looks good\)\n", out
    ), out


def test_api_downtime_is_ridden_out_and_logged_one_line_per_attempt(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    log_start = len(e2e_worker.output())
    result = run_script(
        "starter.py", VALID_CARD, "--inventory-down", "--approval-threshold", "1000",
        "--order-id", order_id, env=e2e_env,
    )  # fmt: skip

    assert result.returncode == 0, result
    assert f"Order {order_id} delivered." in result.stdout
    log = e2e_worker.output()[log_start:]
    for attempt in range(1, 5):
        assert (
            f"Order {order_id}: reserve_inventory failed (attempt {attempt}):"
            f" inventory service is down (attempt {attempt} of 4)"
        ) in log
    assert "Traceback" not in log


def test_expired_card_fails_at_once(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    result = run_script("starter.py", "12/23", env=e2e_env)
    assert result.returncode == 1, result
    assert "failed: card expired 12/23" in result.stdout
    # The order never waits for approval, so the starter does not say it does.
    assert "for approval" not in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("expiry", ["13/30", "00/30", "abc", "1230", "12/3", "12-30", ""])
def test_malformed_expiry_is_usage_error(e2e_env: dict[str, str], expiry: str) -> None:
    order_id = new_order_id()
    result = run_script("starter.py", expiry, "--order-id", order_id, env=e2e_env)
    assert result.returncode == 2
    assert "usage: starter.py" in result.stderr
    assert "card expiry" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was placed.
    assert run_script("status.py", order_id, env=e2e_env).returncode == 1


def test_missing_expiry_is_usage_error(e2e_env: dict[str, str]) -> None:
    result = run_script("starter.py", env=e2e_env)
    assert result.returncode == 2
    assert "the following arguments are required: MM/YY" in result.stderr


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("starter.py", [VALID_CARD, "--item", "MUG"], "item must be SKU:QTY[:PRICE]"),
        ("starter.py", [VALID_CARD, "--item", "BOOK:1"], "a price for SKUs outside the catalogue"),
        ("starter.py", [VALID_CARD, "--item", "MUG:0"], "QTY >= 1"),
        ("starter.py", [VALID_CARD, "--approval-threshold", "ten"], "amount must be dollars"),
        ("starter.py", [VALID_CARD, "--approval-timeout", "0"], "must be a number of seconds"),
        ("starter.py", [VALID_CARD, "--approval-timeout", "inf"], "approval_timeout_seconds"),
        (
            "starter.py",
            [VALID_CARD, "--item", "MUG:5000"],
            "items[0].quantity: Input should be less than or equal to 1000",
        ),
        (
            "schedule.py",
            ["create", VALID_CARD, "--approval-timeout", "1e9"],
            "less than or equal to 604800",
        ),
        ("starter.py", [VALID_CARD, "--small", "--large"], "not allowed with argument"),
        ("approve.py", ["some-order", "--reject", " "], "--reject needs a reason"),
        ("approve.py", ["some-order", "ok", "--reject", "no"], "not both"),
        ("schedule.py", ["create", VALID_CARD, "--every", "-1"], "must be a number of seconds"),
        ("schedule.py", ["pause"], "invalid choice"),
    ],
)
def test_bad_options_are_usage_errors(
    e2e_env: dict[str, str], script: str, args: list[str], message: str
) -> None:
    result = run_script(script, *args, env=e2e_env)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_order_the_workflow_would_refuse_is_never_placed(e2e_env: dict[str, str]) -> None:
    order_id = new_order_id()
    result = run_script(
        "starter.py", VALID_CARD, "--approval-timeout", "inf", "--order-id", order_id, env=e2e_env
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "starter.py: error: the order would be refused: approval_timeout_seconds:"
        " Input should be a finite number (got inf)"
    )
    assert_one_line_error(
        run_script("status.py", order_id, env=e2e_env), f"no order with ID {order_id}"
    )


@pytest.mark.parametrize("script", ["approve.py", "cancel.py", "status.py"])
def test_unknown_order_is_one_line_error(e2e_env: dict[str, str], script: str) -> None:
    result = run_script(script, "no-such-order", env=e2e_env)
    assert_one_line_error(result, "no order with ID no-such-order")


@pytest.mark.parametrize("script", ["approve.py", "cancel.py", "status.py"])
def test_an_order_id_that_writes_on_the_terminal_is_echoed_escaped(
    e2e_env: dict[str, str], script: str
) -> None:
    result = run_script(script, f"no-such-order{FORGED_LINE}", env=e2e_env)
    assert_one_line_error(result, f"no order with ID no-such-order{FORGED_LINE_SHOWN}")
    assert "\x1b" not in result.stderr


async def test_an_order_another_client_started_under_a_forged_id_is_printed_escaped(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    """Workflow IDs are anyone's to choose: an order started with the official CLI under an ID
    that would erase a line and write another shows that ID escaped in every script's output and
    in the worker's log."""
    env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"forged-{uuid.uuid4().hex[:6]}")
    plain_id = new_order_id("cli")
    order_id, shown = plain_id + FORGED_LINE, plain_id + FORGED_LINE_SHOWN
    with running_worker(env, tmp_path / "worker.log") as worker:
        start(e2e_server, env, None, order_id, "-i", as_input(VALID))
        await eventually(status_saying(env, order_id, "awaiting approval"), "awaiting approval")
        approved = run_script("approve.py", "--all-waiting", env=env)
        again = run_script("approve.py", order_id, env=env)
        delivered = await eventually(
            status_saying(env, order_id, " delivered."), "the order to be delivered"
        )
        ledger = run_script("ledger.py", order_id, env=env)
        # The worker logged the order's last step before the order could be seen delivered.
        log = worker.output()

    assert re.fullmatch(
        rf"Approved order {re.escape(shown)} by {re.escape(BY_ME)} at \d\d:\d\d:\d\d UTC\.\n"
        r"1 of 1 waiting orders approved\.\n",
        approved.stdout,
    ), approved
    assert_one_line_error(again, f"order {shown} ")
    assert delivered.startswith(f"Order {shown} delivered.\n"), delivered
    assert ledger.stdout.startswith(f"{shown}: 1 charge, 1 reservation, 1 shipment, 1 e-mail\n")
    assert f"Order {shown} completed\n" in log
    for printed in (approved.stdout, again.stderr, delivered, ledger.stdout, log):
        # The forged text shows only escaped, inside the line that names the order.
        assert printed.count("18:00:00 Order order-forged") == printed.count(FORGED_LINE_SHOWN)
        assert "\x1b[2K" not in printed


async def test_a_workflow_of_an_unknown_type_is_logged_once_in_one_escaped_line(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    """Anyone may start a workflow of any type on the orders' task queue: the worker says once
    that it does not run it, instead of a traceback at every retry of its workflow task."""
    env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"unknown-{uuid.uuid4().hex[:6]}")
    workflow_id = f"log-{uuid.uuid4().hex[:8]}\n18:00:00 Order order-forged completed\x1b[2K"

    def attempts() -> dict[str, Any] | None:
        """The run and its pending workflow task, once the worker has failed it twice."""
        described = temporal(
            e2e_server, None, "workflow", "describe", "-w", workflow_id, "-o", "json"
        )
        assert described.returncode == 0, described
        shown = json.loads(described.stdout)
        pending = shown.get("pendingWorkflowTask", {})
        return shown if pending.get("attempt", 0) >= 3 else None

    with running_worker(env, tmp_path / "worker.log") as worker:
        started = temporal(
            e2e_server, None, "workflow", "start", "--type", "Evil\x1b[2J\nType",
            "--task-queue", env["ORDER_TASK_QUEUE"], "--workflow-id", workflow_id,
        )  # fmt: skip
        assert started.returncode == 0, started
        described = await eventually(attempts, "the worker to fail its workflow task twice")
        log = worker.output()

    run_id = described["workflowExecutionInfo"]["execution"]["runId"]
    about_it = [line for line in log.splitlines() if "Evil" in line]
    assert len(about_it) == 1, log
    assert about_it[0].endswith(
        rf"Workflow run {run_id} is of type 'Evil\x1b[2J\nType', which this worker does not run:"
        " its workflow task fails at every retry until a worker that runs it polls, or it is"
        " terminated (logged once per run)"
    )
    assert "Traceback" not in log
    assert "\x1b[2J" not in log
    assert not any(line.startswith("Type") for line in log.splitlines()), log


def test_duplicate_order_id_is_refused(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    order_id = new_order_id()
    assert (
        run_script(
            "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=e2e_env
        ).returncode
        == 0
    )
    again = run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=e2e_env)
    assert_one_line_error(again, f"order {order_id} already exists")


def test_no_wait_answers_in_10_s_when_the_payment_never_settles(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    """A worker runs, but every service call outlasts its 5 s timeout, so the order retries its
    policy check for ever: the starter says what it says when no worker runs, and the order goes
    on."""
    env = script_env(
        e2e_server, tmp_path, ORDER_TASK_QUEUE=f"slow-{uuid.uuid4().hex[:6]}",
        ORDER_SERVICE_DELAY="6",
    )  # fmt: skip
    order_id = new_order_id()
    # Builds the script's environment on a first run, so that the run below is timed by its wait.
    assert run_script("starter.py", "--help", env=env).returncode == 0
    with running_worker(env, tmp_path / "worker.log"):
        # 10 s and the script's start-up, with room to spare; a starter that waits for the
        # payment never returns.
        placed = run_script(
            "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=env, timeout=60
        )
        status = run_script("status.py", order_id, env=env)
    assert placed.returncode == 0, placed
    assert placed.stdout.splitlines()[0] == (
        f"Placed order {order_id}; its payment has not settled within 10 s. If no worker runs,"
        f" start one (./worker.py); see where it is with ./status.py {order_id}"
    )
    assert placed.stderr == ""
    assert status.stdout.startswith(f"Order {order_id}: checking policy\n"), status


async def test_reject_with_reason_refunds(
    e2e_env: dict[str, str], e2e_worker: Worker, tmp_path: Path
) -> None:
    order_id = new_order_id()
    starter = start_script(
        "starter.py", VALID_CARD, "--order-id", order_id, env=e2e_env, logs=tmp_path
    )
    await starter.printed("Waiting for the result")
    rejected = run_script("approve.py", order_id, "--reject", "address looks fake", env=e2e_env)
    assert rejected.returncode == 0, rejected
    assert starter.finish() == 1
    out = starter.output()
    assert f"Order {order_id} failed: Order rejected: address looks fake" in out
    assert "undone: refund payment: refund-" in out

    status = run_script("status.py", order_id, env=e2e_env)
    assert status.returncode == 0
    assert "Order rejected: address looks fake" in status.stdout
    # An ended order names the decision that stood, as a running one does.
    again = run_script("approve.py", order_id, env=e2e_env)
    assert_one_line_error(
        again,
        f"order {order_id} was already rejected by {BY_ME} at ",
    )
    assert "UTC (address looks fake); your decision did not take effect" in again.stderr


def test_approval_expires_with_refund(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    result = run_script("starter.py", VALID_CARD, "--approval-timeout", "2", env=e2e_env)
    assert result.returncode == 1
    assert "failed: Order approval timed out" in result.stdout
    assert "undone: refund payment: refund-" in result.stdout


def test_cancel_while_waiting_then_refused_when_finished(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=e2e_env)
    cancelled = run_script("cancel.py", order_id, "changed my mind", env=e2e_env)
    assert cancelled.returncode == 0, cancelled
    assert "Order cancelled: changed my mind" in cancelled.stdout
    assert "refund payment: refund-" in cancelled.stdout
    again = run_script("cancel.py", order_id, env=e2e_env)
    assert_one_line_error(again, f"order {order_id} has already failed")


async def test_cancel_through_temporal_shows_what_was_undone(
    e2e_server: DevServer, e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=e2e_env)
    # As someone would from a terminal (or with the Web UI's Cancel button).
    subprocess.run(
        [str(TEMPORAL_CLI), "workflow", "cancel", "--address", e2e_server.address, "-w", order_id],
        check=True,
        capture_output=True,
    )
    await eventually(status_saying(e2e_env, order_id, "canceled"), "the order to be canceled")
    status = run_script("status.py", order_id, env=e2e_env)
    assert status.returncode == 0, status
    assert f"Order {order_id} canceled: cancelled through Temporal" in status.stdout
    assert "undone: refund payment: refund-" in status.stdout


async def test_bulk_approval_decides_only_the_waiting_orders(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"bulk-{uuid.uuid4().hex[:6]}")
    with running_worker(env, tmp_path / "worker.log"):
        finished = run_script("starter.py", VALID_CARD, "--approval-threshold", "100", env=env)
        assert finished.returncode == 0, finished
        # Running but needing no approval: below the threshold, riding out an inventory outage.
        busy = new_order_id()
        run_script(
            "starter.py", VALID_CARD, "--approval-threshold", "100", "--inventory-down",
            "--order-id", busy, "--no-wait", env=env,
        )  # fmt: skip
        waiting = [new_order_id() for _ in range(4)]
        for order_id in waiting:
            run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=env)
        # Visibility, which --all-waiting searches, may lag the starts by a moment: wait until the
        # four are listed as awaiting approval (the busy order never is).
        awaiting = f"TaskQueue = '{env['ORDER_TASK_QUEUE']}' AND OrderStep = 'awaiting approval'"
        listed = [
            str(TEMPORAL_CLI), "workflow", "count",
            "--address", e2e_server.address, "--query", awaiting,
        ]  # fmt: skip
        await eventually(
            lambda: (
                f"Total: {len(waiting)}"
                in subprocess.run(listed, capture_output=True, text=True).stdout
            ),
            "the waiting orders to be listed",
        )

        # Two of them decided one by one first: the bulk run leaves them as they are.
        approved_first, rejected_first = waiting[:2]
        assert run_script("approve.py", rejected_first, "--reject", "fake", env=env).returncode == 0
        assert run_script("approve.py", approved_first, env=env).returncode == 0
        rest = waiting[2:]
        rejected = run_script("approve.py", "--all-waiting", "--reject", "batch closed", env=env)
        assert rejected.returncode == 0, rejected
        lines = rejected.stdout.splitlines()
        decided = rf"Rejected order (\S+) by {re.escape(BY_ME)} at \d\d:\d\d:\d\d UTC: batch closed"
        assert sorted(re.fullmatch(decided, line)[1] for line in lines[:-1]) == sorted(rest)  # type: ignore[index]
        assert lines[-1] == "2 of 2 waiting orders rejected."

        again = run_script("approve.py", "--all-waiting", env=env)
        assert again.returncode == 0, again
        assert again.stdout == "No order is waiting for approval.\n"
        assert "approval:      not required" in run_script("status.py", busy, env=env).stdout
        assert "approval:      approved" in run_script("status.py", approved_first, env=env).stdout
        for order_id in [rejected_first, *rest]:
            assert "Order rejected" in run_script("status.py", order_id, env=env).stdout


def test_below_threshold_needs_no_approval(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    result = run_script("starter.py", VALID_CARD, "--approval-threshold", "100", env=e2e_env)
    assert result.returncode == 0, result
    assert "no approval needed" in result.stdout
    assert "approval:      not required" in result.stdout


def test_policy_denies_blocked_customer(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    result = run_script("starter.py", VALID_CARD, "--customer", "blocked-customer", env=e2e_env)
    assert result.returncode == 1
    assert "Order denied: customer blocked-customer is blocked" in result.stdout


def test_ledger_shows_one_of_each_effect(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    order_id = new_order_id()
    placed = run_script(
        "starter.py", VALID_CARD, "--order-id", order_id, "--approval-threshold", "100", env=e2e_env
    )
    assert placed.returncode == 0, placed
    ledger = run_script("ledger.py", order_id, env=e2e_env)
    assert ledger.returncode == 0
    assert f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail" in ledger.stdout
    unknown = run_script("ledger.py", "no-such-order", env=e2e_env)
    assert_one_line_error(unknown, "nothing for no-such-order")


async def test_a_schedule_places_orders_that_are_delivered(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    schedule_id = f"schedule-{uuid.uuid4().hex[:6]}"
    created = run_script(
        "schedule.py", "create", "12/30", "--every", "1", "--approval-threshold", "100",
        "--schedule-id", schedule_id, env=e2e_env,
    )  # fmt: skip
    assert created.returncode == 0, created
    assert f"Schedule {schedule_id} places an order every 1 s" in created.stdout

    def first_order() -> str | None:
        listed = run_script("schedule.py", "list", env=e2e_env).stdout
        found = re.search(rf"recent: ({re.escape(schedule_id)}-order-\S+)", listed)
        return found[1] if found else None

    try:
        order_id = await eventually(first_order, "the schedule to place an order")
        # "Order ID: step" while it runs; "Order ID delivered." or "Order ID failed: why" once over.
        status = await eventually(
            status_saying(e2e_env, order_id, f"Order {order_id} "), f"order {order_id} to end"
        )
    finally:
        deleted = run_script("schedule.py", "delete", schedule_id, env=e2e_env)
    assert status.startswith(f"Order {order_id} delivered.\n"), status
    ledger = run_script("ledger.py", order_id, env=e2e_env)
    assert ledger.returncode == 0, ledger
    assert ledger.stdout.splitlines()[0] == (
        f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"
    )
    assert deleted.returncode == 0, deleted
    assert f"Deleted schedule {schedule_id}" in deleted.stdout
    again = run_script("schedule.py", "delete", schedule_id, env=e2e_env)
    assert_one_line_error(again, f"no schedule with ID {schedule_id}")


async def test_ctrl_c_while_waiting_leaves_the_order_running(
    e2e_env: dict[str, str], e2e_worker: Worker, tmp_path: Path
) -> None:
    order_id = new_order_id()
    starter = start_script(
        "starter.py", VALID_CARD, "--order-id", order_id, env=e2e_env, logs=tmp_path
    )
    await starter.printed("Waiting for the result")
    starter.process.send_signal(signal.SIGINT)
    starter.finish()
    assert "Traceback" not in starter.errors()
    assert f"order {order_id} carries on" in starter.output()
    status = run_script("status.py", order_id, env=e2e_env)
    assert "awaiting approval" in status.stdout or "charging payment" in status.stdout
    assert run_script("approve.py", order_id, env=e2e_env).returncode == 0


def test_output_piped_to_head_ends_quietly(e2e_env: dict[str, str], e2e_worker: Worker) -> None:
    """`| head -1` closes the pipe while the starter still prints the summary."""
    command = "./starter.py 12/30 --approval-threshold 1000 | head -1; exit ${PIPESTATUS[0]}"
    piped = subprocess.run(
        ["bash", "-c", command],
        cwd=SCRIPTS, env=e2e_env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
    )  # fmt: skip
    assert piped.stdout.startswith("Charged $35.00 for order ")
    assert piped.stderr == ""
    assert piped.returncode == 141  # As for a process stopped by SIGPIPE.


def test_absent_server_is_one_line_error(tmp_path: Path) -> None:
    nobody = DevServer(port=free_port())  # Never started: nothing listens there.
    env = script_env(nobody, tmp_path)
    started = time.monotonic()
    scripts = (
        ("starter.py", [VALID_CARD]),
        ("approve.py", ["x"]),
        ("worker.py", ["--codec-port", "0"]),
    )
    for script, args in scripts:
        result = run_script(script, *args, env=env)
        assert_one_line_error(result, f"cannot reach Temporal at {nobody.address}")
    assert time.monotonic() - started < 120  # Each gives up within seconds, not minutes.


def test_worker_stops_cleanly_on_ctrl_c(e2e_env: dict[str, str], tmp_path: Path) -> None:
    with running_worker(e2e_env, tmp_path / "worker.log") as running:
        code = running.signal(signal.SIGINT)
    assert code == 0
    assert "Worker stopped." in running.output()
    assert "Traceback" not in running.output()


async def test_bug_in_workflow_then_fixed_deploy_continues(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"bug-{uuid.uuid4().hex[:6]}")
    order_id = new_order_id()
    with running_worker(env, tmp_path / "buggy.log", "--workflow-bug") as buggy:
        run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=env)
        assert run_script("approve.py", order_id, env=env).returncode == 0
        await eventually(
            lambda: "RuntimeError: workflow bug!" in buggy.output(), "the bug in the worker's log"
        )
        # The execution is still there, Running, but it cannot answer while its task fails.
        stuck = run_script("status.py", order_id, env=env)
        assert_one_line_error(stuck, f"order {order_id}")
    with running_worker(env, tmp_path / "fixed.log"):
        await eventually(
            status_saying(env, order_id, f"Order {order_id} delivered."),
            "the fixed deploy to deliver the order",
        )


def test_worker_starts_a_local_dev_server_when_none_is_configured(tmp_path: Path) -> None:
    """The quick start's path: no TEMPORAL_ADDRESS, nothing on localhost:7233 or 8081."""
    for port in (7233, 8081):
        if not _port_free(port):
            pytest.skip(f"something already listens on localhost:{port}")
    env = script_env(DevServer(), tmp_path)
    del env["TEMPORAL_ADDRESS"]
    try:
        with running_worker(env, tmp_path / "worker.log", "--codec-port", "8081") as running:
            output = running.output()
            assert "Codec server on http://localhost:8081 for anyone on this machine" in output
            assert "started a local dev server (pid " in output
            server_pid = int(output.split("(pid ")[1].split(")")[0])
            assert f"stop it with: kill {server_pid}" in output
            placed = run_script("starter.py", "12/30", "--approval-threshold", "100", env=env)
            assert placed.returncode == 0, placed
            assert "http://localhost:8233/namespaces/default/workflows/" in placed.stdout
            running.signal(signal.SIGKILL)
        # The server outlives the worker, and keeps its state in the data folder.
        wait_for_port(7233, timeout=5)
        # Its database and log hold the (encrypted) orders: this user's only, like the ledger.
        for name in ("temporal.db", "temporal.log", "ledger.sqlite3", "encryption.keys"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    finally:
        # The dev server the worker started outlives it by design: stop it, found by its database,
        # whether or not the test got as far as reading its PID.
        for process in psutil.process_iter(["cmdline"]):
            if str(tmp_path / "temporal.db") in (process.info["cmdline"] or []):
                process.terminate()
                process.wait(timeout=30)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_worker_names_the_command_for_missing_search_attributes(tmp_path: Path) -> None:
    """A server the worker did not start itself, without the order's search attributes: every
    order's first workflow task would fail, so the worker says what to run, and does not start."""
    bare = DevServer(search_attributes=False)
    bare.start()
    try:
        refused = run_script(
            "worker.py", "--codec-port", "0", env=script_env(bare, tmp_path), timeout=60
        )
    finally:
        bare.stop()
    assert_one_line_error(
        refused,
        "namespace default lacks the search attribute(s) OrderStep, OrderTotalCents; register"
        " them with: temporal operator search-attribute create --name OrderStep --type Keyword"
        " && temporal operator search-attribute create --name OrderTotalCents --type Int",
    )
