"""The official Temporal CLI as a client of OrderWorkflow: whatever it sends, no order is stuck.

Each test sends what a person could type (or click in the Web UI) to the real worker.py, and
checks what they would see: the CLI's answer, status.py, the ledger of effects, the worker log,
and a history with no failed workflow task.
"""

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.scripts import new_order_id

from harness.processes import (
    TEMPORAL_CLI,
    DevServer,
    Worker,
    eventually,
    free_port,
    run_script,
    running_worker,
)
from payloads.codec import KEY_FILE_NAME, key_id, read_keys

pytestmark = pytest.mark.e2e

VALID = {
    "customer": "ada@example.com",
    "items": [{"sku": "MUG", "quantity": 2, "unit_price_cents": 1200}],
    "shipping_address": "1 Main Street, Springfield",
    "card_expiry": "12/30",
    "approval_timeout_seconds": 600,
}
"""An order as JSON, as someone would type it; it waits for approval (threshold 0)."""

# A running worker decides within a second; this only turns a hang into a failure.
OUTCOME_SECONDS = 60


@pytest.fixture(scope="module")
def codec_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def worker(
    env: dict[str, str], codec_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(env, log, "--codec-port", str(codec_port)) as running:
        yield running


def temporal(
    server: DevServer, codec_port: int | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """The official CLI, as a person who has read the README runs it: with the codec endpoint,
    or with none (`codec_port` None), when it sends plain JSON."""
    codec = ["--codec-endpoint", f"http://127.0.0.1:{codec_port}"] if codec_port else []
    return subprocess.run(
        [str(TEMPORAL_CLI), *args, "--address", server.address, *codec],
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


def status_when(env: dict[str, str], order_id: str, text: str) -> str:
    """status.py's answer once it says `text`."""
    deadline = time.monotonic() + OUTCOME_SECONDS
    while text not in (status := run_script("status.py", order_id, env=env)).stdout:
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    return status.stdout


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


# --- Starts --------------------------------------------------------------------------------------

MALFORMED_STARTS = {
    "no input": ([], "input: got no input"),
    "null": (["-i", "null"], "input: Input should be an object (got null)"),
    "a string": (["-i", '"one mug please"'], "(got 'one mug please')"),
    "a list": (["-i", "[]"], "(got a list of 0)"),
    "missing fields": (
        ["-i", '{"customer": "x"}'],
        "items: Field required; shipping_address: Field required; card_expiry: Field required",
    ),
    "negative quantity": (
        [
            "-i",
            as_input(VALID | {"items": [{"sku": "MUG", "quantity": -5, "unit_price_cents": 1200}]}),
        ],
        "items[0].quantity: Input should be greater than or equal to 1 (got -5)",
    ),
    "quantity as text": (
        [
            "-i",
            as_input(VALID | {"items": [{"sku": "MUG", "quantity": "2", "unit_price_cents": 1}]}),
        ],
        "items[0].quantity: Input should be a valid integer (got '2')",
    ),
    "half a mug": (
        [
            "-i",
            as_input(VALID | {"items": [{"sku": "MUG", "quantity": 2.5, "unit_price_cents": 1}]}),
        ],
        "items[0].quantity: Input should be a valid integer (got 2.5)",
    ),
    "no items": (
        ["-i", as_input(VALID | {"items": []})],
        "items: List should have at least 1 item",
    ),
    "absurd price": (
        [
            "-i",
            as_input(
                VALID | {"items": [{"sku": "MUG", "quantity": 1, "unit_price_cents": 10**30}]}
            ),
        ],
        "items[0].unit_price_cents: Input should be less than or equal to 10000000",
    ),
    "negative timeout": (
        ["-i", as_input(VALID | {"approval_timeout_seconds": -1})],
        "approval_timeout_seconds: Input should be greater than or equal to 1 (got -1)",
    ),
    "a timeout of a microsecond": (
        ["-i", as_input(VALID | {"approval_timeout_seconds": 1e-6})],
        "approval_timeout_seconds: Input should be greater than or equal to 1 (got 1e-06)",
    ),
    "a timeout of 400 digits": (
        ["-i", as_input(VALID).replace("600", "9" * 400)],
        "approval_timeout_seconds: Input should be a finite number",
    ),
    "infinite timeout": (
        ["-i", as_input(VALID).replace("600", "1e999")],
        "approval_timeout_seconds: Input should be a finite number",
    ),
    "no customer": (["-i", as_input(VALID | {"customer": " "})], "customer: must not be blank"),
    "bad expiry": (["-i", as_input(VALID | {"card_expiry": "13/30"})], "card_expiry:"),
    "wrong type for a flag": (
        ["-i", as_input(VALID | {"pack": "yes"})],
        "pack: Input should be a valid boolean",
    ),
    "two inputs": (
        ["-i", as_input(VALID), "-i", as_input(VALID)],
        "input: expected one argument, got 2",
    ),
    "not JSON": (
        [
            "--input-meta",
            "encoding=json/protobuf",
            "--input-meta",
            "messageType=shop.Order",
            "-i",
            as_input(VALID),
        ],
        "not JSON (encoding json/protobuf)",
    ),
    "labelled as encrypted": (
        ["--input-meta", "encoding=binary/encrypted", "-i", as_input(VALID)],
        "not JSON (encoding binary/encrypted)",
    ),
}


@pytest.mark.parametrize(("inputs", "problem"), MALFORMED_STARTS.values(), ids=MALFORMED_STARTS)
def test_malformed_start_fails_at_once_as_invalid_order_and_charges_nothing(
    server: DevServer,
    env: dict[str, str],
    codec_port: int,
    worker: Worker,
    inputs: list[str],
    problem: str,
) -> None:
    order_id = new_order_id("cli")
    start(server, env, codec_port, order_id, *inputs)
    status = status_when(env, order_id, "failed")
    assert f"Order {order_id} failed: Invalid order: " in status
    assert problem in status
    assert ledger(env, order_id) == f"error: the ledger has nothing for {order_id}"
    assert failed_workflow_tasks(server, codec_port, order_id) == 0


def test_a_start_forged_with_the_workers_own_key_id_is_refused_not_retried(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    """Plain JSON claiming to be ciphertext of the real key: it cannot be decrypted, ever. Sent
    without the codec endpoint, so the worker's codec meets it as the CLI made it."""
    (key, *_) = read_keys(Path(env["ORDER_DATA_DIR"]) / KEY_FILE_NAME)
    order_id = new_order_id("cli")
    start(
        server, env, None, order_id,
        "--input-meta", "encoding=binary/encrypted",
        "--input-meta", f"encryption-key-id={key_id(key)}",
        "-i", as_input(VALID),
    )  # fmt: skip
    status = status_when(env, order_id, "failed")
    refused = "Invalid order: not JSON (encoding binary/encrypted)\n"
    assert f"Order {order_id} failed: {refused}" in status
    assert ledger(env, order_id) == f"error: the ledger has nothing for {order_id}"
    assert failed_workflow_tasks(server, codec_port, order_id) == 0


def test_extra_fields_are_ignored_and_the_order_goes_through(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = new_order_id("cli")
    order = VALID | {"approval_threshold_cents": 10_000, "coupon": "FREE", "gift_wrap": True}
    start(server, env, codec_port, order_id, "-i", as_input(order))
    assert f"Order {order_id} delivered." in status_when(env, order_id, "delivered")
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


# --- Signals, updates and queries on a waiting order ---------------------------------------------


def waiting_order(server: DevServer, env: dict[str, str], codec_port: int) -> str:
    order_id = new_order_id("cli")
    start(server, env, codec_port, order_id, "-i", as_input(VALID))
    status_when(env, order_id, "awaiting approval")
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


MALFORMED_SIGNALS = [
    ("approve_order", ["-i", '{"reason": 5}'], "reason: Input should be a valid string (got 5)"),
    ("approve_order", ["-i", '"yes"'], "input: Input should be an object (got 'yes')"),
    ("approve_order", ["-i", "[true]"], "(got a list of 1)"),
    ("approve_order", ["-i", "{}", "-i", "{}"], "expected one argument, got 2"),
    ("reject_order", ["-i", '{"reason": ["fraud"]}'], "reason: Input should be a valid string"),
    ("reject_order", ["-i", "42"], "(got 42)"),
    (
        "approve_order",
        ["--input-meta", "encoding=json/protobuf", "--input-meta", "messageType=x.Y", "-i", "{}"],
        "not JSON (encoding json/protobuf)",
    ),
    (
        "reject_order",
        ["--input-meta", "encoding=binary/encrypted", "-i", '{"reason": "forged"}'],
        "not JSON (encoding binary/encrypted)",
    ),
]

MALFORMED_UPDATES = [
    (["-i", '{"reason": 5}'], "reason: Input should be a valid string (got 5)"),
    (["-i", '"now"'], "(got 'now')"),
    (["-i", "{}", "-i", "{}"], "cancel_order: expected one argument, got 2"),
]


def test_malformed_messages_are_ignored_or_refused_and_the_order_carries_on(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = waiting_order(server, env, codec_port)
    log_start = len(worker.output())

    for name, inputs, _ in MALFORMED_SIGNALS:
        signal(server, codec_port, order_id, name, *inputs)
    for inputs, problem in MALFORMED_UPDATES:
        refused = cancel(server, codec_port, order_id, *inputs)
        assert refused.returncode == 1, refused
        assert problem in refused.stderr
        assert "cancel_order:" in problem or (
            'expected {"reason": string (optional)} or nothing' in refused.stderr
        )
        assert "TypeError" not in refused.stderr
    # Queries read the order and never disturb it, whatever they carry.
    assert temporal(server, codec_port, "workflow", "query", "-w", order_id,
                    "--name", "get_status", "-i", '"extra"').returncode == 0  # fmt: skip
    assert temporal(server, codec_port, "workflow", "stack", "-w", order_id).returncode == 0
    unknown = temporal(server, codec_port, "workflow", "query", "-w", order_id, "--name", "nope")
    # Refused; the CLI prints query failures without decoding them ("Encoded failure").
    assert unknown.returncode == 1, unknown

    # One warning line per ignored signal, naming the order, the signal and what was wrong.
    deadline = time.monotonic() + OUTCOME_SECONDS
    while worker.output()[log_start:].count("ignored") < len(MALFORMED_SIGNALS):
        assert time.monotonic() < deadline, worker.output()[log_start:]
        time.sleep(0.2)
    log = worker.output()[log_start:]
    for name, _, problem in MALFORMED_SIGNALS:
        assert any(
            f"Order {order_id}: ignored {name} signal" in line and problem in line
            for line in log.splitlines()
        ), (problem, log)
    assert "Traceback" not in log

    assert "awaiting approval" in run_script("status.py", order_id, env=env).stdout
    approved = run_script("approve.py", order_id, "checked by hand", env=env)
    assert approved.returncode == 0, approved
    assert "(checked by hand)" in status_when(env, order_id, "delivered")
    assert failed_workflow_tasks(server, codec_port, order_id) == 0
    # Exactly one line each, however often the order's history is read again.
    ignored = f"Order {order_id}: ignored"
    assert worker.output()[log_start:].count(ignored) == len(MALFORMED_SIGNALS)


def test_plain_json_from_a_cli_without_the_codec_is_read_as_well(
    server: DevServer, env: dict[str, str], worker: Worker
) -> None:
    """Without --codec-endpoint the CLI sends the order and the signal in clear, as JSON."""
    order_id = new_order_id("cli")
    start(server, env, None, order_id, "-i", as_input(VALID))
    status_when(env, order_id, "awaiting approval")
    signal(server, None, order_id, "approve_order", "-i", '{"reason": "sent in clear"}')
    status = status_when(env, order_id, "delivered")
    assert "approved by (name not given) at " in status
    assert "UTC (sent in clear)" in status


@pytest.mark.parametrize("inputs", [[], ["-i", "null"], ["-i", "{}"]], ids=["bare", "null", "{}"])
def test_bare_approve_approves_with_no_reason(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker, inputs: list[str]
) -> None:
    order_id = waiting_order(server, env, codec_port)
    signal(server, codec_port, order_id, "approve_order", *inputs)
    status = status_when(env, order_id, "delivered")
    assert re.search(r"approval:      approved by \(name not given\) at \S+ UTC\n", status), status
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


def test_bare_reject_rejects_with_no_reason_given_and_refunds(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = waiting_order(server, env, codec_port)
    signal(server, codec_port, order_id, "reject_order")
    status = status_when(env, order_id, "failed")
    assert f"Order {order_id} failed: Order rejected: no reason given" in status
    assert "undone: refund payment: refund-" in status
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 refund"


def test_bare_cancel_update_cancels_by_request_and_refunds(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = waiting_order(server, env, codec_port)
    accepted = cancel(server, codec_port, order_id)
    assert accepted.returncode == 0, accepted
    assert "awaiting approval" in accepted.stdout
    status = status_when(env, order_id, "failed")
    assert f"Order {order_id} failed: Order cancelled: cancelled by request" in status
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 refund"


def test_reset_of_a_delivered_order_runs_it_again_with_no_second_effect(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    """The Web UI's Reset, from the CLI: the new run repeats every step, and the services,
    keyed by the order ID, answer with what they did the first time."""
    order_id = waiting_order(server, env, codec_port)
    signal(server, codec_port, order_id, "approve_order")
    status_when(env, order_id, "delivered")
    reset = temporal(
        server, codec_port, "workflow", "reset", "-w", order_id,
        "--type", "FirstWorkflowTask", "--reason", "run it again", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset

    def completed_runs() -> int:
        listed = temporal(
            server, codec_port, "workflow", "list", "--query",
            f"WorkflowId = '{order_id}' AND ExecutionStatus = 'Completed'", "-o", "json",
        )  # fmt: skip
        return len(json.loads(listed.stdout or "[]"))

    deadline = time.monotonic() + OUTCOME_SECONDS
    while completed_runs() < 2:  # The approval came after the reset point: it is sent again.
        assert time.monotonic() < deadline, "the reset run did not complete"
        time.sleep(0.5)
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


def test_reset_of_a_refunded_order_is_refused_and_ships_nothing(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    """Reset after the approval expired and the payment was refunded: the new run cannot take
    the refunded charge as its own, so it fails at the payment instead of shipping unpaid."""
    order_id = new_order_id("cli")
    start(
        server, env, codec_port, order_id, "-i", as_input(VALID | {"approval_timeout_seconds": 1})
    )
    # The reason, not the step: status.py may catch the order at step `failed` just before it ends.
    status_when(env, order_id, "Order approval timed out")
    reset = temporal(
        server, codec_port, "workflow", "reset", "-w", order_id,
        "--type", "FirstWorkflowTask", "--reason", "approve it this time", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset
    status = status_when(env, order_id, "refunded before")
    assert (
        f"Order {order_id} failed: the payment of order {order_id} was refunded before:" in status
    )
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 refund"


# --- Decisions as updates, placing with update-with-start, listing by step ----------------------


def update(
    server: DevServer, codec_port: int, order_id: str, name: str, *inputs: str
) -> subprocess.CompletedProcess[str]:
    return temporal(
        server, codec_port, "workflow", "update", "execute", "-w", order_id, "--name", name,
        *inputs,
    )  # fmt: skip


@pytest.mark.parametrize("inputs", [[], ["-i", "null"]], ids=["no input", "null"])
def test_bare_approve_update_approves_and_answers_with_the_decision(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker, inputs: list[str]
) -> None:
    order_id = waiting_order(server, env, codec_port)
    approved = update(server, codec_port, order_id, "approve", *inputs)
    assert approved.returncode == 0, approved
    assert "approval:approved" in approved.stdout
    assert "by:not given" in approved.stdout
    assert "approved by (name not given) at " in status_when(env, order_id, "delivered")
    assert failed_workflow_tasks(server, codec_port, order_id) == 0


MALFORMED_DECISIONS = [
    ("approve", ["-i", '{"by": 5}'], "by: Input should be a valid string (got 5)"),
    ("approve", ["-i", "{}", "-i", "{}"], "approve: expected one argument, got 2"),
    ("reject", ["-i", '"no"'], "input: Input should be an object (got 'no')"),
]


def test_malformed_decision_updates_are_refused_in_one_line_and_the_order_waits_on(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = waiting_order(server, env, codec_port)
    for name, inputs, problem in MALFORMED_DECISIONS:
        refused = update(server, codec_port, order_id, name, *inputs)
        assert refused.returncode == 1, refused
        assert refused.stderr.count("\n") == 1, refused
        assert problem in refused.stderr, refused
        assert "TypeError" not in refused.stderr
    assert "awaiting approval" in run_script("status.py", order_id, env=env).stdout
    assert run_script("approve.py", order_id, env=env).returncode == 0
    status_when(env, order_id, "delivered")
    assert failed_workflow_tasks(server, codec_port, order_id) == 0


def test_a_second_decision_from_the_cli_is_refused_with_the_one_that_stands(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    # An inventory outage keeps the order running for seconds after the first decision.
    order_id = new_order_id("cli")
    start(
        server, env, codec_port, order_id, "-i", as_input(VALID | {"inventory_outage_attempts": 3})
    )
    status_when(env, order_id, "awaiting approval")
    first = update(server, codec_port, order_id, "approve", "-i", '{"by": "alice", "reason": "ok"}')
    assert first.returncode == 0, first
    second = update(server, codec_port, order_id, "reject", "-i", '{"by": "bob"}')
    assert second.returncode == 1, second
    assert f"order {order_id} was already approved by alice at " in second.stderr
    assert "UTC (ok) (type: AlreadyDecided" in second.stderr
    status_when(env, order_id, "delivered")


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


def test_update_with_start_from_the_cli_places_an_order_as_the_starter_does(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    order_id = new_order_id("cli")
    placed = update_with_start(server, env, codec_port, order_id, VALID)
    assert placed.returncode == 0, placed
    assert "amount_cents:2400" in placed.stdout
    assert "transaction_id:txn-" in placed.stdout
    assert "awaits_approval:true" in placed.stdout
    assert "awaiting approval" in run_script("status.py", order_id, env=env).stdout
    assert ledger(env, order_id) == f"{order_id}: 1 charge"

    expired = new_order_id("cli")
    refused = update_with_start(server, env, codec_port, expired, VALID | {"card_expiry": "12/23"})
    assert refused.returncode == 1, refused
    assert "card expired 12/23 (type: CardExpired" in refused.stderr
    again = update_with_start(server, env, codec_port, order_id, VALID)
    assert again.returncode == 1, again
    assert "already" in again.stderr.lower(), again


def test_the_cli_lists_the_orders_awaiting_approval_by_their_step(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    waiting = waiting_order(server, env, codec_port)
    delivered = waiting_order(server, env, codec_port)
    assert run_script("approve.py", delivered, env=env).returncode == 0
    status_when(env, delivered, "delivered")
    query = f"OrderStep = 'awaiting approval' AND TaskQueue = '{env['ORDER_TASK_QUEUE']}'"

    def listed() -> set[str]:
        shown = temporal(server, codec_port, "workflow", "list", "--query", query, "-o", "json")
        assert shown.returncode == 0, shown
        return {execution["execution"]["workflowId"] for execution in json.loads(shown.stdout)}

    eventually(lambda: waiting in listed() and delivered not in listed(), "the waiting order")


# --- Two approvers at once -----------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_approve_and_reject_at_once_only_the_decision_that_stands_succeeds(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker, attempt: int
) -> None:
    order_id = waiting_order(server, env, codec_port)
    deciders = {
        "approve": ["./approve.py", order_id, "fine by me"],
        "reject": ["./approve.py", order_id, "--reject", "looks fake"],
    }
    running = {
        name: subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parent.parent / "order_application",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for name, command in deciders.items()
    }
    results = {name: process.communicate(timeout=120) for name, process in running.items()}
    codes = {name: process.returncode for name, process in running.items()}
    assert sorted(codes.values()) == [0, 1], results
    winner = next(name for name, code in codes.items() if code == 0)
    loser = next(name for name, code in codes.items() if code == 1)
    assert "Traceback" not in results[loser][1]
    # Refused by the order's validator with the decision that stands, or, once the winner's
    # decision has run the order to its end, by the server.
    won = r"approved by \S+ at \S+ UTC \(fine by me\)"
    if winner == "reject":
        won = r"rejected by \S+ at \S+ UTC \(looks fake\)"
    ended = "completed" if winner == "approve" else "failed"
    assert re.fullmatch(
        rf"error: order {order_id} (was already {won}; your decision did not take effect"
        rf"|has already {ended})\n",
        results[loser][1],
    ), results[loser]
    if winner == "approve":
        assert "UTC (fine by me)" in status_when(env, order_id, "delivered")
    else:
        assert "Order rejected: looks fake" in status_when(env, order_id, "failed")


# --- A key the worker lacks ----------------------------------------------------------------------


def wait_for_failed_workflow_task(server: DevServer, codec_port: int, order_id: str) -> None:
    eventually(
        lambda: failed_workflow_tasks(server, codec_port, order_id) > 0,
        f"a workflow task of {order_id} to fail",
        OUTCOME_SECONDS,
    )


def test_an_approval_in_a_key_the_worker_lacks_waits_for_that_key(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker, tmp_path: Path
) -> None:
    """A rotation that has not reached the worker's key file yet: the worker cannot tell such a
    key from one that does not exist, so the order waits, and carries on once the key is there."""
    worker_keys = Path(env["ORDER_DATA_DIR"]) / KEY_FILE_NAME
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated = tmp_path / "rotated.keys"
    rotated.write_text(f"{new_key}\n{worker_keys.read_text()}")
    rotated.chmod(0o600)
    order_id = waiting_order(server, env, codec_port)
    log_start = len(worker.output())

    sent = run_script(
        "approve.py", order_id, "checked", env=env | {"ORDER_ENCRYPTION_KEY_FILE": str(rotated)}
    )
    assert sent.returncode == 0, sent
    assert sent.stdout.startswith(f"No worker took the approval of order {order_id} within 10 s")
    wait_for_failed_workflow_task(server, codec_port, order_id)
    missing = f"a payload is encrypted with key {key_id(base64.b64decode(new_key))}, which is not"
    log = worker.output()[log_start:]
    assert missing in log
    assert "Traceback" not in log

    with worker_keys.open("a") as keys:  # The rotation reaches the worker: no restart.
        keys.write(f"{new_key}\n")
    assert "UTC (checked)" in status_when(env, order_id, "delivered")
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


def test_a_signal_forged_in_a_key_nobody_has_is_dropped_by_a_reset(
    server: DevServer, env: dict[str, str], codec_port: int, worker: Worker
) -> None:
    """The README's remedy for the one message that can stop an order: reset it to before the
    message, leaving signals out, and decide it again."""
    order_id = waiting_order(server, env, codec_port)
    signal(
        server, None, order_id, "approve_order",
        "--input-meta", "encoding=binary/encrypted",
        "--input-meta", "encryption-key-id=0123456789abcdef",
        "-i", "{}",
    )  # fmt: skip
    wait_for_failed_workflow_task(server, codec_port, order_id)

    reset = temporal(
        server, codec_port, "workflow", "reset", "-w", order_id, "--type", "LastWorkflowTask",
        "--reapply-exclude", "Signal", "--reason", "drop a forged signal", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset
    status_when(env, order_id, "awaiting approval")
    assert run_script("approve.py", order_id, env=env).returncode == 0
    status_when(env, order_id, "delivered")
    assert ledger(env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"
