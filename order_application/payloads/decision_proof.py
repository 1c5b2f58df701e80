"""Who decided, proven: a decision signed with the order key, or one that carries a ticket the
worker gave a signed-in user. The worker checks either once, in the update's validator, before
the workflow sees the decision (payloads/interceptor.py)."""

import hashlib
import hmac
import json
import secrets
from pathlib import Path

from temporalio.converter import PayloadCodec

from local.errors import UserError
from local.secret_files import create_secret, read_secret
from payloads.codec import EncryptionCodec
from shared import SIGNED_IN_PROOF, ApproveOrder, RejectOrder

DECISION_UPDATES = frozenset({"approve", "reject"})
DECISION_SIGNALS = frozenset({"approve_order", "reject_order"})
PLACE = "place"
"""What a ticket for placing an order names, in place of an update: payment_settled's input."""
PLACING_UPDATE = "payment_settled"
TICKET_SECRET_FILE_NAME = "approvals.secret"
TICKET_PATH = "/ticket"
"""Where the codec server gives a signed-in user a ticket (see codec_server.py)."""
PROOF_REFUSED = "DecisionProofRefused"
"""`type` of the error with which an update is refused when its proof does not hold."""


def signed_text(order_id: str, action: str, by: str, reason: str) -> bytes:
    # The order and the action are in it: a proof copied from one decision proves nothing about
    # another order, or about the opposite decision.
    return json.dumps([order_id, action, by, reason]).encode()


def proof(
    codec: PayloadCodec | None, order_id: str, update: str, decision: ApproveOrder | RejectOrder
) -> str:
    """The decision's proof, for a client that holds the order key; empty for one without."""
    if not isinstance(codec, EncryptionCodec):
        return ""
    return codec.sign(signed_text(order_id, update, decision.by, decision.reason))


class Tickets:
    """Tickets the worker gives a user whose sign-in it checked: an HMAC of the order, the action,
    the user and the reason, under a secret only the worker reads (not the order key, which every
    client holds). The history keeps the ticket, never the access token: it names one order and
    one decision, and an order takes one decision, so it is of no use to anyone who reads it."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def beside(cls, key_file: Path) -> "Tickets":
        path = key_file.with_name(TICKET_SECRET_FILE_NAME)
        try:
            create_secret(path, secrets.token_hex(32) + "\n")
            return cls(read_secret(path).strip())
        except OSError as err:
            raise UserError(f"cannot read the ticket secret {path}: {err.strerror}") from err

    def issue(self, order_id: str, action: str, by: str, reason: str) -> str:
        text = signed_text(order_id, action, by, reason)
        return SIGNED_IN_PROOF + hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def holds(self, order_id: str, action: str, by: str, reason: str, ticket: str) -> bool:
        return hmac.compare_digest(self.issue(order_id, action, by, reason), ticket)
