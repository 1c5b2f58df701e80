"""The approver's inbox in Chromium, against a dev server and ./worker.py: place, decide, refuse,
and serve only the person who started it."""

import asyncio
import http.client
import logging
import re
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from starlette.types import Message, Receive, Scope, Send
from support.durability import read_ledger
from support.inbox import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ORDER_SECONDS,
    Inbox,
    browsing,
    place_from_form,
    routes_of_the_app,
    running_inbox,
)
from support.issuer import AUDIENCE, Issuer, local_issuer
from support.scripts import BY_ME, FORGED_LINE, FORGED_LINE_SHOWN, new_order_id
from support.temporal_cli import VALID, another_local_user, as_input, start
from temporalio.client import Client

from harness.processes import DevServer, Worker, eventually, running_worker, script_env
from web.app import NoTracebacks
from web.rendering import order_path
from web.sessions import MAX_NOTICES, MAX_SESSIONS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
]

ORDER_MILLISECONDS = ORDER_SECONDS * 1000


@pytest.fixture(scope="module")
def inbox(
    e2e_env: dict[str, str], e2e_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Inbox]:
    with running_inbox(e2e_env, tmp_path_factory.mktemp("logs") / "inbox.log") as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def ledger_kinds(env: dict[str, str], order_id: str) -> Counter[str]:
    return Counter(
        e.kind for e in read_ledger(Path(env["ORDER_DATA_DIR"]) / "ledger.sqlite3", order_id)
    )


async def test_an_order_placed_from_the_form_answers_with_its_payment(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "placer") as page:
        await place_from_form(page)
        await expect(page.locator(".notice")).to_contain_text("Charged $35.00 for order order-")
        await expect(page.locator(".notice")).to_contain_text("it waits 30 s for approval")

        await place_from_form(page, card_expiry="12/23")
        await expect(page.locator(".notice.refused")).to_have_text(
            f"Order {page.url.rsplit('/', 1)[1]} failed: card expired 12/23"
        )


async def test_an_approved_order_leaves_the_inbox_and_is_delivered_once(
    browser: Browser, inbox: Inbox, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "approver") as page:
        order_id = await place_from_form(page)
        await page.goto("/")
        # Who decides is whoever started the inbox, as proven: nobody types a name.
        await expect(page.locator(".decides-as")).to_have_text(
            f"Each decision is recorded as {BY_ME}: the inbox sends it as the account that"
            " started it, signed with the order key."
        )
        await expect(
            page.get_by_role("textbox", name=re.compile("name", re.IGNORECASE))
        ).to_have_count(0)
        listed = page.locator(f'li[data-key="{order_id}"]')
        await expect(listed).to_contain_text("ada@example.com: 1 x T-SHIRT @ $25.00")
        await expect(listed).to_contain_text("left before it expires")

        await listed.get_by_label("Reason (required to reject)").fill("checked the address")
        await listed.get_by_role("button", name=f"Approve {order_id}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Approved order {order_id} by {BY_ME} at"
        )
        await expect(listed).to_have_count(0, timeout=ORDER_MILLISECONDS)

        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".step")).to_contain_text("delivered", timeout=ORDER_MILLISECONDS)
        timeline = page.locator(".timeline")
        await expect(timeline).to_contain_text(f"approved by {BY_ME}")
        await expect(timeline).to_contain_text("shipped (trk-")
        await expect(
            page.get_by_text("Too late to cancel: the order was delivered.")
        ).to_be_visible()
    assert ledger_kinds(e2e_env, order_id) == {
        "charge": 1,
        "reservation": 1,
        "shipment": 1,
        "e-mail": 1,
    }


