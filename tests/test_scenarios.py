"""The README's scenarios end to end, each as its row gives it: the real scripts against a dev
server, and what a user sees of them (output, exit code, status, ledger)."""

import base64
import json
import re
import time
import uuid
from pathlib import Path

import pytest
from support.scripts import BY_ME, VALID_CARD, assert_one_line_error, new_order_id
from support.temporal_cli import ledger, temporal

from harness.processes import (
    DevServer,
    Worker,
    eventually,
    run_script,
    running_worker,
    script_env,
    start_script,
    status_saying,
)

pytestmark = pytest.mark.e2e

ONE_OF_EACH = "1 charge, 1 reservation, 1 shipment, 1 e-mail"
"""What the ledger shows of a delivered order: each effect once."""

TIME = r"\d\d:\d\d:\d\d"


def own_env(server: DevServer, data_dir: Path, **extra: str) -> dict[str, str]:
    """The scripts' environment for a test that runs a worker of its own: its own task queue, so
    the module's worker never takes its orders, and its own ledger in `data_dir`."""
    return script_env(server, data_dir, ORDER_TASK_QUEUE=f"own-{uuid.uuid4().hex[:6]}", **extra)


async def delivered(env: dict[str, str], order_id: str, within: float = 120) -> str:
    """status.py's summary, once it says the order was delivered."""
    return await eventually(
        status_saying(env, order_id, f"Order {order_id} delivered.\n"),
        f"order {order_id} to be delivered",
        within=within,
    )


async def test_api_downtime_one_worker_line_per_failed_attempt_then_the_restart_delivers(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = own_env(e2e_server, tmp_path)
    order_id = new_order_id()
    failed = (
        rf"{TIME} Order {order_id}: reserve_inventory failed \(attempt (\d+)\):"
        " inventory service is down\n"
    )
    with running_worker(env, tmp_path / "down.log", "--inventory-down") as down:
        placed = run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=env)
        assert placed.returncode == 0, placed
        assert run_script("approve.py", order_id, env=env).returncode == 0
        # Attempts 1 s, 2 s, 4 s and 8 s apart: from the fifth on, the next comes 10 s later.
        await eventually(
            lambda: len(re.findall(failed, down.output())) >= 5, "five failed attempts logged"
        )
        down.stop()
    log = down.output()
    attempts = re.findall(failed, log)
    # One line per attempt, each attempt once, no traceback.
    assert attempts == [str(n) for n in range(1, len(attempts) + 1)], log
    assert len(re.findall(rf"Order {order_id}: reserve_inventory failed", log)) == len(attempts)
    assert "Traceback" not in log

    with running_worker(env, tmp_path / "up.log") as up:
        restarted = time.monotonic()
        await eventually(
            lambda: f"Order {order_id} completed" in up.output(),
            "the order to complete after the restart",
            interval=0.1,
        )
        recovered_in = time.monotonic() - restarted
        summary = await delivered(env, order_id)
    # Within 10 s of the restart, as the README says (the next retry), and a moment to deliver.
    assert recovered_in < 11, f"delivered {recovered_in:.1f} s after the restart"
    assert "reserve_inventory failed" not in up.output()
    assert "  approval:      approved by " in summary
    assert ledger(env, order_id) == f"{order_id}: {ONE_OF_EACH}"


