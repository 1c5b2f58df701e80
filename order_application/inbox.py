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
"""Serves the approver's inbox on this machine: place, watch and decide orders in a browser."""

import argparse
import asyncio
import socket

from command_line.exit import EXIT_OK, finish
from local.errors import UserError

DEFAULT_PORT = 8000
# Only this machine's browser may reach it: the page can approve and cancel orders.
LISTEN_ON = "127.0.0.1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="where to listen (default %(default)s)"
    )
    return parser.parse_args()


async def serve(port: int) -> int:
    # Imported once the arguments are parsed: the web app loads Pydantic, the workflow and
    # Starlette, which --help and a usage error do without.
    import uvicorn

    from command_line.connection import load_settings
    from web.app import create_app

    settings = load_settings()
    listening = socket.socket()
    try:
        listening.bind((LISTEN_ON, port))
    except OSError as err:
        raise UserError(f"cannot listen on port {port} ({err.strerror}): try --port") from err
    # Connected on the first page, so the inbox also comes up, and says so, with no server.
    config = uvicorn.Config(create_app(settings, port), log_level="info")
    print(
        f"Inbox on http://localhost:{port}, for orders on {settings.address} (task queue"
        f" {settings.task_queue!r}). Ctrl-C to stop.",
        flush=True,
    )
    await uvicorn.Server(config).serve(sockets=[listening])
    return EXIT_OK


if __name__ == "__main__":
    finish(lambda: asyncio.run(serve(parse_args().port)))
