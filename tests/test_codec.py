"""Customer data encrypted end to end: the history, the scripts, key rotation, the codec server."""

import base64
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from support.scripts import assert_one_line_error, new_order_id
from temporalio.api.common.v1 import Payload

from command_line.connection import data_converter
from harness.processes import (
    TEMPORAL_CLI,
    DevServer,
    Worker,
    eventually,
    free_port,
    run_script,
    running_worker,
    says,
    script_env,
    wait_for_port,
)
from observability.search_attributes import dev_server_options
from payloads.codec import ENCODING, KEY_ID, EncryptionCodec, EncryptionError, key_id
from payloads.converter import PLAIN

CUSTOMER = "someone@example.com"
ADDRESS = "7 Quiet Lane, Hidden Town"
EXPIRY = "12/30"
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
        # internal services), and may take the one picked for the codec: then start it again.
        for _ in range(START_TRIES):
            command = [
                str(TEMPORAL_CLI), "server", "start-dev", "--ip", "127.0.0.1",
                "--port", str(self.port), "--ui-port", str(self.ui_port),
                "--ui-codec-endpoint", f"http://localhost:{self.codec_port}",
                "--log-level", "error", *dev_server_options(),
            ]  # fmt: skip
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for_port(self.port)
            wait_for_port(self.ui_port)
            if port_is_free(self.codec_port):
                return
            self.stop()
            self.port, self.ui_port, self.codec_port = free_port(), free_port(), free_port()
        pytest.fail(f"the dev server took the codec's port in {START_TRIES} starts")


START_TRIES = 5


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def server() -> Iterator[UiDevServer]:
    dev_server = UiDevServer()
    dev_server.start()
    yield dev_server
    dev_server.stop()


