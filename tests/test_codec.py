"""Customer data encrypted end to end: the history, the scripts, key rotation, the codec server."""

import base64
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from support import temporal_cli
from support.scripts import VALID_CARD, assert_one_line_error, new_order_id
from support.temporal_cli import failed_workflow_tasks, ledger, temporal, waiting_order
from temporalio.api.common.v1 import Payload

from command_line.connection import data_converter
from harness.processes import (
    DEADLINE_SECONDS,
    START_ATTEMPTS,
    TEMPORAL_CLI,
    DevServer,
    Worker,
    eventually,
    free_port,
    on_free_ports,
    run_script,
    running_worker,
    script_env,
    status_saying,
    wait_for_port,
    wait_until_serving,
)
from observability.search_attributes import dev_server_options
from payloads.codec import (
    ENCODING,
    KEY_FILE_NAME,
    KEY_ID,
    NULL,
    EncryptionCodec,
    EncryptionError,
    key_id,
)
from payloads.converter import PLAIN

CUSTOMER = "someone@example.com"
ADDRESS = "7 Quiet Lane, Hidden Town"
EXPIRY = VALID_CARD
SECRETS = (CUSTOMER, ADDRESS, EXPIRY)
# Exactly what the README tells users to run to rotate the key in the file named by $KEYS.
ROTATE = (
    '(umask 077 && { openssl rand -base64 32; cat "$KEYS"; } > "$KEYS.new")'
    ' && mv "$KEYS.new" "$KEYS"'
)


@dataclass
class UiDevServer(DevServer):
    """A dev server with its Web UI on, decrypting through the codec server on `codec_port`."""

    ui_port: int = field(default_factory=free_port)
    codec_port: int = field(default_factory=free_port)

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self) -> None:
        # The dev server takes free ports of its own as it starts (its HTTP API, metrics and
        # internal services), and may take the one picked for the codec; and its own may have
        # been taken since they were picked: either way, start it again on other ports.
        for _ in range(START_ATTEMPTS):
            command = [
                str(TEMPORAL_CLI), "server", "start-dev", "--ip", "127.0.0.1",
                "--port", str(self.port), "--ui-port", str(self.ui_port),
                "--ui-codec-endpoint", f"http://localhost:{self.codec_port}",
                "--log-level", "error", *dev_server_options(),
            ]  # fmt: skip
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                wait_for_port(self.port, process=self.process)
                wait_for_port(self.ui_port, process=self.process)
                wait_until_serving(self.address, self.process)
                if port_is_free(self.codec_port):
                    return
            except RuntimeError:  # It exited: one of its ports was taken.
                pass
            self.stop()
            self.port, self.ui_port, self.codec_port = free_port(), free_port(), free_port()
        pytest.fail(f"the dev server could not start on free ports in {START_ATTEMPTS} starts")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class UiStack:
    """The dev server with its Web UI, the scripts' environment for it, and the worker whose codec
    server the Web UI decrypts through."""

    server: UiDevServer
    env: dict[str, str]
    worker: Worker


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    """The Web UI learns the codec's port as it starts: should the worker find that port taken,
    the server and the worker start again on fresh ports."""
    data = tmp_path_factory.mktemp("data")
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    task_queue = f"codec-{uuid.uuid4().hex[:6]}"

    def start() -> UiStack:
        server = UiDevServer()
        server.start()
        # The Web UI's origin, which the worker's codec server lets call it.
        env = script_env(server, data, ORDER_TASK_QUEUE=task_queue, ORDER_WEB_UI=server.ui)
        worker = Worker(env, log, codec_port=server.codec_port)
        try:
            worker.start()
        except BaseException:
            server.stop()
            raise
        return UiStack(server, env, worker)

    stack = on_free_ports(start)
    yield stack
    stack.worker.kill()
    stack.server.stop()


@pytest.fixture(scope="module")
def ui_server(ui_stack: UiStack) -> UiDevServer:
    return ui_stack.server


