#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "temporalio==1.35.0",
#     "pydantic==2.14.4",
#     "cryptography==50.0.2",
#     "starlette==1.10.0",
#     "uvicorn==0.54.0",
#     "jinja2==3.1.6",
#     "python-multipart==0.0.34",
# ]
# ///
"""Serves the approver's inbox to the user who starts it: place, watch and decide orders."""

import argparse
import asyncio
import logging
import secrets
import socket
from typing import TYPE_CHECKING

from command_line.exit import EXIT_OK, finish
from local.errors import UserError

if TYPE_CHECKING:
    from web.oidc import Issuer

DEFAULT_PORT = 8000
# Only this machine's browser may reach it: the page can approve and cancel orders.
LISTEN_ON = "127.0.0.1"
# Bytes of randomness in each launch's secret: 256 bits, as in the inbox's session cookies.
SECRET_BYTES = 32


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="where to listen (default %(default)s)"
    )
    parser.add_argument(
        "--sign-in",
        choices=("none", "oidc"),
        default="none",
        help="none: decide as your OS account, proven by the order key (the default); oidc:"
        " approvers sign in with --oidc-issuer, for a worker run with --approvers oidc",
    )
    parser.add_argument("--oidc-issuer", metavar="URL", help="with oidc: the issuer to sign in at")
    parser.add_argument(
        "--oidc-client-id", metavar="ID", help="with oidc: the inbox's client ID at the issuer"
    )
    args = parser.parse_args()
    if args.sign_in == "oidc" and not (args.oidc_issuer and args.oidc_client_id):
        parser.error("--sign-in oidc needs --oidc-issuer and --oidc-client-id")
    if args.sign_in != "oidc" and (args.oidc_issuer or args.oidc_client_id):
        parser.error("--oidc-issuer and --oidc-client-id go with --sign-in oidc")
    return args


async def serve(args: argparse.Namespace) -> int:
    # Imported once the arguments are parsed: the web app loads Pydantic, the workflow and
    # Starlette, which --help and a usage error do without.
    import uvicorn

    from command_line.connection import load_settings
    from web.app import create_app
    from web.guard import LINK_PARAMETER

    port = args.port
    settings = load_settings()
    listening = socket.socket()
    try:
        listening.bind((LISTEN_ON, port))
    except OSError as err:
        raise UserError(f"cannot listen on port {port} ({err.strerror}): try --port") from err
    # Only the user who holds this may use the inbox: it goes to their terminal, nowhere else.
    secret = secrets.token_urlsafe(SECRET_BYTES)
    issuer = signing_in(args) if args.sign_in == "oidc" else None
    # Connected on the first page, so the inbox also comes up, and says so, with no server. No
    # proxy stands in front of it: an X-Forwarded-For header is only what a client claims, so
    # the log keeps the address the request really came from.
    config = uvicorn.Config(
        create_app(settings, port, secret, issuer), log_level="info", proxy_headers=False
    )
    logging.getLogger("uvicorn.access").addFilter(AccessLogPathOnly())
    print(
        f"Inbox for orders on {settings.address} (task queue {settings.task_queue!r}). Ctrl-C to"
        " stop.\nOpen it with this link, which carries this launch's secret: keep it to yourself."
        f"\n    http://localhost:{port}/?{LINK_PARAMETER}={secret}",
        flush=True,
    )
    if issuer:
        print(f"Approvers sign in at {issuer.url}, which sends them back to {issuer.redirect_uri}")
    await uvicorn.Server(config).serve(sockets=[listening])
    return EXIT_OK


def signing_in(args: argparse.Namespace) -> "Issuer":
    """The issuer the approvers sign in at; their tickets come from the worker's codec server, at
    ORDER_CODEC_ENDPOINT as for the scripts (see orders/sign_in.py)."""
    from orders.sign_in import codec_endpoint
    from web.oidc import Issuer
    from web.sign_in import CALLBACK

    back = f"http://localhost:{args.port}{CALLBACK}"
    return Issuer(args.oidc_issuer, args.oidc_client_id, back, codec_endpoint())


class AccessLogPathOnly(logging.Filter):
    """Logs each request's path without its query string: the link's carries the secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access line: client, method, path and query, HTTP version, status.
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, full_path, version, status = record.args
            record.args = (client, method, str(full_path).partition("?")[0], version, status)
        return True


if __name__ == "__main__":
    finish(lambda: asyncio.run(serve(parse_args())))
