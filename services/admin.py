"""What the shop owner does from the admin chat: stats, exports, refunds, bans, audit.

Figures come from the order log. Money is summed as ``Decimal`` in Python from the
Decimal text stored per order, never as SQL floats; Stars are whole numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from services.exports import csv_bytes
from services.orders import OrderService
from storage.db import Database, utcnow_iso
from storage.orders import InvalidTransition, Order, OrderStatus
from storage.users import User, UsersRepository

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")

CSV_COLUMNS = (
    "order_id", "created_at", "paid_at", "status", "user_id", "username", "first_name", "kind",
    "product", "offer", "player_id", "server", "recipient", "stars", "supplier", "supplier_price",
    "supplier_currency", "cost_usd", "revenue_usd", "margin_usd", "supplier_order_id",
    "transaction_id", "charge_id", "failure_reason",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stats:
    """One period of the order log. ``stars_*`` are whole Stars, ``*_usd`` Decimal USD."""

    since: str
    orders_by_status: dict[str, int]
    stars_taken: int
    stars_refunded: int
    supplier_cost_usd: Decimal
    revenue_usd: Decimal
    margin_usd: Decimal
    top_products: list[tuple[str, int, int]]  # (product, orders, Stars)
    new_users: int
    by_supplier: list[SupplierFigures] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SupplierFigures:
    """Completed orders of one supplier in a period: how many, their supplier cost, their
    revenue (their Stars at the current Star value) and the margin, Decimal USD in cents."""

    supplier: str
    orders: int
    cost_usd: Decimal
    revenue_usd: Decimal
    margin_usd: Decimal


SERIES_COLUMNS = ("day", "revenue_usd", "orders", "refunds", "stars_taken", "stars_refunded")


@dataclass(frozen=True, slots=True)
class DayStats:
    """One UTC day: orders paid, refunds done, Stars in and out (whole Stars), and
    ``revenue_usd`` = (taken - refunded) Stars at the current Star value, in cents."""

    day: date
    orders: int
    refunds: int
    stars_taken: int
    stars_refunded: int
    revenue_usd: Decimal


AUDIT_COLUMNS = ("id", "at", "admin_id", "admin_username", "action", "detail")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit log row; ``admin_username`` is without ``@``, ``None`` when unknown."""

    id: int
    at: str
    admin_id: int
    admin_username: str | None
    action: str
    detail: str


class RefundRefusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_PAID = "not_paid"
    ALREADY_REFUNDED = "already_refunded"
    REFUND_IN_PROGRESS = "refund_in_progress"
    STILL_OPEN = "still_open"


def period_start(days: int, now: datetime | None = None) -> str:
    """ISO start of a period: ``days=1`` is today since 00:00 UTC, else the last N days."""
    now = now or datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return start.isoformat(timespec="milliseconds")


