"""The inbox's Temporal client, connected when first needed, and the orders awaiting approval."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from command_line.connection import Settings, connect
from local.errors import UserError
from observability.search_attributes import orders_awaiting_approval
from shared import Order
from web.timeline import read_history


@dataclass(frozen=True)
class WaitingOrder:
    order_id: str
    order: Order
    waiting_since: datetime

    @property
    def expires_at(self) -> datetime:
        return self.waiting_since + timedelta(seconds=self.order.approval_timeout_seconds)


class Orders:
    """Temporal as the pages see it: one client, connected again after the server was away."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        # An order's input and the start of its wait never change: read each history once.
        self._waiting: dict[str, WaitingOrder] = {}

    async def client(self) -> Client:
        """The client; a one-line UserError, saying how to start a server, when none answers."""
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client

    async def explain(self, err: UserError | RPCError) -> str:
        """The one line a page shows for an error of the scripts' kinds."""
        if isinstance(err, UserError):
            return str(err)
        if err.status == RPCStatusCode.UNAVAILABLE:
            # The server went away: connect afresh, which says so (and how to start one).
            self._client = None
            try:
                await self.client()
            except UserError as unreachable:
                return str(unreachable)
        return f"the Temporal server said: {err.message}"

    async def waiting(self) -> list[WaitingOrder]:
        """The orders the OrderStep search attribute lists as awaiting approval, newest first."""
        client = await self.client()
        listed = [
            execution
            async for execution in client.list_workflows(
                orders_awaiting_approval(self.settings.task_queue)
            )
        ]
        listed.sort(key=lambda execution: execution.start_time, reverse=True)
        ids = [execution.id for execution in listed]
        unread = [order_id for order_id in ids if order_id not in self._waiting]
        for order_id, found in zip(
            unread, await asyncio.gather(*(self._read(client, id) for id in unread)), strict=True
        ):
            if found is not None:
                self._waiting[order_id] = found
        self._waiting = {
            order_id: self._waiting[order_id] for order_id in ids if order_id in self._waiting
        }
        return list(self._waiting.values())

    @staticmethod
    async def _read(client: Client, order_id: str) -> WaitingOrder | None:
        history = await read_history(client, order_id)
        if history.order is None:  # Never for an order that awaits approval: its input was valid.
            return None
        since = history.waiting_since or datetime.now(UTC)
        return WaitingOrder(order_id, history.order, since)
