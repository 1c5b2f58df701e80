"""A local OpenID Connect issuer for the codec server's tests: its discovery document, its keys,
and tokens it signs as the tests ask (good, expired, for another audience, by another key)."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "order-codec"
KEY_ID = "issuer-key-1"


class Issuer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

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
        documents = {
            "/.well-known/openid-configuration": {
                "issuer": issuer.url,
                "jwks_uri": f"{issuer.url}/jwks",
            },
            "/jwks": issuer.jwks(),
        }
        document = documents.get(self.path)
        body = json.dumps(document).encode()
        self.send_response(200 if document else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""
