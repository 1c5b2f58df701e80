"""The scripts, run through their shebangs against a real dev server, as the README tells users."""

import os
import re
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from support.scripts import assert_one_line_error, new_order_id

from harness.processes import (
    SCRIPT_TIMEOUT,
    SCRIPTS,
    TEMPORAL_CLI,
    DevServer,
    Worker,
    free_port,
    run_script,
    running_worker,
    script_env,
    wait_for_port,
)

pytestmark = pytest.mark.e2e


def wait_for_output(process: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
    """Reads a running script's output line by line until `text` appears."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        assert time.monotonic() < deadline, seen
    assert text in seen, seen
    return seen


def start_starter(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["./starter.py", *args],
        cwd=SCRIPTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_happy_path_place_approve_deliver(env: dict[str, str], worker: Worker) -> None:
    order_id = new_order_id()
    starter = start_starter(env, "12/30", "--order-id", order_id)
    placed = wait_for_output(starter, "Waiting for the result")
    # The early return: the payment's answer before anything else.
    assert placed.startswith(f"Charged $35.00 for order {order_id} (txn-"), placed
    assert f"; it waits 30 s for approval: ./approve.py {order_id}\n" in placed
    assert f"/namespaces/default/workflows/{order_id}" in placed

    approved = run_script("approve.py", order_id, "looks good", "--by", "ann", env=env)
    assert approved.returncode == 0, approved
    assert re.fullmatch(
        rf"Approved order {order_id} by ann at \d\d:\d\d:\d\d UTC: looks good\n", approved.stdout
    ), approved

    out, err = starter.communicate(timeout=120)
    assert starter.returncode == 0, err
    assert f"Order {order_id} delivered." in out
    for field in ("payment:       txn-", "reservation:   rsv-", "tracking:      trk-"):
        assert field in out
    assert re.search(r"approval:      approved by ann at \S+ UTC \(looks good\)\n", out), out


def test_api_downtime_is_ridden_out_and_logged_one_line_per_attempt(
    env: dict[str, str], worker: Worker
) -> None:
    order_id = new_order_id()
    log_start = len(worker.output())
    result = run_script(
        "starter.py", "12/30", "--inventory-down", "--approval-threshold", "1000",
        "--order-id", order_id, env=env,
    )  # fmt: skip

    assert result.returncode == 0, result
    assert f"Order {order_id} delivered." in result.stdout
    log = worker.output()[log_start:]
    for attempt in range(1, 5):
        assert (
            f"Order {order_id}: reserve_inventory failed (attempt {attempt}):"
            f" inventory service is down (attempt {attempt} of 4)"
        ) in log
    assert "Traceback" not in log


def test_expired_card_fails_at_once(env: dict[str, str], worker: Worker) -> None:
    result = run_script("starter.py", "12/23", env=env)
    assert result.returncode == 1, result
    assert "failed: card expired 12/23" in result.stdout
    # The order never waits for approval, so the starter does not say it does.
    assert "for approval" not in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("expiry", ["13/30", "00/30", "abc", "1230", "12/3", "12-30", ""])
def test_malformed_expiry_is_usage_error(env: dict[str, str], expiry: str) -> None:
    order_id = new_order_id()
    result = run_script("starter.py", expiry, "--order-id", order_id, env=env)
    assert result.returncode == 2
    assert "usage: starter.py" in result.stderr
    assert "card expiry" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was placed.
    assert run_script("status.py", order_id, env=env).returncode == 1


def test_missing_expiry_is_usage_error(env: dict[str, str]) -> None:
    result = run_script("starter.py", env=env)
    assert result.returncode == 2
    assert "the following arguments are required: MM/YY" in result.stderr


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("starter.py", ["12/30", "--item", "MUG"], "item must be SKU:QTY[:PRICE]"),
        ("starter.py", ["12/30", "--item", "BOOK:1"], "a price for SKUs outside the catalogue"),
        ("starter.py", ["12/30", "--item", "MUG:0"], "QTY >= 1"),
        ("starter.py", ["12/30", "--approval-threshold", "ten"], "amount must be dollars"),
        ("starter.py", ["12/30", "--approval-timeout", "0"], "must be a number of seconds"),
        ("starter.py", ["12/30", "--approval-timeout", "inf"], "approval_timeout_seconds"),
        (
            "starter.py",
            ["12/30", "--item", "MUG:5000"],
            "items[0].quantity: Input should be less than or equal to 1000",
        ),
        (
            "schedule.py",
            ["create", "12/30", "--approval-timeout", "1e9"],
            "less than or equal to 604800",
        ),
        ("starter.py", ["12/30", "--small", "--large"], "not allowed with argument"),
        ("approve.py", ["some-order", "--reject", " "], "--reject needs a reason"),
        ("approve.py", ["some-order", "ok", "--reject", "no"], "not both"),
        ("schedule.py", ["create", "12/30", "--every", "-1"], "must be a number of seconds"),
        ("schedule.py", ["pause"], "invalid choice"),
    ],
)
def test_bad_options_are_usage_errors(
    env: dict[str, str], script: str, args: list[str], message: str
) -> None:
    result = run_script(script, *args, env=env)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_order_the_workflow_would_refuse_is_never_placed(env: dict[str, str]) -> None:
    order_id = new_order_id()
    result = run_script(
        "starter.py", "12/30", "--approval-timeout", "inf", "--order-id", order_id, env=env
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "starter.py: error: the order would be refused: approval_timeout_seconds:"
        " Input should be a finite number (got inf)"
    )
    assert_one_line_error(
        run_script("status.py", order_id, env=env), f"no order with ID {order_id}"
    )


@pytest.mark.parametrize("script", ["approve.py", "cancel.py", "status.py"])
def test_unknown_order_is_one_line_error(env: dict[str, str], script: str) -> None:
    result = run_script(script, "no-such-order", env=env)
    assert_one_line_error(result, "no order with ID no-such-order")


def test_duplicate_order_id_is_refused(env: dict[str, str], worker: Worker) -> None:
    order_id = new_order_id()
    assert (
        run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env).returncode
        == 0
    )
    again = run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env)
    assert_one_line_error(again, f"order {order_id} already exists")


def test_reject_with_reason_refunds(env: dict[str, str], worker: Worker) -> None:
    order_id = new_order_id()
    starter = start_starter(env, "12/30", "--order-id", order_id)
    wait_for_output(starter, "Waiting for the result")
    rejected = run_script("approve.py", order_id, "--reject", "address looks fake", env=env)
    assert rejected.returncode == 0, rejected
    out, _ = starter.communicate(timeout=120)
    assert starter.returncode == 1
    assert f"Order {order_id} failed: Order rejected: address looks fake" in out
    assert "undone: refund payment: refund-" in out

    status = run_script("status.py", order_id, env=env)
    assert status.returncode == 0
    assert "Order rejected: address looks fake" in status.stdout
    again = run_script("approve.py", order_id, env=env)
    assert_one_line_error(again, f"order {order_id} has already failed")


def test_approval_expires_with_refund(env: dict[str, str], worker: Worker) -> None:
    result = run_script("starter.py", "12/30", "--approval-timeout", "2", env=env)
    assert result.returncode == 1
    assert "failed: Order approval timed out" in result.stdout
    assert "undone: refund payment: refund-" in result.stdout


def test_cancel_while_waiting_then_refused_when_finished(
    env: dict[str, str], worker: Worker
) -> None:
    order_id = new_order_id()
    run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env)
    cancelled = run_script("cancel.py", order_id, "changed my mind", env=env)
    assert cancelled.returncode == 0, cancelled
    assert "Order cancelled: changed my mind" in cancelled.stdout
    assert "refund payment: refund-" in cancelled.stdout
    again = run_script("cancel.py", order_id, env=env)
    assert_one_line_error(again, f"order {order_id} has already failed")


def test_cancel_through_temporal_shows_what_was_undone(
    server: DevServer, env: dict[str, str], worker: Worker
) -> None:
    order_id = new_order_id()
    run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env)
    # As someone would from a terminal (or with the Web UI's Cancel button).
    subprocess.run(
        [str(TEMPORAL_CLI), "workflow", "cancel", "--address", server.address, "-w", order_id],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 60
    while "canceled" not in (status := run_script("status.py", order_id, env=env)).stdout:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status.returncode == 0, status
    assert f"Order {order_id} canceled: cancelled through Temporal" in status.stdout
    assert "undone: refund payment: refund-" in status.stdout


def test_bulk_approval_decides_only_the_waiting_orders(server: DevServer, tmp_path: Path) -> None:
    env = script_env(server, tmp_path, ORDER_TASK_QUEUE=f"bulk-{uuid.uuid4().hex[:6]}")
    with running_worker(env, tmp_path / "worker.log"):
        finished = run_script("starter.py", "12/30", "--approval-threshold", "100", env=env)
        assert finished.returncode == 0, finished
        # Running but needing no approval: below the threshold, riding out an inventory outage.
        busy = new_order_id()
        run_script(
            "starter.py", "12/30", "--approval-threshold", "100", "--inventory-down",
            "--order-id", busy, "--no-wait", env=env,
        )  # fmt: skip
        waiting = [new_order_id() for _ in range(4)]
        for order_id in waiting:
            run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env)
        # Visibility, which --all-waiting searches, may lag the start by a moment.
        running = f"TaskQueue = '{env['ORDER_TASK_QUEUE']}' AND ExecutionStatus = 'Running'"
        listed = [
            str(TEMPORAL_CLI), "workflow", "count", "--address", server.address, "--query", running
        ]  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            f"Total: {len(waiting) + 1}"
            not in subprocess.run(listed, capture_output=True, text=True).stdout
        ):
            assert time.monotonic() < deadline
            time.sleep(0.3)

        # Two of them decided one by one first: the bulk run leaves them as they are.
        approved_first, rejected_first = waiting[:2]
        assert run_script("approve.py", rejected_first, "--reject", "fake", env=env).returncode == 0
        assert run_script("approve.py", approved_first, env=env).returncode == 0
        rest = waiting[2:]
        rejected = run_script("approve.py", "--all-waiting", "--reject", "batch closed", env=env)
        assert rejected.returncode == 0, rejected
        lines = rejected.stdout.splitlines()
        decided = r"Rejected order (\S+) by \S+ at \d\d:\d\d:\d\d UTC: batch closed"
        assert sorted(re.fullmatch(decided, line)[1] for line in lines[:-1]) == sorted(rest)  # type: ignore[index]
        assert lines[-1] == "2 of 2 waiting orders rejected."

        again = run_script("approve.py", "--all-waiting", env=env)
        assert again.returncode == 0, again
        assert again.stdout == "No order is waiting for approval.\n"
        assert "approval:      not required" in run_script("status.py", busy, env=env).stdout
        assert "approval:      approved" in run_script("status.py", approved_first, env=env).stdout
        for order_id in [rejected_first, *rest]:
            assert "Order rejected" in run_script("status.py", order_id, env=env).stdout


def test_below_threshold_needs_no_approval(env: dict[str, str], worker: Worker) -> None:
    result = run_script("starter.py", "12/30", "--approval-threshold", "100", env=env)
    assert result.returncode == 0, result
    assert "no approval needed" in result.stdout
    assert "approval:      not required" in result.stdout


def test_policy_denies_blocked_customer(env: dict[str, str], worker: Worker) -> None:
    result = run_script("starter.py", "12/30", "--customer", "blocked-customer", env=env)
    assert result.returncode == 1
    assert "Order denied: customer blocked-customer is blocked" in result.stdout


def test_ledger_shows_one_of_each_effect(env: dict[str, str], worker: Worker) -> None:
    order_id = new_order_id()
    placed = run_script(
        "starter.py", "12/30", "--order-id", order_id, "--approval-threshold", "100", env=env
    )
    assert placed.returncode == 0, placed
    ledger = run_script("ledger.py", order_id, env=env)
    assert ledger.returncode == 0
    assert f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail" in ledger.stdout
    unknown = run_script("ledger.py", "no-such-order", env=env)
    assert_one_line_error(unknown, "nothing for no-such-order")


def test_schedule_places_orders(env: dict[str, str], worker: Worker) -> None:
    schedule_id = f"schedule-{uuid.uuid4().hex[:6]}"
    created = run_script(
        "schedule.py", "create", "12/30", "--every", "1", "--approval-threshold", "100",
        "--schedule-id", schedule_id, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created
    try:
        deadline = time.monotonic() + 60
        listed = run_script("schedule.py", "list", env=env)
        while f"recent: {schedule_id}-order-" not in listed.stdout:
            assert time.monotonic() < deadline, listed.stdout
            time.sleep(1)
            listed = run_script("schedule.py", "list", env=env)
    finally:
        deleted = run_script("schedule.py", "delete", schedule_id, env=env)
    assert deleted.returncode == 0
    again = run_script("schedule.py", "delete", schedule_id, env=env)
    assert_one_line_error(again, f"no schedule with ID {schedule_id}")


def test_ctrl_c_while_waiting_leaves_the_order_running(env: dict[str, str], worker: Worker) -> None:
    order_id = new_order_id()
    starter = start_starter(env, "12/30", "--order-id", order_id)
    wait_for_output(starter, "Waiting for the result")
    starter.send_signal(signal.SIGINT)
    out, err = starter.communicate(timeout=60)
    assert "Traceback" not in err
    assert f"order {order_id} carries on" in out
    status = run_script("status.py", order_id, env=env)
    assert "awaiting approval" in status.stdout or "charging payment" in status.stdout
    assert run_script("approve.py", order_id, env=env).returncode == 0


def test_output_piped_to_head_ends_quietly(env: dict[str, str], worker: Worker) -> None:
    """`| head -1` closes the pipe while the starter still prints the summary."""
    command = "./starter.py 12/30 --approval-threshold 1000 | head -1; exit ${PIPESTATUS[0]}"
    piped = subprocess.run(
        ["bash", "-c", command],
        cwd=SCRIPTS, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
    )  # fmt: skip
    assert piped.stdout.startswith("Charged $35.00 for order ")
    assert piped.stderr == ""
    assert piped.returncode == 141  # As for a process stopped by SIGPIPE.


def test_absent_server_is_one_line_error(tmp_path: Path) -> None:
    nobody = DevServer(port=free_port())  # Never started: nothing listens there.
    env = script_env(nobody, tmp_path)
    started = time.monotonic()
    scripts = (
        ("starter.py", ["12/30"]),
        ("approve.py", ["x"]),
        ("worker.py", ["--codec-port", "0"]),
    )
    for script, args in scripts:
        result = run_script(script, *args, env=env)
        assert_one_line_error(result, f"cannot reach Temporal at {nobody.address}")
    assert time.monotonic() - started < 120  # Each gives up within seconds, not minutes.


def test_worker_stops_cleanly_on_ctrl_c(env: dict[str, str], tmp_path: Path) -> None:
    with running_worker(env, tmp_path / "worker.log") as running:
        code = running.signal(signal.SIGINT)
    assert code == 0
    assert "Worker stopped." in running.output()
    assert "Traceback" not in running.output()


def test_bug_in_workflow_then_fixed_deploy_continues(server: DevServer, tmp_path: Path) -> None:
    env = script_env(server, tmp_path, ORDER_TASK_QUEUE=f"bug-{uuid.uuid4().hex[:6]}")
    order_id = new_order_id()
    with running_worker(env, tmp_path / "buggy.log", "--workflow-bug") as buggy:
        run_script("starter.py", "12/30", "--order-id", order_id, "--no-wait", env=env)
        assert run_script("approve.py", order_id, env=env).returncode == 0
        deadline = time.monotonic() + 60
        while "RuntimeError: workflow bug!" not in buggy.output():
            assert time.monotonic() < deadline, buggy.output()
            time.sleep(0.5)
        # The execution is still there, Running, but it cannot answer while its task fails.
        stuck = run_script("status.py", order_id, env=env)
        assert_one_line_error(stuck, f"order {order_id}")
    with running_worker(env, tmp_path / "fixed.log"):
        deadline = time.monotonic() + 120
        status = run_script("status.py", order_id, env=env)
        while f"Order {order_id} delivered." not in status.stdout:
            assert time.monotonic() < deadline, status
            time.sleep(1)
            status = run_script("status.py", order_id, env=env)


def test_worker_starts_a_local_dev_server_when_none_is_configured(tmp_path: Path) -> None:
    """The quick start's path: no TEMPORAL_ADDRESS, nothing on localhost:7233 or 8081."""
    for port in (7233, 8081):
        if not _port_free(port):
            pytest.skip(f"something already listens on localhost:{port}")
    env = script_env(DevServer(), tmp_path)
    del env["TEMPORAL_ADDRESS"]
    server_pid = None
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
        if server_pid is not None:
            _stop(server_pid)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


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
