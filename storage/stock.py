"""Own stock: products the shop holds keys of, and the keys (encrypted; see
:mod:`services.own_stock`). Every change that hands a key out is one statement that
only succeeds while the key is free, so two processes on one database file can never
hand out the same key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from storage.db import Database, Row, first_row, utcnow_iso

#: a key still for sale: neither sold nor withdrawn for the marketplace
AVAILABLE = "taken_by IS NULL AND withdrawn IS NULL"


@dataclass(frozen=True, slots=True)
class StockProduct:
    """A product held, with its key counts. ``id`` is the own-stock offer id; ``cost`` and
    ``currency`` are those of the next key to sell (of the last one uploaded when none is
    left; ``None`` for a product that never had a key)."""

    id: int
    product_id: str
    product_name: str
    offer_name: str
    category: str
    source_supplier: str | None
    source_offer_id: str | None
    available: int
    sold: int
    withdrawn: int
    cost: Decimal | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class StockKey:
    """One key row: ``secret`` is still encrypted; ``taken_by`` the transaction id of the
    order it was sold to."""

    id: int
    product: int
    secret: str
    cost: Decimal
    currency: str
    taken_by: str | None
    taken_at: str | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key to add: encrypted ``secret``, its ``fingerprint``, and the ``line`` of the
    upload it came from (for the report)."""

    secret: str
    fingerprint: str
    line: int


def _key(row: Row) -> StockKey:
    return StockKey(
        id=row["id"],
        product=row["product"],
        secret=row["secret"],
        cost=Decimal(row["cost"]),
        currency=row["currency"],
        taken_by=row["taken_by"],
        taken_at=row["taken_at"],
    )


_PRODUCTS = f"""
    SELECT p.*,
        (SELECT count(*) FROM stock_keys k WHERE k.product = p.id AND {AVAILABLE}) AS available,
        (SELECT count(*) FROM stock_keys k WHERE k.product = p.id AND taken_by IS NOT NULL) AS sold,
        (SELECT count(*) FROM stock_keys k WHERE k.product = p.id AND withdrawn IS NOT NULL) AS withdrawn,
        coalesce(
            (SELECT cost || ' ' || currency FROM stock_keys k WHERE k.product = p.id AND {AVAILABLE}
             ORDER BY id LIMIT 1),
            (SELECT cost || ' ' || currency FROM stock_keys k WHERE k.product = p.id
             ORDER BY id DESC LIMIT 1)
        ) AS next_cost
    FROM stock_products p
"""


def _product(row: Row) -> StockProduct:
    cost, currency = row["next_cost"].split(" ") if row["next_cost"] else (None, None)
    return StockProduct(
        id=row["id"],
        product_id=row["product_id"],
        product_name=row["product_name"],
        offer_name=row["offer_name"],
        category=row["category"],
        source_supplier=row["source_supplier"],
        source_offer_id=row["source_offer_id"],
        available=row["available"],
        sold=row["sold"],
        withdrawn=row["withdrawn"],
        cost=Decimal(cost) if cost is not None else None,
        currency=currency,
    )