@pytest.fixture(scope="module")
def ui_env(ui_stack: UiStack) -> dict[str, str]:
    return ui_stack.env


@pytest.fixture(scope="module")
def ui_worker(ui_stack: UiStack) -> Worker:
    return ui_stack.worker


@pytest.fixture(scope="module")
def delivered(ui_env: dict[str, str], ui_worker: Worker) -> tuple[str, str]:
    """An order placed and delivered at once; its ID and the starter's output."""
    order_id = new_order_id("codec")
    placed = run_script(
        "starter.py", EXPIRY, "--customer", CUSTOMER, "--address", ADDRESS,
        "--approval-threshold", "100", "--order-id", order_id, env=ui_env,
    )  # fmt: skip
    assert placed.returncode == 0, placed
    return order_id, placed.stdout


def history(server: UiDevServer, order_id: str, *options: str) -> str:
    """The order's history as `temporal workflow show` prints it."""
    shown = subprocess.run(
        [str(TEMPORAL_CLI), "workflow", "show", "--address", server.address, "-w", order_id,
         *options],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return shown.stdout


# Release 2's patch writes its ID in clear, past any codec: in a marker, and in the search
# attribute the server indexes (TemporalChangeVersion). Neither holds customer data.
PATCH_RECORDS = {"markerRecordedEventAttributes", "upsertWorkflowSearchAttributesEventAttributes"}


def payloads_in(node: Any, patches: bool = False) -> Iterator[dict[str, Any]]:
    """Every payload ({"metadata": ..., "data": ...}) anywhere in a history's JSON; those that
    record the patch only with `patches`."""
    if isinstance(node, dict):
        if "metadata" in node and "encoding" in node["metadata"]:
            yield node
        for key, value in node.items():
            if patches or key not in PATCH_RECORDS:
                yield from payloads_in(value, patches)
    elif isinstance(node, list):
        for value in node:
            yield from payloads_in(value, patches)


def metadata(payload: dict[str, Any], key: str) -> str:
    return base64.b64decode(payload["metadata"][key]).decode()


def holding_values(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The payloads but a bare None (binary/null, left unencrypted), which holds no data."""
    bare = [p for p in payloads if metadata(p, "encoding") == NULL.decode()]
    assert not any(p.get("data") for p in bare)
    return [p for p in payloads if p not in bare]


def assert_nothing_in_clear(history_json: str, *secrets: str) -> list[dict[str, Any]]:
    """Asserts no secret is in the JSON or in any payload's data, the patch's included; returns
    the payloads but the patch's."""
    history_tree = json.loads(history_json)
    payloads = list(payloads_in(history_tree))
    assert payloads
    clear = history_json + "".join(
        base64.b64decode(p.get("data", "")).decode(errors="replace")
        for p in payloads_in(history_tree, patches=True)
    )
    for secret in secrets:
        assert secret not in clear
    return payloads


def request(url: str, headers: dict[str, str], body: bytes | None = None) -> Any:
    """A response (a context manager): a POST with a body, an OPTIONS preflight without."""
    method = "OPTIONS" if body is None else "POST"
    sent = urllib.request.Request(url, data=body, method=method, headers=headers)
    return urllib.request.urlopen(sent, timeout=10)


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


# --- The codec alone -----------------------------------------------------------------------------


async def test_encrypted_payload_hides_its_data_and_names_its_key() -> None:
    key = os.urandom(32)
    codec = EncryptionCodec([key])
    plain = json_payload({"customer": CUSTOMER})

    (encrypted,) = await codec.encode([plain])

    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID] == key_id(key).encode()
    assert CUSTOMER.encode() not in encrypted.data
    assert await codec.decode([encrypted]) == [plain]


async def test_only_a_bare_none_is_left_unencrypted() -> None:
    """binary/null holds no data: encrypting it would cost CPU and bytes and hide nothing."""
    codec = EncryptionCodec([os.urandom(32)])
    none = Payload(metadata={"encoding": NULL})
    smuggled = Payload(metadata={"encoding": NULL}, data=CUSTOMER.encode())

    encoded = await codec.encode([none, smuggled, json_payload(None)])

    assert encoded[0] == none
    assert [p.metadata["encoding"] for p in encoded[1:]] == [ENCODING, ENCODING]
    assert await codec.decode(encoded) == [none, smuggled, json_payload(None)]


async def test_plain_json_from_the_temporal_cli_passes_decode_unchanged() -> None:
    codec = EncryptionCodec([os.urandom(32)])
    approval = json_payload({"reason": "checked the address"})
    assert await codec.decode([approval]) == [approval]


async def test_a_payload_of_an_unknown_key_is_a_one_line_error() -> None:
    (encrypted,) = await EncryptionCodec([os.urandom(32)]).encode([json_payload(1)])
    with pytest.raises(EncryptionError, match=r"encrypted with key [0-9a-f]{16}, which is not in"):
        await EncryptionCodec([os.urandom(32)]).decode([encrypted])


async def test_an_altered_or_forged_payload_goes_on_as_it_came_for_the_workflow_to_refuse() -> None:
    key = os.urandom(32)
    codec = EncryptionCodec([key])
    (encrypted,) = await codec.encode([json_payload({"reason": "ok"})])
    altered = Payload(metadata=encrypted.metadata, data=encrypted.data[:-1] + b"?")
    forged = Payload(metadata={"encoding": ENCODING, KEY_ID: key_id(key).encode()}, data=b"x")
    unlabelled = Payload(metadata={"encoding": ENCODING, KEY_ID: b"not a key id"}, data=b"x")
    # Never an error: a payload a client made up must not fail the workflow task that reads it.
    assert await codec.decode([altered, forged, unlabelled]) == [altered, forged, unlabelled]


@pytest.mark.e2e
def test_a_running_codec_takes_a_rotation_of_its_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    keys.chmod(0o600)
    running = EncryptionCodec.from_key_file(keys)
    (old,) = running.encrypt([json_payload("old")])
    subprocess.run(["bash", "-c", ROTATE], env={**os.environ, "KEYS": str(keys)}, check=True)
    (new,) = EncryptionCodec.from_key_file(keys).encrypt([json_payload("new")])

    assert old.metadata[KEY_ID] != new.metadata[KEY_ID]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    # The running codec never saw the new key, and reads the file again to find it.
    assert running.decrypt([old, new]) == [json_payload("old"), json_payload("new")]


async def test_key_file_is_made_once_in_the_data_dir_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDER_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.delenv("ORDER_ENCRYPTION", raising=False)
    first, second = data_converter(tmp_path), data_converter(tmp_path)
    assert stat.S_IMODE((tmp_path / "encryption.keys").stat().st_mode) == 0o600
    assert first.payload_codec is not None
    assert second.payload_codec is not None
    (encrypted,) = await first.payload_codec.encode([json_payload(1)])
    assert await second.payload_codec.decode([encrypted]) == [json_payload(1)]


def test_encryption_off_is_the_default_converter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDER_ENCRYPTION", "off")
    assert data_converter(tmp_path) is PLAIN
    assert not (tmp_path / "encryption.keys").exists()


# --- End to end ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_history_holds_no_customer_data_in_clear(
    ui_server: UiDevServer, delivered: tuple[str, str]
) -> None:
    order_id, _ = delivered
    payloads = assert_nothing_in_clear(history(ui_server, order_id, "-o", "json"), *SECRETS)
    assert {metadata(p, "encoding") for p in holding_values(payloads)} == {ENCODING.decode()}


