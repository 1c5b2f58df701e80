"""An OpenID Connect client for the inbox's sign-in: the authorization code flow with PKCE."""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from local.errors import UserError
from local.printable import printable
from orders.sign_in import SignIn

ISSUER_TIMEOUT_SECONDS = 10
# An ID token, to say whom the issuer signed in; the worker's codec server reads the access token.
SCOPE = "openid email"
# A discovery document or a token answer is a few kilobytes: an issuer's answer is read up to this.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in under way: the state the issuer must send back with its code, and the PKCE
    verifier that only the inbox knows and the issuer checks the code against."""

    state: str
    verifier: str


@dataclass(frozen=True)
class SignedIn:
    name: str
    """Whom the ID token names, to show: the record says whom the access token names."""
    sign_in: SignIn
    """The access token, and where to trade it for a ticket per decision."""


class Issuer:
    """The issuer, as a public client of it (no client secret: the inbox runs on the user's
    machine, where a secret would be no secret), found by its discovery document."""

    def __init__(self, url: str, client_id: str, redirect_uri: str, codec_endpoint: str) -> None:
        self.url = url.rstrip("/")
        self._client_id = client_id
        self.redirect_uri = redirect_uri
        self._codec_endpoint = codec_endpoint
        self._endpoints: tuple[str, str] | None = None

    async def start(self) -> tuple[PendingSignIn, str]:
        """A new sign-in, and the issuer's page to send the browser to."""
        authorization, _ = await self._discover()
        pending = PendingSignIn(secrets.token_urlsafe(32), secrets.token_urlsafe(64))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": pending.state,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        return pending, f"{authorization}?{urlencode(query)}"

    async def finish(self, pending: PendingSignIn, state: str, code: str) -> SignedIn:
        """The sign-in the issuer's answer completes; a one-line UserError when the answer is
        not for this sign-in or the issuer refuses the code."""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise UserError("the issuer's answer is not for this sign-in; sign in again")
        _, token_endpoint = await self._discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self._client_id,
            "code_verifier": pending.verifier,
        }
        tokens = await self._ask(token_endpoint, urlencode(form).encode())
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise UserError(f"the issuer at {self.url} gave no access token")
        return SignedIn(_named(tokens.get("id_token")), SignIn(access_token, self._codec_endpoint))

    async def _discover(self) -> tuple[str, str]:
        """The authorization and token endpoints, read once, when the first sign-in needs them."""
        if self._endpoints is None:
            document = await self._ask(f"{self.url}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != self.url:
                raise UserError(f"the discovery document at {self.url} is another issuer's")
            endpoints = document.get("authorization_endpoint"), document.get("token_endpoint")
            if not all(isinstance(endpoint, str) and endpoint for endpoint in endpoints):
                raise UserError(f"the issuer at {self.url} names no authorization code flow")
            self._endpoints = str(endpoints[0]), str(endpoints[1])
        return self._endpoints

    async def _ask(self, url: str, form: bytes | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self._ask_now, url, form)

    def _ask_now(self, url: str, form: bytes | None) -> dict[str, Any]:
        request = urllib.request.Request(url, data=form, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=ISSUER_TIMEOUT_SECONDS) as response:
                answer = json.loads(response.read(MAX_ANSWER_BYTES))
        except urllib.error.HTTPError as err:
            why = err.read(200).decode(errors="replace").strip() or err.reason
            raise UserError(f"the issuer at {self.url} refused ({err.code}): {why}") from err
        except (OSError, ValueError) as err:
            raise UserError(f"no answer from the issuer at {self.url}: {err}") from err
        if not isinstance(answer, dict):
            raise UserError(f"the issuer at {self.url} answered with no JSON object")
        return answer


def _named(id_token: object) -> str:
    """Whom an ID token names, by its e-mail or subject. It came straight from the issuer's token
    endpoint, so its signature need not be checked to show it (OpenID Connect Core 3.1.3.7); it
    proves nothing either way, since the worker reads the access token only."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return "(the issuer did not say)"
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return "(the issuer did not say)"
    name = (claims.get("email") or claims.get("sub")) if isinstance(claims, dict) else None
    # Text from outside, shown on a page: escaped as a log line would be.
    return printable(name) if isinstance(name, str) and name else "(the issuer did not say)"
