"""The codec server decrypts only for those who may; keys, data and logs are kept like secrets."""

import base64
import errno
import http.client
import json
import logging
import os
import socket
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.issuer import AUDIENCE, Issuer, local_issuer
from support.scripts import assert_one_line_error, new_order_id
from temporalio.api.common.v1 import Payload, Payloads

from harness.processes import (
    TEMPORAL_CLI,
    DevServer,
    PortTaken,
    eventually,
    free_port,
    on_free_ports,
    raise_if_port_taken,
    run_script,
    running_worker,
    script_env,
    status_saying,
)
from local.errors import UserError
from payloads import codec_server
from payloads.codec import (
    KEY_ID,
    NONCE_BYTES,
    EncryptionCodec,
    EncryptionError,
    create_key_file,
    key_id,
    read_keys,
)
from payloads.codec_auth import AnyLocalUser, Authorizer, OidcTokens, OidcUsers, StaticToken
from payloads.codec_server import MAX_BODY_BYTES, MAX_PAYLOADS, CodecServer, serve_codec
from shop.services import Ledger

WEB_UI = "http://localhost:18233"
PLAIN_PAYLOAD = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEyLzMwIg=="}
ONE_PAYLOAD = json.dumps({"payloads": [PLAIN_PAYLOAD]}).encode()


@pytest.fixture
def codec(tmp_path: Path) -> EncryptionCodec:
    keys = tmp_path / "data" / "encryption.keys"
    create_key_file(keys)
    return EncryptionCodec.from_key_file(keys)


@contextmanager
def serving(codec: EncryptionCodec, authorizer: Authorizer | None = None) -> Iterator[int]:
    """A codec server on a free port that lets the Web UI at WEB_UI call it; yields the port."""

    def start() -> tuple[CodecServer, int]:
        port = free_port()
        try:
            return CodecServer(codec, port, frozenset({WEB_UI}), authorizer), port
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            raise PortTaken(f"port {port}: {err.strerror}") from err

    server, port = on_free_ports(start)
    try:
        yield port
    finally:
        server.close()


def post(
    port: int,
    body: bytes = ONE_PAYLOAD,
    path: str = "/decode",
    method: str = "POST",
    **headers: str,
) -> tuple[int, bytes]:
    """A request as the CLI sends one (Host localhost:PORT, JSON), with `headers` on top."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = {"Host": f"localhost:{port}", "Content-Type": "application/json"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    try:
        connection.request(method, path, body, sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def first_line_unread(port: int, head: str) -> bytes:
    """The status line the server sends to request headers whose body never comes: it answers
    without reading, or the read would time out."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        return sock.recv(100).split(b"\r\n")[0]


def head(port: int, *headers: str, length: int = 1000) -> str:
    lines = ["POST /decode HTTP/1.1", f"Content-Length: {length}", *headers]
    if not any(line.startswith("Host:") for line in lines):
        lines.append(f"Host: localhost:{port}")
    return "\r\n".join(lines) + "\r\n\r\n"


# --- Authorization -----------------------------------------------------------------------------