@pytest.mark.e2e
async def test_signals_and_updates_are_encrypted_too(
    ui_server: UiDevServer, ui_env: dict[str, str], ui_worker: Worker
) -> None:
    """What an approver and a canceller write is encrypted like the order itself."""
    approved, cancelled = new_order_id("codec"), new_order_id("codec")
    for order_id in (approved, cancelled):
        placed = run_script(
            "starter.py", EXPIRY, "--customer", CUSTOMER, "--address", ADDRESS,
            "--approval-timeout", "600", "--order-id", order_id, "--no-wait", env=ui_env,
        )  # fmt: skip
        assert placed.returncode == 0, placed
    decided = run_script("approve.py", approved, "called the customer", "--by", "Grace", env=ui_env)
    assert decided.returncode == 0, decided
    assert run_script("cancel.py", cancelled, "shop closed", env=ui_env).returncode == 0

    for order_id, event, ended in (
        (approved, "workflowExecutionUpdateAcceptedEventAttributes", "delivered"),
        (cancelled, "workflowExecutionUpdateAcceptedEventAttributes", "failed"),
    ):
        await eventually(status_saying(ui_env, order_id, ended), f"order {order_id} to be {ended}")
        shown = history(ui_server, order_id, "-o", "json")
        assert event in shown
        payloads = assert_nothing_in_clear(
            shown, *SECRETS, "called the customer", "Grace", "shop closed"
        )
        assert {metadata(p, "encoding") for p in holding_values(payloads)} == {ENCODING.decode()}