@pytest.fixture(scope="module")
def env(server: UiDevServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return script_env(
        server,
        tmp_path_factory.mktemp("data"),
        ORDER_TASK_QUEUE=f"codec-{uuid.uuid4().hex[:6]}",
        # The Web UI's origin, which the worker's codec server lets call it.
        ORDER_WEB_UI=server.ui,
    )


@pytest.fixture(scope="module")
def worker(
    server: UiDevServer, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(env, log, "--codec-port", str(server.codec_port)) as running:
        yield running


@pytest.fixture(scope="module")
def delivered(env: dict[str, str], worker: Worker) -> tuple[str, str]:
    """An order placed and delivered at once; its ID and the starter's output."""
    order_id = new_order_id("codec")
    placed = run_script(
        "starter.py", EXPIRY, "--customer", CUSTOMER, "--address", ADDRESS,
        "--approval-threshold", "100", "--order-id", order_id, env=env,
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
    server: UiDevServer, delivered: tuple[str, str]
) -> None:
    order_id, _ = delivered
    payloads = assert_nothing_in_clear(history(server, order_id, "-o", "json"), *SECRETS)
    assert {metadata(p, "encoding") for p in payloads} == {ENCODING.decode()}


@pytest.mark.e2e
def test_signals_and_updates_are_encrypted_too(
    server: UiDevServer, env: dict[str, str], worker: Worker
) -> None:
    """What an approver and a canceller write is encrypted like the order itself."""
    approved, cancelled = new_order_id("codec"), new_order_id("codec")
    for order_id in (approved, cancelled):
        placed = run_script(
            "starter.py", EXPIRY, "--customer", CUSTOMER, "--address", ADDRESS,
            "--approval-timeout", "600", "--order-id", order_id, "--no-wait", env=env,
        )  # fmt: skip
        assert placed.returncode == 0, placed
    decided = run_script("approve.py", approved, "called the customer", "--by", "Grace", env=env)
    assert decided.returncode == 0, decided
    assert run_script("cancel.py", cancelled, "shop closed", env=env).returncode == 0

    for order_id, event, ended in (
        (approved, "workflowExecutionUpdateAcceptedEventAttributes", "delivered"),
        (cancelled, "workflowExecutionUpdateAcceptedEventAttributes", "failed"),
    ):
        eventually(says(env, order_id, ended), f"order {order_id} to be {ended}")
        shown = history(server, order_id, "-o", "json")
        assert event in shown
        payloads = assert_nothing_in_clear(
            shown, *SECRETS, "called the customer", "Grace", "shop closed"
        )
        assert {metadata(p, "encoding") for p in payloads} == {ENCODING.decode()}


@pytest.mark.e2e
def test_the_scripts_still_show_the_customer(
    env: dict[str, str], delivered: tuple[str, str]
) -> None:
    order_id, summary = delivered
    assert f"customer:      {CUSTOMER}" in summary
    status = run_script("status.py", order_id, env=env)
    assert status.returncode == 0, status
    assert f"customer:      {CUSTOMER}" in status.stdout


@pytest.mark.e2e
def test_failure_messages_are_encrypted_too(
    server: UiDevServer, env: dict[str, str], worker: Worker
) -> None:
    order_id = new_order_id("codec")
    failed = run_script("starter.py", "12/23", "--order-id", order_id, env=env)
    assert failed.returncode == 1, failed
    assert f"Order {order_id} failed: card expired 12/23" in failed.stdout
    assert_nothing_in_clear(history(server, order_id, "-o", "json"), "card expired", "12/23")


@pytest.mark.e2e
def test_temporal_cli_decrypts_through_the_codec_endpoint(
    server: UiDevServer, delivered: tuple[str, str]
) -> None:
    order_id, _ = delivered
    shown = history(
        server, order_id, "--detailed", "--codec-endpoint", f"http://localhost:{server.codec_port}"
    )
    assert f"customer: {CUSTOMER}" in shown
    assert f"shipping_address: {ADDRESS}" in shown


@pytest.mark.e2e
def test_codec_endpoint_round_trips(server: UiDevServer, worker: Worker) -> None:
    endpoint = f"http://localhost:{server.codec_port}"
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
    server: UiDevServer, worker: Worker
) -> None:
    """The Web UI then shows that payload encrypted, and the rest of the page decrypted."""
    endpoint = f"http://localhost:{server.codec_port}"
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
    server: UiDevServer, worker: Worker
) -> None:
    def preflight(origin: str) -> Any:
        # What a browser sends before the Web UI's POST with its JSON and X-Namespace.
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        }
        return request(f"http://localhost:{server.codec_port}/decode", headers)

    with preflight(server.ui) as response:
        assert response.headers["Access-Control-Allow-Origin"] == server.ui
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
    server: UiDevServer, delivered: tuple[str, str], tmp_path: Path
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
        f"{server.ui}/namespaces/default/workflows/{order_id}",
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
def test_order_placed_before_a_key_rotation_completes(server: UiDevServer, tmp_path: Path) -> None:
    keys = tmp_path / "order.keys"
    subprocess.run(
        ["bash", "-c", '(umask 077 && openssl rand -base64 32 > "$KEYS")'],
        env={**os.environ, "KEYS": str(keys)},
        check=True,
    )
    env = script_env(
        server,
        tmp_path,
        ORDER_TASK_QUEUE=f"rotate-{uuid.uuid4().hex[:6]}",
        ORDER_ENCRYPTION_KEY_FILE=str(keys),
    )
    order_id = new_order_id("codec")
    with running_worker(env, tmp_path / "worker.log", "--codec-port", "0"):
        placed = run_script(
            "starter.py", EXPIRY, "--customer", CUSTOMER, "--approval-timeout", "600",
            "--order-id", order_id, "--no-wait", env=env,
        )  # fmt: skip
        assert placed.returncode == 0, placed
        subprocess.run(["bash", "-c", ROTATE], env={**env, "KEYS": str(keys)}, check=True)
        # The approval is encrypted with the new key, which the worker has not seen yet.
        approved = run_script("approve.py", order_id, env=env)
        assert approved.returncode == 0, approved
        status = wait_for_delivery(env, order_id)
    assert f"customer:      {CUSTOMER}" in status
    payloads = assert_nothing_in_clear(history(server, order_id, "-o", "json"), *SECRETS)
    assert len({metadata(p, KEY_ID) for p in payloads}) == 2


def wait_for_delivery(env: dict[str, str], order_id: str) -> str:
    """status.py's answer once the order is delivered."""
    deadline = time.monotonic() + 60
    while True:
        status = run_script("status.py", order_id, env=env)
        if f"Order {order_id} delivered." in status.stdout:
            return status.stdout
        assert time.monotonic() < deadline, status
        time.sleep(0.5)


@pytest.mark.e2e
def test_unreadable_key_file_is_a_one_line_error(server: UiDevServer, tmp_path: Path) -> None:
    env = script_env(
        server,
        tmp_path,
        ORDER_ENCRYPTION_KEY_FILE=str(tmp_path / "missing.keys"),
    )
    for script, args in (("status.py", ["some-order"]), ("worker.py", [])):
        result = run_script(script, *args, env=env)
        assert_one_line_error(result, "cannot read the encryption key file")
    (tmp_path / "bad.keys").write_text("not a key\n")
    (tmp_path / "bad.keys").chmod(0o600)
    env["ORDER_ENCRYPTION_KEY_FILE"] = str(tmp_path / "bad.keys")
    assert_one_line_error(run_script("status.py", "x", env=env), "line 1: not an AES-256 key")