class StockRepository:
    """SQL of the own stock (tables ``stock_products`` and ``stock_keys``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def product_for(
        self,
        *,
        product_id: str,
        product_name: str,
        offer_name: str,
        category: str,
        source: tuple[str, str] | None,
        by: int | None,
    ) -> int:
        """The id of the product held for catalogue offer ``source`` (``(supplier, offer
        id)``), else for these names and category; created when there is none."""
        async with self._db.transaction() as conn:
            row = None
            if source is not None:
                row = await first_row(
                    conn,
                    "SELECT id FROM stock_products WHERE source_supplier = ? AND source_offer_id = ?",
                    source,
                )
            if row is None:
                row = await first_row(
                    conn,
                    """SELECT id FROM stock_products
                       WHERE product_name = ? AND offer_name = ? AND category = ?""",
                    (product_name, offer_name, category),
                )
            if row is not None:
                return int(row[0])
            cursor = await conn.execute(
                """INSERT INTO stock_products (product_id, product_name, offer_name, category,
                       source_supplier, source_offer_id, created_at, created_by)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (
                    product_id,
                    product_name,
                    offer_name,
                    category,
                    *(source or (None, None)),
                    utcnow_iso(),
                    by,
                ),
            )
            return int((await cursor.fetchone())[0])

    async def known_fingerprints(self, fingerprints: Sequence[str]) -> set[str]:
        """Which of ``fingerprints`` belong to keys ever uploaded (sold ones included)."""
        found: set[str] = set()
        for start in range(0, len(fingerprints), 500):
            chunk = list(fingerprints[start : start + 500])
            rows = await self._db.fetchall(
                f"SELECT fingerprint FROM stock_keys WHERE fingerprint IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(row[0] for row in rows)
        return found

    async def add_keys(
        self, product: int, keys: Sequence[NewKey], cost: Decimal, currency: str, by: int | None
    ) -> list[int]:
        """Add ``keys`` in one transaction; a key whose fingerprint is already held is
        skipped. Returns the ``line`` of every key skipped that way."""
        skipped: list[int] = []
        now = utcnow_iso()
        async with self._db.transaction() as conn:
            for key in keys:
                cursor = await conn.execute(
                    """INSERT INTO stock_keys (product, secret, fingerprint, cost, currency,
                           uploaded_at, uploaded_by)
                       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING""",
                    (product, key.secret, key.fingerprint, str(cost), currency, now, by),
                )
                if cursor.rowcount == 0:
                    skipped.append(key.line)
        return skipped

    async def take(self, product: int, transaction_id: str) -> StockKey | None:
        """Sell the next free key of ``product`` to ``transaction_id``: one ``UPDATE`` that
        claims a key only while it is free and only while no key is bound to this
        transaction id (``taken_by`` is also UNIQUE). A repeat with the same transaction id
        returns the key it took the first time. ``None``: no key left."""
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                f"""UPDATE stock_keys SET taken_by = ?, taken_at = ?
                    WHERE id = (SELECT id FROM stock_keys WHERE product = ? AND {AVAILABLE}
                                ORDER BY id LIMIT 1)
                      AND {AVAILABLE}
                      AND NOT EXISTS (SELECT 1 FROM stock_keys WHERE taken_by = ?)
                    RETURNING *""",
                (transaction_id, utcnow_iso(), product, transaction_id),
            )
            if row is None:
                row = await first_row(
                    conn,
                    "SELECT * FROM stock_keys WHERE taken_by = ?",
                    (transaction_id,),
                )
        return _key(row) if row is not None else None

    async def taken_by(self, transaction_id: str) -> StockKey | None:
        """The key sold to ``transaction_id``, if any."""
        row = await self._db.fetchone(
            "SELECT * FROM stock_keys WHERE taken_by = ?", (transaction_id,)
        )
        return _key(row) if row is not None else None

    async def sold_key(self, key_id: int) -> StockKey | None:
        """Key ``key_id`` when it was sold, else ``None``."""
        row = await self._db.fetchone(
            "SELECT * FROM stock_keys WHERE id = ? AND taken_by IS NOT NULL", (key_id,)
        )
        return _key(row) if row is not None else None

    async def withdraw(self, product: int, count: int, batch: str) -> list[StockKey]:
        """Move the next ``count`` free keys of ``product`` out of the stock under
        ``batch``, all or none: ``[]`` when fewer are free (nothing changes)."""
        async with self._db.transaction() as conn:
            # the write lock is held from BEGIN IMMEDIATE: the count cannot change under us
            row = await first_row(
                conn,
                f"SELECT count(*) FROM stock_keys WHERE product = ? AND {AVAILABLE}",
                (product,),
            )
            if row is None or row[0] < count:
                return []
            rows = list(
                await conn.execute_fetchall(
                    f"""UPDATE stock_keys SET withdrawn = ?, withdrawn_at = ?
                    WHERE id IN (SELECT id FROM stock_keys WHERE product = ? AND {AVAILABLE}
                                 ORDER BY id LIMIT ?)
                    RETURNING *""",
                    (batch, utcnow_iso(), product, count),
                )
            )
        return sorted((_key(row) for row in rows), key=lambda key: key.id)

    async def restore(self, batch: str, fingerprints: Sequence[str] | None = None) -> int:
        """Put keys of withdrawal ``batch`` back on sale (only those with ``fingerprints``
        when given). Returns how many came back."""
        async with self._db.transaction() as conn:
            if fingerprints is None:
                cursor = await conn.execute(
                    "UPDATE stock_keys SET withdrawn = NULL, withdrawn_at = NULL WHERE withdrawn = ?",
                    (batch,),
                )
                return cursor.rowcount
            restored = 0
            for fingerprint in fingerprints:
                cursor = await conn.execute(
                    """UPDATE stock_keys SET withdrawn = NULL, withdrawn_at = NULL
                       WHERE withdrawn = ? AND fingerprint = ?""",
                    (batch, fingerprint),
                )
                restored += cursor.rowcount
            return restored

    async def products(self) -> list[StockProduct]:
        """Every product held, oldest first, with counts."""
        return [_product(row) for row in await self._db.fetchall(_PRODUCTS + " ORDER BY p.id")]

    async def product(self, product: int) -> StockProduct | None:
        row = await self._db.fetchone(_PRODUCTS + " WHERE p.id = ?", (product,))
        return _product(row) if row is not None else None

    async def available(self, product: int) -> int:
        return int(
            await self._db.fetchval(
                f"SELECT count(*) FROM stock_keys WHERE product = ? AND {AVAILABLE}", (product,)
            )
        )

    async def set_low_alerted(self, product: int, alerted: bool) -> bool:
        """Set the product's "admins were told it runs low" flag; ``True`` only for the
        caller that changed it (so one crossing gives one alert, whichever process sees it)."""
        cursor_rows = await self._db.execute(
            "UPDATE stock_products SET low_alerted = ? WHERE id = ? AND low_alerted = ?",
            (int(alerted), product, int(not alerted)),
        )
        return cursor_rows == 1

    async def sold_since(self, since: str) -> int:
        """Keys sold at or after ``since`` (ISO-8601 UTC)."""
        return int(
            await self._db.fetchval("SELECT count(*) FROM stock_keys WHERE taken_at >= ?", (since,))
        )
