"""Orders started from the official Temporal CLI: malformed, forged or with extra fields, and
placed with Update-with-Start as the starter places them. None is stuck, none charged twice."""

from pathlib import Path

import pytest
from support.scripts import new_order_id
from support.temporal_cli import (
    VALID,
    as_input,
    failed_workflow_tasks,
    ledger,
    start,
    update_with_start,
)

from harness.processes import (
    DevServer,
    Worker,
    eventually,
    run_script,
    status_saying,
)
from payloads.codec import KEY_FILE_NAME, key_id, read_keys

pytestmark = pytest.mark.e2e


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
    "a customer that would erase the terminal's line": (
        ["-i", as_input(VALID | {"customer": "ada\u001b[2K"})],
        "customer: must not contain control or format characters (found U+001B)",
    ),
    "a SKU that would turn the line around": (
        [
            "-i",
            as_input(
                VALID | {"items": [{"sku": "MUG\u202e", "quantity": 2, "unit_price_cents": 1200}]}
            ),
        ],
        "items[0].sku: must not contain control or format characters (found U+202E)",
    ),
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
async def test_malformed_start_fails_at_once_as_invalid_order_and_charges_nothing(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    inputs: list[str],
    problem: str,
) -> None:
    order_id = new_order_id("cli")
    start(e2e_server, e2e_env, codec_port, order_id, *inputs)
    status = await eventually(status_saying(e2e_env, order_id, "failed"), "the expected status")
    assert f"Order {order_id} failed: Invalid order: " in status
    assert problem in status
    assert ledger(e2e_env, order_id) == f"error: the ledger has nothing for {order_id}"
    assert failed_workflow_tasks(e2e_server, codec_port, order_id) == 0


async def test_a_start_forged_with_the_workers_own_key_id_is_refused_not_retried(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    """Plain JSON claiming to be ciphertext of the real key: it cannot be decrypted, ever. Sent
    without the codec endpoint, so the worker's codec meets it as the CLI made it."""
    (key, *_) = read_keys(Path(e2e_env["ORDER_DATA_DIR"]) / KEY_FILE_NAME)
    order_id = new_order_id("cli")
    start(
        e2e_server, e2e_env, None, order_id,
        "--input-meta", "encoding=binary/encrypted",
        "--input-meta", f"encryption-key-id={key_id(key)}",
        "-i", as_input(VALID),
    )  # fmt: skip
    status = await eventually(status_saying(e2e_env, order_id, "failed"), "the expected status")
    refused = "Invalid order: not JSON (encoding binary/encrypted)\n"
    assert f"Order {order_id} failed: {refused}" in status
    assert ledger(e2e_env, order_id) == f"error: the ledger has nothing for {order_id}"
    assert failed_workflow_tasks(e2e_server, codec_port, order_id) == 0


async def test_extra_fields_are_ignored_and_the_order_goes_through(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = new_order_id("cli")
    order = VALID | {"approval_threshold_cents": 10_000, "coupon": "FREE", "gift_wrap": True}
    start(e2e_server, e2e_env, codec_port, order_id, "-i", as_input(order))
    assert f"Order {order_id} delivered." in await eventually(
        status_saying(e2e_env, order_id, "delivered"), "the expected status"
    )
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


def test_update_with_start_from_the_cli_places_an_order_as_the_starter_does(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    order_id = new_order_id("cli")
    placed = update_with_start(e2e_server, e2e_env, codec_port, order_id, VALID)
    assert placed.returncode == 0, placed
    assert "amount_cents:2400" in placed.stdout
    assert "transaction_id:txn-" in placed.stdout
    assert "awaits_approval:true" in placed.stdout
    assert "awaiting approval" in run_script("status.py", order_id, env=e2e_env).stdout
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge"

    expired = new_order_id("cli")
    refused = update_with_start(
        e2e_server, e2e_env, codec_port, expired, VALID | {"card_expiry": "12/23"}
    )
    assert refused.returncode == 1, refused
    assert "card expired 12/23 (type: CardExpired" in refused.stderr
    again = update_with_start(e2e_server, e2e_env, codec_port, order_id, VALID)
    assert again.returncode == 1, again
    assert "already" in again.stderr.lower(), again
