"""Loyalty balances, referrals, payouts and promo codes (migration 0010).

Every change of a balance is a :class:`LedgerEntry` with a unique ``dedup_key`` written
in the same transaction as whatever caused it, so a change happens once whatever crashes
or repeats. A balance is the sum of its entries; credits count towards payouts and
discounts once their ``available_at_ts`` (the holding period) has passed; debits count
at once. A sum below zero is debt (a reversal after a payout), paid by future accruals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from storage.db import Connection, Database, Row, first_row, utcnow_iso

#: order statuses in which a promo code counts as used (paid, not failed or refunded)
PROMO_USED_STATUSES = ("paid", "unknown", "processing", "completed")
#: order statuses after which a balance spent on the order goes back
SPEND_RELEASED_STATUSES = ("expired", "failed", "refunded")


@dataclass(frozen=True, slots=True)
class Member:
    """A customer in the loyalty programme: personal ``code`` (``ref_<code>`` links),
    ``referrer_id`` (``None``: not referred), ``spend_next`` (the balance goes into the next
    invoice), ``promo_code`` (entered for the next invoice)."""

    user_id: int
    code: str
    referrer_id: int | None
    referred_at: str | None
    spend_next: bool
    promo_code: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One balance change: signed ``stars`` of ``kind`` for ``user_id``, with the order or
    payout it came from and ``detail`` saying why."""

    id: int
    user_id: int
    kind: str
    stars: int
    order_id: int | None
    payout_id: int | None
    available_at_ts: float
    detail: str
    at: str


@dataclass(frozen=True, slots=True)
class Balance:
    """Whole Stars. ``available``: what payouts and discounts may use now (negative: debt);
    ``held``: credits still in their holding period."""

    available: int
    held: int

    @property
    def spendable(self) -> int:
        return max(0, self.available)

    @property
    def debt(self) -> int:
        return max(0, -self.available)


@dataclass(frozen=True, slots=True)
class PromoCode:
    """``kind`` ``percent`` (``value`` 1-100 % off) or ``fixed`` (``value`` Stars off);
    ``scope_kind`` ``all``, ``category`` (``scope_value`` a category name) or ``product``
    (``<supplier>:<product id>``); limits ``None`` mean none; ``expires_at`` ISO UTC."""

    code: str
    kind: str
    value: int
    min_order_stars: int = 0
    scope_kind: str = "all"
    scope_value: str | None = None
    max_uses: int | None = None
    max_uses_per_user: int | None = None
    expires_at: str | None = None
    status: str = "active"
    created_by: int | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class PromoStats:
    """Uses (paid orders not failed or refunded), Stars taken off and Stars paid with it."""

    uses: int
    discounted: int
    revenue: int


@dataclass(frozen=True, slots=True)
class Payout:
    """A withdrawal of ``stars``: ``open`` until every pack is settled, then ``done``;
    ``trigger`` ``withdraw`` (the customer pressed it) or ``auto``."""

    id: int
    user_id: int
    stars: int
    status: str
    trigger: str
    created_at: str
    finished_at: str | None


@dataclass(frozen=True, slots=True)
class PayoutPart:
    """One Stars pack order of a payout: ``pending`` -> ``sending`` -> ``completed`` or
    ``failed`` (its Stars returned); money as Decimal text as the supplier sent it."""

    payout_id: int
    part: int
    stars: int
    supplier: str
    offer_id: str
    transaction_id: str
    status: str
    supplier_order_id: str | None
    supplier_price: str | None
    supplier_currency: str | None
    cost_usd: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AccrualCandidate:
    """A completed order not yet accrued: who paid, Stars paid, the offer's category
    (``None`` when the offer is gone from the catalogue) and the payer's referrer."""

    order_id: int
    user_id: int
    stars: int
    category: str | None
    referrer_id: int | None


@dataclass(frozen=True, slots=True)
class Liabilities:
    """Stars: ``owed`` (positive balances, held included), ``debt`` (negative ones),
    ``accrued``, ``reversed``, ``paid_out`` (delivered packs), ``in_flight`` (payout packs
    not settled), ``spent`` (used as discounts, net of releases); ``payout_cost_usd``: the
    supplier cost of the delivered packs."""

    owed: int
    debt: int
    accrued: int
    reversed: int
    paid_out: int
    in_flight: int
    spent: int
    payout_cost_usd: Decimal


