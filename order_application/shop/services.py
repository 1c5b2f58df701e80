"""Simulated payment, inventory, packing, shipping and e-mail services, and their ledger."""

import asyncio
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from local.data_dir import DATA_DIR, open_private

DEFAULT_SERVICE_DELAY = 0.5
"""Seconds each simulated service call takes unless ORDER_SERVICE_DELAY says otherwise."""

DEFAULT_PACK_DELAY = 2.0
"""Seconds to pack one unit unless ORDER_PACK_DELAY says otherwise: slow enough to kill a worker."""

BLOCKED_CUSTOMERS = frozenset({"blocked-customer"})
# Customers whose cards the fraud service flags once charged (release 2's fraud re-check).
FLAGGED_CUSTOMERS = frozenset({"flagged-customer"})
ORDER_LIMIT_CENTS = 1_000_000
"""The fraud check denies any order over $10,000.00."""

OUT_OF_STOCK_SKUS = frozenset({"SOLD-OUT"})


class ServiceUnavailableError(Exception):
    """A downstream service did not answer; always worth retrying."""


class OutOfStockError(Exception):
    """An item cannot be reserved; retrying will not help."""


class AlreadyUndoneError(Exception):
    """The order's charge or reservation was undone before: a run of the order again (a Reset)
    must not take the old one as its own, and needs a new order ID."""


@dataclass(frozen=True)
class Effect:
    key: str
    order_id: str
    kind: str
    detail: str
    requests: int
    """How many times a service was asked for this effect; it happened once all the same."""
    created_at: str


