"""Who a script decides or places as: its OS account, proven by the order key, or a signed-in
user, proven by a ticket the worker's codec server gives for the user's access token."""

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.converter import PayloadCodec

from local.account import local_account
from local.errors import UserError
from local.loopback import CODEC_PORT
from payloads.decision_proof import PLACE, TICKET_PATH, proof
from shared import ApproveOrder, Placing, RejectOrder

TICKET_TIMEOUT_SECONDS = 10


def codec_endpoint() -> str:
    """The codec server that gives the tickets: ORDER_CODEC_ENDPOINT, else the worker's default."""
    return os.environ.get("ORDER_CODEC_ENDPOINT", f"http://localhost:{CODEC_PORT}").rstrip("/")


@dataclass(frozen=True)
class SignIn:
    """An access token from the issuer the worker trusts, and where to trade it for tickets."""

    token: str
    codec_endpoint: str

    @classmethod
    def given(cls, token_file: str | None) -> "SignIn | None":
        """From --token-file, else ORDER_ACCESS_TOKEN; None when neither is given. The codec
        server is ORDER_CODEC_ENDPOINT, else the worker's default."""
        if token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as err:
                raise UserError(f"cannot read the token file {token_file}: {err.strerror}") from err
        else:
            token = os.environ.get("ORDER_ACCESS_TOKEN", "").strip()
        if not token:
            return None
        return cls(token, codec_endpoint())

    async def ticket(self, order_id: str, action: str, reason: str = "") -> tuple[str, str]:
        """Who the token names, and their ticket for this order and action."""
        return await asyncio.to_thread(self._ticket, order_id, action, reason)

    def _ticket(self, order_id: str, action: str, reason: str) -> tuple[str, str]:
        # Imported here: a script run without signing in never asks for a ticket.
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            self.codec_endpoint + TICKET_PATH,
            data=json.dumps({"order_id": order_id, "action": action, "reason": reason}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TICKET_TIMEOUT_SECONDS) as response:
                answer = json.load(response)
            return str(answer["by"]), str(answer["proof"])
        except urllib.error.HTTPError as err:
            why = err.read(200).decode(errors="replace").strip() or err.reason
            raise UserError(f"the sign-in was refused ({err.code}): {why}") from err
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(
                f"no ticket from the codec server at {self.codec_endpoint}: {err}"
            ) from err


async def as_proven(
    decision: ApproveOrder | RejectOrder,
    order_id: str,
    codec: PayloadCodec | None,
    sign_in: SignIn | None,
) -> ApproveOrder | RejectOrder:
    """The decision as sent: a name given goes as given; otherwise it is the signed-in user's,
    with their ticket, or this OS account's, signed with the order key the codec holds."""
    if decision.by:
        return decision
    update = "reject" if isinstance(decision, RejectOrder) else "approve"
    if sign_in is not None:
        by, ticket = await sign_in.ticket(order_id, update, decision.reason)
        return decision.model_copy(update={"by": by, "proof": ticket})
    decision = decision.model_copy(update={"by": local_account()})
    return decision.model_copy(update={"proof": proof(codec, order_id, update, decision)})


async def placing(order_id: str, sign_in: SignIn | None) -> Placing | None:
    """Who places the order, for the `payment_settled` update, when they signed in."""
    if sign_in is None:
        return None
    by, ticket = await sign_in.ticket(order_id, PLACE)
    return Placing(by=by, proof=ticket)
