"""Orders, their event log, payments and the refund outbox.

Every status change goes through :meth:`OrdersRepository.transition`, which checks the
move is allowed and writes the order and its event row in one transaction. A payment is
recorded with its ``telegram_payment_charge_id`` as primary key, so a repeated
``successful_payment`` update changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from storage.db import Connection, Database, Row, first_row, utcnow_iso

logger = logging.getLogger(__name__)


class OrderStatus(StrEnum):
    """The shop's order statuses (not the supplier's)."""

    AWAITING_PAYMENT = "awaiting_payment"  # invoice sent
    PAID = "paid"  # Stars received; create-order not confirmed yet
    UNKNOWN = "unknown"  # create-order sent, answer lost: ask the supplier
    PROCESSING = "processing"  # supplier accepted, not finished
    COMPLETED = "completed"  # delivered
    FAILED = "failed"  # supplier refused or failed: refund queued
    REFUNDED = "refunded"  # Telegram confirmed the refund
    EXPIRED = "expired"  # invoice never paid

    @property
    def is_open(self) -> bool:
        """Paid and not settled: a background worker still has to act on it."""
        return self in (OrderStatus.PAID, OrderStatus.UNKNOWN, OrderStatus.PROCESSING)


_S = OrderStatus
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.AWAITING_PAYMENT: frozenset({_S.PAID, _S.EXPIRED}),
    _S.EXPIRED: frozenset(),  # a late payment is refunded (see ChargeRejection.EXPIRED)
    _S.PAID: frozenset({_S.UNKNOWN, _S.PROCESSING, _S.COMPLETED, _S.FAILED}),
    _S.UNKNOWN: frozenset({_S.UNKNOWN, _S.PROCESSING, _S.COMPLETED, _S.FAILED}),
    _S.PROCESSING: frozenset({_S.PROCESSING, _S.COMPLETED, _S.FAILED}),
    _S.COMPLETED: frozenset({_S.FAILED}),  # an admin refund of a delivered order
    _S.FAILED: frozenset({_S.REFUNDED}),
    _S.REFUNDED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, order_id: int, current: str, target: str) -> None:
        super().__init__(f"order {order_id}: {current} -> {target} is not allowed")
        self.order_id = order_id
        self.current = current
        self.target = target


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What checkout knows before the invoice. ``supplier_price`` is the supplier's Decimal
    exactly as last received; ``stars`` the whole-Star retail price."""

    user_id: int
    chat_id: int
    supplier: str
    offer_id: str
    product_id: str
    product_name: str
    offer_name: str
    returns_key: bool
    supplier_price: Decimal
    supplier_currency: str
    cost_usd: Decimal
    stars: int
    kind: str = "goods"
    game_user_id: str | None = None
    game_server_id: str | None = None
    game_server_label: str | None = None
    player_login: str | None = None
    recipient_name: str | None = None
    test_mode: bool = False
    #: Stars taken off the list price (promo code and loyalty balance); ``stars`` is paid
    discount_stars: int = 0
    promo_code: str | None = None
    #: the source's code (``Supplier.short``): the ``transactionId`` becomes
    #: ``<prefix>-<order id>-<code>``, one per order and source (``None``: no suffix)
    source_code: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSwitch:
    """The next source of an order: its offer, the price last received (Decimal in
    ``currency``), the cost in USD, whether it returns a key, and its code."""

    supplier: str
    offer_id: str
    price: Decimal
    currency: str
    cost_usd: Decimal
    returns_key: bool
    source_code: str


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    user_id: int
    chat_id: int
    kind: str
    supplier: str
    offer_id: str
    product_id: str
    product_name: str
    offer_name: str
    returns_key: bool
    game_user_id: str | None
    game_server_id: str | None
    game_server_label: str | None
    player_login: str | None
    recipient_name: str | None
    supplier_price: Decimal
    supplier_currency: str
    cost_usd: Decimal
    stars: int
    status: OrderStatus
    transaction_id: str
    charge_id: str | None
    supplier_order_id: str | None
    supplier_status: str | None
    delivered_key: str | None
    fulfillment: dict[str, Any] | None
    failure_reason: str | None
    failure_code: str | None
    test_mode: bool
    created_at: str
    updated_at: str
    paid_at: str | None
    finished_at: str | None
    next_check_at_ts: float | None
    check_attempts: int
    stuck_flagged: bool
    #: when order-status first said the supplier has no such order (Unix seconds)
    supplier_absent_since_ts: float | None = None
    #: Stars taken off the list price (promo code, loyalty balance): list = stars + discount
    discount_stars: int = 0
    promo_code: str | None = None

    @property
    def list_stars(self) -> int:
        """The price before any discount: Stars paid plus ``discount_stars``."""
        return self.stars + self.discount_stars

    @property
    def delivered_keys(self) -> list[str]:
        """Every key delivered (``delivered_key`` holds them one per line)."""
        return [key for key in (self.delivered_key or "").splitlines() if key]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    at: str
    from_status: str | None
    to_status: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class PendingRefund:
    """A row of the refund outbox. ``settles_order``: the refund of the order's own
    charge (the order becomes ``refunded`` when Telegram confirms); otherwise a charge
    that was never attached to ``order_id`` (which may be ``None``)."""

    charge_id: str
    order_id: int | None
    settles_order: bool
    user_id: int
    stars: int
    reason: str | None
    attempts: int