@pytest.mark.e2e
def test_the_scripts_still_show_the_customer(
    ui_env: dict[str, str], delivered: tuple[str, str]
) -> None:
    order_id, summary = delivered
    assert f"customer:      {CUSTOMER}" in summary
    status = run_script("status.py", order_id, env=ui_env)
    assert status.returncode == 0, status
    assert f"customer:      {CUSTOMER}" in status.stdout


@pytest.mark.e2e
def test_failure_messages_are_encrypted_too(
    ui_server: UiDevServer, ui_env: dict[str, str], ui_worker: Worker
) -> None:
    order_id = new_order_id("codec")
    failed = run_script("starter.py", "12/23", "--order-id", order_id, env=ui_env)
    assert failed.returncode == 1, failed
    assert f"Order {order_id} failed: card expired 12/23" in failed.stdout
    assert_nothing_in_clear(history(ui_server, order_id, "-o", "json"), "card expired", "12/23")


@pytest.mark.e2e
def test_temporal_cli_decrypts_through_the_codec_endpoint(
    ui_server: UiDevServer, delivered: tuple[str, str]
) -> None:
    order_id, _ = delivered
    shown = history(
        ui_server,
        order_id,
        "--detailed",
        "--codec-endpoint",
        f"http://localhost:{ui_server.codec_port}",
    )
    assert f"customer: {CUSTOMER}" in shown
    assert f"shipping_address: {ADDRESS}" in shown


@pytest.mark.e2e
def test_codec_endpoint_round_trips(ui_server: UiDevServer, ui_worker: Worker) -> None:
    endpoint = f"http://localhost:{ui_server.codec_port}"
    original = {
        "payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEyLzMwIg=="}]
    }
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}

    with request(f"{endpoint}/encode", headers, json.dumps(original).encode()) as response:
        encoded = json.load(response)
    (payload,) = encoded["payloads"]
    assert metadata(payload, "encoding") == ENCODING.decode()
    with request(f"{endpoint}/decode", headers, json.dumps(encoded).encode()) as response:
        assert json.load(response) == original


