"""The names a local web server answers to, so a rebound DNS name cannot reach it."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CODEC_PORT = 8081
"""Where the worker serves its codec server unless told otherwise (worker.py --codec-port)."""


def loopback_hosts(port: int) -> frozenset[str]:
    """The `Host` headers a browser sends to this machine's loopback on `port`.

    A page on an attacker's domain that re-resolves to 127.0.0.1 is same-origin with a local
    server and needs no CORS; its requests still carry the attacker's name in `Host`, so a server
    that answers only these refuses them (DNS rebinding).
    """
    return frozenset(f"{name}:{port}" for name in LOOPBACK_NAMES)