class ChargeRejection(StrEnum):
    """Why a Stars charge could not be attached to an open order (it is refunded)."""

    UNKNOWN_ORDER = "unknown_order"  # the payload names no order of this user
    ALREADY_PAID = "already_paid"  # the order took another charge before
    EXPIRED = "expired"  # the invoice had expired
    WRONG_AMOUNT = "wrong_amount"  # not the order's price in Stars
    WRONG_CURRENCY = "wrong_currency"  # not Telegram Stars
    BANNED = "banned"  # the user is banned from the shop


@dataclass(frozen=True, slots=True)
class IncomingCharge:
    """A ``successful_payment`` as Telegram reported it (or ``getStarTransactions``).
    ``stars`` is ``total_amount`` (whole Stars for XTR); ``order_id`` is what the invoice
    payload names (``None``: not one of ours); ``refuse`` is a rejection decided before
    the order is looked at (wrong currency, banned user)."""

    charge_id: str
    user_id: int
    stars: int
    currency: str
    payload: str
    order_id: int | None
    provider_charge_id: str | None = None
    refuse: ChargeRejection | None = None


@dataclass(frozen=True, slots=True)
class RecordedCharge:
    """What :meth:`OrdersRepository.record_payment` did. ``new`` is ``False`` when the
    charge id was recorded before (nothing changed). ``rejection`` is ``None`` when the
    order is now paid; otherwise the charge was recorded unattached and its refund queued.
    ``order_id`` is the order the charge belongs to (``None``: no order of this user)."""

    new: bool
    rejection: ChargeRejection | None
    order_id: int | None