def _row(cls: type, row: Row):  # type: ignore[no-untyped-def]
    return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _member(row: Row) -> Member:
    return Member(
        row["user_id"], row["code"], row["referrer_id"], row["referred_at"],
        bool(row["spend_next"]), row["promo_code"],
    )  # fmt: skip


_AVAILABLE = "(stars < 0 OR available_at_ts <= ?)"


async def _insert_entry(
    conn: Connection,
    dedup_key: str,
    user_id: int,
    kind: str,
    stars: int,
    available_at_ts: float,
    detail: str,
    *,
    order_id: int | None = None,
    payout_id: int | None = None,
) -> bool:
    cursor = await conn.execute(
        """INSERT INTO loyalty_ledger (dedup_key, user_id, kind, stars, order_id, payout_id,
               available_at_ts, detail, at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING""",
        (dedup_key, user_id, kind, stars, order_id, payout_id, available_at_ts, detail,
         utcnow_iso()),
    )  # fmt: skip
    return cursor.rowcount > 0


class LoyaltyRepository:
    """SQL of the loyalty programme; every multi-row change in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- members and referrals ---------------------------------------------------------

    async def member(self, user_id: int) -> Member | None:
        """The member row of ``user_id`` (``None``: never used the programme)."""
        row = await self._db.fetchone("SELECT * FROM loyalty_members WHERE user_id = ?", (user_id,))
        return _member(row) if row else None

    async def member_by_code(self, code: str) -> Member | None:
        """Whose personal referral code ``code`` is (``None``: nobody's)."""
        row = await self._db.fetchone("SELECT * FROM loyalty_members WHERE code = ?", (code,))
        return _member(row) if row else None

    async def add_member(self, user_id: int, code: str) -> Member | None:
        """The member row of ``user_id`` (created with ``code`` when missing); ``None``
        when ``code`` belongs to someone else."""
        try:
            await self._db.execute(
                """INSERT INTO loyalty_members (user_id, code, created_at) VALUES (?, ?, ?)
                   ON CONFLICT (user_id) DO NOTHING""",
                (user_id, code, utcnow_iso()),
            )
        except self._db.integrity_errors:
            return None
        member = await self.member(user_id)
        assert member is not None
        return member

    async def bind_referrer(self, user_id: int, referrer_id: int) -> bool:
        """Tie ``user_id`` to ``referrer_id`` unless already tied (once, forever)."""
        changed = await self._db.execute(
            """UPDATE loyalty_members SET referrer_id = ?, referred_at = ?
               WHERE user_id = ? AND referrer_id IS NULL""",
            (referrer_id, utcnow_iso(), user_id),
        )
        return changed > 0

    async def referrer_chain(self, user_id: int, limit: int = 50) -> list[int]:
        """``user_id``'s referrer, their referrer and so on (at most ``limit``)."""
        rows = await self._db.fetchall(
            """WITH RECURSIVE chain (id, depth) AS (
                   SELECT referrer_id, 1 FROM loyalty_members WHERE user_id = ?
                   UNION ALL
                   SELECT m.referrer_id, c.depth + 1 FROM loyalty_members m
                   JOIN chain c ON m.user_id = c.id WHERE c.depth < ?
               ) SELECT id FROM chain WHERE id IS NOT NULL""",
            (user_id, limit),
        )
        return [row["id"] for row in rows]

    async def has_paid_orders(self, user_id: int) -> bool:
        """Whether ``user_id`` ever paid an order (whatever became of it)."""
        return (
            await self._db.fetchval(
                """SELECT 1 FROM orders WHERE user_id = ?
                   AND status NOT IN ('awaiting_payment', 'expired') LIMIT 1""",
                (user_id,),
            )
            is not None
        )

    async def referral_count(self, user_id: int) -> int:
        """How many customers ``user_id`` invited."""
        return int(
            await self._db.fetchval(
                "SELECT count(*) FROM loyalty_members WHERE referrer_id = ?", (user_id,)
            )
        )

    async def set_spend_next(self, user_id: int, spend: bool) -> None:
        """Whether the balance goes into the member's next invoice."""
        await self._db.execute(
            "UPDATE loyalty_members SET spend_next = ? WHERE user_id = ?", (int(spend), user_id)
        )

    async def set_member_promo(self, user_id: int, code: str | None) -> None:
        """The promo code kept for the member's next invoice (``None``: none)."""
        await self._db.execute(
            "UPDATE loyalty_members SET promo_code = ? WHERE user_id = ?", (code, user_id)
        )

    # -- balances ---------------------------------------------------------------------

    async def balance(self, user_id: int, now_ts: float) -> Balance:
        """``user_id``'s balance at ``now_ts`` (Unix seconds): available and held Stars."""
        row = await self._db.fetchone(
            f"""SELECT coalesce(sum(CASE WHEN {_AVAILABLE} THEN stars END), 0) AS available,
                      coalesce(sum(CASE WHEN NOT {_AVAILABLE} THEN stars END), 0) AS held
               FROM loyalty_ledger WHERE user_id = ?""",
            (now_ts, now_ts, user_id),
        )
        assert row is not None
        return Balance(int(row["available"]), int(row["held"]))

    async def totals_by_kind(self, user_id: int) -> dict[str, int]:
        """Signed Stars of ``user_id``'s ledger by kind (``{"cashback": 45, "payout": -50}``)."""
        rows = await self._db.fetchall(
            "SELECT kind, sum(stars) AS n FROM loyalty_ledger WHERE user_id = ? GROUP BY kind",
            (user_id,),
        )
        return {row["kind"]: int(row["n"]) for row in rows}

    async def ledger(self, user_id: int | None = None) -> list[LedgerEntry]:
        """Every entry (of one user, or of everyone), oldest first."""
        if user_id is None:
            rows = await self._db.fetchall("SELECT * FROM loyalty_ledger ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM loyalty_ledger WHERE user_id = ? ORDER BY id", (user_id,)
            )
        return [_row(LedgerEntry, row) for row in rows]

    # -- discounts from the balance -----------------------------------------------------

    async def hold_spend(self, order_id: int, user_id: int, stars: int, now_ts: float) -> bool:
        """Take ``stars`` off the balance for order ``order_id`` (a ``spend`` entry) when the
        available balance still covers them; ``False`` (nothing written) otherwise."""
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                f"SELECT coalesce(sum(stars), 0) FROM loyalty_ledger WHERE user_id = ? AND {_AVAILABLE}",
                (user_id, now_ts),
            )
            if row is None or int(row[0]) < stars:
                return False
            return await _insert_entry(
                conn, f"spend:{order_id}", user_id, "spend", -stars, now_ts,
                f"discount on order {order_id}", order_id=order_id,
            )  # fmt: skip

    async def spent_on(self, order_id: int) -> int:
        """Stars of the balance held for order ``order_id`` (0: none)."""
        value = await self._db.fetchval(
            "SELECT -stars FROM loyalty_ledger WHERE dedup_key = ?", (f"spend:{order_id}",)
        )
        return int(value or 0)

    async def spends_to_release(self, limit: int = 100) -> list[LedgerEntry]:
        """Balances held for invoices that expired, failed or were refunded, not returned yet."""
        marks = ",".join("?" * len(SPEND_RELEASED_STATUSES))
        rows = await self._db.fetchall(
            f"""SELECT l.* FROM loyalty_ledger l JOIN orders o ON o.id = l.order_id
                WHERE l.kind = 'spend' AND o.status IN ({marks})
                  AND NOT EXISTS (SELECT 1 FROM loyalty_ledger r
                                  WHERE r.dedup_key = 'spend_release:' || l.order_id)
                ORDER BY l.id LIMIT ?""",
            (*SPEND_RELEASED_STATUSES, limit),
        )
        return [_row(LedgerEntry, row) for row in rows]

    async def release_spend(self, spend: LedgerEntry, now_ts: float, why: str) -> bool:
        """Return a held balance (a ``spend_release`` entry, once). ``False``: returned before."""
        async with self._db.transaction() as conn:
            return await _insert_entry(
                conn, f"spend_release:{spend.order_id}", spend.user_id, "spend_release",
                -spend.stars, now_ts, f"discount on order {spend.order_id} returned: {why}",
                order_id=spend.order_id,
            )  # fmt: skip

    # -- accruals and reversals ---------------------------------------------------------

    async def orders_to_accrue(self, limit: int = 100) -> list[AccrualCandidate]:
        """Completed orders the worker has not accrued yet, oldest first."""
        rows = await self._db.fetchall(
            """SELECT o.id, o.user_id, o.stars, f.category, m.referrer_id FROM orders o
               LEFT JOIN offers f ON f.supplier = o.supplier AND f.offer_id = o.offer_id
               LEFT JOIN loyalty_members m ON m.user_id = o.user_id
               WHERE o.status = 'completed' AND NOT EXISTS (
                   SELECT 1 FROM loyalty_order_marks k WHERE k.order_id = o.id AND k.stage = 'accrued')
               ORDER BY o.id LIMIT ?""",
            (limit,),
        )
        return [
            AccrualCandidate(r["id"], r["user_id"], r["stars"], r["category"], r["referrer_id"])
            for r in rows
        ]

    async def accrue(
        self, order_id: int, credits: list[tuple[int, str, int, str]], available_at_ts: float
    ) -> int:
        """Credit ``(user_id, kind, stars, detail)`` for order ``order_id`` and mark it
        accrued, in one transaction; each (order, user) once. Returns entries written."""
        written = 0
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO loyalty_order_marks (order_id, stage, at) VALUES (?, 'accrued', ?)
                   ON CONFLICT DO NOTHING""",
                (order_id, utcnow_iso()),
            )
            if cursor.rowcount == 0:
                return 0  # accrued by an earlier pass
            for user_id, kind, stars, detail in credits:
                if stars > 0:
                    written += await _insert_entry(
                        conn, f"accrual:{order_id}:{user_id}", user_id, kind, stars,
                        available_at_ts, detail, order_id=order_id,
                    )  # fmt: skip
        return written

    async def orders_to_reverse(self, limit: int = 100) -> list[int]:
        """Failed or refunded orders that were accrued and not reversed yet."""
        rows = await self._db.fetchall(
            """SELECT o.id FROM orders o
               JOIN loyalty_order_marks a ON a.order_id = o.id AND a.stage = 'accrued'
               WHERE o.status IN ('failed', 'refunded') AND NOT EXISTS (
                   SELECT 1 FROM loyalty_order_marks k WHERE k.order_id = o.id AND k.stage = 'reversed')
               ORDER BY o.id LIMIT ?""",
            (limit,),
        )
        return [row["id"] for row in rows]

    async def reverse(self, order_id: int, now_ts: float) -> list[tuple[int, int]]:
        """Take back every accrual of order ``order_id`` (a ``reversal`` entry each; a
        balance may go below zero: debt) and mark it reversed, in one transaction.
        Returns ``(user_id, stars taken back)``."""
        taken: list[tuple[int, int]] = []
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO loyalty_order_marks (order_id, stage, at) VALUES (?, 'reversed', ?)
                   ON CONFLICT DO NOTHING""",
                (order_id, utcnow_iso()),
            )
            if cursor.rowcount == 0:
                return []
            async with conn.execute(
                """SELECT user_id, kind, stars FROM loyalty_ledger
                   WHERE order_id = ? AND kind IN ('cashback', 'referral') ORDER BY id""",
                (order_id,),
            ) as rows:
                accruals = list(await rows.fetchall())
            for row in accruals:
                await _insert_entry(
                    conn, f"reversal:{order_id}:{row['user_id']}", row["user_id"], "reversal",
                    -row["stars"], now_ts, f"{row['kind']} of order {order_id} taken back: refunded",
                    order_id=order_id,
                )  # fmt: skip
                taken.append((row["user_id"], row["stars"]))
        return taken

    # -- payouts ----------------------------------------------------------------------

    async def create_payout(
        self,
        user_id: int,
        parts: list[tuple[int, str, str]],
        trigger: str,
        transaction_prefix: str,
        now_ts: float,
    ) -> Payout | None:
        """A payout of ``parts`` ``(stars, supplier, offer id)`` for ``user_id``, its pack
        rows (``transactionId`` ``<prefix>-y<payout>-p<part>``) and the ``payout`` debit, in
        one transaction. ``None`` (nothing written) when the user has an open payout or
        the available balance no longer covers it."""
        total = sum(stars for stars, _, _ in parts)
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                f"""SELECT (SELECT coalesce(sum(stars), 0) FROM loyalty_ledger
                            WHERE user_id = ? AND {_AVAILABLE}),
                           (SELECT count(*) FROM loyalty_payouts WHERE user_id = ? AND status = 'open')""",
                (user_id, now_ts, user_id),
            )
            assert row is not None
            if int(row[0]) < total or int(row[1]) > 0:
                return None
            cursor = await conn.execute(
                """INSERT INTO loyalty_payouts (user_id, stars, status, trigger, created_at)
                   VALUES (?, ?, 'open', ?, ?) RETURNING id""",
                (user_id, total, trigger, utcnow_iso()),
            )
            payout_id = int((await cursor.fetchone())[0])
            await conn.executemany(
                """INSERT INTO loyalty_payout_parts (payout_id, part, stars, supplier, offer_id,
                       transaction_id, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')""",
                [
                    (payout_id, index, stars, supplier, offer_id,
                     f"{transaction_prefix}-y{payout_id}-p{index}")
                    for index, (stars, supplier, offer_id) in enumerate(parts)
                ],
            )  # fmt: skip
            await _insert_entry(
                conn, f"payout:{payout_id}", user_id, "payout", -total, now_ts,
                f"payout {payout_id} in Telegram Stars ({trigger})", payout_id=payout_id,
            )  # fmt: skip
        payout = await self.payout(payout_id)
        assert payout is not None
        return payout

    async def payout(self, payout_id: int) -> Payout | None:
        """One payout (``None``: no such payout)."""
        row = await self._db.fetchone("SELECT * FROM loyalty_payouts WHERE id = ?", (payout_id,))
        return _row(Payout, row) if row else None

    async def open_payout(self, user_id: int) -> Payout | None:
        """``user_id``'s payout still being delivered, if any (at most one)."""
        row = await self._db.fetchone(
            "SELECT * FROM loyalty_payouts WHERE user_id = ? AND status = 'open'", (user_id,)
        )
        return _row(Payout, row) if row else None

    async def open_payouts(self) -> list[Payout]:
        """Payouts still being delivered, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM loyalty_payouts WHERE status = 'open' ORDER BY id"
        )
        return [_row(Payout, row) for row in rows]

    async def payout_parts(self, payout_id: int) -> list[PayoutPart]:
        """A payout's pack orders, in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM loyalty_payout_parts WHERE payout_id = ? ORDER BY part", (payout_id,)
        )
        return [_row(PayoutPart, row) for row in rows]

    async def open_parts(self, limit: int = 200) -> list[PayoutPart]:
        """Pack orders not settled yet (``pending`` or ``sending``), oldest first."""
        rows = await self._db.fetchall(
            """SELECT * FROM loyalty_payout_parts WHERE status IN ('pending', 'sending')
               ORDER BY payout_id, part LIMIT ?""",
            (limit,),
        )
        return [_row(PayoutPart, row) for row in rows]

    async def mark_part(
        self,
        part: PayoutPart,
        status: str,
        now_ts: float,
        *,
        supplier_order_id: str | None = None,
        reason: str | None = None,
        price: tuple[Decimal, str, Decimal] | None = None,
    ) -> None:
        """Record a pack order's state (``price``: supplier price, currency, USD cost). A
        ``failed`` pack returns its Stars to the balance (``payout_return``), in the same
        transaction."""
        async with self._db.transaction() as conn:
            await conn.execute(
                """UPDATE loyalty_payout_parts SET status = ?, reason = ?,
                       supplier_order_id = coalesce(?, supplier_order_id),
                       supplier_price = coalesce(?, supplier_price),
                       supplier_currency = coalesce(?, supplier_currency),
                       cost_usd = coalesce(?, cost_usd)
                   WHERE payout_id = ? AND part = ?""",
                (
                    status, reason, supplier_order_id,
                    str(price[0]) if price else None, price[1] if price else None,
                    str(price[2]) if price else None, part.payout_id, part.part,
                ),
            )  # fmt: skip
            if status == "failed":
                row = await first_row(
                    conn,
                    "SELECT user_id FROM loyalty_payouts WHERE id = ?",
                    (part.payout_id,),
                )
                assert row is not None
                await _insert_entry(
                    conn, f"payout_return:{part.payout_id}:{part.part}", row["user_id"],
                    "payout_return", part.stars, now_ts,
                    f"payout {part.payout_id} pack {part.part} not delivered: {reason}",
                    payout_id=part.payout_id,
                )  # fmt: skip

    async def settled_payouts(self) -> list[Payout]:
        """Open payouts whose every pack is completed or failed."""
        rows = await self._db.fetchall(
            """SELECT * FROM loyalty_payouts p WHERE status = 'open' AND NOT EXISTS (
                   SELECT 1 FROM loyalty_payout_parts t
                   WHERE t.payout_id = p.id AND t.status IN ('pending', 'sending'))
               ORDER BY id"""
        )
        return [_row(Payout, row) for row in rows]

    async def finish_payout(self, payout_id: int) -> None:
        """Mark an open payout done (its customer has been told)."""
        await self._db.execute(
            "UPDATE loyalty_payouts SET status = 'done', finished_at = ? WHERE id = ? AND status = 'open'",
            (utcnow_iso(), payout_id),
        )

    async def auto_payout_candidates(self, now_ts: float, minimum: int) -> list[int]:
        """Users whose available balance reached ``minimum`` and who have no open payout."""
        rows = await self._db.fetchall(
            f"""SELECT user_id FROM loyalty_ledger l WHERE {_AVAILABLE}
                AND NOT EXISTS (SELECT 1 FROM loyalty_payouts p
                                WHERE p.user_id = l.user_id AND p.status = 'open')
                GROUP BY user_id HAVING sum(stars) >= ? ORDER BY user_id""",
            (now_ts, minimum),
        )
        return [row["user_id"] for row in rows]

    async def next_available_ts(self, now_ts: float) -> float | None:
        """When the next held credit becomes available (``None``: none is held)."""
        value = await self._db.fetchval(
            "SELECT min(available_at_ts) FROM loyalty_ledger WHERE stars > 0 AND available_at_ts > ?",
            (now_ts,),
        )
        return None if value is None else float(value)

    # -- promo codes ------------------------------------------------------------------

    async def create_promo(self, promo: PromoCode) -> bool:
        """Save a new code; ``False`` when the code exists (a deleted one included)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO promo_codes (code, kind, value, min_order_stars, scope_kind,
                       scope_value, max_uses, max_uses_per_user, expires_at, status, created_by,
                       created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)
                   ON CONFLICT (code) DO NOTHING""",
                (
                    promo.code, promo.kind, promo.value, promo.min_order_stars, promo.scope_kind,
                    promo.scope_value, promo.max_uses, promo.max_uses_per_user, promo.expires_at,
                    promo.created_by, utcnow_iso(),
                ),
            )  # fmt: skip
            return cursor.rowcount > 0

    async def promo(self, code: str) -> PromoCode | None:
        """The code ``code`` (upper case; deleted ones included), or ``None``."""
        row = await self._db.fetchone("SELECT * FROM promo_codes WHERE code = ?", (code,))
        return _row(PromoCode, row) if row else None

    async def promos(self) -> list[PromoCode]:
        """Every code not deleted, newest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM promo_codes WHERE status != 'deleted' ORDER BY created_at DESC, code"
        )
        return [_row(PromoCode, row) for row in rows]

    async def set_promo_status(self, code: str, status: str) -> bool:
        """``active``, ``paused`` or ``deleted``; ``False`` for an unknown or deleted code."""
        changed = await self._db.execute(
            "UPDATE promo_codes SET status = ? WHERE code = ? AND status != 'deleted'",
            (status, code),
        )
        return changed > 0

    async def promo_uses(
        self, code: str, user_id: int | None = None, *, holding_for: int | None = None
    ) -> int:
        """Paid orders with ``code`` that are not failed or refunded (of one user, when
        ``user_id``). With ``holding_for`` (a customer about to get an invoice), other
        customers' unpaid invoices with the code count too: each holds a use until it is
        paid or expires, so two customers cannot both be invoiced for the last one."""
        marks = ",".join("?" * len(PROMO_USED_STATUSES))
        sql = f"SELECT count(*) FROM orders WHERE promo_code = ? AND (status IN ({marks})"
        params: list[object] = [code, *PROMO_USED_STATUSES]
        if holding_for is not None:
            sql += " OR (status = 'awaiting_payment' AND user_id != ?)"
            params.append(holding_for)
        sql += ")"
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        return int(await self._db.fetchval(sql, params))

    async def promo_stats(self, code: str) -> PromoStats:
        """Uses, Stars discounted and Stars paid of ``code`` (released uses not counted)."""
        marks = ",".join("?" * len(PROMO_USED_STATUSES))
        row = await self._db.fetchone(
            f"""SELECT count(*) AS uses, coalesce(sum(discount_stars), 0) AS discounted,
                       coalesce(sum(stars), 0) AS revenue
                FROM orders WHERE promo_code = ? AND status IN ({marks})""",
            (code, *PROMO_USED_STATUSES),
        )
        assert row is not None
        return PromoStats(int(row["uses"]), int(row["discounted"]), int(row["revenue"]))

    # -- accounting -------------------------------------------------------------------

    async def liabilities(self) -> Liabilities:
        """The programme's figures for the admin screen (:class:`Liabilities`)."""
        row = await self._db.fetchone(
            """SELECT
                 (SELECT coalesce(sum(CASE WHEN b > 0 THEN b END), 0) FROM
                    (SELECT sum(stars) AS b FROM loyalty_ledger GROUP BY user_id)) AS owed,
                 (SELECT coalesce(-sum(CASE WHEN b < 0 THEN b END), 0) FROM
                    (SELECT sum(stars) AS b FROM loyalty_ledger GROUP BY user_id)) AS debt,
                 (SELECT coalesce(sum(stars), 0) FROM loyalty_ledger
                    WHERE kind IN ('cashback', 'referral')) AS accrued,
                 (SELECT coalesce(-sum(stars), 0) FROM loyalty_ledger WHERE kind = 'reversal') AS reversed,
                 (SELECT coalesce(sum(stars), 0) FROM loyalty_payout_parts
                    WHERE status = 'completed') AS paid_out,
                 (SELECT coalesce(sum(stars), 0) FROM loyalty_payout_parts
                    WHERE status IN ('pending', 'sending')) AS in_flight,
                 (SELECT coalesce(-sum(stars), 0) FROM loyalty_ledger
                    WHERE kind IN ('spend', 'spend_release')) AS spent"""
        )
        assert row is not None
        costs = await self._db.fetchall(
            "SELECT cost_usd FROM loyalty_payout_parts WHERE status = 'completed' AND cost_usd IS NOT NULL"
        )
        cost = sum((Decimal(r["cost_usd"]) for r in costs), Decimal(0))
        return Liabilities(
            int(row["owed"]), int(row["debt"]), int(row["accrued"]), int(row["reversed"]),
            int(row["paid_out"]), int(row["in_flight"]), int(row["spent"]), cost,
        )  # fmt: skip

    async def payout_costs(self) -> dict[int, Decimal]:
        """Supplier cost (USD) of each payout's delivered packs."""
        rows = await self._db.fetchall(
            """SELECT payout_id, cost_usd FROM loyalty_payout_parts
               WHERE status = 'completed' AND cost_usd IS NOT NULL"""
        )
        costs: dict[int, Decimal] = {}
        for row in rows:
            costs[row["payout_id"]] = costs.get(row["payout_id"], Decimal(0)) + Decimal(
                row["cost_usd"]
            )
        return costs
