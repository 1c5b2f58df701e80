"""Reaching Temporal: the server from the SDK's environment configuration, and the data converter
every client and worker of the orders uses."""

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime

from command_line.exit import script_command
from local.data_dir import DATA_DIR
from local.errors import UserError
from payloads.codec import EncryptionCodec, EncryptionError, key_file
from payloads.converter import PLAIN, StrictPayloadConverter

TASK_QUEUE = "order-fulfilment"
"""Default task queue; the scripts let ORDER_TASK_QUEUE override it."""

LOCAL_HOST, LOCAL_PORT, LOCAL_UI_PORT = "localhost", 7233, 8233
LOCAL_ADDRESS = f"{LOCAL_HOST}:{LOCAL_PORT}"

# Reaching a live server takes milliseconds; past this the address is wrong or the server down.
CONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    connect: ClientConnectConfig
    address: str
    namespace: str
    task_queue: str
    address_configured: bool
    """False when neither TEMPORAL_ADDRESS nor a config profile names a server."""
    data_converter: DataConverter
    """Encrypting every payload, unless ORDER_ENCRYPTION is off."""


def load_settings() -> Settings:
    """Reads TEMPORAL_* variables and TOML profiles the way every Temporal SDK and CLI does,
    and the encryption key (a one-line UserError when it cannot be read).
    """
    try:
        profile = ClientConfigProfile.load()
    except Exception as err:  # A malformed TOML file or variable: say which, in one line.
        raise UserError(f"cannot read the Temporal client configuration: {err}") from err
    config = profile.to_client_connect_config()
    config.setdefault("target_host", LOCAL_ADDRESS)
    config.setdefault("namespace", "default")
    return Settings(
        connect=config,
        address=config["target_host"],
        namespace=config["namespace"],
        task_queue=os.environ.get("ORDER_TASK_QUEUE", TASK_QUEUE),
        address_configured=profile.address is not None,
        data_converter=data_converter(),
    )


def data_converter(data_dir: Path = DATA_DIR) -> DataConverter:
    """Messages as Pydantic models in JSON, each payload encrypted unless ORDER_ENCRYPTION is
    off; the keys come from ORDER_ENCRYPTION_KEY_FILE, else from a key file in `data_dir` made
    on first use."""
    setting = os.environ.get("ORDER_ENCRYPTION", "on")
    if setting == "off":
        return PLAIN
    if setting != "on":
        raise EncryptionError(f"ORDER_ENCRYPTION must be on or off, not {setting!r}")
    return DataConverter(
        payload_converter_class=StrictPayloadConverter,
        payload_codec=EncryptionCodec.from_key_file(key_file(data_dir)),
        # The failures' messages and stack traces (such as "card expired 12/23") go into an
        # encoded payload too, instead of in clear beside it.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: the SDK's runtime for this client and its workers, if not the default one."""
    try:
        return await asyncio.wait_for(
            Client.connect(
                **settings.connect, data_converter=settings.data_converter, runtime=runtime
            ),
            CONNECT_TIMEOUT_SECONDS,
        )
    except (TimeoutError, RuntimeError) as err:
        raise UserError(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): "
            + ("no answer" if isinstance(err, TimeoutError) else _short(err))
            + f". Start {script_command('worker.py')} (it runs a local server when none is"
            + " configured)"
            + " or point TEMPORAL_ADDRESS at your server."
        ) from err


def web_ui(settings: Settings) -> str | None:
    """The server's Web UI, when it can be told from the server's address or ORDER_WEB_UI."""
    base = os.environ.get("ORDER_WEB_UI")
    host, _, port = settings.address.rpartition(":")
    if base is None and host in {"localhost", "127.0.0.1"} and port.isdigit():
        # A local dev server serves its UI 1,000 ports above its own unless told otherwise.
        base = f"http://localhost:{int(port) + LOCAL_UI_PORT - LOCAL_PORT}"
    if base is None and ".tmprl.cloud" in settings.address:
        base = "https://cloud.temporal.io"
    return None if base is None else base.rstrip("/")


def web_ui_link(settings: Settings, workflow_id: str) -> str | None:
    """Where to watch an order, when the server's Web UI is known."""
    base = web_ui(settings)
    if base is None:
        return None
    # Quoted with nothing left safe: an ID that holds `/` or `..` cannot point the link elsewhere.
    namespace, order = quote(settings.namespace, safe=""), quote(workflow_id, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{order}"


def _short(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "dns error", "deadline has elapsed", "certificate"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200]
