"""The delivery outbox: messages a customer must receive (a key, a top-up confirmation, a
refund notice), kept until Telegram accepted them or the user blocked the bot.

Each message has a ``dedup_key`` (``order:<id>:<kind>``, ``charge:<id>:<kind>``), so
queueing it twice sends it once. Rendering happens when it is sent, from the order as it
is then, so the outbox holds no message text (and no key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Database, first_row, utcnow_iso

#: Seconds an outbox holds a message it is about to send (:meth:`DeliveriesRepository.claim`):
#: longer than a Bot API request may take (aiogram's default timeout is 60 s), so no other
#: outbox sends it meanwhile. The next outbox to start makes it due again at once
#: (:meth:`DeliveriesRepository.release_claims`): sent again, as a restart always did, when
#: Telegram had it before the death.
CLAIM_SECONDS = 90.0

#: the row ``d`` is pending and no earlier message of its chat is
_FIRST_PENDING = """d.status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM deliveries e WHERE e.status = 'pending' AND e.chat_id = d.chat_id AND e.id < d.id)"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queued message. ``params``: what a message not about an order needs to be
    rendered (Stars, a reason code); ``with_menu``: add the after-delivery keyboard."""

    id: int
    user_id: int
    chat_id: int
    order_id: int | None
    kind: str
    params: dict[str, Any]
    with_menu: bool
    attempts: int


class DeliveriesRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(
        self,
        dedup_key: str,
        user_id: int,
        chat_id: int,
        kind: str,
        now_ts: float,
        *,
        order_id: int | None = None,
        params: dict[str, Any] | None = None,
        with_menu: bool = False,
    ) -> bool:
        """Queue a message, due now. Returns ``False`` when ``dedup_key`` was queued before
        (nothing changes then)."""
        return bool(
            await self._db.execute(
                """INSERT INTO deliveries (dedup_key, user_id, chat_id, order_id, kind, params,
                       with_menu, next_attempt_at_ts, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING""",
                (
                    dedup_key,
                    user_id,
                    chat_id,
                    order_id,
                    kind,
                    json.dumps(params) if params else None,
                    int(with_menu),
                    now_ts,
                    utcnow_iso(),
                ),
            )
        )

    async def due(self, now_ts: float, limit: int = 50) -> list[Delivery]:
        """The first pending message of each chat, when its time has come, oldest first
        (a chat's messages go in the order they were queued)."""
        rows = await self._db.fetchall(
            f"""SELECT id, user_id, chat_id, order_id, kind, params, with_menu, attempts
                FROM deliveries d WHERE {_FIRST_PENDING} AND next_attempt_at_ts <= ?
                ORDER BY next_attempt_at_ts, id LIMIT ?""",
            (now_ts, limit),
        )
        return [
            Delivery(
                r["id"],
                r["user_id"],
                r["chat_id"],
                r["order_id"],
                r["kind"],
                json.loads(r["params"]) if r["params"] else {},
                bool(r["with_menu"]),
                r["attempts"],
            )
            for r in rows
        ]

    async def claim(
        self, delivery_id: int, claimant: str, now_ts: float, hold_seconds: float = CLAIM_SECONDS
    ) -> bool:
        """Take message ``delivery_id`` for sending: one conditional ``UPDATE`` that moves
        its due time ``hold_seconds`` ahead only while it is still pending and due, so of
        two outboxes that read it as due only one gets ``True`` and sends it. The send then
        settles it (:meth:`sent`, :meth:`retry`, :meth:`give_up`)."""
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                """UPDATE deliveries SET next_attempt_at_ts = ?, claimed_by = ?
                   WHERE id = ? AND status = 'pending' AND next_attempt_at_ts <= ?
                   RETURNING id""",
                (now_ts + hold_seconds, claimant, delivery_id, now_ts),
            )
        return row is not None

    async def release_claims(self, now_ts: float) -> int:
        """Make every claimed, unsettled message due at ``now_ts``: called by an outbox
        as it starts, when no other outbox may run (the ``delivery outbox`` lease), so
        those claims belong to one that was stopped or died mid-send. Returns how many."""
        return await self._db.execute(
            """UPDATE deliveries SET next_attempt_at_ts = ?, claimed_by = NULL
               WHERE status = 'pending' AND claimed_by IS NOT NULL""",
            (now_ts,),
        )

    async def next_ts(self) -> float | None:
        """When the earliest pending message is due (``None``: nothing pending)."""
        value = await self._db.fetchval(
            f"SELECT min(next_attempt_at_ts) FROM deliveries d WHERE {_FIRST_PENDING}"
        )
        return None if value is None else float(value)

    async def sent(self, delivery_id: int) -> None:
        await self._db.execute(
            """UPDATE deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1,
                   claimed_by = NULL WHERE id = ?""",
            (utcnow_iso(), delivery_id),
        )

    async def retry(self, delivery_id: int, error: str, next_attempt_ts: float) -> None:
        await self._db.execute(
            """UPDATE deliveries SET attempts = attempts + 1, last_error = ?,
                   next_attempt_at_ts = ?, claimed_by = NULL WHERE id = ?""",
            (error[:500], next_attempt_ts, delivery_id),
        )

    async def give_up(self, delivery_id: int, status: str, error: str) -> None:
        """Stop trying: ``blocked`` (the user blocked the bot) or ``failed`` (Telegram
        refused the message itself)."""
        await self._db.execute(
            """UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?,
                   claimed_by = NULL WHERE id = ?""",
            (status, error[:500], delivery_id),
        )

    async def recover_missing(self, now_ts: float) -> int:
        """Queue what a crash may have left untold: a completed or refunded order, or a
        refunded unattached charge, without its message. Returns how many were queued."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO deliveries (dedup_key, user_id, chat_id, order_id, kind,
                       with_menu, next_attempt_at_ts, created_at)
                   SELECT 'order:' || o.id || ':' || o.status, o.user_id, o.user_id, o.id,
                          o.status, 1, ?, ?
                   FROM orders o WHERE o.status IN ('completed', 'refunded')
                     AND NOT EXISTS (SELECT 1 FROM deliveries d
                                     WHERE d.dedup_key = 'order:' || o.id || ':' || o.status)""",
                (now_ts, utcnow_iso()),
            )
            recovered = cursor.rowcount
            # the message's params are JSON written here, as enqueue() writes them: the
            # engines' SQL JSON functions differ
            cursor = await conn.execute(
                """SELECT r.charge_id, r.user_id, r.order_id, r.stars, p.reject_reason
                   FROM refunds r JOIN payments p ON p.charge_id = r.charge_id
                   WHERE r.settles_order = 0 AND r.status = 'done'
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.dedup_key =
                                     'charge:' || r.charge_id || ':charge_refunded')"""
            )
            for refund in await cursor.fetchall():
                params = {"stars": refund["stars"], "reason": refund["reject_reason"],
                          "order": refund["order_id"]}  # fmt: skip
                inserted = await conn.execute(
                    """INSERT INTO deliveries (dedup_key, user_id, chat_id, order_id, kind,
                           params, next_attempt_at_ts, created_at)
                       VALUES (?, ?, ?, ?, 'charge_refunded', ?, ?, ?)""",
                    (f"charge:{refund['charge_id']}:charge_refunded", refund["user_id"],
                     refund["user_id"], refund["order_id"], json.dumps(params), now_ts,
                     utcnow_iso()),
                )  # fmt: skip
                recovered += inserted.rowcount
            return recovered