def test_token_mode_makes_a_private_token_beside_the_key_and_refuses_requests_without_it(
    codec: EncryptionCodec,
) -> None:
    assert codec.key_file is not None
    token = StaticToken.beside(codec.key_file)
    path = codec.key_file.with_name("codec.token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token.header == f"Bearer {path.read_text().strip()}"
    with serving(codec, token) as port:
        assert post(port)[0] == 401
        assert post(port, Authorization="Bearer totally-invalid")[0] == 401
        assert post(port, Authorization=token.header.lower())[0] == 401
        status, body = post(port, Authorization=token.header)
    assert status == 200
    assert json.loads(body) == {"payloads": [PLAIN_PAYLOAD]}


def test_token_mode_refuses_before_reading_the_body(codec: EncryptionCodec) -> None:
    assert codec.key_file is not None
    with serving(codec, StaticToken.beside(codec.key_file)) as port:
        assert first_line_unread(port, head(port)) == b"HTTP/1.1 401 Unauthorized"


def test_a_token_file_open_to_others_is_refused_with_the_chmod_to_run(
    codec: EncryptionCodec,
) -> None:
    assert codec.key_file is not None
    path = codec.key_file.with_name("codec.token")
    path.write_text("a-token\n")
    path.chmod(0o644)
    with pytest.raises(UserError, match=f"run chmod 600 {path}"):
        StaticToken.beside(codec.key_file)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with local_issuer() as running:
        yield running


def oidc(issuer: Issuer, *allowed: str) -> OidcUsers:
    return OidcUsers(OidcTokens(issuer.url, AUDIENCE), frozenset(allowed))


def test_oidc_decodes_for_a_listed_user_with_a_valid_token(
    codec: EncryptionCodec, issuer: Issuer
) -> None:
    with serving(codec, oidc(issuer, "Grace@Example.com")) as port:
        status, body = post(port, Authorization=f"Bearer {issuer.token('grace@example.com')}")
    assert status == 200
    assert json.loads(body) == {"payloads": [PLAIN_PAYLOAD]}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no token", 401),
        ("not a token", 401),
        ("expired", 401),
        ("wrong audience", 401),
        ("wrong issuer", 401),
        ("wrong key", 401),
        ("not on the list", 403),
    ],
)
def test_oidc_refuses_and_decodes_nothing(
    codec: EncryptionCodec, issuer: Issuer, case: str, status: int
) -> None:
    (encrypted,) = codec.encrypt([Payload(metadata={"encoding": b"json/plain"}, data=b'"12/30"')])
    body = json_format.MessageToJson(Payloads(payloads=[encrypted])).encode()
    tokens = {
        "no token": None,
        "not a token": "Bearer not-a-jwt",
        "expired": f"Bearer {issuer.token('grace@example.com', expires_in=-120)}",
        "wrong audience": f"Bearer {issuer.token('grace@example.com', audience='another')}",
        "wrong issuer": f"Bearer {issuer.token('grace@example.com', issuer='https://elsewhere')}",
        "wrong key": "Bearer "
        + issuer.token(
            "grace@example.com", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "not on the list": f"Bearer {issuer.token('mallory@example.com')}",
    }
    authorization = tokens[case]
    with serving(codec, oidc(issuer, "grace@example.com")) as port:
        answer = post(port, body, **({"Authorization": authorization} if authorization else {}))
    assert answer[0] == status
    assert b"12/30" not in answer[1]
    assert b"payloads" not in answer[1]


# --- Host, Origin, Content-Type ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_the_loopback_names_are_answered(codec: EncryptionCodec, host: str) -> None:
    with serving(codec) as port:
        assert post(port, Host=f"{host}:{port}")[0] == 200


@pytest.mark.parametrize("host", ["rebound.example:{port}", "localhost", "localhost:1", ""])
def test_any_other_host_is_refused_as_dns_rebinding_would_send(
    codec: EncryptionCodec, host: str
) -> None:
    with serving(codec) as port:
        status, body = post(port, Host=host.format(port=port))
    assert status == 421
    assert b"payloads" not in body


def test_a_page_of_another_origin_is_refused_before_its_body_is_read(
    codec: EncryptionCodec,
) -> None:
    with serving(codec) as port:
        refused = first_line_unread(port, head(port, "Origin: http://localhost:9999"))
        preflight = post(port, b"", method="OPTIONS", Origin="http://localhost:9999")[0]
        allowed = post(port, Origin=WEB_UI)[0]
    assert refused == b"HTTP/1.1 403 Forbidden"
    assert preflight == 403
    assert allowed == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_only_json_is_accepted_so_that_a_browser_must_ask_first(
    codec: EncryptionCodec, content_type: str
) -> None:
    with serving(codec) as port:
        assert post(port, Content_Type=content_type)[0] == 415


# --- Bounded -------------------------------------------------------------------------------------


def test_a_body_past_the_cap_is_refused_unread(codec: EncryptionCodec) -> None:
    with serving(codec) as port:
        answer = first_line_unread(
            port, head(port, "Content-Type: application/json", length=MAX_BODY_BYTES + 1)
        )
        assert answer == b"HTTP/1.1 413 Request Entity Too Large"
        assert post(port)[0] == 200


def test_too_many_payloads_in_one_request_are_refused(codec: EncryptionCodec) -> None:
    many = json.dumps({"payloads": [PLAIN_PAYLOAD] * (MAX_PAYLOADS + 1)}).encode()
    with serving(codec) as port:
        assert post(port, many)[0] == 413


async def test_a_slow_loris_holds_no_more_than_the_cap_and_lets_go_after_the_timeout(
    codec: EncryptionCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap, timeout = 4, 6
    monkeypatch.setattr(codec_server, "MAX_CONNECTIONS", cap)
    monkeypatch.setattr(codec_server._Handler, "timeout", timeout)
    with serving(codec) as port, ExitStack() as stack:
        threads_before = set(threading.enumerate())
        # Half-sent requests, as a slow-loris sends them, never finished: far more than the cap
        # and the server's accept backlog (5) together.
        loris = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(4 * cap)
        ]
        for sock in loris:
            sock.sendall(b"POST /decode HTTP/1.1\r\nHost: ")
            sock.setblocking(False)
        closed: set[socket.socket] = set()

        def closed_now() -> set[socket.socket]:
            closed.update(sock for sock in loris if sock not in closed and _closed_by_server(sock))
            return closed

        # At once: well before the timeout would close them anyway.
        await eventually(
            lambda: len(closed_now()) >= len(loris) - cap,
            "the connections beyond the cap to be closed",
            within=timeout / 2,
        )
        assert len(closed_now()) == len(loris) - cap
        assert len(_handler_threads(threads_before)) == cap
        await eventually(
            lambda: len(closed_now()) == len(loris),
            "the held connections to be let go after the timeout",
            within=10 * timeout,
        )
        await eventually(lambda: _answers(port), "the codec server to answer again", within=30)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (it sends nothing else to a slow-loris)."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:  # Still open, nothing to read.
        return False
    except ConnectionResetError:  # Closed with the request unread.
        return True


def _handler_threads(threads_before: set[threading.Thread]) -> set[threading.Thread]:
    """The threads started since `threads_before`, taken once the codec server was serving: its
    threads that handle a connection each."""
    return set(threading.enumerate()) - threads_before


def _answers(port: int) -> bool:
    try:
        return post(port)[0] == 200
    except OSError:
        return False


def test_log_lines_are_short_and_escaped_and_bodies_hold_no_exception_text(
    codec: EncryptionCodec, caplog: pytest.LogCaptureFixture
) -> None:
    injected = b"not json\nFAKE 12:00:00 Order forged: delivered\n" + b"x" * 100_000
    with serving(codec) as port, caplog.at_level(logging.WARNING, logger=codec_server.logger.name):
        status, body = post(port, injected)
    assert status == 400
    assert body == b"not Temporal payloads JSON\n"
    (record,) = caplog.records
    line = record.getMessage()
    assert "\n" not in line
    assert len(line) < 200


async def test_a_client_that_goes_away_leaves_nothing_in_the_log(
    codec: EncryptionCodec, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(codec) as port, caplog.at_level(logging.DEBUG, logger=codec_server.logger.name):
        threads_before = set(threading.enumerate())
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(head(port, "Content-Type: application/json").encode() + b"{")
        await eventually(lambda: _answers(port), "the codec server to answer")
        # Whatever the server would log of those connections, it has logged once it is done.
        await eventually(
            lambda: not _handler_threads(threads_before),
            "the codec server to be done with every connection",
            within=30,
        )
    assert caplog.records == []


def test_the_key_file_is_read_at_most_once_per_request(
    codec: EncryptionCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    (foreign,) = EncryptionCodec([os.urandom(32)]).encrypt([Payload(data=b"1")])
    many = json_format.MessageToJson(Payloads(payloads=[foreign] * MAX_PAYLOADS))
    reads: list[Path] = []

    def counted_read(path: Path) -> bytes:
        reads.append(path)
        return path.read_bytes()

    monkeypatch.setattr("payloads.codec.read_secret", counted_read)
    with serving(codec) as port:
        status, body = post(port, many.encode())
    assert status == 200
    assert len(json.loads(body)["payloads"]) == MAX_PAYLOADS
    assert len(reads) == 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
            max_leaves=20,
        ).map(lambda value: json.dumps({"payloads": value}).encode()),
    ),
    path=st.sampled_from(["/decode", "/encode", "/x/decode", "/", "/%00"]),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain"]
    ),
)
def test_fuzzed_requests_get_no_5xx_and_no_hang(
    fuzzed_server: int, body: bytes, path: str, content_type: str
) -> None:
    status, _ = post(fuzzed_server, body, path, Content_Type=content_type)
    assert status < 500


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    keys = tmp_path_factory.mktemp("fuzz") / "encryption.keys"
    create_key_file(keys)
    with serving(EncryptionCodec.from_key_file(keys)) as port:
        yield port


