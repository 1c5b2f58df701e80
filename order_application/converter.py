"""The data converter of every client and worker of the orders: Pydantic, then encryption."""

import os
from pathlib import Path

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from boundary import PLAIN, StrictPayloadConverter
from codec import EncryptionCodec, EncryptionError, key_file
from data_dir import DATA_DIR


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
