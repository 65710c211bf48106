"""The synced catalogue: offers, products grouped from them, FTS5 search."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from storage.db import Connection, Database, Row, utcnow_iso

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class StoredOffer:
    """An offer as last synced. ``price`` is the supplier's Decimal in ``currency``."""

    supplier: str
    offer_id: str
    product_id: str
    product_name: str
    offer_name: str
    category: str
    price: Decimal
    currency: str
    in_stock: bool
    needs_player: bool
    needs_server: bool
    returns_key: bool | None
    stars_amount: int | None
    active: bool
    #: a picture of the product (https URL) when the supplier gives one
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Product:
    supplier: str
    product_id: str
    name: str
    category: str
    offer_count: int


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One catalogue sync run. ``status``: running | ok | held | failed. ``offers``: active
    offers after an ``ok`` run, offers the supplier listed for a ``held`` one. ``started_at``
    is also the ``synced_at`` its rows were written with (ISO-8601 UTC, milliseconds)."""

    id: int
    supplier: str
    started_at: str
    finished_at: str | None
    status: str
    offers: int | None
    error: str | None


OfferRow = tuple[
    str,
    str,
    str,
    str,
    str,
    str,
    str,
    str,
    int,
    int,
    int,
    int | None,
    int | None,
    str,
    int,
    str | None,
    str | None,
    str | None,
]
"""Row tuple for :meth:`CatalogueRepository.upsert_offers`: supplier, offer_id, product_id,
product_name, offer_name, category, price text, currency, in_stock, needs_player,
needs_server, returns_key, stars_amount, synced_at, active, image_url, link_key,
product_key (the last two from :mod:`services.routing`, ``None`` to leave an offer a good
of its own)."""

#: the group an offer belongs to: an admin's link, else the automatic key, else itself
_GROUP = "coalesce(l.group_key, o.link_key, 'own:' || o.supplier || ':' || o.offer_id)"
_WITH_LINKS = (
    "offers o LEFT JOIN offer_links l ON l.supplier = o.supplier AND l.offer_id = o.offer_id"
)


def _offer(row: Row) -> StoredOffer:
    return StoredOffer(
        supplier=row["supplier"],
        offer_id=row["offer_id"],
        product_id=row["product_id"],
        product_name=row["product_name"],
        offer_name=row["offer_name"],
        category=row["category"],
        price=Decimal(row["price"]),
        currency=row["currency"],
        in_stock=bool(row["in_stock"]),
        needs_player=bool(row["needs_player"]),
        needs_server=bool(row["needs_server"]),
        returns_key=None if row["returns_key"] is None else bool(row["returns_key"]),
        stars_amount=row["stars_amount"],
        active=bool(row["active"]),
        image_url=row["image_url"],
    )


def fts_query(text: str) -> list[list[str]]:
    """Free text as search word groups for :meth:`CatalogueRepository.matching_product_rowids`:
    every word is needed, each one as a prefix (``genshin 60`` -> ``[["genshin"], ["60"]]``)."""
    return [[word] for word in _WORD.findall(text)[:8]]


def fts5_expression(groups: Sequence[Sequence[str]]) -> str:
    """SQLite FTS5: every group needed, any word of a group, each word a prefix
    (``[["genshin"], ["60", "sixty"]]`` -> ``("genshin"*) AND ("60"* OR "sixty"*)``)."""
    return " AND ".join(
        "(" + " OR ".join(f'"{word}"*' for word in dict.fromkeys(group)) + ")" for group in groups
    )


def tsquery_expression(groups: Sequence[Sequence[str]]) -> str:
    """The same for PostgreSQL's ``to_tsquery('simple', ...)``. A word is split where the
    search vector splits text (anything not a letter or a digit, ``_`` included), its
    parts a phrase with the last one a prefix, as FTS5 reads ``"a_b"*``."""

    def term(word: str) -> str:
        parts = [part for part in re.split(r"[\W_]+", word) if part]
        if not parts:
            return ""
        quoted = [f"'{part}'" for part in parts]
        quoted[-1] += ":*"
        return "(" + " <-> ".join(quoted) + ")" if len(quoted) > 1 else quoted[0]

    clauses = []
    for group in groups:
        terms = [t for t in (term(word) for word in dict.fromkeys(group)) if t]
        if not terms:
            return ""
        clauses.append("(" + " | ".join(terms) + ")")
    return " & ".join(clauses)


#: seconds a catalogue page read is reused: pages change only when products are rebuilt
#: (which drops every kept page at once) and in their best-sellers order, which may lag a
#: sale by this long
PAGE_TTL = 30.0
#: catalogue pages kept (category, offset, size); a page is eight products
PAGES_KEPT = 256


class CatalogueRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        #: bumped whenever products are rebuilt; search indexes built before it are stale
        self.generation = 0
        #: products per category, counted once per generation (a count on every page press
        #: was a third of a catalogue press's database work)
        self._totals: dict[str, int] = {}
        self._totals_generation = 0
        #: (category, offset, limit) -> (generation, read at, products): a page press read
        #: the database each time, ~0.1 ms of CPU mostly in handing the read to the
        #: connection's thread and back, for the same few pages most customers open
        self._pages: OrderedDict[tuple[str, int, int], tuple[int, float, list[Product]]] = (
            OrderedDict()
        )

    async def upsert_offers(self, rows: Sequence[OfferRow]) -> None:
        """Insert or update offers in one transaction. ``returns_key`` keeps what find-one
        told when the sync row does not say (``NULL``)."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                """INSERT INTO offers (supplier, offer_id, product_id, product_name, offer_name,
                       category, price, currency, in_stock, needs_player, needs_server,
                       returns_key, stars_amount, synced_at, active, image_url, link_key,
                       product_key)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (supplier, offer_id) DO UPDATE SET
                       product_id = excluded.product_id, product_name = excluded.product_name,
                       offer_name = excluded.offer_name, category = excluded.category,
                       price = excluded.price, currency = excluded.currency,
                       in_stock = excluded.in_stock, needs_player = excluded.needs_player,
                       needs_server = excluded.needs_server,
                       returns_key = coalesce(excluded.returns_key, offers.returns_key),
                       stars_amount = excluded.stars_amount, synced_at = excluded.synced_at,
                       active = excluded.active,
                       image_url = coalesce(excluded.image_url, offers.image_url),
                       link_key = excluded.link_key, product_key = excluded.product_key""",
                rows,
            )

    async def finish_sync(self, supplier: str, synced_at: str, *, deactivate: bool = True) -> int:
        """After a complete sync: deactivate offers it did not see (written before
        ``synced_at``) unless ``deactivate`` is false (a held sync), rebuild products and the
        search index. Returns the number of active offers."""
        async with self._db.transaction() as conn:
            if deactivate:
                await conn.execute(
                    "UPDATE offers SET active = 0 WHERE supplier = ? AND synced_at < ?",
                    (supplier, synced_at),
                )
            await conn.execute("DELETE FROM products WHERE supplier = ?", (supplier,))
            await conn.execute(
                """INSERT INTO products (supplier, product_id, name, category, offer_count, sold,
                                        offer_names, product_key)
                   SELECT o.supplier, o.product_id, min(o.product_name), min(o.category),
                          count(*), coalesce(max(s.sold), 0), group_concat(o.offer_name, ' · '),
                          min(o.product_key)
                   FROM offers o LEFT JOIN (
                       SELECT product_id, count(*) AS sold FROM orders
                       WHERE supplier = ? AND status = 'completed' GROUP BY product_id
                   ) s ON s.product_id = o.product_id
                   WHERE o.supplier = ? AND o.active = 1
                   GROUP BY o.supplier, o.product_id""",
                (supplier, supplier),
            )
            await self._list_one_per_key(conn)
            if self._db.dialect == "sqlite":  # PostgreSQL's search vector is a column
                await conn.execute("INSERT INTO products_fts (products_fts) VALUES ('rebuild')")
        # PostgreSQL: the rebuilt rows counted for the planner, and marked all-visible so
        # a category page reads its skipped rows from the index alone (12 -> ~1 ms)
        await self._db.maintain("products")
        self.generation += 1
        return int(
            await self._db.fetchval(
                "SELECT count(*) FROM offers WHERE supplier = ? AND active = 1", (supplier,)
            )
        )

    @staticmethod
    async def _list_one_per_key(conn: Connection) -> None:
        """Of products of several suppliers with the same ``product_key``, list one in the
        storefront (the one with most offers, then by supplier): its page shows them all."""
        await conn.execute(
            """UPDATE products SET listed = CASE WHEN product_key IS NULL THEN 1
                   WHEN rowid = (SELECT p.rowid FROM products p
                                 WHERE p.product_key = products.product_key
                                 ORDER BY p.offer_count DESC, p.supplier, p.product_id LIMIT 1)
                   THEN 1 ELSE 0 END"""
        )

    async def set_offer_details(
        self,
        supplier: str,
        offer_id: str,
        price: Decimal,
        currency: str,
        returns_key: bool,
        needs_player: bool,
        needs_server: bool,
    ) -> None:
        """Record what find-one just said about an offer."""
        await self._db.execute(
            """UPDATE offers SET price = ?, currency = ?, returns_key = ?, needs_player = ?,
                   needs_server = ?, in_stock = 1, active = 1
               WHERE supplier = ? AND offer_id = ?""",
            (
                str(price),
                currency,
                int(returns_key),
                int(needs_player),
                int(needs_server),
                supplier,
                offer_id,
            ),
        )

    async def touch_offers(self, supplier: str, offer_ids: Sequence[str], synced_at: str) -> None:
        """Mark stored offers as seen at ``synced_at`` (kept by the next ``finish_sync``)."""
        if not offer_ids:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "UPDATE offers SET synced_at = ? WHERE supplier = ? AND offer_id = ?",
                [(synced_at, supplier, offer_id) for offer_id in offer_ids],
            )

    async def listed_offer_ids(self, supplier: str) -> list[str]:
        """Offer ids admins listed for a supplier without a catalogue feed, oldest first."""
        rows = await self._db.fetchall(
            "SELECT offer_id FROM listed_offers WHERE supplier = ? ORDER BY added_at, offer_id",
            (supplier,),
        )
        return [row["offer_id"] for row in rows]

    async def add_listed_offers(
        self, supplier: str, offer_ids: Sequence[str], admin_id: int | None
    ) -> int:
        """List offer ids for a supplier without a feed; returns how many were new."""
        added = 0
        async with self._db.transaction() as conn:
            for offer_id in offer_ids:
                cursor = await conn.execute(
                    """INSERT INTO listed_offers (supplier, offer_id, added_by, added_at)
                       VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                    (supplier, offer_id, admin_id, utcnow_iso()),
                )
                added += cursor.rowcount
        return added

    async def deactivate(self, supplier: str, offer_id: str) -> None:
        await self._db.execute(
            "UPDATE offers SET active = 0 WHERE supplier = ? AND offer_id = ?", (supplier, offer_id)
        )

    async def get(self, supplier: str, offer_id: str) -> StoredOffer | None:
        row = await self._db.fetchone(
            "SELECT * FROM offers WHERE supplier = ? AND offer_id = ?", (supplier, offer_id)
        )
        return _offer(row) if row else None

    async def group_of(self, supplier: str, offer_id: str) -> str:
        """The group (good) an offer belongs to; its own when it is not stored."""
        value = await self._db.fetchval(
            f"SELECT {_GROUP} FROM {_WITH_LINKS} WHERE o.supplier = ? AND o.offer_id = ?",
            (supplier, offer_id),
        )
        return str(value) if value is not None else f"own:{supplier}:{offer_id}"

    async def linked_offers(self, supplier: str, offer_id: str) -> list[StoredOffer]:
        """Every active offer of the same good as ``supplier:offer_id`` (itself first when
        active): offers with its automatic key that no admin moved, and offers an admin
        linked into its group."""
        group = await self.group_of(supplier, offer_id)
        if group.startswith(("own:", "apart:")):
            rows = await self._db.fetchall(
                "SELECT * FROM offers WHERE supplier = ? AND offer_id = ? AND active = 1",
                (supplier, offer_id),
            )
        else:
            rows = await self._db.fetchall(
                """SELECT o.* FROM offers o WHERE o.link_key = ? AND o.active = 1
                       AND NOT EXISTS (SELECT 1 FROM offer_links l
                                       WHERE l.supplier = o.supplier AND l.offer_id = o.offer_id)
                   UNION
                   SELECT o.* FROM offer_links l JOIN offers o
                       ON o.supplier = l.supplier AND o.offer_id = l.offer_id
                   WHERE l.group_key = ? AND o.active = 1""",
                (group, group),
            )
        offers = [_offer(row) for row in rows]
        offers.sort(key=lambda o: (o.supplier, o.offer_id) != (supplier, offer_id))
        return offers

    async def set_link(
        self, supplier: str, offer_id: str, group: str, how: str, admin_id: int | None
    ) -> None:
        """An admin's link (``how`` ``manual``: into ``group``; ``apart``: alone), kept
        across syncs."""
        await self._db.execute(
            """INSERT INTO offer_links (supplier, offer_id, group_key, how, admin_id, at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (supplier, offer_id) DO UPDATE SET group_key = excluded.group_key,
                   how = excluded.how, admin_id = excluded.admin_id, at = excluded.at""",
            (supplier, offer_id, group, how, admin_id, utcnow_iso()),
        )

    async def product_offers(self, supplier: str, product_id: str) -> list[tuple[str, StoredOffer]]:
        """``(group, offer)`` of every active offer a product page shows: the product's
        own and those of other suppliers' products with the same ``product_key``."""
        key = await self._db.fetchval(
            "SELECT product_key FROM products WHERE supplier = ? AND product_id = ?",
            (supplier, product_id),
        )
        if key is None:
            where, params = "o.supplier = ? AND o.product_id = ?", (supplier, product_id)
        else:
            where, params = "o.product_key = ?", (key,)
        rows = await self._db.fetchall(
            f"""SELECT {_GROUP} AS grp, o.* FROM {_WITH_LINKS} WHERE {where} AND o.active = 1
                ORDER BY o.supplier, o.offer_id""",
            params,
        )
        return [(row["grp"], _offer(row)) for row in rows]

    async def product_names(self) -> list[tuple[str, str, str, str]]:
        """``(supplier, product id, name, category)`` of every product (admins' review of
        doubtful matches)."""
        rows = await self._db.fetchall("SELECT supplier, product_id, name, category FROM products")
        return [tuple(row) for row in rows]  # type: ignore[misc]

    async def categories(self) -> list[tuple[str, int]]:
        """``[(category, product count)]`` in a stable order."""
        rows = await self._db.fetchall(
            """SELECT category, count(*) AS n FROM products WHERE listed = 1 GROUP BY category
               ORDER BY CASE category WHEN 'Top Up' THEN 0 WHEN 'Gift Cards' THEN 1
                        WHEN 'Telegram Stars' THEN 2 ELSE 3 END, category"""
        )
        return [(row["category"], row["n"]) for row in rows]

    async def products(self, category: str, offset: int, limit: int) -> tuple[list[Product], int]:
        """One page of a category's products, best sellers first, then by name; and the total.
        A page read in the last :data:`PAGE_TTL` seconds of the same products is reused."""
        key = (category, offset, limit)
        generation = self.generation
        if self._pages and next(reversed(self._pages.values()))[0] != generation:
            self._pages.clear()  # products were rebuilt: no page of before is kept
        kept = self._pages.get(key)
        if kept is not None and self._clock() - kept[1] < PAGE_TTL:
            self._pages.move_to_end(key)
            return list(kept[2]), await self._category_total(category)
        read_at = self._clock()
        page, total = await self._read_products(category, offset, limit)
        if self.generation == generation:  # not kept across a rebuild
            self._pages[key] = (generation, read_at, page)
            self._pages.move_to_end(key)
            if len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        return page, total

    async def _read_products(
        self, category: str, offset: int, limit: int
    ) -> tuple[list[Product], int]:
        # the page's rows are found in the index alone (it holds rowid and name), and
        # only those are read: skipping thousands of rows of a deep page costs index reads,
        # not table reads (PostgreSQL, page at offset 7,731: 15.4 -> 3.2 ms)
        rows = await self._db.fetchall(
            """SELECT p.* FROM (
                   SELECT rowid AS page_row FROM products WHERE category = ? AND listed = 1
                   ORDER BY sold DESC, name COLLATE NOCASE LIMIT ? OFFSET ?
               ) page JOIN products p ON p.rowid = page.page_row
               ORDER BY p.sold DESC, p.name COLLATE NOCASE""",
            (category, limit, offset),
        )
        total = await self._category_total(category)
        return [
            Product(r["supplier"], r["product_id"], r["name"], r["category"], r["offer_count"])
            for r in rows
        ], int(total)

    def products_changed(self) -> None:
        """Products were rebuilt by another connection (a sync in a child process)."""
        self.generation += 1

    async def _category_total(self, category: str) -> int:
        generation = self.generation
        if self._totals_generation != generation:
            self._totals, self._totals_generation = {}, generation
        total = self._totals.get(category)
        if total is None:
            total = int(
                await self._db.fetchval(
                    "SELECT count(*) FROM products WHERE category = ? AND listed = 1",
                    (category,),
                )
            )
            if self.generation == generation:  # not counted across a rebuild
                self._totals[category] = total
        return total

    async def product(self, supplier: str, product_id: str) -> Product | None:
        r = await self._db.fetchone(
            "SELECT * FROM products WHERE supplier = ? AND product_id = ?", (supplier, product_id)
        )
        return (
            Product(r["supplier"], r["product_id"], r["name"], r["category"], r["offer_count"])
            if r
            else None
        )

    async def offers_of(self, supplier: str, product_id: str) -> list[StoredOffer]:
        """A product's active offers, cheapest first (prices compared within one currency)."""
        rows = await self._db.fetchall(
            """SELECT * FROM offers WHERE supplier = ? AND product_id = ? AND active = 1
               ORDER BY currency, CAST(price AS REAL), offer_id""",
            (supplier, product_id),
        )
        return [_offer(row) for row in rows]

    async def search_products(self, text: str, limit: int = 10) -> list[Product]:
        """Products whose name (or denomination names) match ``text``, best first
        (a prefix match of every word; the name weighs ten times a denomination)."""
        groups = fts_query(text)
        if not groups:
            return []
        if self._db.dialect == "postgresql":
            expression = tsquery_expression(groups)
            if not expression:
                return []
            sql = """SELECT p.* FROM products p
                     WHERE p.search @@ to_tsquery('simple', lower(unaccent(?))) AND p.listed = 1
                     ORDER BY ts_rank('{0.1, 0.2, 0.1, 1.0}', p.search,
                                      to_tsquery('simple', lower(unaccent(?)))) DESC, p.rowid
                     LIMIT ?"""
            params: tuple[object, ...] = (expression, expression, limit)
        else:
            sql = """SELECT p.* FROM products_fts f JOIN products p ON p.rowid = f.rowid
                     WHERE products_fts MATCH ? AND p.listed = 1
                     ORDER BY bm25(products_fts, 10.0, 1.0) LIMIT ?"""
            params = (fts5_expression(groups), limit)
        rows = await self._db.fetchall(sql, params)
        return [
            Product(r["supplier"], r["product_id"], r["name"], r["category"], r["offer_count"])
            for r in rows
        ]

    async def search_index_rows(self, chunk: int = 2000) -> AsyncIterator[list[Row]]:
        """Every listed product as rows ``(rowid, supplier, product_id, name, category,
        offer_count, offer_names)`` (read by position), in rowid order, ``chunk`` rows at a
        time: for the in-memory search index (services.search), which keeps far less than
        all the rows at once would take. A rebuild between two chunks mixes old and new
        products; ``generation`` says the index must be built again."""
        after = 0  # rowids start at 1 on both engines
        while True:
            rows = await self._db.fetchall(
                """SELECT rowid, supplier, product_id, name, category, offer_count, offer_names
                   FROM products WHERE listed = 1 AND rowid > ? ORDER BY rowid LIMIT ?""",
                (after, chunk),
            )
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    async def matching_product_rowids(
        self, groups: Sequence[Sequence[str]], limit: int
    ) -> list[int]:
        """Rowids of products having, for every group of words, a word starting with one
        of that group's (in rowid order; the caller ranks them), at most
        ``limit``. Both engines split names into the same words: lower case, accents
        removed, at anything not a letter or digit (SQLite FTS5 ``unicode61``; on
        PostgreSQL the ``products.search`` vector)."""
        if self._db.dialect == "postgresql":
            expression = tsquery_expression(groups)
            if not expression:
                return []
            # matched through the search index first, then ordered: left to itself, the
            # planner walked every product in rowid order testing each (33 ms, not 2)
            rows = await self._db.fetchall(
                """WITH matched AS MATERIALIZED (
                       SELECT rowid FROM products
                       WHERE search @@ to_tsquery('simple', lower(unaccent(?))))
                   SELECT rowid FROM matched ORDER BY rowid LIMIT ?""",
                (expression, limit),
            )
        else:
            rows = await self._db.fetchall(
                "SELECT rowid FROM products_fts WHERE products_fts MATCH ? LIMIT ?",
                (fts5_expression(groups), limit),
            )
        return [int(row[0]) for row in rows]

    async def aliases(self) -> list[tuple[str, str]]:
        """Search aliases ``[(alias, target)]`` by alias."""
        rows = await self._db.fetchall("SELECT alias, target FROM search_aliases ORDER BY alias")
        return [(row["alias"], row["target"]) for row in rows]

    async def set_alias(self, alias: str, target: str, admin_id: int | None) -> None:
        """Add search alias ``alias`` -> ``target`` (replacing one of the same alias)."""
        await self._db.execute(
            """INSERT INTO search_aliases (alias, target, added_by, added_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (alias) DO UPDATE SET target = excluded.target,
                   added_by = excluded.added_by, added_at = excluded.added_at""",
            (alias, target, admin_id, utcnow_iso()),
        )

    async def stars_offers(self) -> list[StoredOffer]:
        """Active Telegram Stars packs, smallest first."""
        rows = await self._db.fetchall(
            """SELECT * FROM offers WHERE stars_amount IS NOT NULL AND active = 1
               ORDER BY stars_amount"""
        )
        return [_offer(row) for row in rows]

    async def price_samples(self) -> list[StoredOffer]:
        """The cheapest, the middle and the dearest active, in-stock offer of each
        currency: a handful of rows the admin's price preview picks from, without
        loading the whole catalogue."""
        rows = await self._db.fetchall(
            """SELECT * FROM offers WHERE rowid IN (
                   SELECT rowid FROM (
                       SELECT rowid, count(*) OVER win AS n,
                              row_number() OVER (win ORDER BY CAST(price AS REAL)) AS rank
                       FROM offers WHERE active = 1 AND in_stock = 1
                       WINDOW win AS (PARTITION BY currency)) AS ranked
                   WHERE rank IN (1, n, (n + 1) / 2))
               ORDER BY supplier, offer_id"""
        )
        return [_offer(row) for row in rows]

    async def size(self, supplier: str | None = None) -> int:
        """Active offers (of one supplier when given)."""
        if supplier is None:
            return int(await self._db.fetchval("SELECT count(*) FROM offers WHERE active = 1"))
        return int(
            await self._db.fetchval(
                "SELECT count(*) FROM offers WHERE supplier = ? AND active = 1", (supplier,)
            )
        )

    async def start_sync_run(self, supplier: str, started_at: str | None = None) -> int:
        """Record a running sync; ``started_at`` should be the ``synced_at`` of its rows."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO sync_runs (supplier, started_at, status) VALUES (?, ?, 'running')
                   RETURNING id""",
                (supplier, started_at or utcnow_iso()),
            )
            return int((await cursor.fetchone())[0])

    async def finish_sync_run(
        self, run_id: int, status: str, offers: int | None, error: str | None = None
    ) -> None:
        await self._db.execute(
            "UPDATE sync_runs SET finished_at = ?, status = ?, offers = ?, error = ? WHERE id = ?",
            (utcnow_iso(), status, offers, error, run_id),
        )

    async def last_sync(self) -> tuple[str, int] | None:
        """``(finished_at, offers)`` of the last successful sync."""
        row = await self._db.fetchone(
            "SELECT finished_at, offers FROM sync_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1"
        )
        return (row["finished_at"], row["offers"]) if row else None

    async def run(self, run_id: int) -> SyncRun | None:
        """Sync run ``run_id`` whatever its status."""
        row = await self._db.fetchone("SELECT * FROM sync_runs WHERE id = ?", (run_id,))
        if row is None:
            return None
        return SyncRun(
            row["id"], row["supplier"], row["started_at"], row["finished_at"], row["status"],
            row["offers"], row["error"],
        )  # fmt: skip

    async def latest_run(self, supplier: str | None = None) -> SyncRun | None:
        """The last sync run that finished with a result (``ok`` or ``held``); running and
        failed ones are skipped."""
        row = await self._db.fetchone(
            """SELECT * FROM sync_runs WHERE status IN ('ok', 'held')
                   AND (CAST(? AS TEXT) IS NULL OR supplier = ?) ORDER BY id DESC LIMIT 1""",
            (supplier, supplier),
        )
        if row is None:
            return None
        return SyncRun(
            row["id"], row["supplier"], row["started_at"], row["finished_at"], row["status"],
            row["offers"], row["error"],
        )  # fmt: skip