# --- Squatting -----------------------------------------------------------------------------------


def test_a_port_held_by_a_stranger_is_refused(codec: EncryptionCodec) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(UserError, match=f"localhost:{port} is taken .* not a codec server"):
            serve_codec(codec, port, WEB_UI, AnyLocalUser())


def test_a_codec_server_of_another_key_is_a_stranger_too(codec: EncryptionCodec) -> None:
    other = EncryptionCodec([os.urandom(32)])
    with serving(other) as port, pytest.raises(UserError, match="not a codec server"):
        serve_codec(codec, port, WEB_UI, AnyLocalUser())


def test_a_codec_server_of_the_same_keys_is_another_worker_and_is_used(
    codec: EncryptionCodec,
) -> None:
    assert codec.key_file is not None
    with serving(EncryptionCodec.from_key_file(codec.key_file)) as port:
        assert serve_codec(codec, port, WEB_UI, AnyLocalUser()) == (
            None,
            f"http://localhost:{port}",
        )


# --- Keys and data -------------------------------------------------------------------------------


def test_a_key_file_open_to_others_is_refused_with_the_chmod_to_run(tmp_path: Path) -> None:
    keys = tmp_path / "encryption.keys"
    create_key_file(keys)
    keys.chmod(0o644)
    with pytest.raises(EncryptionError, match=f"open to group or others .* chmod 600 {keys}$"):
        read_keys(keys)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user takes root")
