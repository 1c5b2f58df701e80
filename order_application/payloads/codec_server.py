"""Temporal's remote codec protocol over HTTP, so the Web UI and the CLI show orders decrypted."""

import json
import logging
import secrets
import sys
import threading
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from local.errors import UserError
from local.loopback import CODEC_PORT, loopback_hosts
from payloads.codec import EncryptionCodec
from payloads.codec_auth import AnyLocalUser, Approvers, Authorizer, Refused
from payloads.decision_proof import DECISION_UPDATES, PLACE, TICKET_PATH

HOST = "localhost"
DEFAULT_PORT = CODEC_PORT
# Temporal refuses a payload over 2 MB, and the Web UI and the CLI send the payloads of one event
# or field per request: 2 MB of payload is 2.7 MB in the JSON's base64. Past that, refused unread.
MAX_BODY_BYTES = 3 * 1024 * 1024
# One event or field holds a handful of payloads; a hundred is far past any of this workflow's.
MAX_PAYLOADS = 100
# A browser keeps 6 connections per origin; more than this at once is not the Web UI or the CLI.
MAX_CONNECTIONS = 32
# Seconds a connection may stay silent, mid-request or idle between requests, before it is closed.
SOCKET_TIMEOUT_SECONDS = 10
# Headers the Web UI sends: X-Namespace always, Authorization when told to pass the user's token.
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
# Where a worker asks a codec server on its port to prove it holds the same key (see prove()).
PROOF_PATH = "/order-codec-proof"
# Seconds a starting worker waits for whoever holds the codec port to answer the proof.
PROOF_TIMEOUT_SECONDS = 3
MAX_TICKET_REQUEST_BYTES = 4096

logger = logging.getLogger(__name__)


def ui_origins(web_ui: str | None) -> frozenset[str]:
    """The browser origins allowed to use the codec: the Web UI's, by either name of this host."""
    if web_ui is None:
        return frozenset()
    url = urlsplit(web_ui)
    if url.hostname in {"localhost", "127.0.0.1"}:
        port = f":{url.port}" if url.port else ""
        return frozenset(f"{url.scheme}://{host}{port}" for host in ("localhost", "127.0.0.1"))
    return frozenset({f"{url.scheme}://{url.netloc}"})


