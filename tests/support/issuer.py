"""A local OpenID Connect issuer for the tests: its discovery document, its keys, tokens it signs as
the tests ask (good, expired, for another audience, by another key), and the authorization code
flow with PKCE, which signs in as the user a test chooses, with no page to consent on."""

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "order-codec"
KEY_ID = "issuer-key-1"


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for, until it is traded for tokens, once."""

    user: str
    client_id: str
    redirect_uri: str
    code_challenge: str


class Issuer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_in_as: str | None = None
        """Whom /authorize signs in, as if they had entered their password; None refuses."""
        self.access_tokens: list[str] = []
        """The access tokens /token gave: a test looks for them where they must not be."""
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    def token(
        self,
        email: str,
        *,
        expires_in: float = 300,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = time.time()
        claims = {
            "iss": issuer or self.url,
            "aud": audience,
            "sub": email,
            "email": email,
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        signer = key or self.key
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": KEY_ID})

    def authorize(self, query: dict[str, str]) -> str:
        """Where /authorize sends the browser back: the redirect URI with a code and the state.
        ValueError for a request it refuses (no PKCE with S256, no state, nobody to sign in)."""
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            raise ValueError("only the code flow with PKCE (S256)")
        if not all(query.get(name) for name in ("client_id", "redirect_uri", "state")):
            raise ValueError("client_id, redirect_uri and state are required")
        if self.signing_in_as is None:
            raise ValueError("nobody signs in")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[code] = _Grant(
                self.signing_in_as,
                query["client_id"],
                query["redirect_uri"],
                query.get("code_challenge", ""),
            )
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def trade(self, form: dict[str, str]) -> dict[str, Any]:
        """/token: the tokens for a code, once, if the verifier hashes to its challenge and the
        client and redirect URI are the ones it was given to. ValueError otherwise."""
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            raise ValueError("invalid_grant")
        if (form.get("client_id"), form.get("redirect_uri")) != (
            grant.client_id,
            grant.redirect_uri,
        ):
            raise ValueError("invalid_grant")
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
            raise ValueError("invalid_grant")
        access_token = self.token(grant.user)
        self.access_tokens.append(access_token)
        return {
            "access_token": access_token,
            "id_token": self.token(grant.user, audience=grant.client_id),
            "token_type": "Bearer",
            "expires_in": 300,
        }


@contextmanager
def local_issuer() -> Iterator[Issuer]:
    """An issuer on a free localhost port, until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IssuerHandler)
    issuer = Issuer(f"http://127.0.0.1:{server.server_address[1]}")
    server.issuer = issuer  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


class _IssuerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        issuer: Issuer = self.server.issuer  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        if url.path == "/authorize":
            query = {name: values[0] for name, values in parse_qs(url.query).items()}
            try:
                self._answer(302, {}, {"Location": issuer.authorize(query)})
            except ValueError as err:
                self._answer(400, {"error": "invalid_request", "error_description": str(err)})
            return
        documents = {
            "/.well-known/openid-configuration": issuer.discovery(),
            "/jwks": issuer.jwks(),
        }
        document = documents.get(self.path)
        self._answer(200 if document else 404, document)

    def do_POST(self) -> None:
        issuer: Issuer = self.server.issuer  # type: ignore[attr-defined]
        if self.path != "/token":
            self._answer(404, None)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {name: values[0] for name, values in parse_qs(body).items()}
        try:
            self._answer(200, issuer.trade(form))
        except ValueError as err:
            self._answer(400, {"error": str(err)})

    def _answer(
        self, status: int, document: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""
