"""The benchmark's load: orders of either kind placed, approved and awaited, so many at a time."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from benchmarks.baseline import BaselineWorkflow
from benchmarks.bench_worker import PROJECT
from benchmarks.servers import BenchmarkError
from command_line.order_options import DEFAULT_ADDRESS, DEFAULT_CUSTOMER, SMALL_ORDER
from shared import ApproveOrder, LineItem, Order
from workflow import OrderWorkflow

# Long enough that no order's approval wait expires during a run, however slow the machine.
APPROVAL_TIMEOUT_SECONDS = 3_600.0

# What starter.py places by default (a small order that waits for approval), with a card that
# does not expire for decades.
PROJECT_ORDER = Order(
    customer=DEFAULT_CUSTOMER,
    items=[LineItem(**item) for item in SMALL_ORDER],
    shipping_address=DEFAULT_ADDRESS,
    card_expiry="12/99",
    approval_timeout_seconds=APPROVAL_TIMEOUT_SECONDS,
)

T = TypeVar("T")


async def start_order(
    client: Client, kind: str, workflow_id: str, task_queue: str
) -> WorkflowHandle[Any, Any]:
    if kind == PROJECT:
        return await client.start_workflow(
            OrderWorkflow.run, PROJECT_ORDER, id=workflow_id, task_queue=task_queue
        )
    return await client.start_workflow(
        BaselineWorkflow.run, APPROVAL_TIMEOUT_SECONDS, id=workflow_id, task_queue=task_queue
    )


async def approve(handle: WorkflowHandle[Any, Any], kind: str) -> None:
    if kind == PROJECT:
        await handle.signal(OrderWorkflow.approve_order, ApproveOrder())
    else:
        await handle.signal(BaselineWorkflow.approve)


async def approve_by_update(handle: WorkflowHandle[Any, Any]) -> None:
    """A baseline order's approval as an update: it returns once the worker has run it. (The
    project's orders are approved by update through approve.py, as an operator would.)"""
    await handle.execute_update(BaselineWorkflow.approve_update)


async def completes(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.result()
    except WorkflowFailureError:
        return False
    return True


async def run_order(client: Client, kind: str, workflow_id: str, task_queue: str) -> float | None:
    """Seconds from start to completion of one order approved at once; None if it failed."""
    began = time.perf_counter()
    handle = await start_order(client, kind, workflow_id, task_queue)
    # Both workflows record an approval that comes before they wait for it, so there is no
    # need to wait until they ask.
    await approve(handle, kind)
    return time.perf_counter() - began if await completes(handle) else None


@dataclass
class Batch:
    orders: int
    latencies: list[float]
    """Seconds from start to completion of each order that completed."""
    wall_seconds: float

    @property
    def completed(self) -> int:
        return len(self.latencies)


async def run_batch(
    client: Client,
    kind: str,
    task_queue: str,
    orders: int,
    in_flight: int,
    id_prefix: str,
    advance: Callable[[], None],
) -> Batch:
    """Runs `orders` orders, `in_flight` at a time (a new one starts as soon as one ends)."""
    slots = asyncio.Semaphore(in_flight)
    latencies: list[float] = []

    async def one(index: int) -> None:
        async with slots:
            latency = await run_order(client, kind, f"{id_prefix}-{index}", task_queue)
        if latency is not None:
            latencies.append(latency)
        advance()

    began = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(orders)))
    return Batch(orders, latencies, time.perf_counter() - began)


async def bounded(
    concurrency: int, work: list[Awaitable[T]], advance: Callable[[], None]
) -> list[T]:
    """Awaits every piece of work, `concurrency` at a time; the results in the work's order."""
    slots = asyncio.Semaphore(concurrency)

    async def one(piece: Awaitable[T]) -> T:
        async with slots:
            result = await piece
        advance()
        return result

    return await asyncio.gather(*(one(piece) for piece in work))


async def until_waiting(handle: WorkflowHandle[Any, Any]) -> None:
    """Returns once the order waits for approval: when its history has the approval timer.

    The server can tell without asking the worker. A query would make the worker replay the
    orders it has evicted from its cache, and disturb the very memory being measured.
    """
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.HasField("timer_started_event_attributes"):
            return
    raise BenchmarkError(f"order {handle.id} ended before it waited for approval")


async def place_until_waiting(
    client: Client, kind: str, workflow_id: str, task_queue: str
) -> WorkflowHandle[Any, Any]:
    """Starts an order without approving it; returns once it waits for approval."""
    handle = await start_order(client, kind, workflow_id, task_queue)
    await until_waiting(handle)
    return handle
