"""How the inbox renders a page: its templates, its session's token and notices, and no cache."""

from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from command_line.reports import describe_items
from shop.rules import format_cents
from web.sessions import session_of

# The pages show customers' data: no cache may keep them (on disk, or for the Back button).
NO_STORE = {"Cache-Control": "no-store"}


def order_path(route: str, order_id: str) -> str:
    """`/orders/ID`, `/decide/ID`, …: the ID quoted whole, `/` included, since any client may
    start an order with any ID, and a browser would resolve `a/../../orders/b` to another order's
    path. (Only the IDs `.` and `..` cannot be a path: a browser resolves them even quoted, so
    their links lead to no order at all.)"""
    return f"/{route}/{quote(order_id, safe='')}"


HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(
    format_cents=format_cents, describe_items=describe_items, order_path=order_path
)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with the session's CSRF token for its forms and its notices shown once."""
    session = session_of(request)
    context.setdefault("notices", session.take_notices())
    return templates.TemplateResponse(
        request,
        template,
        {"csrf": session.csrf_token, **context},
        status_code=status_code,
        headers=NO_STORE,
    )


def plain_page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page with no form, which starts no session: an error, or a step of the sign-in."""
    return templates.TemplateResponse(
        request, template, {"notices": [], **context}, status_code, NO_STORE
    )
