"""Crash-test helpers: workers to kill and restart, the ledger read from outside, conditions."""

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from harness.processes import Worker
from shop.services import Effect, Ledger

T = TypeVar("T")


def read_ledger(path: Path, order_id: str | None = None) -> list[Effect]:
    """What the simulated services did so far, read the way ./ledger.py reads it."""
    if not path.exists():
        return []
    ledger = Ledger(path)
    try:
        return ledger.effects(order_id)
    finally:
        ledger.close()


def kinds_per_order(effects: list[Effect]) -> dict[str, Counter[str]]:
    """How many effects of each kind every order had, e.g. {"order-1": {"charge": 1, ...}}."""
    counts: dict[str, Counter[str]] = {}
    for effect in effects:
        counts.setdefault(effect.order_id, Counter())[effect.kind] += 1
    return counts


def repeated_requests(effects: list[Effect]) -> list[Effect]:
    """Effects a service was asked for more than once: retries the idempotency key absorbed."""
    return [effect for effect in effects if effect.requests > 1]


@dataclass
class Workers:
    """Starts ./worker.py processes, each logging to a file of its own."""

    env: dict[str, str]
    log_dir: Path
    started: list[Worker] = field(default_factory=list)
    _starts: Counter[str] = field(default_factory=Counter)

    async def start(self, name: str, *args: str) -> Worker:
        """Starts NAME (logging to NAME-1.log, NAME-2.log, ...); returns once it polls."""
        self._starts[name] += 1
        worker = Worker(self.env, self.log_dir / f"{name}-{self._starts[name]}.log", args)
        self.started.append(worker)
        await asyncio.to_thread(worker.start)
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.process is not None and worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()


@contextmanager
def workers(env: dict[str, str], log_dir: Path) -> Iterator[Workers]:
    """Workers to start at will; whichever still run at the end are killed."""
    pool = Workers(env, log_dir)
    try:
        yield pool
    finally:
        pool.kill_all()


async def sigkill(worker: Worker) -> float:
    """Kills the worker's whole process group at once; returns the monotonic time of the kill."""
    killed_at = time.monotonic()
    await asyncio.to_thread(worker.signal, signal.SIGKILL)
    return killed_at


async def retried_activities(client: Client, workflow_ids: list[str]) -> Counter[str]:
    """Per activity type, how many activities needed more than one attempt (from the histories)."""
    retried: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        scheduled: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attributes.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.attempt > 1:
                    retried[scheduled[started.scheduled_event_id]] += 1
    return retried


async def describe_unfinished(client: Client, workflow_ids: list[str]) -> str:
    """Where each unfinished workflow waits, for a failure message."""
    lines = []
    for workflow_id in workflow_ids:
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.close_time is not None:
            continue
        raw = description.raw_description
        activities = [
            f"{a.activity_type.name} attempt {a.attempt} ({a.last_failure.message or 'no failure'})"
            for a in raw.pending_activities
        ]
        task = raw.pending_workflow_task
        lines.append(
            f"{workflow_id}: activities {activities}; workflow task state {task.state}"
            f" attempt {task.attempt}"
        )
    return "\n".join(lines)
