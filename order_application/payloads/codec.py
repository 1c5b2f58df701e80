"""Encrypts every payload of an order with AES-256-GCM, so the server stores only ciphertext."""

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from local.data_dir import make_private_dir
from local.errors import UserError
from local.secret_files import create_secret, read_secret

ENCODING = b"binary/encrypted"
NULL = b"binary/null"  # The SDK's encoding of None, which has no data.
KEY_ID = "encryption-key-id"
KEY_ID_FORMAT = re.compile("[0-9a-f]{16}")  # See key_id().
KEY_FILE_NAME = "encryption.keys"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per payload, so one key is good for 2^32 of them.


class EncryptionError(UserError):
    """A key that cannot be read or found: the user's to fix, so scripts say it in one line."""


class _KeyRing(NamedTuple):
    current: str
    """The ID of the key that encrypts."""
    metadata: dict[str, bytes]
    """What every payload it encrypts carries: the encoding and the key ID."""
    bound: bytes
    """The associated data of every payload it encrypts (see _bound)."""
    ciphers: dict[str, AESGCM]
    proof_keys: dict[str, bytes]
    signing_keys: dict[str, bytes]


class EncryptionCodec(PayloadCodec):
    """Encrypts payloads with the first of its keys and decrypts with whichever key made them.

    Keys live in a text file, one base64 AES-256 key per line, newest first: the first encrypts,
    all of them decrypt (blank lines and `#` comments are skipped). A payload carries the ID of its
    key (a hash of the key, so the file needs no names), so rotating is putting a new key on top
    and keeping the old ones for as long as histories encrypted with them are kept. A batch of
    payloads with a key ID it does not know makes the codec read the file again, once, so a
    running worker takes a rotation made after it started without a restart.

    Each payload's key ID and encoding are bound to its ciphertext as AES-GCM associated data: a
    payload is kept secret and cannot be altered unseen, but a whole payload copied from one order
    into another is accepted, as plain JSON would be.
    """

    def __init__(self, keys: Sequence[bytes], key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._use(keys)

    @property
    def key_file(self) -> Path | None:
        return self._key_file

    @classmethod
    def from_key_file(cls, path: Path) -> "EncryptionCodec":
        return cls(read_keys(path), key_file=path)

    def _use(self, keys: Sequence[bytes]) -> None:
        # One assignment, so the codec server's thread never sees half a rotation.
        current = key_id(keys[0])
        self._ring = _KeyRing(
            current=current,
            metadata={"encoding": ENCODING, KEY_ID: current.encode()},
            bound=_bound(current),
            ciphers={key_id(key): AESGCM(key) for key in keys},
            proof_keys={key_id(key): _proof_key(key) for key in keys},
            signing_keys={key_id(key): _signing_key(key) for key in keys},
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encrypt(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decrypt(payloads)

    def encrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        ring = self._ring
        cipher = ring.ciphers[ring.current]
        encrypted = []
        for payload in payloads:
            if payload.metadata.get("encoding") == NULL and not payload.data:
                encrypted.append(payload)  # No value (a bare message): nothing to hide.
                continue
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), ring.bound)
            encrypted.append(Payload(metadata=ring.metadata, data=data))
        return encrypted

    def decrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._take_rotation(payloads)
        return [self._decrypt(payload) for payload in payloads]

    def decrypt_what_it_can(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload decrypted, or as it came if its key is not in the key file: the Web UI
        then shows that one encrypted instead of failing the whole page."""
        self._take_rotation(payloads)
        return [self._decrypt_or_keep(payload) for payload in payloads]

    def _take_rotation(self, payloads: Sequence[Payload]) -> None:
        """Reads the key file again if a payload names a key it lacks: at most once per batch,
        however many do."""
        known = self._ring.ciphers
        if self._key_file is not None and any(
            _key_id_of(payload) not in known for payload in payloads if _is_ours(payload)
        ):
            self._use(read_keys(self._key_file))

    def _decrypt_or_keep(self, payload: Payload) -> Payload:
        try:
            return self._decrypt(payload)
        except EncryptionError:
            return payload

    def _decrypt(self, payload: Payload) -> Payload:
        # Plain JSON from the Temporal CLI, the Web UI or another SDK goes on as it came; so does
        # a payload labelled encrypted without a key ID of this codec's making: the workflow
        # refuses it like any payload that is not JSON, instead of failing a task.
        if not _is_ours(payload):
            return payload
        wanted = _key_id_of(payload)
        cipher = self._ring.ciphers.get(wanted)
        if cipher is None:
            raise EncryptionError(
                f"a payload is encrypted with key {wanted}, which is not in"
                f" {self._key_file or 'the keys given'}: use the key file that holds it"
            )
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        # Payloads written before the key ID was bound carry none: their tag checks without it.
        for associated_data in (_bound(wanted), None):
            try:
                return Payload.FromString(cipher.decrypt(nonce, ciphertext, associated_data))
            except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce.
                continue
        # Altered, or forged by a client: it stays as it came, and the workflow refuses it.
        return payload

    def prove(self, challenge: bytes) -> tuple[str, str]:
        """Answers a challenge as only a holder of the current key can, giving nothing of it away:
        how a worker tells a codec server of its own key from another process on the port."""
        ring = self._ring
        return ring.current, _proof(ring.proof_keys[ring.current], challenge)

    def accepts_proof(self, challenge: bytes, key: str, proof: str) -> bool:
        known = self._ring.proof_keys.get(key)
        return known is not None and hmac.compare_digest(_proof(known, challenge), proof)

    def sign(self, message: bytes) -> str:
        """`KEY_ID:HMAC` of `message`, under a key of its own derived from the current key: a
        signature only a holder of the key file can make, and the codec server never makes."""
        ring = self._ring
        return f"{ring.current}:{_proof(ring.signing_keys[ring.current], message)}"

    def signed(self, message: bytes, signature: str) -> bool:
        """Whether `signature` is sign(message) under any key of the file, rotated ones too.
        (A key put on top since the worker started is known once a payload encrypted with it
        arrives: the decision's own payload.)"""
        wanted, _, mac = signature.partition(":")
        known = self._ring.signing_keys.get(wanted)
        return known is not None and hmac.compare_digest(_proof(known, message), mac)


def _is_ours(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING and bool(
        KEY_ID_FORMAT.fullmatch(_key_id_of(payload))
    )


def _key_id_of(payload: Payload) -> str:
    return payload.metadata.get(KEY_ID, b"").decode(errors="replace")


def _proof_key(key: bytes) -> bytes:
    # A key of its own for proofs, derived from the encryption key: a proof never helps decrypt.
    return hashlib.sha256(b"order codec server proof\0" + key).digest()


def _signing_key(key: bytes) -> bytes:
    # Another key of its own, for signatures: the codec server answers challenges with the proof
    # key, so signing with that one would make it a signing oracle for anyone who reaches it.
    return hashlib.sha256(b"order decision signature\0" + key).digest()


def _proof(proof_key: bytes, challenge: bytes) -> str:
    return hmac.new(proof_key, challenge, hashlib.sha256).hexdigest()


def _bound(key_id: str) -> bytes:
    """The associated data of a payload: its encoding and key ID, which the tag then covers."""
    return ENCODING + b"\0" + key_id.encode()


def key_id(key: bytes) -> str:
    """A name for a key that gives nothing of it away."""
    return hashlib.sha256(key).hexdigest()[:16]


def read_keys(path: Path) -> list[bytes]:
    """The keys in a key file that only this user can read, as ssh keeps a private key."""
    try:
        lines = read_secret(path).splitlines()
    except UserError as err:
        raise EncryptionError(str(err)) from err
    except OSError as err:
        raise EncryptionError(f"cannot read the encryption key file: {err}") from err
    keys = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:  # Also whatever is not ASCII: never echoed, it may be a secret.
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
    create_secret(path, base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")


def key_file(data_dir: Path) -> Path:
    """ORDER_ENCRYPTION_KEY_FILE, else the key file in `data_dir`, made with a new key if there
    is none yet."""
    named = os.environ.get("ORDER_ENCRYPTION_KEY_FILE")
    # A file named by the user must exist: a typo must not start a second, unknown key.
    path = Path(named) if named else make_private_dir(data_dir) / KEY_FILE_NAME
    if not named and not path.exists():
        try:
            create_key_file(path)
        except OSError as err:
            raise EncryptionError(f"cannot create the encryption key file: {err}") from err
    return path
