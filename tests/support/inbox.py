"""The inbox for browser tests: ./inbox.py on a free port, the link it prints, and pages in
Chromium that leave a screenshot behind when a test fails."""

import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from starlette.routing import Mount, Route

from command_line.connection import Settings
from harness.processes import SCRIPT_TIMEOUT, SCRIPTS, START_ATTEMPTS, free_port, wait_for_port
from payloads.converter import PLAIN
from support.scripts import VALID_CARD
from web.app import create_app
from web.oidc import Issuer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Debian's Chromium, which Playwright drives as it is: its own browser downloads fail here."""

CHROMIUM_ARGS = ["--no-sandbox"] if os.geteuid() == 0 else []
"""Chromium's sandbox refuses to run as root, as in a container."""

# Long enough for a worker on a busy machine to run an order from approval to delivery.
ORDER_SECONDS = 60

EXPECT_SECONDS = 30
"""How long an expectation on a page waits, rather than Playwright's 5 s: the page refreshes every
2 s, a list of orders lags their starts by a moment, and the machine may be busy."""
expect.set_options(timeout=EXPECT_SECONDS * 1000)


PRINTED_LINK = re.compile(r"^    (http://localhost:[0-9]+/\?token=[A-Za-z0-9_-]+)$", re.MULTILINE)
"""The link ./inbox.py prints, on a line of its own, with the secret of its launch."""


@dataclass(frozen=True)
class Inbox:
    address: str
    """`http://localhost:PORT`, which answers 401 without the secret."""
    link: str
    """The link the inbox printed, which carries its secret."""
    log: Path
    """What it printed and logged."""

    @property
    def secret(self) -> str:
        return self.link.rsplit("=", 1)[1]


@contextmanager
def running_inbox(env: dict[str, str], log: Path, *args: str) -> Iterator[Inbox]:
    """./inbox.py ARGS on a free port, as a user runs it, and the link it printed. If the port was
    taken meanwhile, it starts again on another."""
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        with open(log, "ab") as output:
            process = subprocess.Popen(
                ["./inbox.py", "--port", str(port), *args],
                cwd=SCRIPTS,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(port, timeout=SCRIPT_TIMEOUT, process=process)
            break
        except RuntimeError:  # It exited: the port was taken, or it could not start at all.
            if attempt == START_ATTEMPTS - 1:
                raise
    try:
        # Printed before it listens; after any earlier attempt's output in the same log.
        link = PRINTED_LINK.findall(log.read_text())[-1]
        yield Inbox(f"http://localhost:{port}", link, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@asynccontextmanager
async def browsing(
    browser: Browser, inbox: Inbox, artefacts: Path, name: str, with_link: bool = True
) -> AsyncIterator[Page]:
    """A page of a browser context of its own (its own cookies: one approver), which has opened
    the printed link, as its user would, unless `with_link` is False; a screenshot of it in
    `artefacts` when the block fails."""
    context = await browser.new_context(base_url=inbox.address)
    page = await context.new_page()
    try:
        if with_link:
            await page.goto(inbox.link)
        yield page
    except BaseException:
        shot = artefacts / f"{name}.png"
        await page.screenshot(path=shot, full_page=True)
        print(f"screenshot of {name}'s page: {shot}")
        raise
    finally:
        await context.close()


async def place_from_form(page: Page, card_expiry: str = VALID_CARD) -> str:
    """Places the form's default order ($35.00) with `card_expiry`; returns its ID once the page
    has the payment's answer."""
    await page.goto("/place")
    await page.get_by_label("Card expiry (MM/YY)").fill(card_expiry)
    await page.get_by_role("button", name="Place the order and charge the card").click()
    await expect(page).to_have_url(re.compile(r"/orders/order-[0-9a-f]{8}$"))
    await expect(page.locator(".notice")).to_be_visible()
    return page.url.rsplit("/", 1)[1]


def routes_of_the_app(order_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Every (method, path) the inbox's app serves, with `order_id` for a path's parameters, read
    from the app itself, with its sign-in, so that no page or form can be left out; and the paths
    of its mounts."""
    never_connected = Settings(
        connect={},
        address="-",
        namespace="-",
        task_queue="-",
        address_configured=False,
        data_converter=PLAIN,
    )
    never_asked = Issuer("http://issuer.invalid", "-", "-", "-")
    app = create_app(never_connected, port=0, secret="-", issuer=never_asked)
    routes = [route for route in app.routes if isinstance(route, Route)]
    mounts = [route.path for route in app.routes if isinstance(route, Mount)]
    assert len(routes) + len(mounts) == len(app.routes), "a route of another kind: test it"
    return [
        (method, route.path_format.format_map(dict.fromkeys(route.param_convertors, order_id)))
        for route in routes
        for method in sorted(route.methods or ())
    ], mounts