class AdminService:
    def __init__(self, db: Database, orders: OrderService, users: UsersRepository) -> None:
        self._db = db
        self._orders = orders
        self._users = users

    async def audit(self, admin_id: int, action: str, detail: str = "") -> None:
        """Write who did what, when."""
        await self._db.execute(
            "INSERT INTO audit_log (admin_id, action, detail, at) VALUES (?, ?, ?, ?)",
            (admin_id, action, detail[:1000], utcnow_iso()),
        )
        logger.info("admin %s: %s %s", admin_id, action, detail)

    async def audit_page(self, page: int, size: int = 10) -> tuple[list[AuditEntry], int]:
        """Page ``page`` (from 1) of the audit log, newest first, and how many entries in all."""
        total = int(await self._db.fetchval("SELECT count(*) FROM audit_log"))
        rows = await self._db.fetchall(
            """SELECT audit_log.*, users.username AS admin_username FROM audit_log
               LEFT JOIN users ON users.id = audit_log.admin_id
               ORDER BY audit_log.id DESC LIMIT ? OFFSET ?""",
            (size, (page - 1) * size),
        )
        return [_audit_entry(row) for row in rows], total

    async def audit_csv(self) -> tuple[bytes, int]:
        """The whole audit log, oldest first, as CSV (:data:`AUDIT_COLUMNS`, through
        :func:`services.exports.csv_bytes`: UTF-8 with a BOM, formula-like cells
        neutralised); and how many entries."""
        rows = await self._db.fetchall(
            """SELECT audit_log.*, users.username AS admin_username FROM audit_log
               LEFT JOIN users ON users.id = audit_log.admin_id ORDER BY audit_log.id"""
        )
        entries = [_audit_entry(row) for row in rows]
        content = csv_bytes(
            AUDIT_COLUMNS,
            ([e.id, e.at, e.admin_id, e.admin_username, e.action, e.detail] for e in entries),
        )
        return content, len(entries)

    async def daily_series(self, days: int, today: date | None = None) -> list[DayStats]:
        """The last ``days`` UTC days up to ``today`` (default: now), oldest first, one
        :class:`DayStats` each, days without activity included as zeros."""
        today = today or datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        since = first.isoformat()

        async def per_day(sql: str) -> dict[str, int]:
            return {row["day"]: int(row["n"]) for row in await self._db.fetchall(sql, (since,))}

        orders = await per_day(
            "SELECT substr(paid_at, 1, 10) AS day, count(*) AS n FROM orders "
            "WHERE paid_at >= ? GROUP BY day"
        )
        taken = await per_day(
            "SELECT substr(received_at, 1, 10) AS day, sum(stars) AS n FROM payments "
            "WHERE received_at >= ? GROUP BY day"
        )
        done = "FROM refunds WHERE status = 'done' AND done_at >= ? GROUP BY day"
        refunds = await per_day(f"SELECT substr(done_at, 1, 10) AS day, count(*) AS n {done}")
        refunded = await per_day(f"SELECT substr(done_at, 1, 10) AS day, sum(stars) AS n {done}")
        star_usd = self._orders.pricing.book.star_usd
        series = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            key = day.isoformat()
            net = taken.get(key, 0) - refunded.get(key, 0)
            series.append(
                DayStats(
                    day,
                    orders.get(key, 0),
                    refunds.get(key, 0),
                    taken.get(key, 0),
                    refunded.get(key, 0),
                    (Decimal(net) * star_usd).quantize(CENT, ROUND_HALF_UP),
                )
            )
        return series

    @staticmethod
    def series_csv(series: list[DayStats]) -> bytes:
        """:meth:`daily_series` as CSV (:data:`SERIES_COLUMNS`, through
        :func:`services.exports.csv_bytes`)."""
        return csv_bytes(
            SERIES_COLUMNS,
            (
                [d.day.isoformat(), d.revenue_usd, d.orders, d.refunds, d.stars_taken,
                 d.stars_refunded]
                for d in series
            ),
        )  # fmt: skip

    async def stats(self, days: int) -> Stats:
        since = period_start(days)
        by_status = {
            row["status"]: row["n"]
            for row in await self._db.fetchall(
                "SELECT status, count(*) AS n FROM orders WHERE paid_at >= ? GROUP BY status ORDER BY status",
                (since,),
            )
        }
        taken = int(
            await self._db.fetchval(
                "SELECT coalesce(sum(stars), 0) FROM payments WHERE received_at >= ?", (since,)
            )
        )
        refunded = int(
            await self._db.fetchval(
                "SELECT coalesce(sum(stars), 0) FROM refunds WHERE status = 'done' AND done_at >= ?",
                (since,),
            )
        )
        costs = await self._db.fetchall(
            "SELECT cost_usd FROM orders WHERE status = 'completed' AND paid_at >= ?", (since,)
        )
        cost = sum((Decimal(row["cost_usd"]) for row in costs), Decimal(0))
        revenue = Decimal(taken - refunded) * self._orders.pricing.book.star_usd
        top = [
            (row["product_name"], row["n"], row["stars"])
            for row in await self._db.fetchall(
                """SELECT product_name, count(*) AS n, sum(stars) AS stars FROM orders
                   WHERE status = 'completed' AND paid_at >= ?
                   GROUP BY product_name ORDER BY n DESC, stars DESC LIMIT 5""",
                (since,),
            )
        ]
        new_users = int(
            await self._db.fetchval("SELECT count(*) FROM users WHERE first_seen >= ?", (since,))
        )
        # rounded to cents first, so that the figures shown add up: margin = revenue - cost
        revenue_cents = revenue.quantize(CENT, ROUND_HALF_UP)
        cost_cents = cost.quantize(CENT, ROUND_HALF_UP)
        return Stats(
            since, by_status, taken, refunded, cost_cents, revenue_cents, revenue_cents - cost_cents,
            top, new_users, await self._by_supplier(since),
        )  # fmt: skip

    async def _by_supplier(self, since: str) -> list[SupplierFigures]:
        """Completed orders paid since ``since``, per supplier, most orders first."""
        star_usd = self._orders.pricing.book.star_usd
        rows = await self._db.fetchall(
            "SELECT supplier, cost_usd, stars FROM orders WHERE status = 'completed' AND paid_at >= ?",
            (since,),
        )
        totals: dict[str, tuple[int, Decimal, int]] = {}
        for row in rows:
            count, cost, stars = totals.get(row["supplier"], (0, Decimal(0), 0))
            totals[row["supplier"]] = (
                count + 1,
                cost + Decimal(row["cost_usd"]),
                stars + row["stars"],
            )
        figures = []
        for supplier, (count, cost, stars) in totals.items():
            cost_cents = cost.quantize(CENT, ROUND_HALF_UP)
            revenue_cents = (Decimal(stars) * star_usd).quantize(CENT, ROUND_HALF_UP)
            figures.append(
                SupplierFigures(
                    supplier, count, cost_cents, revenue_cents, revenue_cents - cost_cents
                )
            )
        return sorted(figures, key=lambda f: (-f.orders, f.supplier))

    async def export_csv(self, since: str, until: str) -> tuple[bytes, int]:
        """Orders created in ``[since, until)`` (ISO dates) as CSV for a spreadsheet (UTF-8
        with a BOM, formula-like cells neutralised: :func:`services.exports.csv_bytes`);
        and how many. ``username`` is the Telegram username without ``@`` (a cell starting
        with ``@`` would be neutralised). For completed orders,
        ``revenue_usd`` is their Stars at the current Star value and ``margin_usd`` that
        minus ``cost_usd``, both in cents as in :meth:`stats`; empty for other orders."""
        rows = await self._db.fetchall(
            """SELECT orders.*, users.username AS username, users.first_name AS first_name
               FROM orders LEFT JOIN users ON users.id = orders.user_id
               WHERE orders.created_at >= ? AND orders.created_at < ? ORDER BY orders.id""",
            (since, until),
        )
        star_usd = self._orders.pricing.book.star_usd
        lines = []
        for r in rows:
            revenue: Decimal | str = ""
            margin: Decimal | str = ""
            if r["status"] == OrderStatus.COMPLETED.value:
                revenue = (Decimal(r["stars"]) * star_usd).quantize(CENT, ROUND_HALF_UP)
                margin = revenue - Decimal(r["cost_usd"]).quantize(CENT, ROUND_HALF_UP)
            lines.append(
                [r["id"], r["created_at"], r["paid_at"], r["status"], r["user_id"],
                 r["username"], r["first_name"], r["kind"],
                 r["product_name"], r["offer_name"], r["game_user_id"], r["game_server_label"],
                 r["recipient_name"], r["stars"], r["supplier"], r["supplier_price"],
                 r["supplier_currency"],
                 r["cost_usd"], revenue, margin, r["supplier_order_id"], r["transaction_id"],
                 r["charge_id"], r["failure_reason"]]
            )  # fmt: skip
        return csv_bytes(CSV_COLUMNS, lines), len(rows)

    async def refund(
        self, order_id: int, admin_id: int
    ) -> tuple[Order | None, RefundRefusal | None]:
        """Queue a refund of a paid order. Refuses unpaid, refunded, already refunding and
        still-open orders (those may yet be delivered: refresh them first); also when a
        simultaneous confirm of the same refund got there first (checked under the lock)."""
        order = await self._orders.orders.get(order_id)
        refusal = self.refund_refusal(order)
        if refusal is not None or order is None:
            return order, refusal
        try:
            await self._orders.refund_by_admin(order, f"refunded by admin {admin_id}")
        except InvalidTransition:
            order = await self._orders.orders.get(order_id)
            logger.info("admin %s: refund of order %s refused, it moved on", admin_id, order_id)
            return order, self.refund_refusal(order) or RefundRefusal.ALREADY_REFUNDED
        await self.audit(admin_id, "refund", f"order {order_id}, {order.stars} Stars")
        return await self._orders.orders.get(order_id), None

    @staticmethod
    def refund_refusal(order: Order | None) -> RefundRefusal | None:
        if order is None:
            return RefundRefusal.NOT_FOUND
        if order.charge_id is None or order.status in (
            OrderStatus.AWAITING_PAYMENT,
            OrderStatus.EXPIRED,
        ):
            return RefundRefusal.NOT_PAID
        if order.status is OrderStatus.REFUNDED:
            return RefundRefusal.ALREADY_REFUNDED
        if order.status is OrderStatus.FAILED:
            return RefundRefusal.REFUND_IN_PROGRESS
        if order.status.is_open:
            return RefundRefusal.STILL_OPEN
        return None

    async def set_banned(self, user_id: int, banned: bool, admin_id: int) -> User | None:
        user = await self._users.get(user_id)
        if user is None:
            return None
        await self._users.set_banned(user_id, banned)
        await self.audit(admin_id, "ban" if banned else "unban", f"user {user_id}")
        return await self._users.get(user_id)

    async def latest_orders(self, status: str | None, limit: int = 10) -> list[Order]:
        return await self._orders.orders.latest(OrderStatus(status) if status else None, limit)

    async def user_order_count(self, user_id: int) -> int:
        return await self._orders.orders.count_for_user(user_id)


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        row["id"], row["at"], row["admin_id"], row["admin_username"], row["action"],
        row["detail"] or "",
    )  # fmt: skip