class CodecServer:
    """POST /encode and /decode on localhost:PORT, in a thread of its own, until close()."""

    def __init__(
        self,
        codec: EncryptionCodec,
        port: int,
        origins: frozenset[str],
        authorizer: Authorizer | None = None,
        approvers: Approvers | None = None,
    ) -> None:
        # OSError when the port is taken.
        self._server = _Server(codec, port, origins, authorizer or AnyLocalUser(), approvers)
        self.endpoint = endpoint(port)
        serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        serving.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def endpoint(port: int) -> str:
    return f"http://{HOST}:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        codec: EncryptionCodec,
        port: int,
        origins: frozenset[str],
        authorizer: Authorizer,
        approvers: Approvers | None,
    ) -> None:
        self.codec = codec
        self.authorizer = authorizer
        self.approvers = approvers
        # Only these names: a page whose own name re-resolves to 127.0.0.1 (DNS rebinding) is
        # same-origin with this server and needs no CORS, but still sends its name as Host.
        self.hosts = loopback_hosts(port)
        # Only these browser pages may call: any other web page the user opens could otherwise
        # have the user's browser decrypt ciphertext it got hold of.
        self.origins = origins
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)  # Full: this connection is closed unanswered.
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that went away or went silent is routine, not worth a traceback.
        if not isinstance(error, ConnectionError | TimeoutError):
            logger.warning("Codec server: a request failed: %s", type(error).__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive: the Web UI sends a request for every payload field it shows.
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS

    def do_OPTIONS(self) -> None:
        """The browser's preflight before the Web UI's POST; the answer is all in the headers."""
        if self._admitted():
            self._answer(HTTPStatus.NO_CONTENT, b"")

    def do_GET(self) -> None:
        if not self._admitted():
            return
        url = urlsplit(self.path)
        challenge = parse_qs(url.query).get("challenge", [""])[0]
        if url.path != PROOF_PATH or not 32 <= len(challenge) <= 128:
            self._answer(HTTPStatus.NOT_FOUND, b"POST /encode or /decode\n", "text/plain")
            return
        key, proof = self.server.codec.prove(challenge.encode())
        self._answer(HTTPStatus.OK, json.dumps({"key_id": key, "proof": proof}).encode())

    def do_POST(self) -> None:
        if not self._admitted():
            return
        if urlsplit(self.path).path == TICKET_PATH:
            self._ticket()
            return
        try:
            self.server.authorizer.check(self.headers.get("Authorization"))
        except Refused as refused:
            logger.warning("Codec server: refused a request (%d: %s)", refused.status, refused.why)
            self._refuse(refused.status, refused.why)
            return
        # The protocol's rule: only the last part of the path counts, so the server can sit under
        # any prefix. X-Namespace is not needed: one key file serves every namespace.
        operation = urlsplit(self.path).path.rstrip("/").rpartition("/")[2]
        if operation not in {"encode", "decode"}:
            self._refuse(HTTPStatus.NOT_FOUND, "POST /encode or /decode")
            return
        # JSON only: a page may POST text/plain or a form to any address without asking, but
        # must ask (a preflight, which the Origin check answers) before it may POST JSON.
        if self.headers.get_content_type() != "application/json":
            self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json")
            return
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return
        if int(length) > MAX_BODY_BYTES:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):  # The client went away mid-body: nobody to answer.
            self.close_connection = True
            return
        try:
            payloads = json_format.Parse(body, Payloads()).payloads
        except (json_format.ParseError, ValueError, RecursionError):  # ValueError: not UTF-8.
            # A fixed line, its excerpt escaped: a request's text must not write the log.
            logger.warning(
                "Codec server: refused a %s request that is not payloads JSON (begins %s)",
                operation,
                ascii(body[:32]),
            )
            self._answer(HTTPStatus.BAD_REQUEST, b"not Temporal payloads JSON\n", "text/plain")
            return
        if len(payloads) > MAX_PAYLOADS:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"too many payloads\n", "text/plain")
            return
        codec = self.server.codec
        if operation == "encode":
            converted = codec.encrypt(payloads)
        else:
            converted = codec.decrypt_what_it_can(payloads)
        self._answer(
            HTTPStatus.OK, json_format.MessageToJson(Payloads(payloads=converted)).encode()
        )

    def _ticket(self) -> None:
        """A ticket for the user the access token names: {"order_id", "action", "reason"} in,
        {"by", "proof"} out. Its own check of who asks: a sign-in, not the codec's rule."""
        approvers = self.server.approvers
        if approvers is None:
            self._refuse(
                HTTPStatus.NOT_FOUND, "no tickets: the worker runs without --approvers oidc"
            )
            return
        length = self.headers.get("Content-Length", "")
        if self.headers.get_content_type() != "application/json" or not (
            length.isascii() and length.isdigit() and int(length) <= MAX_TICKET_REQUEST_BYTES
        ):
            self._refuse(HTTPStatus.BAD_REQUEST, "a small JSON body is required")
            return
        try:
            asked = json.loads(self.rfile.read(int(length)))
            order_id, action, reason = asked["order_id"], asked["action"], asked.get("reason", "")
            if not all(isinstance(text, str) for text in (order_id, action, reason)):
                raise TypeError
            if action not in DECISION_UPDATES | {PLACE}:
                raise ValueError
            by, ticket = approvers.ticket(
                self.headers.get("Authorization"), order_id, action, reason
            )
        except Refused as refused:
            logger.warning("Codec server: refused a ticket (%d: %s)", refused.status, refused.why)
            self._refuse(refused.status, refused.why)
            return
        except (ValueError, KeyError, TypeError, RecursionError):  # ValueError: also not JSON.
            self._answer(
                HTTPStatus.BAD_REQUEST, b"order_id, action and reason, as JSON\n", "text/plain"
            )
            return
        self._answer(HTTPStatus.OK, json.dumps({"by": by, "proof": ticket}).encode())

    def _admitted(self) -> bool:
        """Host, then Origin, before anything of the request is read or done."""
        if self.headers.get("Host") not in self.server.hosts:
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST, "this server answers to localhost only")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            self._refuse(HTTPStatus.FORBIDDEN, "this page may not use the codec server")
            return False
        return True

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        """Answers without reading the body; it would be taken for the next request, so the
        connection ends."""
        self.close_connection = True
        self._answer(status, f"{why}\n".encode(), "text/plain")

    def _answer(
        self, status: HTTPStatus, body: bytes, content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            # The Web UI can be set to send cookies along ("include credentials").
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")
            # Chromium asks this before a public page (Temporal Cloud's UI) may call localhost.
            if self.headers.get("Access-Control-Request-Private-Network") == "true":
                self.send_header("Access-Control-Allow-Private-Network", "true")
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", "Bearer")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Vary", "Origin")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a line per request would bury the worker's log of orders."""


def holds_our_key(codec: EncryptionCodec, port: int) -> bool:
    """Whether what listens on localhost:PORT is a codec server with this codec's keys: it must
    answer a fresh challenge as only a holder of one of them can."""
    challenge = secrets.token_hex(32)
    url = f"{endpoint(port)}{PROOF_PATH}?challenge={challenge}"
    try:
        with urllib.request.urlopen(url, timeout=PROOF_TIMEOUT_SECONDS) as response:
            answer = json.load(response)
        return codec.accepts_proof(challenge.encode(), str(answer["key_id"]), str(answer["proof"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def serve_codec(
    codec: PayloadCodec | None,
    port: int,
    web_ui: str | None,
    authorizer: Authorizer,
    approvers: Approvers | None = None,
) -> tuple[CodecServer | None, str | None]:
    """Serves the codec for the Web UI and the CLI, unless it is off or a worker of the same key
    serves it already; returns the server it runs, and the endpoint that decrypts orders."""
    if not isinstance(codec, EncryptionCodec):
        print("Encryption is off (ORDER_ENCRYPTION=off): orders are stored in clear.", flush=True)
        return None, None
    if port == 0:
        return None, None
    try:
        server = CodecServer(codec, port, ui_origins(web_ui), authorizer, approvers)
    except OSError as err:
        # With several workers on one machine the first one serves the codec, and the others
        # check that it is one: a stranger on the port would see what the Web UI decrypts.
        if not holds_our_key(codec, port):
            raise UserError(
                f"localhost:{port} is taken ({err.strerror}) by something that is not a codec"
                " server of this key file; stop it, or choose another --codec-port (0: off)"
            ) from err
        print(
            f"Codec server on {endpoint(port)}: another worker of these keys serves it.", flush=True
        )
        return None, endpoint(port)
    print(f"Codec server on {server.endpoint} {authorizer.who(server.endpoint)}.", flush=True)
    return server, server.endpoint
