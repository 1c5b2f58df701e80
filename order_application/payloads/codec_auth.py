"""Who may use the codec server: anyone on this machine, the holders of a token, or listed users."""

import hmac
import json
import secrets
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Protocol

import jwt

from local.errors import UserError
from local.secret_files import create_secret, read_secret
from payloads.decision_proof import DECISION_UPDATES, Tickets

TOKEN_FILE_NAME = "codec.token"
# Signatures of an identity provider: asymmetric only, so a token cannot be signed with a public
# key taken for a shared secret (and never "none").
SIGNATURE_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
# Seconds of clock difference with the issuer that an expiry may be off by.
CLOCK_LEEWAY_SECONDS = 30
# Seconds to wait for the issuer's discovery document or its keys.
ISSUER_TIMEOUT_SECONDS = 5
# The issuer's keys are fetched again after this many seconds (or for a key ID not seen yet).
KEYS_LIFESPAN_SECONDS = 300


@dataclass(frozen=True)
class Refused(Exception):
    """A request the codec server must not answer: 401 (who is it?) or 403 (not them)."""

    status: HTTPStatus
    why: str


class Authorizer(Protocol):
    def who(self, endpoint: str) -> str:
        """Whom the codec server on `endpoint` lets decrypt, and how, for the worker's banner."""

    def check(self, authorization: str | None) -> None:
        """Returns if the `Authorization` header may use the codec; raises Refused otherwise."""


class AnyLocalUser:
    """The quick start's default: anyone who reaches this machine's loopback, as the dev server."""

    def who(self, endpoint: str) -> str:
        return (
            "for anyone on this machine: the Web UI and `temporal --codec-endpoint` decrypt orders"
            " through it"
        )

    def check(self, authorization: str | None) -> None:
        return None


class StaticToken:
    """One bearer token, kept in a file (0600) beside the key file and made on first use."""

    def __init__(self, token: str, path: Path | None = None) -> None:
        self.header = f"Bearer {token}"
        self._path = path

    def who(self, endpoint: str) -> str:
        token = f"$(cat {self._path})" if self._path else "TOKEN"
        return (
            "for holders of its token: temporal workflow show -w ORDER-ID --codec-endpoint"
            f' {endpoint} --codec-auth "Bearer {token}"'
        )

    @classmethod
    def beside(cls, key_file: Path) -> "StaticToken":
        path = key_file.with_name(TOKEN_FILE_NAME)
        try:
            if not path.exists():
                create_secret(path, secrets.token_urlsafe(32) + "\n")
            token = read_secret(path).decode("ascii").strip()
        except OSError as err:
            raise UserError(f"cannot read the codec token file {path}: {err.strerror}") from err
        except UnicodeDecodeError as err:
            raise UserError(f"{path}: not a codec token (one line of ASCII)") from err
        if not token:
            raise UserError(f"the codec token file {path} is empty")
        return cls(token, path)

    def check(self, authorization: str | None) -> None:
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, self.header.encode()):
            raise Refused(HTTPStatus.UNAUTHORIZED, "the codec token is missing or wrong")


class OidcTokens:
    """Access tokens of one OpenID Connect issuer for one audience, and the user each names."""

    def __init__(
        self, issuer: str, audience: str, claim: str = "email", jwks_url: str | None = None
    ) -> None:
        self.issuer, self._audience, self._claim = issuer, audience, claim
        self._keys = jwt.PyJWKClient(
            jwks_url or discover_jwks_url(issuer),
            lifespan=KEYS_LIFESPAN_SECONDS,
            timeout=ISSUER_TIMEOUT_SECONDS,
        )

    def user(self, authorization: str | None) -> str:
        """The user a valid `Bearer` token names (lower case); Refused (401) for none, one that
        is expired, for another audience or issuer, or signed by another key."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refused(HTTPStatus.UNAUTHORIZED, "no access token")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=SIGNATURE_ALGORITHMS,
                audience=self._audience,
                issuer=self.issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError as err:
            raise Refused(
                HTTPStatus.SERVICE_UNAVAILABLE, "the issuer's keys are unreachable"
            ) from err
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as err:
            raise Refused(HTTPStatus.UNAUTHORIZED, "the access token is not valid") from err
        who = claims.get(self._claim)
        if not isinstance(who, str) or not who:
            raise Refused(HTTPStatus.UNAUTHORIZED, f"the access token names nobody ({self._claim})")
        return who.lower()


class OidcUsers:
    """Users signed in with an OpenID Connect issuer (the Web UI passes their access token), whose
    e-mail, or another claim, is on the allow-list."""

    def __init__(self, tokens: OidcTokens, allowed: frozenset[str]) -> None:
        self._tokens = tokens
        self._allowed = frozenset(name.lower() for name in allowed)

    def who(self, endpoint: str) -> str:
        return f"for {', '.join(sorted(self._allowed))}, signed in at {self._tokens.issuer}"

    def check(self, authorization: str | None) -> None:
        if self._tokens.user(authorization) not in self._allowed:
            raise Refused(HTTPStatus.FORBIDDEN, "this user may not read orders")


def discover_jwks_url(issuer: str) -> str:
    """The issuer's key set, from its OpenID Connect discovery document."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=ISSUER_TIMEOUT_SECONDS) as response:
            jwks_url = json.load(response)["jwks_uri"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"cannot fetch the OIDC issuer's discovery document from {url}: check --oidc-issuer,"
            " or name the issuer's keys with --oidc-jwks-url"
        ) from err
    if not isinstance(jwks_url, str):
        raise UserError(f"{url} names no jwks_uri: give --oidc-jwks-url")
    return jwks_url


class Approvers:
    """Who may have a ticket (payloads/decision_proof.py): any user of the issuer to place an
    order, the allowed ones to decide. The codec server hands them out (POST /ticket); the
    worker's interceptor checks them."""

    def __init__(self, tokens: OidcTokens, allowed: frozenset[str], tickets: Tickets) -> None:
        self._tokens, self.tickets = tokens, tickets
        self._allowed = frozenset(name.lower() for name in allowed)

    def ticket(
        self, authorization: str | None, order_id: str, action: str, reason: str
    ) -> tuple[str, str]:
        """Who the access token names, and their ticket; Refused (401 or 403) otherwise."""
        user = self._tokens.user(authorization)
        if action in DECISION_UPDATES and user not in self._allowed:
            raise Refused(HTTPStatus.FORBIDDEN, f"{user} may not approve or reject orders")
        return user, self.tickets.issue(order_id, action, user, reason)
