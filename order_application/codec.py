"""Encrypts every payload of an order with AES-256-GCM, so the server stores only ciphertext."""

import base64
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from errors import UserError

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_ID_FORMAT = re.compile("[0-9a-f]{16}")  # See key_id().
KEY_FILE_NAME = "encryption.keys"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per payload, so one key is good for 2^32 of them.


class EncryptionError(UserError):
    """A key that cannot be read or found: the user's to fix, so scripts say it in one line."""


class EncryptionCodec(PayloadCodec):
    """Encrypts payloads with the first of its keys and decrypts with whichever key made them.

    Keys live in a text file, one base64 AES-256 key per line, newest first: the first encrypts,
    all of them decrypt (blank lines and `#` comments are skipped). A payload carries the ID of its
    key (a hash of the key, so the file needs no names), so rotating is putting a new key on top
    and keeping the old ones for as long as histories encrypted with them are kept. A payload with
    an unknown key ID makes the codec read the file again once, so a running worker takes a
    rotation made after it started without a restart.
    """

    def __init__(self, keys: Sequence[bytes], key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._use(keys)

    @classmethod
    def from_key_file(cls, path: Path) -> "EncryptionCodec":
        return cls(read_keys(path), key_file=path)

    def _use(self, keys: Sequence[bytes]) -> None:
        # One assignment, so the codec server's thread never sees half a rotation.
        self._ring = (key_id(keys[0]), {key_id(key): AESGCM(key) for key in keys})

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encrypt(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decrypt(payloads)

    def encrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        current, keys = self._ring
        cipher = keys[current]
        encrypted = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
            encrypted.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: current.encode()}, data=data)
            )
        return encrypted

    def decrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _decrypt(self, payload: Payload) -> Payload:
        # Plain JSON from the Temporal CLI, the Web UI or another SDK goes on as it came.
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        wanted = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        if not KEY_ID_FORMAT.fullmatch(wanted):
            # Not made by this codec, whoever labelled it so: it goes on as it came, and the
            # workflow refuses it like any payload that is not JSON, instead of failing a task.
            return payload
        _, keys = self._ring
        if wanted not in keys and self._key_file is not None:
            self._use(read_keys(self._key_file))
            _, keys = self._ring
        if wanted not in keys:
            raise EncryptionError(
                f"a payload is encrypted with key {wanted}, which is not in"
                f" {self._key_file or 'the keys given'}: use the key file that holds it"
            )
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(keys[wanted].decrypt(nonce, ciphertext, None))
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce.
            # Altered, or forged by a client: it stays as it came, and the workflow refuses it.
            return payload


def key_id(key: bytes) -> str:
    """A name for a key that gives nothing of it away."""
    return hashlib.sha256(key).hexdigest()[:16]


def read_keys(path: Path) -> list[bytes]:
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise EncryptionError(f"cannot read the encryption key file: {err}") from err
    keys = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise EncryptionError(
                f"{path}, line {number}: not an AES-256 key (32 bytes in base64,"
                " such as `openssl rand -base64 32` prints)"
            )
        keys.append(key)
    if not keys:
        raise EncryptionError(f"no encryption key in {path}")
    return keys


def create_key_file(path: Path) -> None:
    """Writes a key file with one new key unless one exists; readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and linked into place, so a script starting at the same moment finds either
    # no file or a whole one, and the first to link wins for both.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(handle, "w") as file:
            file.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def key_file(data_dir: Path) -> Path:
    """ORDER_ENCRYPTION_KEY_FILE, else the key file in `data_dir`, made with a new key if there
    is none yet."""
    named = os.environ.get("ORDER_ENCRYPTION_KEY_FILE")
    # A file named by the user must exist: a typo must not start a second, unknown key.
    path = Path(named) if named else data_dir / KEY_FILE_NAME
    if not named and not path.exists():
        try:
            create_key_file(path)
        except OSError as err:
            raise EncryptionError(f"cannot create the encryption key file: {err}") from err
    return path
