"""Temporal's remote codec protocol over HTTP, so the Web UI and the CLI show orders decrypted."""

import logging
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from codec import EncryptionCodec, EncryptionError

HOST = "localhost"
DEFAULT_PORT = 8081
# The Web UI sends the payloads of one event or field per request; Temporal refuses a payload over
# 2 MB, so anything past this is not a request from the UI or the CLI.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Headers the Web UI sends: X-Namespace always, Authorization when told to pass the user's token.
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"

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

    def __init__(self, codec: EncryptionCodec, port: int, origins: frozenset[str]) -> None:
        self._server = _Server(codec, port, origins)  # OSError when the port is taken.
        self.endpoint = f"http://{HOST}:{port}"
        serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        serving.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, codec: EncryptionCodec, port: int, origins: frozenset[str]) -> None:
        self.codec = codec
        # Only these browser pages may call: any other web page the user opens could otherwise
        # have the user's browser decrypt ciphertext it got hold of.
        self.origins = origins
        super().__init__((HOST, port), _Handler)


def _decrypt_what_it_can(codec: EncryptionCodec, payloads: Sequence[Payload]) -> list[Payload]:
    """Each payload decrypted, or as it came if its key is not in the key file: the Web UI then
    shows that one encrypted instead of failing the whole page."""
    decrypted = []
    for payload in payloads:
        try:
            decrypted += codec.decrypt([payload])
        except EncryptionError:
            decrypted.append(payload)
    return decrypted


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive: the Web UI sends a request for every payload field it shows.
    protocol_version = "HTTP/1.1"

    def do_OPTIONS(self) -> None:
        """The browser's preflight before the Web UI's POST; the answer is all in the headers."""
        self._answer(HTTPStatus.NO_CONTENT, b"")

    def do_POST(self) -> None:
        # The protocol's rule: only the last part of the path counts, so the server can sit under
        # any prefix. X-Namespace is not needed: one key file serves every namespace.
        operation = urlsplit(self.path).path.rstrip("/").rpartition("/")[2]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY_BYTES + 1  # Unreadable: refused like a body too large to read.
        if not 0 <= length <= MAX_BODY_BYTES:
            # Unread, the body would be taken for the next request: end the connection.
            self.close_connection = True
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"too large\n", "text/plain")
            return
        body = self.rfile.read(length)
        if operation not in {"encode", "decode"}:
            self._answer(HTTPStatus.NOT_FOUND, b"POST /encode or /decode\n", "text/plain")
            return
        try:
            payloads = json_format.Parse(body, Payloads())
            codec = self.server.codec
            if operation == "encode":
                converted = codec.encrypt(payloads.payloads)
            else:
                converted = _decrypt_what_it_can(codec, payloads.payloads)
            answer = Payloads(payloads=converted)
        except (json_format.ParseError, UnicodeDecodeError) as err:
            logger.warning("Codec server: cannot %s: %s", operation, err)
            self._answer(HTTPStatus.BAD_REQUEST, f"{err}\n".encode(), "text/plain")
            return
        self._answer(HTTPStatus.OK, json_format.MessageToJson(answer).encode())

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
        self.send_header("Vary", "Origin")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a line per request would bury the worker's log of orders."""


def serve_codec(codec: PayloadCodec | None, port: int, web_ui: str | None) -> CodecServer | None:
    """Serves the codec for the Web UI and the CLI, unless it is off or its port is taken."""
    if not isinstance(codec, EncryptionCodec):
        print("Encryption is off (ORDER_ENCRYPTION=off): orders are stored in clear.", flush=True)
        return None
    if port == 0:
        return None
    try:
        server = CodecServer(codec, port, ui_origins(web_ui))
    except OSError as err:
        # Not fatal: with several workers on one machine, the first one serves the codec.
        print(
            f"Codec server not started: localhost:{port}: {err.strerror}."
            " Another worker may serve it; otherwise choose a free --codec-port.",
            flush=True,
        )
        return None
    print(
        f"Codec server on {server.endpoint}: the Web UI and `temporal --codec-endpoint`"
        " decrypt orders through it.",
        flush=True,
    )
    return server
