"""The inbox's sessions: a random cookie per browser, naming its CSRF token, notices and sign-in."""

import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.oidc import PendingSignIn, SignedIn

CSRF_FIELD = "csrf"
# Sessions live in this process only, for one person's browsers: past this many of a kind (see
# Sessions), the least recently used is forgotten, and its next form asks for a reload.
MAX_SESSIONS = 100
# Notices wait for the next page; a session keeps the latest few, however many forms are posted.
MAX_NOTICES = 10


@dataclass(frozen=True)
class Notice:
    """What came of a form, shown once on the next page: `ok` False for a refusal."""

    text: str
    ok: bool


@dataclass
class Session:
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    notices: deque[Notice] = field(default_factory=lambda: deque(maxlen=MAX_NOTICES))
    # With --sign-in oidc: the sign-in under way, and the one done, whose access token is kept
    # here, in the inbox's memory, and never sent to the browser.
    pending_sign_in: PendingSignIn | None = None
    signed_in: SignedIn | None = None

    def take_notices(self) -> list[Notice]:
        notices = list(self.notices)
        self.notices.clear()
        return notices


class Sessions:
    """Gives a page its browser's session (`session_of`), starting one only when a page asks:
    never for the stylesheet, an error or a refusal. Placed after OwnerOnly, it sees only
    requests that hold the inbox's secret.

    The cookie is HttpOnly and SameSite=Strict: a page of another site never sends it, so a form
    posted from there arrives without the session whose token it would need. It is named after
    the port, as the secret's is, since a browser sends it to every port of localhost.

    A session whose cookie has never come back may be one of a flood of requests that keep no
    cookies: such sessions push out only each other. A session is kept apart from them once its
    browser brings the cookie back, which a browser does at once, for the page's stylesheet.
    """

    def __init__(self, app: ASGIApp, port: int) -> None:
        self._app = app
        self._cookie = f"inbox_session_{port}"
        self._returned: OrderedDict[str, Session] = OrderedDict()
        self._new: OrderedDict[str, Session] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        slot = _Slot(self, self._brought_back(Request(scope).cookies.get(self._cookie, "")))
        scope.setdefault("state", {})[_SLOT] = slot

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and slot.started_key:
                MutableHeaders(scope=message).append(
                    "set-cookie",
                    f"{self._cookie}={slot.started_key}; HttpOnly; Path=/; SameSite=strict",
                )
            await send(message)

        await self._app(scope, receive, sending)

    def _brought_back(self, key: str) -> Session | None:
        if key in self._new:
            self._returned[key] = self._new.pop(key)
            _forget_oldest(self._returned)
        elif key in self._returned:
            self._returned.move_to_end(key)
        return self._returned.get(key)

    def start(self) -> tuple[str, Session]:
        key, session = secrets.token_urlsafe(32), Session()
        self._new[key] = session
        _forget_oldest(self._new)
        return key, session


def _forget_oldest(sessions: OrderedDict[str, Session]) -> None:
    while len(sessions) > MAX_SESSIONS:
        sessions.popitem(last=False)


_SLOT = "session"


class _Slot:
    """A request's session: the one its cookie names, else one started when a page asks."""

    def __init__(self, sessions: Sessions, found: Session | None) -> None:
        self._sessions = sessions
        self.found = found
        self.started_key = ""

    def session(self) -> Session:
        if self.found is None:
            self.started_key, self.found = self._sessions.start()
        return self.found


def _slot(request: Request) -> _Slot:
    slot = getattr(request.state, _SLOT, None)
    assert isinstance(slot, _Slot), "the app runs without the Sessions middleware"
    return slot


def session_of(request: Request) -> Session:
    """The browser's session, started now if it has none: for a page with forms or notices."""
    return _slot(request).session()


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries its session's CSRF token; 403 otherwise, before anything
    is sent to an order (and without starting a session)."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    session = _slot(request).found
    if (
        session is None
        or not isinstance(token, str)
        or not hmac.compare_digest(token.encode(), session.csrf_token.encode())
    ):
        raise HTTPException(
            403, "refused: this form's security token is missing or stale; reload the page"
        )
    return form
