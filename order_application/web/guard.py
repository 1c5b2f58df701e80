"""The inbox answers only to this machine's own names, and its pages only to its own forms."""

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.loopback import loopback_hosts

# No other origin may frame, script or receive the forms of a page that approves orders.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class LoopbackOnly:
    """Refuses a request whose `Host` is not a loopback name of `port` (DNS rebinding), or whose
    `Origin`, when a browser sends one, is another site's; adds SECURITY_HEADERS to the rest."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self._app = app
        self._hosts = loopback_hosts(port)
        self._origins = frozenset(f"http://{host}" for host in self._hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if headers.get("host") not in self._hosts:
            refusal = "refused: this inbox answers only to localhost, 127.0.0.1 and [::1]"
        elif origin is not None and origin not in self._origins and scope["method"] != "GET":
            refusal = "refused: a form from another site cannot change orders here"
        else:
            await self._app(scope, receive, self._with_headers(send))
            return
        await PlainTextResponse(refusal, status_code=403)(scope, receive, send)

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                ]
            await send(message)

        return sending