class Ledger:
    """Every effect the simulated services had, recorded once per idempotency key (SQLite).

    A real payment or shipping API takes an idempotency key and answers a repeated request with
    the first result; this ledger plays that part, and lets anyone count what really happened.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            # Made 0600 before SQLite opens it; SQLite gives its WAL the same mode. SQLite follows
            # links, for this file and for the -wal and -shm files it makes beside it, so a link
            # planted there would have it write wherever another user chose. open_private refuses
            # a link here and a directory that is not this user's alone: no one else can plant a
            # link there, before or after this check.
            os.close(open_private(Path(path)))
        # Autocommit: every statement is its own transaction. Several workers may share the file.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL survives any process crash (what the durability demo does) and skips a
        # disk sync per write, which otherwise blocks the worker's event loop for ~0.2 ms each.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS effects ("
            " key TEXT PRIMARY KEY, order_id TEXT NOT NULL, kind TEXT NOT NULL,"
            " detail TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL)"
        )

    def record(self, key: str, order_id: str, kind: str, detail: str) -> str:
        """Records an effect unless `key` already has one; returns the detail that stands."""
        row = self._db.execute(
            "INSERT INTO effects (key, order_id, kind, detail, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET requests = requests + 1 RETURNING detail",
            (key, order_id, kind, detail, datetime.now(UTC).isoformat(timespec="milliseconds")),
        ).fetchone()
        return str(row[0])

    def find(self, key: str) -> str | None:
        row = self._db.execute("SELECT detail FROM effects WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def effects(self, order_id: str | None = None) -> list[Effect]:
        query = "SELECT key, order_id, kind, detail, requests, created_at FROM effects"
        params: tuple[str, ...] = ()
        if order_id is not None:
            query += " WHERE order_id = ?"
            params = (order_id,)
        rows = self._db.execute(query + " ORDER BY created_at, key", params).fetchall()
        return [Effect(*row) for row in rows]

    def close(self) -> None:
        self._db.close()


def ledger_path() -> Path:
    return Path(os.environ.get("ORDER_LEDGER", DATA_DIR / "ledger.sqlite3"))


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Services:
    """The outside world an order touches. Each call is keyed by order, so a retry is harmless."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        delay: float = DEFAULT_SERVICE_DELAY,
        pack_delay: float = DEFAULT_PACK_DELAY,
        inventory_down: bool = False,
    ) -> None:
        self.ledger = ledger
        self._delay = delay
        self._pack_delay = pack_delay
        self._inventory_down = inventory_down

    @classmethod
    def from_environment(cls, *, inventory_down: bool = False) -> "Services":
        return cls(
            Ledger(ledger_path()),
            delay=float(os.environ.get("ORDER_SERVICE_DELAY", DEFAULT_SERVICE_DELAY)),
            pack_delay=float(os.environ.get("ORDER_PACK_DELAY", DEFAULT_PACK_DELAY)),
            inventory_down=inventory_down,
        )

    async def _network(self, seconds: float | None = None) -> None:
        await asyncio.sleep(self._delay if seconds is None else seconds)

    # Fraud and policy.
    async def policy_denial(self, customer: str, total_cents: int) -> str:
        """Returns why the order may not proceed, or "" when it may."""
        await self._network()
        if customer in BLOCKED_CUSTOMERS:
            return f"customer {customer} is blocked"
        if total_cents > ORDER_LIMIT_CENTS:
            return "order total is over the $10,000.00 limit"
        return ""

    async def fraud_flag(self, order_id: str, customer: str) -> str:
        """Returns why the fraud service flags the order's charge, or "" when it does not."""
        await self._network()
        if customer in FLAGGED_CUSTOMERS:
            return f"the charge of order {order_id} was flagged as fraud"
        return ""

    # Payments.
    async def charge(self, order_id: str, amount_cents: int) -> str:
        await self._network()
        if self.ledger.find(f"{order_id}/refund") is not None:
            raise AlreadyUndoneError(f"the payment of order {order_id} was refunded before")
        return self.ledger.record(f"{order_id}/charge", order_id, "charge", _new_id("txn"))

    async def refund(self, order_id: str) -> str:
        """Refunds the order's charge; returns "" when nothing was charged."""
        await self._network()
        if self.ledger.find(f"{order_id}/charge") is None:
            return ""
        return self.ledger.record(f"{order_id}/refund", order_id, "refund", _new_id("refund"))

    # Inventory.
    async def reserve(self, order_id: str, skus: list[str]) -> str:
        await self._network()
        if self._inventory_down:
            raise ServiceUnavailableError("inventory service is down")
        if sold_out := [sku for sku in skus if sku in OUT_OF_STOCK_SKUS]:
            raise OutOfStockError(f"out of stock: {', '.join(sold_out)}")
        if self.ledger.find(f"{order_id}/release") is not None:
            raise AlreadyUndoneError(f"the inventory of order {order_id} was released before")
        return self.ledger.record(
            f"{order_id}/reservation", order_id, "reservation", _new_id("rsv")
        )

    async def release(self, order_id: str) -> str:
        """Releases the order's reservation; returns "" when nothing was reserved."""
        await self._network()
        if self.ledger.find(f"{order_id}/reservation") is None:
            return ""
        return self.ledger.record(f"{order_id}/release", order_id, "release", _new_id("rel"))

    # Packing.
    async def open_packing_slip(self, order_id: str) -> str:
        await self._network()
        return self.ledger.record(f"{order_id}/slip", order_id, "packing slip", _new_id("slip"))

    async def pack_unit(self, order_id: str, slip_id: str, index: int, sku: str) -> None:
        await self._network(self._pack_delay)
        self.ledger.record(
            f"{order_id}/pack/{index}", order_id, "packed", f"{slip_id} #{index + 1} {sku}"
        )

    # Shipping.
    async def ship(self, order_id: str, address: str) -> tuple[str, date]:
        await self._network()
        eta = date.today() + timedelta(days=3)
        detail = self.ledger.record(
            f"{order_id}/shipment", order_id, "shipment", f"{_new_id('trk')} {eta.isoformat()}"
        )
        tracking, eta_text = detail.split(" ")
        return tracking, date.fromisoformat(eta_text)

    # E-mail.
    async def send_email(self, order_id: str, to: str) -> str:
        await self._network()
        return self.ledger.record(f"{order_id}/e-mail", order_id, "e-mail", _new_id("msg"))
