"""The approver's inbox: the Starlette app that serves its pages and takes its forms."""

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from command_line.connection import Settings, web_ui_link
from command_line.exit import script_command
from command_line.reports import (
    describe_approval,
    describe_compensations,
    describe_payment,
)
from local.account import local_account
from local.errors import UserError
from local.printable import printable
from orders.cancel_update import request_cancel
from orders.decision_update import MovedOn, decide_order
from orders.status_query import Delivered, Ended, where_is
from orders.update_with_start import PaymentRefused, new_order_id, place_order
from shared import TOO_LATE_TO_CANCEL, OrderStatus, Proof
from web.forms import FORM_WIDE, OrderForm, catalogue, read_decision_form, read_order_form
from web.guard import LoopbackOnly, OwnerOnly
from web.oidc import Issuer
from web.rendering import order_path, page, plain_page, templates
from web.sessions import Notice, Session, Sessions, checked_form, session_of
from web.sign_in import CALLBACK, SignInPages
from web.timeline import NoSuchOrder, read_history
from web.waiting_orders import Orders

logger = logging.getLogger("inbox")


def create_app(
    settings: Settings, port: int, secret: str, issuer: Issuer | None = None
) -> Starlette:
    """The inbox on `port`, for the holder of `secret` alone (see OwnerOnly); its approvers sign
    in with `issuer` when one is given, and decide as the OS account that runs it otherwise."""
    pages = Pages(Orders(settings), issuer)
    signing_in = SignInPages(issuer).routes() if issuer else []
    return Starlette(
        routes=[
            *signing_in,
            Route("/", pages.inbox),
            Route("/waiting", pages.waiting),
            Route("/place", pages.order_form),
            Route("/place", pages.place, methods=["POST"]),
            # An order ID may hold `/`: it is all of the path after a prefix that alone names
            # the route (see order_path).
            Route("/orders/{order_id:path}", pages.order),
            Route("/live/{order_id:path}", pages.order_live),
            Route("/decide/{order_id:path}", pages.decide, methods=["POST"]),
            Route("/cancel/{order_id:path}", pages.cancel, methods=["POST"]),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static")),
        ],
        middleware=[
            Middleware(LoopbackOnly, port=port),
            Middleware(
                OwnerOnly,
                secret=secret,
                port=port,
                refusal=templates.get_template("locked.html").render(notices=[]),
                open_prefixes=("/static/", CALLBACK) if issuer else ("/static/",),
            ),
            Middleware(NoTracebacks),
            Middleware(Sessions, port=port),
        ],
        exception_handlers={
            UserError: pages.error,
            RPCError: pages.error,
            HTTPException: pages.error,
        },
    )


def seconds(delta: float) -> str:
    """`5 s`, `2 min 5 s`."""
    whole = max(0, round(delta))
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