@pytest.mark.e2e
def test_codec_endpoint_leaves_a_payload_of_a_key_it_lacks_as_it_came(
    ui_server: UiDevServer, ui_worker: Worker
) -> None:
    """The Web UI then shows that payload encrypted, and the rest of the page decrypted."""
    endpoint = f"http://localhost:{ui_server.codec_port}"
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    plain = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEyLzMwIg=="}
    with request(f"{endpoint}/encode", headers, json.dumps({"payloads": [plain]}).encode()) as sent:
        (ours,) = json.load(sent)["payloads"]
    (theirs,) = EncryptionCodec([os.urandom(32)]).encrypt([json_payload("12/30")])
    foreign = json.loads(json_format.MessageToJson(theirs))
    both = json.dumps({"payloads": [ours, foreign]}).encode()

    with request(f"{endpoint}/decode", headers, both) as response:
        assert json.load(response)["payloads"] == [plain, foreign]


@pytest.mark.e2e
def test_codec_endpoint_answers_the_web_ui_preflight_and_no_other_page(
    ui_server: UiDevServer, ui_worker: Worker
) -> None:
    def preflight(origin: str) -> Any:
        # What a browser sends before the Web UI's POST with its JSON and X-Namespace.
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        }
        return request(f"http://localhost:{ui_server.codec_port}/decode", headers)

    with preflight(ui_server.ui) as response:
        assert response.headers["Access-Control-Allow-Origin"] == ui_server.ui
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "content-type" in allowed
        assert "x-namespace" in allowed
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        preflight("https://elsewhere.example")
    assert refused.value.code == 403
    assert "Access-Control-Allow-Origin" not in refused.value.headers


@pytest.mark.e2e
def test_web_ui_shows_the_decrypted_order_in_chromium(
    ui_server: UiDevServer, delivered: tuple[str, str], tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    order_id, _ = delivered
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium'}",
        # Time for the page to load the history and have the codec server decrypt it.
        "--dump-dom", "--virtual-time-budget=15000",
        f"{ui_server.ui}/namespaces/default/workflows/{order_id}",
    ]  # fmt: skip
    browser = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # Its own group, so a timeout can stop every process of the browser.
        start_new_session=True,
    )
    try:
        page, _ = browser.communicate(timeout=120)
    finally:
        if browser.poll() is None:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
    assert order_id in page
    assert CUSTOMER in page


@pytest.mark.e2e
async def test_order_placed_before_a_key_rotation_completes(
    ui_server: UiDevServer, tmp_path: Path
) -> None:
    keys = tmp_path / "order.keys"
    subprocess.run(
        ["bash", "-c", '(umask 077 && openssl rand -base64 32 > "$KEYS")'],
        env={**os.environ, "KEYS": str(keys)},
        check=True,
    )
    ui_env = script_env(
        ui_server,
        tmp_path,
        ORDER_TASK_QUEUE=f"rotate-{uuid.uuid4().hex[:6]}",
        ORDER_ENCRYPTION_KEY_FILE=str(keys),
    )
    order_id = new_order_id("codec")
    with running_worker(ui_env, tmp_path / "worker.log", "--codec-port", "0"):
        placed = run_script(
            "starter.py", EXPIRY, "--customer", CUSTOMER, "--approval-timeout", "600",
            "--order-id", order_id, "--no-wait", env=ui_env,
        )  # fmt: skip
        assert placed.returncode == 0, placed
        subprocess.run(["bash", "-c", ROTATE], env={**ui_env, "KEYS": str(keys)}, check=True)
        # The approval is encrypted with the new key, which the worker has not seen yet.
        approved = run_script("approve.py", order_id, env=ui_env)
        assert approved.returncode == 0, approved
        status = await eventually(
            status_saying(ui_env, order_id, f"Order {order_id} delivered."), "the delivery"
        )
    assert f"customer:      {CUSTOMER}" in status
    payloads = assert_nothing_in_clear(history(ui_server, order_id, "-o", "json"), *SECRETS)
    assert len({metadata(p, KEY_ID) for p in holding_values(payloads)}) == 2


