"""The inbox's sessions: a random cookie, the approver's name, notices and the CSRF token."""

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

COOKIE = "inbox_session"
CSRF_FIELD = "csrf"
# Sessions live in this process only; past this many, the least recently used is forgotten.
MAX_SESSIONS = 1_000


@dataclass(frozen=True)
class Notice:
    """What came of a form, shown once on the next page: `ok` False for a refusal."""

    text: str
    ok: bool


@dataclass
class Session:
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    approver: str = ""
    notices: list[Notice] = field(default_factory=list)

    def take_notices(self) -> list[Notice]:
        notices, self.notices = self.notices, []
        return notices


class Sessions(BaseHTTPMiddleware):
    """Gives every request its session (`session_of`), starting one for a browser that has none.

    The cookie is SameSite=Strict: a page of another site never sends it, so a form posted from
    there arrives without the session whose token it would need.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        key = request.cookies.get(COOKIE, "")
        session = self._sessions.get(key)
        if session is None:
            key, session = secrets.token_urlsafe(32), Session()
            self._sessions[key] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
        request.state.session = session
        response = await call_next(request)
        if request.cookies.get(COOKIE) != key:
            response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
        return response


def session_of(request: Request) -> Session:
    session = request.state.session
    assert isinstance(session, Session)
    return session


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries this session's CSRF token; 403 otherwise, before anything
    is sent to an order."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode(), session_of(request).csrf_token.encode()
    ):
        raise HTTPException(
            403, "refused: this form's security token is missing or stale; reload the page"
        )
    return form