async def test_a_rejected_order_needs_a_reason_and_is_refunded(
    browser: Browser, inbox: Inbox, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "rejecter") as page:
        order_id = await place_from_form(page)
        await page.goto("/")
        listed = page.locator(f'li[data-key="{order_id}"]')
        await listed.get_by_role("button", name=f"Reject {order_id}").click()
        await expect(page.locator(".notice.refused")).to_have_text(
            f"Nothing was sent to order {order_id}: a rejection needs a reason"
        )

        await listed.get_by_label("Reason (required to reject)").fill("looks fake")
        await listed.get_by_role("button", name=f"Reject {order_id}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Rejected order {order_id} by {BY_ME}"
        )

        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".step")).to_contain_text(
            "failed: Order rejected: looks fake; undone: refund payment: refund-",
            timeout=ORDER_MILLISECONDS,
        )
        await expect(page.locator(".timeline")).to_contain_text("undone: refund payment")
    assert ledger_kinds(e2e_env, order_id) == {"charge": 1, "refund": 1}


async def test_the_inbox_keeps_itself_current_without_a_reload(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with (
        browsing(browser, inbox, tmp_path, "watcher") as watcher,
        browsing(browser, inbox, tmp_path, "alice") as alice,
    ):
        await watcher.goto("/")
        first = await place_from_form(alice)
        first_row = watcher.locator(f'li[data-key="{first}"]')
        await expect(first_row).to_be_visible()
        await first_row.get_by_label("Reason (required to reject)").fill("still typing")

        second = await place_from_form(alice)
        rows = watcher.locator("li[data-key]")
        await expect(rows.first).to_have_attribute("data-key", second)  # Newest first.
        await expect(first_row.get_by_label("Reason (required to reject)")).to_have_value(
            "still typing"
        )

        await alice.goto("/")
        await (
            alice.locator(f'li[data-key="{first}"]')
            .get_by_role("button", name=f"Approve {first}")
            .click()
        )
        await expect(first_row).to_have_count(0)
        await expect(watcher.locator(f'li[data-key="{second}"]')).to_be_visible()


async def test_an_order_cancelled_from_its_page_is_refunded_and_says_why_no_more(
    browser: Browser, inbox: Inbox, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "customer") as page:
        order_id = await place_from_form(page)
        await page.get_by_label("Why cancel (optional)").fill("changed my mind")
        await page.get_by_role("button", name="Cancel this order and refund it").click()
        await expect(page.locator(".notice.ok")).to_have_text(
            f"Cancelling order {order_id} (it was awaiting approval)."
        )
        await expect(page.locator(".step")).to_contain_text(
            "failed: Order cancelled: changed my mind; undone: refund payment: refund-",
            timeout=ORDER_MILLISECONDS,
        )
        await expect(
            page.get_by_text("Nothing to cancel: the order ended (failed).")
        ).to_be_visible()
        await expect(page.locator(".timeline")).to_contain_text("cancel requested: changed my mind")
    assert ledger_kinds(e2e_env, order_id) == {"charge": 1, "refund": 1}


async def test_two_approvers_at_once_one_wins_and_the_other_is_told_who(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    """Two windows of the inbox, as its owner may have open, decide one order at once."""
    async with (
        browsing(browser, inbox, tmp_path, "approving") as approving,
        browsing(browser, inbox, tmp_path, "rejecting") as rejecting,
    ):
        order_id = await place_from_form(approving)
        for page in (approving, rejecting):
            await page.goto("/")
        rows = {page: page.locator(f'li[data-key="{order_id}"]') for page in (approving, rejecting)}
        for row in rows.values():
            await expect(row).to_be_visible()
        await rows[rejecting].get_by_label("Reason (required to reject)").fill("looks fake")

        await asyncio.gather(
            rows[approving].get_by_role("button", name=f"Approve {order_id}").click(),
            rows[rejecting].get_by_role("button", name=f"Reject {order_id}").click(),
        )
        for page in (approving, rejecting):
            await expect(page.locator(".notice")).to_have_count(1)
        won = [page for page in rows if await page.locator(".notice.ok").count()]
        assert len(won) == 1
        loser = rejecting if won[0] is approving else approving
        stood = f"approved by {BY_ME}" if won[0] is approving else f"rejected by {BY_ME}"
        await expect(loser.locator(".notice.refused")).to_contain_text(
            f"order {order_id} was already {stood} at"
        )
        await expect(loser.locator(".notice.refused")).to_contain_text(
            "your decision did not take effect"
        )


async def test_a_form_with_problems_shows_each_by_its_field_and_places_nothing(
    browser: Browser, inbox: Inbox, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    queue = f"TaskQueue = '{e2e_env['ORDER_TASK_QUEUE']}'"
    client = await Client.connect(e2e_env["TEMPORAL_ADDRESS"])
    before = (await client.count_workflows(queue)).count
    async with browsing(browser, inbox, tmp_path, "placer") as page:
        await page.goto("/place")
        await page.get_by_label("Quantity of T-SHIRT at $25.00").fill("-5")
        await page.get_by_label("Card expiry (MM/YY)").fill("13/30")
        await page.get_by_role("button", name="Place the order and charge the card").click()
        await expect(page.locator("#quantity-T-SHIRT-problem")).to_have_text(
            "Input should be greater than or equal to 1"
        )
        await expect(page.locator("#card-expiry-problem")).to_have_text(
            "card expiry month must be 01 to 12 (got '13/30')"
        )
        await expect(page.get_by_label("Quantity of T-SHIRT at $25.00")).to_have_value("-5")
        assert urlsplit(page.url).path == "/place"
        # Visibility may lag: once a later order is counted, an earlier one would be too.
        await place_from_form(page)

    async def counted() -> int | None:
        count = (await client.count_workflows(queue)).count
        return count if count > before else None

    assert await eventually(counted, "the order placed after the refused form") == before + 1


async def test_a_post_from_another_site_without_the_token_changes_nothing(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "victim") as page:
        order_id = await place_from_form(page)
        decision = inbox.address + order_path("decide", order_id)
        # A page of another site, with a form that approves the order as soon as it loads.
        await page.route(
            "http://attacker.test/",
            lambda route: route.fulfill(
                content_type="text/html",
                body=f'<form method="post" action="{decision}"><input name="decision"'
                ' value="approve"></form><script>document.forms[0].submit()</script>',
            ),
        )
        async with page.expect_response(decision) as answer:
            await page.goto("http://attacker.test/")
        assert (await answer.value).status == 403
        # The inbox's own cookies, but no token: refused too.
        forged = await page.request.post(decision, form={"decision": "approve"})
        assert forged.status == 403

        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".step")).to_have_text("awaiting approval; approval: pending")


def test_a_request_for_another_host_is_refused(inbox: Inbox) -> None:
    address = urlsplit(inbox.address)
    connection = http.client.HTTPConnection("127.0.0.1", address.port, timeout=10)
    connection.request("GET", "/", headers={"Host": f"rebound.example:{address.port}"})
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (
        403,
        b"refused: this inbox answers only to localhost, 127.0.0.1 and [::1]",
    )


# --- Only the person who started it --------------------------------------------------------

STRANGER_FORM = {"decision": "approve", "reason": "mallory was here"}
"""What a stranger posts to every form: on an inbox open to anyone, an approval."""
CUSTOMER = "ada@example.com"
"""The customer of the order form's default order."""


@dataclass
class Stranger:
    """Another local user's plain HTTP client, without the link: it keeps the cookies it is given
    and posts each form with the last CSRF token a page showed it, as a script would."""

    address: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def send(self, method: str, path: str) -> tuple[int, str]:
        """The status and the page."""
        connection = http.client.HTTPConnection(
            "localhost", urlsplit(self.address).port, timeout=30
        )
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        body = None
        if method == "POST":
            body = urlencode({**STRANGER_FORM, "csrf": self.csrf})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body, headers)
        answer = connection.getresponse()
        page = answer.read().decode()
        connection.close()
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        if shown := re.search(r'name="csrf" value="([^"]+)"', page):
            self.csrf = shown[1]
        return answer.status, page


