"""The approver's inbox in Chromium, against a dev server and ./worker.py: place, decide, refuse."""

import asyncio
import http.client
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, async_playwright, expect
from support.durability import read_ledger
from support.inbox import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ORDER_SECONDS,
    browsing,
    name_approver,
    place_from_form,
    running_inbox,
)
from temporalio.client import Client

from harness.processes import DevServer, Worker, eventually, script_env

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
) -> Iterator[str]:
    with running_inbox(e2e_env, tmp_path_factory.mktemp("logs") / "inbox.log") as address:
        yield address


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
    browser: Browser, inbox: str, tmp_path: Path
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
    browser: Browser, inbox: str, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "alice") as page:
        order_id = await place_from_form(page)
        await name_approver(page, "alice")
        listed = page.locator(f'li[data-key="{order_id}"]')
        await expect(listed).to_contain_text("ada@example.com: 1 x T-SHIRT @ $25.00")
        await expect(listed).to_contain_text("left before it expires")

        await listed.get_by_label("Reason (required to reject)").fill("checked the address")
        await listed.get_by_role("button", name=f"Approve {order_id}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Approved order {order_id} by alice at"
        )
        await expect(listed).to_have_count(0, timeout=ORDER_MILLISECONDS)

        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".step")).to_contain_text("delivered", timeout=ORDER_MILLISECONDS)
        timeline = page.locator(".timeline")
        await expect(timeline).to_contain_text("approved by alice")
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
    browser: Browser, inbox: str, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "bob") as page:
        order_id = await place_from_form(page)
        await name_approver(page, "bob")
        listed = page.locator(f'li[data-key="{order_id}"]')
        await listed.get_by_role("button", name=f"Reject {order_id}").click()
        await expect(page.locator(".notice.refused")).to_have_text(
            f"To reject {order_id}, give a reason."
        )

        await listed.get_by_label("Reason (required to reject)").fill("looks fake")
        await listed.get_by_role("button", name=f"Reject {order_id}").click()
        await expect(page.locator(".notice.ok")).to_contain_text(
            f"Rejected order {order_id} by bob"
        )

        await page.goto(f"/orders/{order_id}")
        await expect(page.locator(".step")).to_contain_text(
            "failed: Order rejected: looks fake; undone: refund payment: refund-",
            timeout=ORDER_MILLISECONDS,
        )
        await expect(page.locator(".timeline")).to_contain_text("undone: refund payment")
    assert ledger_kinds(e2e_env, order_id) == {"charge": 1, "refund": 1}


async def test_the_inbox_keeps_itself_current_without_a_reload(
    browser: Browser, inbox: str, tmp_path: Path
) -> None:
    async with (
        browsing(browser, inbox, tmp_path, "watcher") as watcher,
        browsing(browser, inbox, tmp_path, "alice") as alice,
    ):
        await name_approver(watcher, "carol")
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

        await name_approver(alice, "alice")
        await (
            alice.locator(f'li[data-key="{first}"]')
            .get_by_role("button", name=f"Approve {first}")
            .click()
        )
        await expect(first_row).to_have_count(0)
        await expect(watcher.locator(f'li[data-key="{second}"]')).to_be_visible()


async def test_an_order_cancelled_from_its_page_is_refunded_and_says_why_no_more(
    browser: Browser, inbox: str, e2e_env: dict[str, str], tmp_path: Path
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
    browser: Browser, inbox: str, tmp_path: Path
) -> None:
    async with (
        browsing(browser, inbox, tmp_path, "alice") as alice,
        browsing(browser, inbox, tmp_path, "bob") as bob,
    ):
        order_id = await place_from_form(alice)
        await name_approver(alice, "alice")
        await name_approver(bob, "bob")
        rows = {page: page.locator(f'li[data-key="{order_id}"]') for page in (alice, bob)}
        for row in rows.values():
            await expect(row).to_be_visible()
        await rows[bob].get_by_label("Reason (required to reject)").fill("looks fake")

        await asyncio.gather(
            rows[alice].get_by_role("button", name=f"Approve {order_id}").click(),
            rows[bob].get_by_role("button", name=f"Reject {order_id}").click(),
        )
        for page in (alice, bob):
            await expect(page.locator(".notice")).to_have_count(1)
        won = [page for page in (alice, bob) if await page.locator(".notice.ok").count()]
        assert len(won) == 1
        winner, loser = won[0], bob if won[0] is alice else alice
        verb = "approved by alice" if winner is alice else "rejected by bob"
        await expect(loser.locator(".notice.refused")).to_contain_text(
            f"order {order_id} was already {verb} at"
        )
        await expect(loser.locator(".notice.refused")).to_contain_text(
            "your decision did not take effect"
        )


async def test_a_form_with_problems_shows_each_by_its_field_and_places_nothing(
    browser: Browser, inbox: str, e2e_env: dict[str, str], tmp_path: Path
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
    browser: Browser, inbox: str, tmp_path: Path
) -> None:
    async with browsing(browser, inbox, tmp_path, "victim") as page:
        order_id = await place_from_form(page)
        decision = f"{inbox}/orders/{order_id}/decision"
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


def test_a_request_for_another_host_is_refused(inbox: str) -> None:
    address = urlsplit(inbox)
    connection = http.client.HTTPConnection("127.0.0.1", address.port, timeout=10)
    connection.request("GET", "/", headers={"Host": f"rebound.example:{address.port}"})
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (
        403,
        b"refused: this inbox answers only to localhost, 127.0.0.1 and [::1]",
    )


async def test_with_the_server_stopped_the_page_says_so_in_one_line(
    browser: Browser, tmp_path: Path
) -> None:
    server = DevServer()
    server.start()
    env = script_env(server, tmp_path / "data", ORDER_TASK_QUEUE=f"gone-{uuid.uuid4().hex[:6]}")
    try:
        with running_inbox(env, tmp_path / "inbox.log") as address:
            async with browsing(browser, address, tmp_path, "approver") as page:
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