class Pages:
    def __init__(self, orders: Orders, issuer: Issuer | None) -> None:
        self._orders = orders
        self._issuer = issuer

    def _decides_as(self, session: Session) -> str | None:
        """Who a decision from this session is recorded as; None until its approver signs in."""
        if self._issuer is None:
            # The inbox is its starter's alone (OwnerOnly): it decides as their OS account,
            # which proves itself with the order key, as approve.py does.
            return f"{local_account()} ({Proof.ORDER_KEY})"
        signed_in = session.signed_in
        return f"{signed_in.name} ({Proof.SIGNED_IN})" if signed_in else None

    # --- The inbox -----------------------------------------------------------------------------

    async def inbox(self, request: Request) -> Response:
        context = await self._waiting_context()
        return page(
            request,
            "inbox.html",
            decides_as=self._decides_as(session_of(request)),
            issuer=self._issuer.url if self._issuer else None,
            **context,
        )

    async def waiting(self, request: Request) -> Response:
        """The inbox's list alone, which the page fetches every few seconds."""
        return page(request, "waiting.html", notices=[], **await self._waiting_context())

    async def _waiting_context(self) -> dict[str, Any]:
        try:
            waiting = await self._orders.waiting()
        except (UserError, RPCError) as err:
            return {"error": await self._orders.explain(err), "waiting": []}
        now = datetime.now(UTC)
        return {
            "waiting": [
                {
                    "id": order.order_id,
                    "order": order.order,
                    "waited": seconds((now - order.waiting_since).total_seconds()),
                    "left": seconds((order.expires_at - now).total_seconds()),
                }
                for order in waiting
            ]
        }

    async def decide(self, request: Request) -> Response:
        form = await checked_form(request)
        session = session_of(request)
        notices = session.notices
        order_id = request.path_params["order_id"]
        decision = read_decision_form(form)
        if self._issuer and not session.signed_in:
            decision = "sign in first (above): this inbox takes decisions from signed-in approvers"
        if isinstance(decision, str):
            notices.append(Notice(f"Nothing was sent to order {order_id}: {decision}", ok=False))
            return RedirectResponse("/", status_code=303)
        sign_in = session.signed_in.sign_in if session.signed_in else None
        client = await self._orders.client()
        try:
            # Sent naming nobody: decide_order has it proven by the sign-in's ticket, or else signs
            # it as this process's OS account, the inbox's starter, with the order key.
            taken = await decide_order(client, order_id, decision, sign_in)
            notices.append(Notice(taken, ok=True))
        except MovedOn as moved_on:
            notices.append(Notice(str(moved_on), ok=False))
        except (UserError, RPCError) as err:
            notices.append(Notice(await self._too_late(client, order_id, err), ok=False))
        return RedirectResponse("/", status_code=303)

    async def _too_late(self, client: Client, order_id: str, err: UserError | RPCError) -> str:
        """Why a decision failed; for an order that has finished since it was decided, who
        decided it, as the order itself says while it runs."""
        try:
            decided = (await read_history(client, order_id)).decision
        except (UserError, RPCError):
            decided = None
        if decided is None:
            return await self._orders.explain(err)
        return f"order {order_id} was already {decided}; your decision did not take effect"

    # --- Placing an order ----------------------------------------------------------------------

    async def order_form(self, request: Request) -> Response:
        return self._form_page(request, OrderForm.blank())

    def _form_page(self, request: Request, typed: OrderForm, status_code: int = 200) -> Response:
        return page(
            request,
            "place.html",
            status_code,
            form=typed,
            catalogue=catalogue(),
            form_wide=typed.problems.get(FORM_WIDE),
        )

    async def place(self, request: Request) -> Response:
        order, typed = read_order_form(await checked_form(request))
        if order is None:
            return self._form_page(request, typed, status_code=400)
        order_id = new_order_id()
        client = await self._orders.client()
        notices = session_of(request).notices
        try:
            paid = await place_order(client, self._orders.settings.task_queue, order, order_id)
        except PaymentRefused as refused:
            notices.append(Notice(f"Order {order_id} failed: {refused.reason}", ok=False))
        else:
            notices.append(
                Notice(describe_payment(order_id, paid), ok=True)
                if paid
                else Notice(
                    f"Placed order {order_id}; its payment has not settled yet. If no worker"
                    f" runs, start one: {script_command('worker.py')}",
                    ok=False,
                )
            )
        return RedirectResponse(order_path("orders", order_id), status_code=303)

    # --- One order -----------------------------------------------------------------------------

    async def order(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        history = await read_history(await self._orders.client(), order_id)
        return page(
            request,
            "order.html",
            order_id=order_id,
            order=history.order,
            web_ui=web_ui_link(self._orders.settings, order_id),
            **await self._live_context(order_id),
        )

    async def order_live(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        return page(
            request, "order_live.html", notices=[], order_id=order_id,
            **await self._live_context(order_id),
        )  # fmt: skip

    async def _live_context(self, order_id: str) -> dict[str, Any]:
        """Where the order is, its timeline, and whether it can still be cancelled."""
        try:
            client = await self._orders.client()
            history = await read_history(client, order_id)
            where = await where_is(client, order_id)
        except (UserError, RPCError) as err:
            return {"error": await self._orders.explain(err), "moments": []}
        if isinstance(where, Delivered):
            now = f"delivered ({where.result.shipment.tracking_number})"
            why_not: str | None = "too late to cancel: the order was delivered"
        elif isinstance(where, Ended):
            undone = describe_compensations(where.compensations)
            now = f"{where.how}: {where.reason}; undone: {undone}"
            why_not = f"nothing to cancel: the order ended ({where.how})"
        else:
            now, why_not = describe_status(where), cannot_cancel(where)
        return {"now": now, "moments": history.moments, "why_not": why_not}

    async def cancel(self, request: Request) -> Response:
        form = await checked_form(request)
        order_id = request.path_params["order_id"]
        notices = session_of(request).notices
        reason = str(form.get("reason", "")).strip()
        try:
            _, accepted = await request_cancel(await self._orders.client(), order_id, reason)
            notices.append(Notice(f"Cancelling order {order_id} (it was {accepted.step}).", True))
        except (UserError, RPCError) as err:
            notices.append(Notice(await self._orders.explain(err), ok=False))
        return RedirectResponse(order_path("orders", order_id), status_code=303)

    # --- Errors --------------------------------------------------------------------------------

    async def error(self, request: Request, err: Exception) -> Response:
        """A page with the error in one line; 404 for an order there is no such order."""
        if isinstance(err, HTTPException):
            return plain_page(request, "error.html", err.status_code, error=err.detail)
        if isinstance(err, NoSuchOrder):
            return plain_page(request, "error.html", 404, error=str(err))
        assert isinstance(err, UserError | RPCError)
        return plain_page(request, "error.html", 502, error=await self._orders.explain(err))


def describe_status(status: OrderStatus) -> str:
    """`awaiting approval; approval: pending`, as status.py says it."""
    approval = describe_approval(status.approval, status.decision)
    said = f"{status.step}; approval: {approval}"
    if status.cancel_reason:
        said += f"; cancelling: {status.cancel_reason}"
    if status.compensations:
        said += f"; undone: {describe_compensations(status.compensations)}"
    return said


def cannot_cancel(status: OrderStatus) -> str | None:
    """Why a running order can no longer be cancelled, or None while it can."""
    if status.cancel_reason:
        return f"already being cancelled: {status.cancel_reason}"
    # The rule the workflow's cancel_order validator applies.
    if status.step in TOO_LATE_TO_CANCEL:
        return f"too late to cancel: the order is {status.step}"
    return None


class NoTracebacks:
    """Any other error is one line on the page; the log gets its type only, since a message
    (such as a validation error's) may quote customer data."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, sending)
        except Exception as err:
            # No traceback in the log either: it may quote customer data. The path is decoded
            # from the request, whose sender chose it: escaped, so it cannot forge a log line.
            path = printable(scope["path"])
            logger.error("%s %s failed: %s", scope.get("method"), path, type(err).__name__)  # noqa: TRY400
            if not started:
                text = f"error: the inbox failed ({type(err).__name__}); see its log"
                await plain_page(Request(scope), "error.html", 500, error=text)(
                    scope, receive, send
                )