async def expect_still_waiting(page: Page, order_id: str) -> None:
    await page.goto(f"/orders/{order_id}")
    await expect(page.locator(".step")).to_have_text("awaiting approval; approval: pending")


async def test_the_printed_link_opens_the_inbox_and_its_secret_stays_out_of_sight(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        assert page.url == f"{inbox.address}/"  # Out of the address bar.
        await expect(page.get_by_role("heading", name="Orders awaiting approval")).to_be_visible()
        assert await page.evaluate("document.cookie") == ""  # No script reads the cookies.
        kept = {(cookie["httpOnly"], cookie["sameSite"]) for cookie in await page.context.cookies()}
        assert kept == {(True, "Strict")}  # Nor does a page of another site get them sent.

        # A link to another page opens that page, without the secret.
        await page.context.clear_cookies()
        await page.goto(inbox.link.replace("/?", "/place?"))
        assert page.url == f"{inbox.address}/place"
        await expect(page.get_by_role("heading", name="Place an order")).to_be_visible()
    # Printed once, for its user; never logged with the requests that carried it.
    assert inbox.log.read_text().count(inbox.secret) == 1


async def test_without_the_link_no_page_or_form_answers_and_nothing_changes(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as owner:
        order_id = await place_from_form(owner)
        routes, mounts = routes_of_the_app(order_id)
        stranger = Stranger(inbox.address)
        # In the app's order: a stranger the inbox answered would have a token for its forms by
        # the time it names itself, then approves the order.
        answers = {route: stranger.send(*route)[0] for route in routes}
        made_up = "x" * len(inbox.secret)
        answers["GET", f"/?token={made_up}"] = stranger.send("GET", f"/?token={made_up}")[0]
        with_cookies_made_up = Stranger(
            inbox.address, {cookie["name"]: made_up for cookie in await owner.context.cookies()}
        )
        answers["GET", "/ with cookies made up"] = with_cookies_made_up.send("GET", "/")[0]
        assert answers == dict.fromkeys(answers, 401)
        assert stranger.cookies == {}  # Not even a session.
        # The stylesheet and the script are the same for everyone, so the refusal can use them.
        assert mounts == ["/static"]
        assert stranger.send("GET", "/static/inbox.css")[0] == 200
        await expect_still_waiting(owner, order_id)


async def test_a_browser_without_the_link_is_asked_for_it_and_shown_nothing(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with (
        browsing(browser, inbox, tmp_path, "owner") as owner,
        browsing(browser, inbox, tmp_path, "stranger", with_link=False) as page,
    ):
        order_id = await place_from_form(owner)
        for path in ("/", f"/orders/{order_id}"):
            answer = await page.goto(path)
            assert answer is not None
            assert answer.status == 401
            await expect(page.get_by_role("heading")).to_have_text(
                "Open the link the inbox printed"
            )
            assert order_id not in await page.content()
            assert CUSTOMER not in await page.content()


def curl(user: str, *args: str) -> tuple[int, str]:
    """`curl ARGS` run as `user`: the status, and the page."""
    done = subprocess.run(
        ["runuser", "-u", user, "--", "curl", "--silent", "--write-out", "\n%{http_code}", *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    page, _, status = done.stdout.rpartition("\n")
    return int(status), page


async def test_another_local_user_reads_nothing_and_changes_nothing(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    nobody = another_local_user()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl)")
    async with browsing(browser, inbox, tmp_path, "owner") as owner:
        order_id = await place_from_form(owner)
        url = {
            route: inbox.address + order_path(route, order_id)
            for route in ("orders", "live", "decide", "cancel")
        }
        for request in (
            [url["orders"]],
            [url["live"]],
            [f"{inbox.address}/waiting"],
            ["--data", "decision=approve&reason=mine", url["decide"]],
            ["--data", "reason=mine", url["cancel"]],
        ):
            status, page = curl(nobody, *request)
            assert status == 401, request
            assert CUSTOMER not in page
        # Nor can it read the secret where another user's processes show: their command lines.
        shown = subprocess.run(
            ["runuser", "-u", nobody, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline"],
            capture_output=True, timeout=30,
        )  # fmt: skip
        assert b"inbox.py" in shown.stdout
        assert inbox.secret.encode() not in shown.stdout
        await expect_still_waiting(owner, order_id)


async def test_with_the_server_stopped_the_page_says_so_in_one_line(
    browser: Browser, tmp_path: Path
) -> None:
    server = DevServer()
    server.start()
    env = script_env(server, tmp_path / "data", ORDER_TASK_QUEUE=f"gone-{uuid.uuid4().hex[:6]}")
    try:
        with running_inbox(env, tmp_path / "inbox.log") as stopping:
            async with browsing(browser, stopping, tmp_path, "approver") as page:
                await page.goto("/")
                await expect(page.get_by_text("No order is waiting for approval.")).to_be_visible()
                server.stop()
                await page.reload()
                error = page.locator(".error")
                await expect(error).to_have_count(1)
                await expect(error).to_contain_text(f"cannot reach Temporal at {server.address}")
                await expect(error).to_contain_text("Start ./worker.py")
                assert "Traceback" not in await page.content()
    finally:
        server.stop()


# --- What the pages take, keep and give ----------------------------------------------------


async def test_an_order_id_that_climbs_out_of_its_path_decides_and_cancels_only_itself(
    browser: Browser,
    inbox: Inbox,
    e2e_server: DevServer,
    e2e_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Any client may start an order with any ID: one whose `..` would lead a link, once
    resolved by the browser, to another order's path."""
    victim = new_order_id("victim")
    approved, cancelled = (f"{name}/../../orders/{victim}" for name in ("innocent-order", "other"))
    for order_id in (victim, approved, cancelled):
        start(e2e_server, e2e_env, None, order_id, "-i", as_input(VALID))
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        await page.goto("/")
        rows = {
            order_id: page.locator(f'li[data-key="{order_id}"]')
            for order_id in (approved, cancelled)
        }
        for order_id, row in rows.items():
            await expect(row).to_be_visible()
            # Where the browser sends the row's forms and link, once it has resolved the URL.
            for element in (row.locator("form"), row.get_by_role("link")):
                url = await element.evaluate("e => e.action || e.href")
                assert order_id in unquote(urlsplit(url).path), url

        await rows[approved].get_by_role("button", name=f"Approve {approved}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Approved order {approved} by {BY_ME} at"
        )
        await rows[cancelled].get_by_role("link", name=cancelled).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {cancelled}")
        cancel_form = page.locator(
            "form", has=page.get_by_role("button", name="Cancel this order and refund it")
        )
        assert cancelled in unquote(urlsplit(await cancel_form.evaluate("f => f.action")).path)
        await page.get_by_role("button", name="Cancel this order and refund it").click()
        await expect(page.locator(".notice.ok")).to_have_text(
            f"Cancelling order {cancelled} (it was awaiting approval)."
        )
        await expect_still_waiting(page, victim)
    assert ledger_kinds(e2e_env, victim) == {"charge": 1}


async def test_an_unknown_or_overlong_order_id_is_not_found(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        for order_id in (new_order_id("unknown"), "x" * 1_500):
            answer = await page.goto(f"/orders/{order_id}")
            assert answer is not None
            assert answer.status == 404, order_id
            await expect(page.locator(".error")).to_have_text(f"no order with ID {order_id}")


async def test_a_reason_the_order_would_refuse_is_a_message_and_nothing_is_sent(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        order_id = await place_from_form(page)
        cancel_url = await page.locator("form").get_attribute("action")
        await page.goto("/")
        row = page.locator(f'li[data-key="{order_id}"]')
        decision_url = await row.locator("form").get_attribute("action")
        csrf = await row.locator('input[name="csrf"]').get_attribute("value")
        assert decision_url
        assert cancel_url
        assert csrf
        # What the page's own fields would not let anyone type, posted as a script would.
        for url, form, refused in (
            (decision_url, {"decision": "reject", "reason": "looks\tfake"}, "found U+0009"),
            (decision_url, {"decision": "approve", "reason": "\x1b[2Kok"}, "found U+001B"),
            (decision_url, {"decision": "approve", "reason": "x" * 501}, "at most 500 characters"),
            (decision_url, {"decision": "approve!", "reason": ""}, "no approve or reject"),
            (cancel_url, {"reason": "\x1b[2Kgone"}, "found U+001B"),
        ):
            answer = await page.request.post(url, form={"csrf": csrf, **form})
            assert answer.status == 200, form
            shown = re.search(r'class="notice refused"[^>]*>([^<]*)<', await answer.text())
            assert shown is not None, form
            assert refused in shown[1], shown[1]
        await expect_still_waiting(page, order_id)


def get(
    inbox: Inbox,
    path: str,
    cookies: dict[str, str],
    count: int = 1,
    headers: dict[str, str] | None = None,
) -> list[http.client.HTTPResponse]:
    """`count` GETs of `path` on one connection, with `cookies` and `headers`; the answers, read."""
    connection = http.client.HTTPConnection("localhost", urlsplit(inbox.address).port, timeout=30)
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    answers = []
    for _ in range(count):
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        answers.append(answer)
    connection.close()
    return answers


def new_cookies(answers: list[http.client.HTTPResponse]) -> list[str]:
    return [cookie for answer in answers for cookie in answer.headers.get_all("Set-Cookie") or []]


async def test_sessions_start_only_for_pages_and_a_flood_cannot_evict_the_owners(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        secret = {
            c["name"]: c["value"] for c in await page.context.cookies() if "secret" in c["name"]
        }
        # Neither the refusal nor the stylesheet starts a session.
        assert new_cookies(get(inbox, "/place", {}) + get(inbox, "/static/inbox.css", secret)) == []

        # A form, shown before the flood, whose token is the owner's session's.
        await page.goto("/place")
        await page.get_by_label("Quantity of T-SHIRT at $25.00").fill("-5")
        await expect(page.locator("link[rel=stylesheet]")).to_have_count(1)

        flood = 2 * MAX_SESSIONS + 1  # More sessions than the inbox keeps, of either kind.
        strangers = get(inbox, "/place", {}, count=flood)
        assert {answer.status for answer in strangers} == {401}
        assert new_cookies(strangers) == []
        # With the secret (as only its owner has it) but keeping no cookies: a session each.
        keeping_none = get(inbox, "/place", secret, count=flood)
        assert len(new_cookies(keeping_none)) == flood

        await page.get_by_role("button", name="Place the order and charge the card").click()
        await expect(page.locator("#quantity-T-SHIRT-problem")).to_have_text(
            "Input should be greater than or equal to 1"
        )


async def test_a_session_keeps_only_its_latest_notices(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        await page.goto("/place")
        csrf = await page.locator('input[name="csrf"]').get_attribute("value")
        assert csrf
        for count in range(MAX_NOTICES + 5):
            # Refused before anything is sent: a rejection needs a reason.
            order_id = f"order-{count:03d}"
            await page.request.post(
                inbox.address + order_path("decide", order_id),
                form={"csrf": csrf, "decision": "reject"},
                max_redirects=0,
            )
        await page.goto("/")
        await expect(page.locator(".notice")).to_have_count(MAX_NOTICES)
        await expect(page.locator(".notice").last).to_contain_text(f"order-{MAX_NOTICES + 4:03d}")


async def test_pages_with_customer_data_are_never_cached(
    browser: Browser, inbox: Inbox, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "owner") as page:
        order_id = await place_from_form(page)
        live = await page.locator("[data-poll]").get_attribute("data-poll")
        assert live
        for path in ("/", "/waiting", "/place", f"/orders/{order_id}", live, "/orders/unknown"):
            answer = await page.request.get(path)
            assert answer.headers.get("cache-control") == "no-store", path


async def test_the_log_shows_the_real_client_not_a_forwarded_for_header(inbox: Inbox) -> None:
    probe = f"/static/{uuid.uuid4().hex}.css"
    (answer,) = get(inbox, probe, {}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.status == 404

    def logged() -> str | None:
        return next((line for line in inbox.log.read_text().splitlines() if probe in line), None)

    line = await eventually(logged, "the probe's line in the inbox's log")
    assert "203.0.113.9" not in line
    assert re.search(rf'127\.0\.0\.1:[0-9]+ - "GET {probe} HTTP/1\.1" 404', line), line


async def test_two_inboxes_on_other_ports_keep_their_own_sessions(
    browser: Browser, inbox: Inbox, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    """Cookies are shared by every port of localhost: each inbox's are named after its port."""
    with running_inbox(e2e_env, tmp_path / "second.log") as second:
        async with browsing(browser, inbox, tmp_path, "owner") as first_page:
            await first_page.goto("/place")
            await first_page.get_by_label("Quantity of T-SHIRT at $25.00").fill("-5")
            second_page = await first_page.context.new_page()
            await second_page.goto(second.link)
            await expect(second_page.get_by_role("heading", level=1)).to_have_text(
                "Orders awaiting approval"
            )
            names = {cookie["name"] for cookie in await first_page.context.cookies()}
            ports = [urlsplit(each.address).port for each in (inbox, second)]
            assert names == {
                f"inbox_{kind}_{port}" for kind in ("secret", "session") for port in ports
            }

            await first_page.get_by_role(
                "button", name="Place the order and charge the card"
            ).click()
            await expect(first_page.locator("#quantity-T-SHIRT-problem")).to_have_text(
                "Input should be greater than or equal to 1"
            )


async def test_the_error_log_escapes_a_path_that_would_forge_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("not for the log")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    # As uvicorn gives it: the request's path, percent-decoded.
    scope = {"type": "http", "method": "GET", "path": f"/orders/{FORGED_LINE}", "headers": []}
    with caplog.at_level(logging.ERROR, logger="inbox"):
        await NoTracebacks(failing)(scope, receive, send)
    assert caplog.messages == [f"GET /orders/{FORGED_LINE_SHOWN} failed: RuntimeError"]
    assert sent[0]["status"] == 500


# --- Signed-in approvers: inbox.py --sign-in oidc, with worker.py --approvers oidc ---------------

GRACE, HEIDI, MALLORY = "grace@example.com", "heidi@example.com", "mallory@example.com"
INBOX_CLIENT = "order-inbox"
"""The inbox's client ID at the issuer."""


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with local_issuer() as running:
        yield running


@pytest.fixture(scope="module")
def signing_in(
    e2e_server: DevServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Inbox]:
    """An inbox whose approvers sign in, for a worker that takes decisions from GRACE and HEIDI
    only, on a task queue of their own."""
    env = script_env(
        e2e_server, tmp_path_factory.mktemp("data"), ORDER_TASK_QUEUE=f"sec-{uuid.uuid4().hex[:6]}"
    )
    logs = tmp_path_factory.mktemp("logs")
    with running_worker(
        env, logs / "worker.log", "--approvers", "oidc", "--oidc-issuer", issuer.url,
        "--oidc-audience", AUDIENCE, "--approver", GRACE, "--approver", HEIDI, codec=True,
    ) as worker:  # fmt: skip
        env["ORDER_CODEC_ENDPOINT"] = f"http://localhost:{worker.codec_port}"
        with running_inbox(
            env, logs / "inbox.log", "--sign-in", "oidc", "--oidc-issuer", issuer.url,
            "--oidc-client-id", INBOX_CLIENT,
        ) as inbox:  # fmt: skip
            yield inbox


async def sign_in(page: Page, issuer: Issuer, user: str) -> None:
    """Signs in at the issuer, which lets `user` in at once, as if they had typed a password."""
    issuer.signing_in_as = user
    await page.goto("/")
    await page.get_by_role("link", name=f"Sign in with {issuer.url}").click()
    await expect(page.locator(".notice.ok")).to_have_text(f"Signed in as {user}.")


async def test_a_signed_in_approver_is_recorded_as_signed_in_and_the_token_stays_in_the_inbox(
    browser: Browser, signing_in: Inbox, issuer: Issuer, tmp_path: Path
) -> None:
    async with browsing(browser, signing_in, tmp_path, "heidi") as page:
        order_id = await place_from_form(page)
        await page.goto("/")
        row = page.locator(f'li[data-key="{order_id}"]')
        await row.get_by_role("button", name=f"Approve {order_id}").click()
        await expect(page.locator(".notice.refused")).to_have_text(
            f"Nothing was sent to order {order_id}: sign in first (above): this inbox takes"
            " decisions from signed-in approvers"
        )

        await sign_in(page, issuer, HEIDI)
        await expect(page.locator(".decides-as")).to_contain_text(
            f"Each decision is recorded as {HEIDI} (signed in)"
        )
        await row.get_by_label("Reason (required to reject)").fill("checked")
        await row.get_by_role("button", name=f"Approve {order_id}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Approved order {order_id} by {HEIDI} (signed in) at"
        )
        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".timeline")).to_contain_text(f"approved by {HEIDI} (signed in)")

        # The access token is the inbox's alone: in no cookie, no page and no log line.
        (token,) = issuer.access_tokens[-1:]
        assert all(token not in cookie["value"] for cookie in await page.context.cookies())
        assert token not in await page.content()
        assert token.split(".")[2] not in signing_in.log.read_text()

        await page.goto("/")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator(".notice.ok")).to_have_text(
            "Signed out: the inbox forgot your access token."
        )
        await expect(page.get_by_role("link", name=f"Sign in with {issuer.url}")).to_be_visible()


async def test_a_signed_in_user_not_on_the_workers_list_decides_nothing(
    browser: Browser, signing_in: Inbox, issuer: Issuer, tmp_path: Path
) -> None:
    async with browsing(browser, signing_in, tmp_path, "mallory") as page:
        order_id = await place_from_form(page)
        await sign_in(page, issuer, MALLORY)
        row = page.locator(f'li[data-key="{order_id}"]')
        await row.get_by_role("button", name=f"Approve {order_id}").click()
        await expect(page.locator(".notice.refused")).to_have_text(
            f"the sign-in was refused (403): {MALLORY} may not approve or reject orders"
        )
        await expect_still_waiting(page, order_id)


async def test_an_answer_from_the_issuer_for_another_sign_in_signs_nobody_in(
    browser: Browser, signing_in: Inbox, issuer: Issuer, tmp_path: Path
) -> None:
    """A link that brings another sign-in's code back (login CSRF) is refused by its state; and
    the page the issuer sends a browser back to is open to all, since the browser arrives from
    the issuer's site without the inbox's cookies, but holds nothing."""
    async with browsing(browser, signing_in, tmp_path, "owner") as page:
        issuer.signing_in_as = None  # The user gives up at the issuer: the sign-in stays pending.
        await page.goto("/")
        await page.get_by_role("link", name=f"Sign in with {issuer.url}").click()
        await expect(page.locator("body")).to_contain_text("nobody signs in")

        await page.goto("/sign-in/callback?code=someone-elses&state=made-up")
        await expect(page.locator(".notice.refused")).to_have_text(
            "Not signed in: the issuer's answer is not for this sign-in; sign in again"
        )
        await expect(page.get_by_role("link", name=f"Sign in with {issuer.url}")).to_be_visible()

    (bounce,) = get(signing_in, "/sign-in/callback?code=a&state=b", {})
    assert bounce.status == 200
    assert new_cookies([bounce]) == []
    (finish,) = get(signing_in, "/sign-in/finish?code=a&state=b", {})
    assert finish.status == 401
