"""Signals, updates and queries from the official Temporal CLI to a waiting order: whatever a
person types, the order answers or refuses in one line, and carries on."""

import json
import re
import subprocess

import pytest
from support.scripts import BY_ME, new_order_id
from support.temporal_cli import (
    VALID,
    another_local_user,
    as_input,
    cancel,
    failed_workflow_tasks,
    ledger,
    signal,
    start,
    temporal,
    update,
    waiting_order,
)

from harness.processes import (
    SCRIPTS,
    DevServer,
    Worker,
    eventually,
    run_script,
    status_saying,
)

pytestmark = pytest.mark.e2e


MALFORMED_SIGNALS = [
    ("approve_order", ["-i", '{"reason": 5}'], "reason: Input should be a valid string (got 5)"),
    ("approve_order", ["-i", '"yes"'], "input: Input should be an object (got 'yes')"),
    ("approve_order", ["-i", "[true]"], "(got a list of 1)"),
    ("approve_order", ["-i", "{}", "-i", "{}"], "expected one argument, got 2"),
    ("reject_order", ["-i", '{"reason": ["fraud"]}'], "reason: Input should be a valid string"),
    ("reject_order", ["-i", "42"], "(got 42)"),
    (
        "approve_order",
        ["-i", as_input({"by": "\r\u202eecila"})],
        "by: must not contain control or format characters (found U+000D)",
    ),
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


async def test_malformed_messages_are_ignored_or_refused_and_the_order_carries_on(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    log_start = len(codec_worker.output())

    for name, inputs, _ in MALFORMED_SIGNALS:
        signal(e2e_server, codec_port, order_id, name, *inputs)
    for inputs, problem in MALFORMED_UPDATES:
        refused = cancel(e2e_server, codec_port, order_id, *inputs)
        assert refused.returncode == 1, refused
        assert problem in refused.stderr
        # One line that names the update or says what it takes, with the type to branch on.
        assert refused.stderr.count("\n") == 1, refused
        assert "cancel_order:" in refused.stderr or (
            'expected {"reason": string (optional)} or nothing' in refused.stderr
        ), refused
        assert "(type: MalformedMessage, retryable: false)" in refused.stderr, refused
        assert "TypeError" not in refused.stderr
    # Queries read the order and never disturb it, whatever they carry.
    assert temporal(e2e_server, codec_port, "workflow", "query", "-w", order_id,
                    "--name", "get_status", "-i", '"extra"').returncode == 0  # fmt: skip
    assert temporal(e2e_server, codec_port, "workflow", "stack", "-w", order_id).returncode == 0
    unknown = temporal(
        e2e_server, codec_port, "workflow", "query", "-w", order_id, "--name", "nope"
    )
    # Refused; the CLI prints query failures without decoding them ("Encoded failure").
    assert unknown.returncode == 1, unknown

    # One warning line per ignored signal, naming the order, the signal and what was wrong.
    await eventually(
        lambda: codec_worker.output()[log_start:].count("ignored") >= len(MALFORMED_SIGNALS),
        "a warning line per ignored signal",
    )
    log = codec_worker.output()[log_start:]
    for name, _, problem in MALFORMED_SIGNALS:
        assert any(
            f"Order {order_id}: ignored {name} signal" in line and problem in line
            for line in log.splitlines()
        ), (problem, log)
    assert "Traceback" not in log

    assert "awaiting approval" in run_script("status.py", order_id, env=e2e_env).stdout
    approved = run_script("approve.py", order_id, "checked by hand", env=e2e_env)
    assert approved.returncode == 0, approved
    assert "(checked by hand)" in await eventually(
        status_saying(e2e_env, order_id, "delivered"), "the expected status"
    )
    assert failed_workflow_tasks(e2e_server, codec_port, order_id) == 0
    # Exactly one line each, however often the order's history is read again.
    ignored = f"Order {order_id}: ignored"
    assert codec_worker.output()[log_start:].count(ignored) == len(MALFORMED_SIGNALS)


async def test_plain_json_from_a_cli_without_the_codec_is_read_as_well(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_worker: Worker
) -> None:
    """Without --codec-endpoint the CLI sends the order and the signal in clear, as JSON."""
    order_id = new_order_id("cli")
    start(e2e_server, e2e_env, None, order_id, "-i", as_input(VALID))
    await eventually(status_saying(e2e_env, order_id, "awaiting approval"), "awaiting approval")
    signal(e2e_server, None, order_id, "approve_order", "-i", '{"reason": "sent in clear"}')
    status = await eventually(status_saying(e2e_env, order_id, "delivered"), "the expected status")
    assert "approved by (name not given) at " in status
    assert "UTC (sent in clear)" in status


@pytest.mark.parametrize("inputs", [[], ["-i", "null"], ["-i", "{}"]], ids=["bare", "null", "{}"])
async def test_bare_approve_approves_with_no_reason(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    inputs: list[str],
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    signal(e2e_server, codec_port, order_id, "approve_order", *inputs)
    status = await eventually(status_saying(e2e_env, order_id, "delivered"), "the expected status")
    assert re.search(r"approval:      approved by \(name not given\) at \S+ UTC\n", status), status
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


async def test_bare_reject_rejects_with_no_reason_given_and_refunds(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    signal(e2e_server, codec_port, order_id, "reject_order")
    status = await eventually(status_saying(e2e_env, order_id, "failed"), "the expected status")
    assert f"Order {order_id} failed: Order rejected: no reason given" in status
    assert "undone: refund payment: refund-" in status
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 refund"


async def test_bare_cancel_update_cancels_by_request_and_refunds(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    accepted = cancel(e2e_server, codec_port, order_id)
    assert accepted.returncode == 0, accepted
    assert "awaiting approval" in accepted.stdout
    status = await eventually(status_saying(e2e_env, order_id, "failed"), "the expected status")
    assert f"Order {order_id} failed: Order cancelled: cancelled by request" in status
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 refund"


@pytest.mark.parametrize("inputs", [[], ["-i", "null"]], ids=["no input", "null"])
async def test_bare_approve_update_approves_and_answers_with_the_decision(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    inputs: list[str],
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    approved = update(e2e_server, codec_port, order_id, "approve", *inputs)
    assert approved.returncode == 0, approved
    assert "approval:approved" in approved.stdout
    assert "by:not given" in approved.stdout
    assert "approved by (name not given) at " in await eventually(
        status_saying(e2e_env, order_id, "delivered"), "the expected status"
    )
    assert failed_workflow_tasks(e2e_server, codec_port, order_id) == 0


MALFORMED_DECISIONS = [
    ("approve", ["-i", '{"by": 5}'], "by: Input should be a valid string (got 5)"),
    ("approve", ["-i", "{}", "-i", "{}"], "approve: expected one argument, got 2"),
    ("reject", ["-i", '"no"'], "input: Input should be an object (got 'no')"),
    (
        "approve",
        ["-i", as_input({"by": "\r\u202eecila", "reason": "ok"})],
        "by: must not contain control or format characters (found U+000D)",
    ),
]


async def test_malformed_decision_updates_are_refused_in_one_line_and_the_order_waits_on(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    for name, inputs, problem in MALFORMED_DECISIONS:
        refused = update(e2e_server, codec_port, order_id, name, *inputs)
        assert refused.returncode == 1, refused
        assert refused.stderr.count("\n") == 1, refused
        assert problem in refused.stderr, refused
        assert "TypeError" not in refused.stderr
    assert "awaiting approval" in run_script("status.py", order_id, env=e2e_env).stdout
    assert run_script("approve.py", order_id, env=e2e_env).returncode == 0
    await eventually(status_saying(e2e_env, order_id, "delivered"), "delivered")
    assert failed_workflow_tasks(e2e_server, codec_port, order_id) == 0


async def test_a_second_decision_from_the_cli_is_refused_with_the_one_that_stands(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    # An inventory outage keeps the order running for seconds after the first decision.
    order_id = new_order_id("cli")
    start(
        e2e_server,
        e2e_env,
        codec_port,
        order_id,
        "-i",
        as_input(VALID | {"inventory_outage_attempts": 3}),
    )
    await eventually(status_saying(e2e_env, order_id, "awaiting approval"), "awaiting approval")
    first = update(
        e2e_server, codec_port, order_id, "approve", "-i", '{"by": "alice", "reason": "ok"}'
    )
    assert first.returncode == 0, first
    second = update(e2e_server, codec_port, order_id, "reject", "-i", '{"by": "bob"}')
    assert second.returncode == 1, second
    assert (
        f'order {order_id} was already approved by "alice" (name given, not verified) at '
        in second.stderr
    )
    assert "UTC (ok) (type: AlreadyDecided" in second.stderr
    await eventually(status_saying(e2e_env, order_id, "delivered"), "delivered")


@pytest.mark.parametrize("with_codec", [True, False], ids=["through the codec", "plain JSON"])
async def test_another_local_user_cannot_pass_for_a_proven_approver(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    with_codec: bool,
) -> None:
    """`nobody`, without the key file, names root: through the codec server (which encrypts for
    anyone on the machine in the default mode) or as plain JSON. A made-up proof is refused, and
    the name is recorded as given, never as proven."""
    nobody = another_local_user()
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    port = codec_port if with_codec else None
    forged = '{"by": "root", "proof": "0123456789abcdef:' + "0" * 64 + '"}'
    refused = temporal(
        e2e_server, port, "workflow", "update", "execute", "-w", order_id, "--name", "approve",
        "-i", forged, as_user=nobody,
    )  # fmt: skip
    assert refused.returncode == 1, refused
    # Without the codec the CLI cannot read the refusal's message, which the worker encrypts.
    assert "(type: DecisionProofRefused" in refused.stderr, refused
    if with_codec:
        assert "the proof of this approve does not hold" in refused.stderr
    assert "awaiting approval" in run_script("status.py", order_id, env=e2e_env).stdout

    typed = temporal(
        e2e_server, port, "workflow", "update", "execute", "-w", order_id, "--name", "approve",
        "-i", '{"by": "root"}', as_user=nobody,
    )  # fmt: skip
    # Taken either way; without the codec the CLI cannot read the decision it gets back.
    assert typed.returncode == 0 or "encoding is not supported" in typed.stderr, typed
    status = run_script("status.py", order_id, env=e2e_env).stdout
    assert 'approval:      approved by "root" (name given, not verified) at ' in status, status


async def test_the_cli_lists_the_orders_awaiting_approval_by_their_step(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    waiting = await waiting_order(e2e_server, e2e_env, codec_port)
    delivered = await waiting_order(e2e_server, e2e_env, codec_port)
    assert run_script("approve.py", delivered, env=e2e_env).returncode == 0
    await eventually(status_saying(e2e_env, delivered, "delivered"), "delivered")
    query = f"OrderStep = 'awaiting approval' AND TaskQueue = '{e2e_env['ORDER_TASK_QUEUE']}'"

    def listed() -> set[str]:
        shown = temporal(e2e_server, codec_port, "workflow", "list", "--query", query, "-o", "json")
        assert shown.returncode == 0, shown
        return {execution["execution"]["workflowId"] for execution in json.loads(shown.stdout)}

    await eventually(lambda: waiting in listed() and delivered not in listed(), "the waiting order")


@pytest.mark.parametrize("attempt", range(3))
async def test_approve_and_reject_at_once_only_the_decision_that_stands_succeeds(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    attempt: int,
) -> None:
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    deciders = {
        "approve": ["./approve.py", order_id, "fine by me"],
        "reject": ["./approve.py", order_id, "--reject", "looks fake"],
    }
    running = {
        name: subprocess.Popen(
            command,
            cwd=SCRIPTS,
            env=e2e_env,
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
    # Refused with the decision that stands: by the order's validator, or, once the winner's
    # decision has run the order to its end, as the ended order's result or failure says.
    won = rf"approved by {re.escape(BY_ME)} at \S+ UTC \(fine by me\)"
    if winner == "reject":
        won = rf"rejected by {re.escape(BY_ME)} at \S+ UTC \(looks fake\)"
    assert re.fullmatch(
        rf"error: order {order_id} was already {won}; your decision did not take effect\n",
        results[loser][1],
    ), results[loser]
    if winner == "approve":
        assert "UTC (fine by me)" in await eventually(
            status_saying(e2e_env, order_id, "delivered"), "the expected status"
        )
    else:
        assert "Order rejected: looks fake" in await eventually(
            status_saying(e2e_env, order_id, "failed"), "the expected status"
        )