def test_a_key_file_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "encryption.keys"
    create_key_file(keys)
    os.chown(keys, 65534, -1)  # nobody
    with pytest.raises(EncryptionError, match="belongs to another user"):
        read_keys(keys)


def test_a_binary_key_file_is_a_one_line_error_that_echoes_none_of_it(tmp_path: Path) -> None:
    keys = tmp_path / "encryption.keys"
    create_key_file(keys)
    secret = b"\xff\xfe s3cr3t \x00"
    keys.write_bytes(base64.b64encode(os.urandom(32)) + b"\n" + secret + b"\n")
    with pytest.raises(EncryptionError) as refused:
        read_keys(keys)
    assert str(refused.value).startswith(f"{keys}, line 2: not an AES-256 key")
    assert "s3cr3t" not in str(refused.value)
    assert "\\x" not in str(refused.value)


def test_the_data_dir_and_the_ledger_with_its_wal_are_this_users_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    ledger = Ledger(data / "ledger.sqlite3")
    ledger.record("o-1/charge", "o-1", "charge", "txn-1")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("ledger.sqlite3", "ledger.sqlite3-wal"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    ledger.close()


def test_key_id_and_encoding_are_bound_to_the_ciphertext() -> None:
    key = os.urandom(32)
    (encrypted,) = EncryptionCodec([key]).encrypt([Payload(data=b'"12/30"')])
    nonce, ciphertext = encrypted.data[:NONCE_BYTES], encrypted.data[NONCE_BYTES:]
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(nonce, ciphertext, None)
    assert encrypted.metadata[KEY_ID] == key_id(key).encode()


def test_a_payload_written_before_the_binding_still_decrypts() -> None:
    key = os.urandom(32)
    nonce = os.urandom(NONCE_BYTES)
    plain = Payload(data=b'"12/30"')
    legacy = Payload(
        metadata={"encoding": b"binary/encrypted", KEY_ID: key_id(key).encode()},
        data=nonce + AESGCM(key).encrypt(nonce, plain.SerializeToString(), None),
    )
    assert EncryptionCodec([key]).decrypt([legacy]) == [plain]


# --- End to end: the worker, the CLI and the logs ------------------------------------------------

CUSTOMER = "zelda.quartz@example.org"
ADDRESS = "99 Cipher Row, Nowhere"
EXPIRY = "07/38"
EXPIRED = "02/19"
BLOCKED = "blocked-customer"
PERSONAL = (CUSTOMER, ADDRESS, EXPIRY, EXPIRED, BLOCKED, "zelda", "Cipher Row")


@pytest.mark.e2e
def test_a_worker_on_a_squatted_port_says_so_and_does_not_start(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        refused = run_script(
            "worker.py", "--codec-port", str(port), env=script_env(e2e_server, tmp_path), timeout=60
        )
    assert_one_line_error(refused, f"localhost:{port} is taken")


@pytest.mark.e2e
@pytest.mark.parametrize("served", ["codec", "metrics"])
def test_a_test_worker_whose_port_is_squatted_starts_again_on_another(
    e2e_server: DevServer, tmp_path: Path, served: str
) -> None:
    """A port taken between the harness's choice and the worker's bind: the first port the
    harness chooses is squatted, and the worker comes up on the next."""
    env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"squat-{uuid.uuid4().hex[:6]}")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        squatted = squatter.getsockname()[1]
        first_choices = iter([squatted])

        def squatted_first() -> int:
            return next(first_choices, 0) or free_port()

        with running_worker(
            env, tmp_path / "worker.log", codec=served == "codec", metrics=served == "metrics",
            choose_port=squatted_first,
        ) as worker:  # fmt: skip
            port = worker.codec_port or worker.metrics_port
            output = worker.output()
    refused, serving = {
        "codec": (
            f"error: localhost:{squatted} is taken (Address already in use)",
            f"Codec server on http://localhost:{port} for anyone on this machine:",
        ),
        "metrics": (
            f"error: cannot serve metrics on 127.0.0.1:{squatted}: ",
            f"Metrics on http://127.0.0.1:{port}/metrics",
        ),
    }[served]
    assert port != squatted
    assert refused in output, output
    assert serving in output.split(refused, 1)[1], output
    assert "Worker polling" in output


@pytest.mark.e2e
def test_token_mode_decrypts_for_the_cli_with_the_token_only(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    e2e_env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"token-{uuid.uuid4().hex[:6]}")
    with running_worker(
        e2e_env, tmp_path / "worker.log", "--codec-auth", "token", codec=True
    ) as e2e_worker:
        port = e2e_worker.codec_port
        order_id = place_order(e2e_env, "token")
        token = (tmp_path / "codec.token").read_text().strip()
        assert f'--codec-auth "Bearer $(cat {tmp_path / "codec.token"})"' in e2e_worker.output()

        log_start = len(e2e_worker.output())
        wrong = show_decoded(e2e_server, order_id, port, "Bearer totally-invalid")
        assert_refused_by_the_codec_server(
            wrong, e2e_worker.output()[log_start:], "401: the codec token is missing or wrong"
        )
        right = show_decoded(e2e_server, order_id, port, f"Bearer {token}")
        assert right.returncode == 0, right
        assert f"customer: {CUSTOMER}" in right.stdout


@pytest.mark.e2e
def test_oidc_mode_decrypts_for_the_cli_of_a_listed_user_only(
    e2e_server: DevServer, issuer: Issuer, tmp_path: Path
) -> None:
    e2e_env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"oidc-{uuid.uuid4().hex[:6]}")
    with running_worker(
        e2e_env, tmp_path / "worker.log", "--codec-auth", "oidc",
        "--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE,
        "--codec-allow", "grace@example.com", codec=True,
    ) as e2e_worker:  # fmt: skip
        port = e2e_worker.codec_port
        order_id = place_order(e2e_env, "oidc")

        log_start = len(e2e_worker.output())
        not_listed = f"Bearer {issuer.token('mallory@example.com')}"
        refused = show_decoded(e2e_server, order_id, port, not_listed)
        assert_refused_by_the_codec_server(
            refused, e2e_worker.output()[log_start:], "403: this user may not read orders"
        )
        listed = f"Bearer {issuer.token('grace@example.com')}"
        grace = show_decoded(e2e_server, order_id, port, listed)
        assert grace.returncode == 0, grace
        assert f"customer: {CUSTOMER}" in grace.stdout