async def test_cancel_too_late_once_the_order_is_delivering(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    # The README's worker: each service call takes 4 s, so delivery lasts 4 s.
    env = own_env(e2e_server, tmp_path, ORDER_SERVICE_DELAY="4")
    order_id = new_order_id()
    with running_worker(env, tmp_path / "worker.log") as worker:
        starter = start_script(
            "starter.py", VALID_CARD, "--approval-threshold", "100", "--order-id", order_id,
            "--no-wait", env=env, logs=tmp_path,
        )  # fmt: skip
        # Not 18 s by the clock: the order starts delivering the moment its inventory is
        # reserved, which the worker logs; cancel.py reaches it within its 4 s of delivery.
        await eventually(
            lambda: f"Reserved inventory for order {order_id}: " in worker.output(),
            "the inventory to be reserved",
            interval=0.05,
        )
        refused = run_script("cancel.py", order_id, env=env)
        assert_one_line_error(
            refused,
            f"order {order_id} was not cancelled: too late to cancel: the order is delivering",
        )
        assert refused.stdout == ""
        # The refusal changed nothing: the order is delivered, nothing undone.
        await delivered(env, order_id)
    assert starter.finish() == 0, starter.errors()
    assert ledger(env, order_id) == f"{order_id}: {ONE_OF_EACH}"


@pytest.mark.parametrize(
    ("options", "items", "total"),
    [
        (
            # $3,298.00: above the README's $100, so a threshold above the total skips approval.
            ["--large", "--approval-threshold", "5000"],
            "2 x LAPTOP @ $1,499.00, 5 x HOODIE @ $60.00",
            "$3,298.00",
        ),
        (
            ["--item", "MUG:3", "--item", "HOODIE:1", "--approval-threshold", "100"],
            "3 x MUG @ $12.00, 1 x HOODIE @ $60.00",
            "$96.00",
        ),
        (["--item", "BOOK:2:19.99", "--approval-threshold", "100"], "2 x BOOK @ $19.99", "$39.98"),
    ],
    ids=["large", "catalogue-items", "own-price"],
)
def test_choose_the_order_items_and_total_in_the_summary(
    e2e_env: dict[str, str], e2e_worker: Worker, options: list[str], items: str, total: str
) -> None:
    order_id = new_order_id()
    placed = run_script("starter.py", VALID_CARD, *options, "--order-id", order_id, env=e2e_env)
    assert placed.returncode == 0, placed
    assert placed.stdout.startswith(f"Charged {total} for order {order_id} (txn-"), placed.stdout
    assert "below the approval threshold: no approval needed." in placed.stdout
    assert f"Order {order_id} delivered.\n" in placed.stdout
    assert f"\n  items:         {items}\n  total:         {total}\n" in placed.stdout
    assert "  approval:      not required\n" in placed.stdout


@pytest.mark.parametrize(
    ("options", "denial"),
    [
        (["--item", "LAPTOP:10"], "Order denied: order total is over the $10,000.00 limit"),
        (["--customer", "blocked-customer"], "Order denied: customer blocked-customer is blocked"),
    ],
    ids=["over-the-limit", "blocked-customer"],
)
def test_policy_check_denies_the_order_before_any_payment(
    e2e_env: dict[str, str], e2e_worker: Worker, options: list[str], denial: str
) -> None:
    order_id = new_order_id()
    denied = run_script("starter.py", VALID_CARD, *options, "--order-id", order_id, env=e2e_env)
    assert denied.returncode == 1, denied
    # Neither a charge nor anything to undo: the starter says only why.
    assert denied.stdout == f"Order {order_id} failed: {denial}\n", denied
    assert "Traceback" not in denied.stderr
    assert_one_line_error(
        run_script("ledger.py", order_id, env=e2e_env), f"the ledger has nothing for {order_id}"
    )


async def test_out_of_stock_after_approval_refunds_the_payment(
    e2e_env: dict[str, str], e2e_worker: Worker, tmp_path: Path
) -> None:
    order_id = new_order_id()
    starter = start_script(
        "starter.py", VALID_CARD, "--item", "SOLD-OUT:1", "--order-id", order_id,
        env=e2e_env, logs=tmp_path,
    )  # fmt: skip
    await starter.printed("Waiting for the result")
    assert run_script("approve.py", order_id, env=e2e_env).returncode == 0
    assert starter.finish() == 1, starter.errors()
    out = starter.output()
    assert f"Order {order_id} failed: out of stock: SOLD-OUT\n" in out, out
    assert re.search(r"\n  undone: refund payment: refund-\w+\n", out), out
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 refund"


async def test_bulk_decisions_approve_every_waiting_order_and_each_is_delivered(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = own_env(e2e_server, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        waiting = [new_order_id() for _ in range(3)]
        for order_id in waiting:
            # Time enough for a loaded machine to list and decide them before any expires.
            placed = run_script(
                "starter.py", VALID_CARD, "--approval-timeout", "300", "--order-id", order_id,
                "--no-wait", env=env,
            )  # fmt: skip
            assert placed.returncode == 0, placed
        # approve.py --all-waiting finds them by search attribute, which may lag the orders by
        # a moment: decide only once all of them are listed, as a person would see them.
        awaiting = f"TaskQueue = '{env['ORDER_TASK_QUEUE']}' AND OrderStep = 'awaiting approval'"
        await eventually(
            lambda: (
                f"Total: {len(waiting)}"
                in temporal(e2e_server, None, "workflow", "count", "--query", awaiting).stdout
            ),
            "the waiting orders to be listed",
        )

        approved = run_script("approve.py", "--all-waiting", env=env)
        assert approved.returncode == 0, approved
        *decisions, count = approved.stdout.splitlines()
        one_line = rf"Approved order (\S+) by {re.escape(BY_ME)} at {TIME} UTC\."
        matched = [re.fullmatch(one_line, line) for line in decisions]
        assert all(matched), approved.stdout
        assert sorted(match[1] for match in matched if match) == sorted(waiting)
        assert count == f"{len(waiting)} of {len(waiting)} waiting orders approved."

        for order_id in waiting:
            summary = await delivered(env, order_id)
            assert f"\n  approval:      approved by {BY_ME} at " in summary
    for order_id in waiting:
        assert ledger(env, order_id) == f"{order_id}: {ONE_OF_EACH}"


def test_ledger_without_an_id_lists_every_order_with_its_effects(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = own_env(e2e_server, tmp_path)
    # Named so that ledger.py, which lists by order ID, lists the refunded one first.
    sold_out, shipped = new_order_id("a"), new_order_id("b")
    with running_worker(env, tmp_path / "worker.log"):
        for order_id, item, code in ((shipped, "MUG:1", 0), (sold_out, "SOLD-OUT:1", 1)):
            placed = run_script(
                "starter.py", VALID_CARD, "--item", item, "--approval-threshold", "100",
                "--order-id", order_id, env=env,
            )  # fmt: skip
            assert placed.returncode == code, placed
    listed = run_script("ledger.py", env=env)
    assert listed.returncode == 0, listed
    orders = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    # Every order of this ledger, by ID, with its effects counted...
    assert orders == [f"{sold_out}: 1 charge, 1 refund", f"{shipped}: {ONE_OF_EACH}"]
    effect = r"\n  \S+  {} +{}-\w+"
    assert re.search(
        effect.format("charge", "txn") + effect.format("refund", "refund") + f"\n{shipped}: ",
        listed.stdout,
    ), listed.stdout
    # ...and each effect, as ledger.py ORDER-ID shows it.
    one_by_one = [
        run_script("ledger.py", order_id, env=env).stdout for order_id in (sold_out, shipped)
    ]
    assert listed.stdout == "".join(one_by_one)


async def test_status_shows_the_step_approval_and_total_then_the_summary(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    run_script("starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=e2e_env)
    waiting = await eventually(
        status_saying(e2e_env, order_id, f"Order {order_id}: awaiting approval\n"),
        "the order to await approval",
    )
    assert waiting == (
        f"Order {order_id}: awaiting approval\n  approval:      pending\n  total:         $35.00\n"
    )
    assert run_script("approve.py", order_id, "checked", env=e2e_env).returncode == 0
    summary = await delivered(e2e_env, order_id)
    assert "  items:         1 x T-SHIRT @ $25.00, 2 x STICKERS @ $5.00\n" in summary
    assert re.search(
        rf"\n  approval:      approved by {re.escape(BY_ME)} at {TIME} UTC \(checked\)\n",
        summary,
    )


def test_human_in_the_loop_a_second_decision_is_refused_naming_the_first(
    e2e_env: dict[str, str], e2e_worker: Worker
) -> None:
    order_id = new_order_id()
    # Its inventory fails four times first: the order stays running after the first decision.
    run_script(
        "starter.py", VALID_CARD, "--inventory-down", "--order-id", order_id, "--no-wait",
        env=e2e_env,
    )  # fmt: skip
    first = run_script("approve.py", order_id, "checked the address", env=e2e_env)
    assert first.returncode == 0, first
    decided = re.fullmatch(
        rf"Approved order {order_id} by {re.escape(BY_ME)} at ({TIME}) UTC: checked the address\n",
        first.stdout,
    )
    assert decided, first.stdout
    second = run_script(
        "approve.py", order_id, "--reject", "looks fake", "--by", "bob", env=e2e_env
    )
    assert_one_line_error(
        second,
        f"order {order_id} was already approved by {BY_ME} at {decided[1]} UTC"
        " (checked the address);"
        " your decision did not take effect",
    )


def started_input(server: DevServer, order_id: str) -> tuple[str, bytes]:
    """The order as the server stores it, read with `temporal workflow show`: its payload's
    encoding and its bytes."""
    shown = temporal(server, None, "workflow", "show", "-w", order_id, "--output", "json")
    assert shown.returncode == 0, shown
    started = json.loads(shown.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = started["input"]["payloads"][0]
    encoding = base64.b64decode(payload["metadata"]["encoding"]).decode()
    return encoding, base64.b64decode(payload["data"])


async def test_encryption_off_stores_the_order_in_clear_and_on_it_does_not(
    e2e_server: DevServer, e2e_env: dict[str, str], e2e_worker: Worker, tmp_path: Path
) -> None:
    plain_env = own_env(e2e_server, tmp_path, ORDER_ENCRYPTION="off")
    in_clear, encrypted = new_order_id("clear"), new_order_id("secret")
    with running_worker(plain_env, tmp_path / "worker.log") as plain_worker:
        assert "Encryption is off (ORDER_ENCRYPTION=off)" in plain_worker.output()
        placed = run_script(
            "starter.py", VALID_CARD, "--approval-threshold", "100", "--customer",
            f"{in_clear}@example.com", "--order-id", in_clear, env=plain_env,
        )  # fmt: skip
    assert placed.returncode == 0, placed
    assert f"  customer:      {in_clear}@example.com\n" in placed.stdout
    encoding, data = started_input(e2e_server, in_clear)
    assert encoding == "json/plain"
    assert json.loads(data)["customer"] == f"{in_clear}@example.com"

    placed = run_script(
        "starter.py", VALID_CARD, "--approval-threshold", "100", "--customer",
        f"{encrypted}@example.com", "--order-id", encrypted, env=e2e_env,
    )  # fmt: skip
    assert placed.returncode == 0, placed
    encoding, data = started_input(e2e_server, encrypted)
    assert encoding == "binary/encrypted"
    assert f"{encrypted}@example.com".encode() not in data
