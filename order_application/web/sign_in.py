"""The inbox's sign-in pages (`inbox.py --sign-in oidc`): to the issuer, back, and signing out."""

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from local.errors import UserError
from local.printable import printable
from web.oidc import Issuer
from web.rendering import plain_page
from web.sessions import Notice, checked_form, session_of

CALLBACK = "/sign-in/callback"
"""Where the issuer sends the browser back: the path of the inbox's redirect URI."""
# The most of each part of the issuer's answer (code, state, error) that the inbox passes on.
MAX_ANSWER_LENGTH = 2_000


class SignInPages:
    def __init__(self, issuer: Issuer) -> None:
        self._issuer = issuer

    def routes(self) -> list[Route]:
        return [
            Route("/sign-in", self.sign_in),
            Route(CALLBACK, self.callback),
            Route("/sign-in/finish", self.finish),
            Route("/sign-out", self.sign_out, methods=["POST"]),
        ]

    async def sign_in(self, request: Request) -> Response:
        """To the issuer's page, with this session's state and PKCE challenge."""
        pending, authorization = await self._issuer.start()
        session_of(request).pending_sign_in = pending
        return RedirectResponse(authorization, status_code=303)

    async def callback(self, request: Request) -> Response:
        """Where the issuer sends the browser back. It comes from the issuer's site, so the
        browser sends none of the inbox's cookies (SameSite=Strict): this page, open to all and
        holding nothing but the issuer's answer, takes it on from the inbox's own origin, and
        from there the browser sends them."""
        answer = {
            name: request.query_params[name][:MAX_ANSWER_LENGTH]
            for name in ("code", "state", "error")
            if name in request.query_params
        }
        return plain_page(request, "signing_in.html", finish=f"/sign-in/finish?{urlencode(answer)}")

    async def finish(self, request: Request) -> Response:
        """Trades the issuer's code, with this session's verifier, for the access token."""
        session = session_of(request)
        pending, session.pending_sign_in = session.pending_sign_in, None
        answer = request.query_params
        if pending is None:
            session.notices.append(Notice("No sign-in was under way here; sign in again.", False))
        elif "error" in answer:
            why = printable(answer["error"])
            session.notices.append(Notice(f"The issuer did not sign you in: {why}", ok=False))
        else:
            try:
                session.signed_in = await self._issuer.finish(
                    pending, answer.get("state", ""), answer.get("code", "")
                )
                session.notices.append(Notice(f"Signed in as {session.signed_in.name}.", True))
            except UserError as err:
                session.notices.append(Notice(f"Not signed in: {err}", ok=False))
        return RedirectResponse("/", status_code=303)

    async def sign_out(self, request: Request) -> Response:
        await checked_form(request)
        session = session_of(request)
        session.signed_in = None
        session.notices.append(Notice("Signed out: the inbox forgot your access token.", True))
        return RedirectResponse("/", status_code=303)