@pytest.mark.e2e
def test_unreadable_key_file_is_a_one_line_error(ui_server: UiDevServer, tmp_path: Path) -> None:
    ui_env = script_env(
        ui_server,
        tmp_path,
        ORDER_ENCRYPTION_KEY_FILE=str(tmp_path / "missing.keys"),
    )
    for script, args in (("status.py", ["some-order"]), ("worker.py", [])):
        result = run_script(script, *args, env=ui_env)
        assert_one_line_error(result, "cannot read the encryption key file")
    (tmp_path / "bad.keys").write_text("not a key\n")
    (tmp_path / "bad.keys").chmod(0o600)
    ui_env["ORDER_ENCRYPTION_KEY_FILE"] = str(tmp_path / "bad.keys")
    assert_one_line_error(run_script("status.py", "x", env=ui_env), "line 1: not an AES-256 key")


# --- A key the worker lacks ----------------------------------------------------------------------


async def wait_for_failed_workflow_task(server: DevServer, codec_port: int, order_id: str) -> None:
    await eventually(
        lambda: failed_workflow_tasks(server, codec_port, order_id) > 0,
        f"a workflow task of {order_id} to fail",
        DEADLINE_SECONDS,
    )


async def test_an_approval_in_a_key_the_worker_lacks_waits_for_that_key(
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    codec_port: int,
    codec_worker: Worker,
    tmp_path: Path,
) -> None:
    """A rotation that has not reached the worker's key file yet: the worker cannot tell such a
    key from one that does not exist, so the order waits, and carries on once the key is there."""
    worker_keys = Path(e2e_env["ORDER_DATA_DIR"]) / KEY_FILE_NAME
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated = tmp_path / "rotated.keys"
    rotated.write_text(f"{new_key}\n{worker_keys.read_text()}")
    rotated.chmod(0o600)
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    log_start = len(codec_worker.output())

    sent = run_script(
        "approve.py", order_id, "checked", env=e2e_env | {"ORDER_ENCRYPTION_KEY_FILE": str(rotated)}
    )
    assert sent.returncode == 0, sent
    assert sent.stdout.startswith(f"No worker took the approval of order {order_id} within 10 s")
    await wait_for_failed_workflow_task(e2e_server, codec_port, order_id)
    missing = f"a payload is encrypted with key {key_id(base64.b64decode(new_key))}, which is not"
    log = codec_worker.output()[log_start:]
    assert missing in log
    assert "Traceback" not in log

    with worker_keys.open("a") as keys:  # The rotation reaches the worker: no restart.
        keys.write(f"{new_key}\n")
    assert "UTC (checked)" in await eventually(
        status_saying(e2e_env, order_id, "delivered"), "the expected status"
    )
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"


async def test_a_signal_forged_in_a_key_nobody_has_is_dropped_by_a_reset(
    e2e_server: DevServer, e2e_env: dict[str, str], codec_port: int, codec_worker: Worker
) -> None:
    """The README's remedy for the one message that can stop an order: reset it to before the
    message, leaving signals out, and decide it again."""
    order_id = await waiting_order(e2e_server, e2e_env, codec_port)
    temporal_cli.signal(
        e2e_server, None, order_id, "approve_order",
        "--input-meta", "encoding=binary/encrypted",
        "--input-meta", "encryption-key-id=0123456789abcdef",
        "-i", "{}",
    )  # fmt: skip
    await wait_for_failed_workflow_task(e2e_server, codec_port, order_id)

    reset = temporal(
        e2e_server, codec_port, "workflow", "reset", "-w", order_id, "--type", "LastWorkflowTask",
        "--reapply-exclude", "Signal", "--reason", "drop a forged signal", "--yes",
    )  # fmt: skip
    assert reset.returncode == 0, reset
    await eventually(status_saying(e2e_env, order_id, "awaiting approval"), "awaiting approval")
    assert run_script("approve.py", order_id, env=e2e_env).returncode == 0
    await eventually(status_saying(e2e_env, order_id, "delivered"), "delivered")
    assert ledger(e2e_env, order_id) == f"{order_id}: 1 charge, 1 reservation, 1 shipment, 1 e-mail"
