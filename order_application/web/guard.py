"""Who may reach the inbox: the user who started it, by this machine's names, with its own forms."""

import hmac

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.loopback import loopback_hosts

LINK_PARAMETER = "token"
"""The query parameter of the link the inbox prints that carries its secret, as Jupyter's."""

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


class OwnerOnly:
    """Serves only the holder of `secret`, made at launch and printed in the inbox's link: any
    other local user reaches the same loopback port, and the pages show customers' data and
    decide orders. 401 with `refusal` (a page) for a request without it.

    The link carries the secret once: the answer keeps it in a cookie, HttpOnly (no script reads
    it) and SameSite=Strict (no other site's page sends it), and takes the browser to the same
    page without it, out of the address bar. Paths under `open_prefixes` need no secret: the
    stylesheet and the script, the same for everyone, so the refusal can use them, and the page
    an issuer sends a browser back to, which carries no data (see Pages.sign_in_callback).
    """

    def __init__(
        self, app: ASGIApp, secret: str, port: int, refusal: str, open_prefixes: tuple[str, ...]
    ) -> None:
        self._app = app
        self._secret = secret
        # Cookies are shared by every port of a host: one per port, so two inboxes both work.
        self._cookie = f"inbox_secret_{port}"
        self._refusal = refusal
        self._open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self._open_prefixes):
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        response: Response
        if self._holds(request.query_params.get(LINK_PARAMETER)):
            response = RedirectResponse(
                request.url.remove_query_params(LINK_PARAMETER), status_code=303
            )
            response.set_cookie(self._cookie, self._secret, httponly=True, samesite="strict")
        elif self._holds(request.cookies.get(self._cookie)):
            await self._app(scope, receive, send)
            return
        else:
            # No WWW-Authenticate challenge: no HTTP scheme names a link's secret, and Basic
            # would have the browser ask for a password the inbox does not have.
            response = HTMLResponse(self._refusal, status_code=401)
        await response(scope, receive, send)

    def _holds(self, given: str | None) -> bool:
        # In constant time, so the answer's timing tells nothing of how much of it matched.
        return given is not None and hmac.compare_digest(given.encode(), self._secret.encode())
