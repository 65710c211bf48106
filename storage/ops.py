"""Read-only figures for operators (``/metrics``): orders by status, the depth of the
delivery and refund outboxes, broadcast progress.

Each query is one indexed count (``orders_due``, ``deliveries_due``, ``refunds_due``,
``broadcast_recipients_status``) in plain SQL that runs on SQLite and PostgreSQL alike; the
repositories that write these tables stay the only writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Outbox:
    """Rows still to send: ``pending`` of them, the oldest created ``oldest_age`` seconds
    ago (``0.0`` when there is none)."""

    pending: int
    oldest_age: float


def _age(created_at: str | None, now: datetime) -> float:
    """Seconds since ISO-8601 ``created_at`` (naive text is UTC), ``0.0`` for ``None``."""
    if not created_at:
        return 0.0
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds())


class OpsRepository:
    """The figures behind the operator's gauges, read from ``db`` (never written)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def orders_by_status(self) -> dict[str, int]:
        """``{status: orders}`` for every status that has orders (``orders_due`` index)."""
        rows = await self.db.fetchall("SELECT status, COUNT(*) FROM orders GROUP BY status")
        return {str(row[0]): int(row[1]) for row in rows}

    async def _outbox(self, table: str, now: datetime) -> Outbox:
        row = await self.db.fetchone(
            f"SELECT COUNT(*), MIN(created_at) FROM {table} WHERE status = 'pending'"
        )
        if row is None:
            return Outbox(0, 0.0)
        return Outbox(int(row[0]), _age(row[1], now))

    async def deliveries(self, now: datetime | None = None) -> Outbox:
        """Customer messages waiting in the delivery outbox (``storage.deliveries``)."""
        return await self._outbox("deliveries", now or datetime.now(UTC))

    async def refunds(self, now: datetime | None = None) -> Outbox:
        """Star refunds queued and not yet confirmed by Telegram (``storage.orders``)."""
        return await self._outbox("refunds", now or datetime.now(UTC))

    async def broadcast_recipients(self) -> dict[str, int]:
        """``{recipient status: count}`` over the broadcasts still running (``pending``,
        ``sending``, ``sent``, ``failed``, ``blocked``): their progress."""
        rows = await self.db.fetchall(
            "SELECT r.status, COUNT(*) FROM broadcast_recipients r "
            "JOIN broadcasts b ON b.id = r.broadcast_id "
            "WHERE b.status = 'running' GROUP BY r.status"
        )
        return {str(row[0]): int(row[1]) for row in rows}