@pytest.mark.e2e
def test_oidc_mode_with_an_unreachable_issuer_is_a_one_line_error(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"

    def start() -> subprocess.CompletedProcess[str]:
        # A codec port taken before the worker binds it would be another refusal: start again.
        codec_port = free_port()
        refused = run_script(
            "worker.py", "--codec-port", str(codec_port), "--codec-auth", "oidc",
            "--oidc-issuer", unreachable, "--oidc-audience", AUDIENCE,
            "--codec-allow", "grace@example.com",
            env=script_env(e2e_server, tmp_path), timeout=60,
        )  # fmt: skip
        raise_if_port_taken(refused.returncode, refused.stderr, codec_port)
        return refused

    refused = on_free_ports(start)
    assert_one_line_error(refused, unreachable)
    assert "Worker polling" not in refused.stdout


def place_order(env: dict[str, str], prefix: str) -> str:
    """Places an order of CUSTOMER's that needs no approval; returns its ID."""
    order_id = new_order_id(prefix)
    placed = run_script(
        "starter.py", EXPIRY, "--customer", CUSTOMER, "--approval-threshold", "100000",
        "--order-id", order_id, env=env,
    )  # fmt: skip
    assert placed.returncode == 0, placed
    return order_id


def show_decoded(
    server: DevServer, order_id: str, codec_port: int, authorization: str
) -> subprocess.CompletedProcess[str]:
    """`temporal workflow show` of the order, decoded by the codec server on `codec_port`."""
    return temporal_cli(
        "workflow", "show", "--address", server.address, "-w", order_id, "--detailed",
        "--codec-endpoint", f"http://localhost:{codec_port}", "--codec-auth", authorization,
    )  # fmt: skip


def assert_refused_by_the_codec_server(
    shown: subprocess.CompletedProcess[str], worker_log: str, refusal: str
) -> None:
    """The CLI showed none of the order, because the codec server refused each of its requests
    with `refusal` (status and reason), as the worker's log says: it neither decoded nor failed."""
    assert shown.returncode == 1, shown
    assert shown.stderr.startswith("Error: displaying history failed"), shown
    assert CUSTOMER not in shown.stdout + shown.stderr
    lines = [line for line in worker_log.splitlines() if "Codec server: " in line]
    assert lines, worker_log
    for line in lines:
        assert line.endswith(f"Codec server: refused a request ({refusal})"), line


def temporal_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The official CLI, with what it printed and its exit code."""
    return subprocess.run(
        [str(TEMPORAL_CLI), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.e2e
async def test_no_customer_data_reaches_the_worker_log_in_any_scenario(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    e2e_env = script_env(e2e_server, tmp_path, ORDER_TASK_QUEUE=f"pii-{uuid.uuid4().hex[:6]}")
    order = ("--customer", CUSTOMER, "--address", ADDRESS)
    log = tmp_path / "worker.log"
    with running_worker(e2e_env, log):
        happy = run_script(
            "starter.py", EXPIRY, *order, "--approval-threshold", "100000", env=e2e_env
        )
        assert happy.returncode == 0, happy
        downtime = run_script(
            "starter.py", EXPIRY, *order, "--inventory-down", "--approval-threshold", "100000",
            env=e2e_env,
        )  # fmt: skip
        assert downtime.returncode == 0, downtime
        expired = run_script("starter.py", EXPIRED, *order, env=e2e_env)
        assert expired.returncode == 1, expired
        denied = run_script("starter.py", EXPIRY, "--customer", BLOCKED, env=e2e_env)
        assert denied.returncode == 1, denied
        expires = run_script("starter.py", EXPIRY, *order, "--approval-timeout", "1", env=e2e_env)
        assert expires.returncode == 1, expires
        decided = {}
        for decision in ("approve", "reject", "cancel"):
            order_id = new_order_id("pii")
            placed = run_script(
                "starter.py", EXPIRY, *order, "--order-id", order_id, "--no-wait", env=e2e_env
            )
            assert placed.returncode == 0, placed
            decided[decision] = order_id
        note = f"phoned {CUSTOMER} at {ADDRESS}"
        assert run_script("approve.py", decided["approve"], note, env=e2e_env).returncode == 0
        assert run_script("approve.py", decided["approve"], note, env=e2e_env).returncode == 1
        assert (
            run_script("approve.py", decided["reject"], "--reject", note, env=e2e_env).returncode
            == 0
        )
        assert run_script("cancel.py", decided["cancel"], note, env=e2e_env).returncode == 0
        # An invalid order as the CLI can send it, in clear, which the workflow refuses.
        invalid = new_order_id("pii")
        started = temporal_cli(
            "workflow", "start", "--address", e2e_server.address,
            "--task-queue", e2e_env["ORDER_TASK_QUEUE"], "--type", "OrderWorkflow", "-w", invalid,
            "--input", json.dumps({"customer": CUSTOMER, "shipping_address": ADDRESS,
                                   "card_expiry": "13/38", "items": []}),
        )  # fmt: skip
        assert started.returncode == 0, started
        assert invalid in started.stdout
        for order_id, ended in ((decided["approve"], "delivered"), (invalid, "failed")):
            await eventually(
                status_saying(e2e_env, order_id, ended), f"order {order_id} to be {ended}"
            )
    with running_worker(e2e_env, tmp_path / "buggy.log", "--workflow-bug") as buggy:
        order_id = new_order_id("pii")
        run_script("starter.py", EXPIRY, *order, "--order-id", order_id, "--no-wait", env=e2e_env)
        assert run_script("approve.py", order_id, env=e2e_env).returncode == 0
        await eventually(lambda: "workflow bug!" in buggy.output(), "the bug to show in the log")
    lines = (log.read_text() + (tmp_path / "buggy.log").read_text()).splitlines()
    assert len(lines) > 40
    for line in lines:
        for personal in PERSONAL:
            assert personal not in line, line