class KeySeal(Protocol):
    """Encrypts delivered keys at rest (the shop's own-stock secret): ``encrypt(text) ->
    token``, ``decrypt(token) -> text`` (raises when the token was made with another
    secret)."""

    def encrypt(self, key: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


#: a delivered key stored encrypted starts with this (older rows hold clear text)
SEALED = "sealed:"

_ORDER_FIELDS = {f.name for f in fields(Order)}
#: orders that were paid (whatever happened next): not invoices still open or expired
_PAID = "status NOT IN ('awaiting_payment', 'expired')"
_UPDATABLE = {
    "supplier_price", "supplier_currency", "cost_usd", "supplier_order_id", "supplier_status",
    "delivered_key", "fulfillment", "failure_reason", "failure_code", "finished_at",
    "next_check_at_ts", "check_attempts", "stuck_flagged", "supplier_absent_since_ts",
}  # fmt: skip


def _order(row: Row) -> Order:
    data = {key: row[key] for key in row.keys() if key in _ORDER_FIELDS}
    data["supplier_price"] = Decimal(data["supplier_price"])
    data["cost_usd"] = Decimal(data["cost_usd"])
    data["status"] = OrderStatus(data["status"])
    data["returns_key"] = bool(data["returns_key"])
    data["test_mode"] = bool(data["test_mode"])
    data["stuck_flagged"] = bool(data["stuck_flagged"])
    data["fulfillment"] = json.loads(data["fulfillment"]) if data["fulfillment"] else None
    return Order(**data)


def _db_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    return value


class OrdersRepository:
    """Orders and their events. ``transaction_prefix`` makes the supplier ``transactionId``
    (``<prefix>-<order id>``) unique across shops sharing one supplier account."""

    def __init__(
        self, db: Database, transaction_prefix: str = "shop", seal: KeySeal | None = None
    ) -> None:
        self._db = db
        self._prefix = transaction_prefix
        #: when set, delivered keys are stored encrypted and read back in clear text
        self._seal = seal

    def _order(self, row: Row) -> Order:
        order = _order(row)
        key = order.delivered_key
        if self._seal is None or not key or not key.startswith(SEALED):
            return order
        try:
            return replace(order, delivered_key=self._seal.decrypt(key[len(SEALED) :]))
        except Exception:
            logger.error(
                "order %s: its delivered key cannot be decrypted (secret changed?)", order.id
            )
            return replace(order, delivered_key=None)

    def _sealed(self, changes: dict[str, Any]) -> dict[str, Any]:
        key = changes.get("delivered_key")
        if self._seal is None or not key:
            return changes
        return {**changes, "delivered_key": SEALED + self._seal.encrypt(key)}

    def transaction_id(self, order_id: int, source_code: str | None) -> str:
        """The supplier ``transactionId`` of order ``order_id`` at the source with
        ``source_code``: derived from both, so no order ever sends two ids to one source."""
        base = f"{self._prefix}-{order_id}"
        return f"{base}-{source_code}" if source_code else base

    async def create(self, new: NewOrder) -> Order:
        """Insert an order awaiting payment, with its first event."""
        now = utcnow_iso()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO orders (user_id, chat_id, kind, supplier, offer_id, product_id,
                       product_name, offer_name, returns_key, game_user_id, game_server_id,
                       game_server_label, player_login, recipient_name, supplier_price,
                       supplier_currency, cost_usd, stars, status, transaction_id, test_mode,
                       created_at, updated_at, discount_stars, promo_code)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?,
                           ?, ?)
                   RETURNING id""",
                (
                    new.user_id, new.chat_id, new.kind, new.supplier, new.offer_id,
                    new.product_id, new.product_name, new.offer_name, int(new.returns_key),
                    new.game_user_id, new.game_server_id, new.game_server_label,
                    new.player_login, new.recipient_name, str(new.supplier_price),
                    new.supplier_currency, str(new.cost_usd), new.stars,
                    OrderStatus.AWAITING_PAYMENT.value, int(new.test_mode), now, now,
                    new.discount_stars, new.promo_code,
                ),
            )  # fmt: skip
            order_id = int((await cursor.fetchone())[0])
            await conn.execute(
                "UPDATE orders SET transaction_id = ? WHERE id = ?",
                (self.transaction_id(order_id, new.source_code), order_id),
            )
            await self._event(conn, order_id, None, OrderStatus.AWAITING_PAYMENT, "invoice sent")
        order = await self.get(order_id)
        assert order is not None
        return order

    @staticmethod
    async def _event(
        conn: Connection,
        order_id: int,
        from_status: str | None,
        to_status: str,
        detail: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO order_events (order_id, at, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?)",
            (order_id, utcnow_iso(), from_status, to_status, detail),
        )

    async def get(self, order_id: int) -> Order | None:
        row = await self._db.fetchone("SELECT * FROM orders WHERE id = ?", (order_id,))
        return self._order(row) if row else None

    async def get_for_user(self, order_id: int, user_id: int) -> Order | None:
        """The order only if it belongs to ``user_id`` (never another customer's)."""
        row = await self._db.fetchone(
            "SELECT * FROM orders WHERE id = ? AND user_id = ?", (order_id, user_id)
        )
        return self._order(row) if row else None

    async def list_for_user(self, user_id: int, offset: int, limit: int) -> tuple[list[Order], int]:
        """A customer's paid orders, newest first, and how many there are."""
        rows = await self._db.fetchall(
            f"SELECT * FROM orders WHERE user_id = ? AND {_PAID} ORDER BY id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        return [self._order(row) for row in rows], await self.count_for_user(user_id)

    async def count_for_user(self, user_id: int) -> int:
        """How many paid orders a customer has."""
        return int(
            await self._db.fetchval(
                f"SELECT count(*) FROM orders WHERE user_id = ? AND {_PAID}", (user_id,)
            )
        )

    async def latest(self, status: OrderStatus | None, limit: int = 10) -> list[Order]:
        """The newest orders with ``status``, or the newest paid ones."""
        if status is not None:
            rows = await self._db.fetchall(
                "SELECT * FROM orders WHERE status = ? ORDER BY id DESC LIMIT ?",
                (status.value, limit),
            )
        else:
            rows = await self._db.fetchall(
                f"SELECT * FROM orders WHERE {_PAID} ORDER BY id DESC LIMIT ?", (limit,)
            )
        return [self._order(row) for row in rows]

    async def events(self, order_id: int) -> list[OrderEvent]:
        rows = await self._db.fetchall(
            "SELECT at, from_status, to_status, detail FROM order_events WHERE order_id = ? ORDER BY id",
            (order_id,),
        )
        return [OrderEvent(r["at"], r["from_status"], r["to_status"], r["detail"]) for r in rows]

    async def update(self, order_id: int, **changes: Any) -> None:
        """Change bookkeeping fields without a status change (no event)."""
        await self._db.execute(*self._update_sql(order_id, self._sealed(changes)))

    @staticmethod
    def _update_sql(
        order_id: int, changes: dict[str, Any], status: OrderStatus | None = None
    ) -> tuple[str, list[Any]]:
        """``UPDATE orders`` of the allowed bookkeeping fields (and the status, if given)."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        values = dict(changes)
        if status is not None:
            values = {"status": status.value, **values}
        assignments = "".join(f"{name} = ?, " for name in values)
        params = [_db_value(value) for value in values.values()]
        return f"UPDATE orders SET {assignments}updated_at = ? WHERE id = ?", [
            *params,
            utcnow_iso(),
            order_id,
        ]

    async def transition(
        self, order_id: int, to: OrderStatus, detail: str | None = None, **changes: Any
    ) -> Order:
        """Move an order to ``to`` (checked against :data:`ALLOWED`), update ``changes`` and
        write the event, in one transaction. Raises :class:`InvalidTransition`."""
        async with self._db.transaction() as conn:
            await self._transition(conn, order_id, to, detail, changes)
        order = await self.get(order_id)
        assert order is not None
        return order

    async def _transition(
        self,
        conn: Connection,
        order_id: int,
        to: OrderStatus,
        detail: str | None,
        changes: dict[str, Any],
    ) -> OrderStatus:
        row = await first_row(conn, "SELECT status FROM orders WHERE id = ?", (order_id,))
        if row is None:
            raise LookupError(f"order {order_id} does not exist")
        current = OrderStatus(row["status"])
        if to not in ALLOWED[current]:
            raise InvalidTransition(order_id, current, to)
        await conn.execute(*self._update_sql(order_id, self._sealed(changes), to))
        if current != to or detail:
            await self._event(conn, order_id, current, to, detail)
        if to is OrderStatus.COMPLETED:
            await conn.execute(
                """UPDATE products SET sold = sold + 1 WHERE (supplier, product_id) =
                   (SELECT supplier, product_id FROM orders WHERE id = ?)""",
                (order_id,),
            )
        return current

    async def record_payment(self, charge: IncomingCharge, now_ts: float) -> RecordedCharge:
        """Record a ``successful_payment`` under its charge id, in one transaction.

        A charge that fits an order awaiting payment (this user's, the invoice's Stars, not
        refused up front) marks the order paid. Any other charge is recorded with
        ``attached = 0`` and its refund queued (due at ``now_ts``), with an event on the
        order when it is this user's. A charge id seen before changes nothing.
        """
        now = utcnow_iso()
        async with self._db.transaction() as conn:
            seen = "SELECT 1 FROM payments WHERE charge_id = ?"
            if await first_row(conn, seen, (charge.charge_id,)) is not None:
                return RecordedCharge(False, None, charge.order_id)
            row = None
            if charge.order_id is not None:
                row = await first_row(
                    conn,
                    "SELECT user_id, status, stars FROM orders WHERE id = ?",
                    (charge.order_id,),
                )
            own = row is not None and row["user_id"] == charge.user_id
            rejection = charge.refuse or self._rejection(charge, row if own else None)
            order_id = charge.order_id if own else None
            await conn.execute(
                """INSERT INTO payments (charge_id, order_id, user_id, stars, currency,
                       provider_charge_id, received_at, attached, reject_reason, payload)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    charge.charge_id, order_id, charge.user_id, charge.stars, charge.currency,
                    charge.provider_charge_id, now, int(rejection is None),
                    rejection.value if rejection else None, charge.payload[:128],
                ),
            )  # fmt: skip
            if rejection is None:
                assert order_id is not None
                await conn.execute(
                    "UPDATE orders SET charge_id = ?, paid_at = ? WHERE id = ?",
                    (charge.charge_id, now, order_id),
                )
                await self._transition(
                    conn, order_id, OrderStatus.PAID,
                    f"paid {charge.stars} {charge.currency}, charge {charge.charge_id}",
                    {"next_check_at_ts": None},
                )  # fmt: skip
                return RecordedCharge(True, None, order_id)
            reason = f"charge not attached: {rejection.value}"
            await conn.execute(
                """INSERT INTO refunds (charge_id, order_id, settles_order, user_id, stars,
                       reason, next_attempt_at_ts, created_at)
                   VALUES (?, ?, 0, ?, ?, ?, ?, ?)""",
                (charge.charge_id, order_id, charge.user_id, charge.stars, reason, now_ts, now),
            )
            if order_id is not None:
                status = row["status"] if row is not None else None
                await self._event(
                    conn, order_id, status, status,
                    f"{reason}; {charge.stars} {charge.currency}, charge {charge.charge_id}, "
                    "refund queued",
                )  # fmt: skip
            return RecordedCharge(True, rejection, order_id)

    @staticmethod
    def _rejection(charge: IncomingCharge, order: Row | None) -> ChargeRejection | None:
        if order is None:
            return ChargeRejection.UNKNOWN_ORDER
        status = OrderStatus(order["status"])
        if status is OrderStatus.EXPIRED:
            return ChargeRejection.EXPIRED
        if status is not OrderStatus.AWAITING_PAYMENT:
            return ChargeRejection.ALREADY_PAID
        if charge.stars != order["stars"]:
            return ChargeRejection.WRONG_AMOUNT
        return None

    async def payment_recorded(self, charge_id: str) -> bool:
        """Whether a charge id is in ``payments`` (attached or not)."""
        return (
            await self._db.fetchval("SELECT 1 FROM payments WHERE charge_id = ?", (charge_id,))
            is not None
        )

    async def fail_and_queue_refund(
        self, order_id: int, reason: str, code: str | None, next_attempt_ts: float
    ) -> Order:
        """Mark the order failed and put its refund in the outbox, in one transaction.
        The refund row is created once per order whatever happens later."""
        async with self._db.transaction() as conn:
            await self._transition(
                conn, order_id, OrderStatus.FAILED, reason,
                {"failure_reason": reason, "failure_code": code, "finished_at": utcnow_iso(),
                 "next_check_at_ts": None},
            )  # fmt: skip
            await conn.execute(
                """INSERT INTO refunds (charge_id, order_id, settles_order, user_id, stars,
                       reason, next_attempt_at_ts, created_at)
                   SELECT charge_id, id, 1, user_id, stars, ?, ?, ? FROM orders
                   WHERE id = ? AND charge_id IS NOT NULL
                   ON CONFLICT DO NOTHING""",
                (reason, next_attempt_ts, utcnow_iso(), order_id),
            )
        order = await self.get(order_id)
        assert order is not None
        return order

    async def start_attempt(self, order: Order) -> None:
        """Record the order's current source as an attempt about to be sent (once)."""
        await self._db.execute(
            """INSERT INTO order_attempts (order_id, supplier, offer_id, transaction_id, price,
                   currency, outcome, started_at) VALUES (?, ?, ?, ?, ?, ?, 'current', ?)
               ON CONFLICT DO NOTHING""",
            (order.id, order.supplier, order.offer_id, order.transaction_id,
             str(order.supplier_price), order.supplier_currency, utcnow_iso()),
        )  # fmt: skip

    async def tried_sources(self, order_id: int) -> set[tuple[str, str]]:
        """``(supplier, offer id)`` of every source an order has been sent to."""
        rows = await self._db.fetchall(
            "SELECT supplier, offer_id FROM order_attempts WHERE order_id = ?", (order_id,)
        )
        return {(row["supplier"], row["offer_id"]) for row in rows}

    async def switch_source(
        self,
        order_id: int,
        to: SourceSwitch,
        outcome: str,
        detail: str,
        *,
        from_transaction: str,
        statuses: tuple[OrderStatus, ...],
    ) -> Order | None:
        """Move an order to the source ``to``, with that source's own ``transactionId``, in
        one transaction that also settles the attempt ``from_transaction`` as ``outcome``
        (``refused`` before any supplier order existed, ``absent``: proven never placed,
        ``planned``: an unpaid order's source chosen again at pre-checkout) and writes the
        order event. Changes nothing and returns ``None`` unless the order is still in one
        of ``statuses`` with ``from_transaction`` as its current id (so a payment or
        another worker that moved it meanwhile always wins)."""
        transaction_id = self.transaction_id(order_id, to.source_code)
        wanted = ", ".join("?" for _ in statuses)
        async with self._db.transaction() as conn:
            now = utcnow_iso()
            cursor = await conn.execute(
                f"""UPDATE orders SET supplier = ?, offer_id = ?, supplier_price = ?,
                       supplier_currency = ?, cost_usd = ?, returns_key = ?, transaction_id = ?,
                       supplier_order_id = NULL, supplier_status = NULL,
                       supplier_absent_since_ts = NULL, updated_at = ?
                   WHERE id = ? AND transaction_id = ? AND status IN ({wanted})""",
                (to.supplier, to.offer_id, str(to.price), to.currency, str(to.cost_usd),
                 int(to.returns_key), transaction_id, now, order_id, from_transaction,
                 *(status.value for status in statuses)),
            )  # fmt: skip
            if cursor.rowcount != 1:
                return None
            await conn.execute(
                """UPDATE order_attempts SET outcome = ?, detail = ?, finished_at = ?
                   WHERE transaction_id = ?""",
                (outcome, detail[:500], now, from_transaction),
            )
            async with conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)) as c:
                status = (await c.fetchone())["status"]
            await self._event(conn, order_id, status, status, detail)
        return await self.get(order_id)

    async def due_for_check(self, now_ts: float, limit: int = 50) -> list[Order]:
        """Open orders whose next supplier check is due, oldest first."""
        rows = await self._db.fetchall(
            """SELECT * FROM orders WHERE status IN ('paid', 'unknown', 'processing')
                 AND (next_check_at_ts IS NULL OR next_check_at_ts <= ?)
               ORDER BY coalesce(next_check_at_ts, 0), id LIMIT ?""",
            (now_ts, limit),
        )
        return [self._order(row) for row in rows]

    async def next_check_ts(self) -> float | None:
        """When the earliest open order is due (``None``: no open orders)."""
        value = await self._db.fetchval(
            """SELECT min(coalesce(next_check_at_ts, 0)) FROM orders
               WHERE status IN ('paid', 'unknown', 'processing')"""
        )
        return None if value is None else float(value)

    async def expire_unpaid(self, created_before: str) -> int:
        """Expire invoices older than ``created_before`` (ISO) that were never paid."""
        async with self._db.transaction() as conn:
            # one statement: an invoice paid meanwhile is simply not awaiting payment any
            # more, and cannot make the batch fail half-way
            await conn.execute(
                """INSERT INTO order_events (order_id, at, from_status, to_status, detail)
                   SELECT id, ?, 'awaiting_payment', 'expired', 'invoice not paid in time'
                   FROM orders WHERE status = 'awaiting_payment' AND created_at < ?""",
                (utcnow_iso(), created_before),
            )
            cursor = await conn.execute(
                """UPDATE orders SET status = 'expired', updated_at = ?
                   WHERE status = 'awaiting_payment' AND created_at < ?""",
                (utcnow_iso(), created_before),
            )
            return cursor.rowcount

    # -- refund outbox ---------------------------------------------------------------

    async def due_refunds(self, now_ts: float, limit: int = 20) -> list[PendingRefund]:
        """Pending refunds whose next attempt is due, oldest first."""
        rows = await self._db.fetchall(
            """SELECT charge_id, order_id, settles_order, user_id, stars, reason, attempts
               FROM refunds WHERE status = 'pending' AND next_attempt_at_ts <= ?
               ORDER BY next_attempt_at_ts LIMIT ?""",
            (now_ts, limit),
        )
        return [
            PendingRefund(
                r["charge_id"],
                r["order_id"],
                bool(r["settles_order"]),
                r["user_id"],
                r["stars"],
                r["reason"],
                r["attempts"],
            )
            for r in rows
        ]

    async def next_refund_ts(self) -> float | None:
        value = await self._db.fetchval(
            "SELECT min(next_attempt_at_ts) FROM refunds WHERE status = 'pending'"
        )
        return None if value is None else float(value)

    async def refund_done(self, refund: PendingRefund, detail: str) -> Order | None:
        """Telegram confirmed the refund: close the outbox row and, for an order's own
        charge, mark the order refunded (an unattached charge gets an event on its order).
        Returns the order, if the charge names one."""
        async with self._db.transaction() as conn:
            await conn.execute(
                """UPDATE refunds SET status = 'done', done_at = ?, attempts = attempts + 1
                   WHERE charge_id = ?""",
                (utcnow_iso(), refund.charge_id),
            )
            if refund.order_id is not None and refund.settles_order:
                await self._transition(conn, refund.order_id, OrderStatus.REFUNDED, detail, {})
            elif refund.order_id is not None:
                row = await first_row(
                    conn,
                    "SELECT status FROM orders WHERE id = ?",
                    (refund.order_id,),
                )
                status = row["status"] if row else None
                await self._event(conn, refund.order_id, status, status, detail)
        return await self.get(refund.order_id) if refund.order_id is not None else None

    async def refund_retry(self, charge_id: str, error: str, next_attempt_ts: float) -> None:
        """Count a failed ``refundStarPayment`` attempt and schedule the next one."""
        await self._db.execute(
            """UPDATE refunds SET attempts = attempts + 1, last_error = ?, next_attempt_at_ts = ?
               WHERE charge_id = ?""",
            (error[:500], next_attempt_ts, charge_id),
        )

    async def refund_status(self, order_id: int) -> str | None:
        """``pending`` or ``done`` for the refund of an order's own charge, else ``None``."""
        return await self._db.fetchval(
            "SELECT status FROM refunds WHERE order_id = ? AND settles_order = 1", (order_id,)
        )
