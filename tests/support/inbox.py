"""The inbox for browser tests: ./inbox.py on a free port, and pages in Chromium that leave a
screenshot behind when a test fails."""

import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from harness.processes import SCRIPT_TIMEOUT, SCRIPTS, START_ATTEMPTS, free_port, wait_for_port
from support.scripts import VALID_CARD

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


@contextmanager
def running_inbox(env: dict[str, str], log: Path) -> Iterator[str]:
    """./inbox.py on a free port, as a user runs it; yields its address. If the port was taken
    meanwhile, it starts again on another."""
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        with open(log, "ab") as output:
            process = subprocess.Popen(
                ["./inbox.py", "--port", str(port)],
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
        yield f"http://localhost:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@asynccontextmanager
async def browsing(browser: Browser, inbox: str, artefacts: Path, name: str) -> AsyncIterator[Page]:
    """A page of a browser context of its own (its own cookies: one approver); a screenshot of
    it in `artefacts` when the block fails."""
    context = await browser.new_context(base_url=inbox)
    page = await context.new_page()
    try:
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


async def name_approver(page: Page, name: str) -> None:
    await page.goto("/")
    await page.get_by_label("Your name, recorded with each decision").fill(name)
    await page.get_by_role("button", name="Save my name").click()
    await expect(page.get_by_label("Your name, recorded with each decision")).to_have_value(name)
