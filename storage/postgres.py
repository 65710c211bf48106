"""The PostgreSQL engine of :class:`storage.db.Database` (asyncpg), for shops that run
several worker processes.

The repositories' SQL is written once (see :mod:`storage.db`); this module adapts it:

- ``?`` placeholders become ``$1``, ``$2``... (outside quoted text), once per statement;
- ``group_concat(x, sep)`` is ``string_agg``, ``x COLLATE NOCASE`` is ``lower(x)``;
- values are converted the way SQLite's column affinity does (an ``int`` bound to a
  ``TEXT`` column is stored as its digits, a ``bool`` as 0/1): asyncpg refuses such values,
  SQLite never did, and the repositories rely on it;
- a sum of integers is an ``int`` as on SQLite (PostgreSQL's ``sum(bigint)`` is
  ``numeric``), any other ``numeric`` a ``Decimal``.

Write transactions keep SQLite's guarantee that one writer runs at a time: each one
takes the same transaction-scoped advisory lock first, across every worker process. The
repositories' read-then-write steps (claim a refund, move an order on) were written for
that guarantee; the writes are short, so one writer at a time costs little.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any

import asyncpg

from storage.db import Database, migration_files

logger = logging.getLogger(__name__)

#: the advisory lock every write transaction takes (any constant: the shop's own database)
WRITE_LOCK = 0x53484F50  # "SHOP"
#: the advisory lock migrations take, so two workers starting at once migrate once
MIGRATION_LOCK = 0x53484F51
_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)
_NOCASE = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s+COLLATE\s+NOCASE", re.IGNORECASE)
_GROUP_CONCAT = re.compile(r"\bgroup_concat\s*\(", re.IGNORECASE)


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """The PostgreSQL text of one statement of the shared dialect (see the module)."""
    out: list[str] = []
    number = 0
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    text = "".join(out)
    text = _NOCASE.sub(r"lower(\1)", text)
    return _GROUP_CONCAT.sub("string_agg(", text)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else str(value)


def _as_int(value: Any) -> str:
    return str(int(value))


def _from_numeric(text: str) -> int | Decimal:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() and "." not in text else value


async def _init_connection(conn: asyncpg.Connection) -> None:
    """SQLite's lenient conversions (see the module), as text-format codecs."""
    for name in ("text", "varchar", "bpchar"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_as_text, decoder=str, format="text"
        )
    for name in ("int2", "int4", "int8"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_as_int, decoder=int, format="text"
        )
    await conn.set_type_codec(
        "float8", schema="pg_catalog", encoder=lambda v: repr(float(v)), decoder=float,
        format="text",
    )  # fmt: skip
    await conn.set_type_codec(
        "numeric", schema="pg_catalog", encoder=str, decoder=_from_numeric, format="text"
    )


class PgCursor:
    """What a statement returned: ``fetchone``/``fetchall`` and ``rowcount`` (the rows
    returned, or for a write without ``RETURNING`` the rows it changed)."""

    def __init__(self, rows: list[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    async def fetchone(self) -> asyncpg.Record | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    async def fetchall(self) -> list[asyncpg.Record]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    async def __aenter__(self) -> PgCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Statement:
    """``conn.execute(...)``: awaited for a cursor, or used in ``async with``."""

    def __init__(self, conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> None:
        self._conn, self._sql, self._params = conn, sql, params
        self._cursor: PgCursor | None = None

    async def _run(self) -> PgCursor:
        text = translate(self._sql)
        if _RETURNS_ROWS.search(text):
            rows = await self._conn.fetch(text, *self._params)
            return PgCursor(rows, len(rows))
        status = await self._conn.execute(text, *self._params)
        count = status.rsplit(" ", 1)[-1]
        return PgCursor([], int(count) if count.isdigit() else 0)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._run().__await__()

    async def __aenter__(self) -> PgCursor:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        return None


class PgConnection:
    """The connection a transaction yields, shaped like the SQLite one the repositories
    know: ``execute``, ``execute_fetchall`` and ``executemany``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> _Statement:
        return _Statement(self.raw, sql, tuple(params))

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[asyncpg.Record]:
        return await (await self.execute(sql, params)).fetchall()

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if batch:
            await self.raw.executemany(translate(sql), batch)


class PostgresDatabase(Database):
    """The shop's database on PostgreSQL. Create with :meth:`Database.open` and a
    ``postgresql://`` URL; close with :meth:`close`."""

    dialect = "postgresql"
    integrity_errors = (asyncpg.IntegrityConstraintViolationError,)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0
    ) -> PostgresDatabase:
        """A pool of ``min_size``..``max_size`` connections to ``url`` (``timeout`` s to
        connect), migrated. Raises asyncpg's errors or ``OSError`` when the server is
        unreachable."""
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, timeout=timeout,
            init=_init_connection, command_timeout=60,
        )  # fmt: skip
        database = cls(pool)
        try:
            await database.migrate()
        except BaseException:
            await pool.close()
            raise
        return database

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> int:
        """Apply every ``storage/migrations/postgresql/NNNN_name.sql`` above the version in
        ``schema_version``, each in its own transaction, under an advisory lock (several
        workers starting at once migrate once). Returns the schema version reached."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"
            )
            version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
            for number, name, script in migration_files("postgresql"):
                if number <= version:
                    continue
                logger.info("applying migration postgresql/%s", name)
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_version VALUES ($1)", number)
                version = number
        return int(version)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """A write transaction, one at a time across every process (see the module)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            yield PgConnection(conn)

    async def maintain(self, table: str) -> None:
        """``VACUUM (ANALYZE)`` ``table`` (a name of ours, never user input): fresh planner
        statistics and the visibility map index-only scans need, after a rebuild. Runs
        outside any transaction (VACUUM cannot run in one) and takes no write lock."""
        async with self._pool.acquire() as conn:
            await conn.execute(f"VACUUM (ANALYZE) {table}")

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> asyncpg.Record | None:
        """The first row of a read (committed state)."""
        return await self._pool.fetchrow(translate(sql), *tuple(params))

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[asyncpg.Record]:
        """Every row of a read (committed state)."""
        return list(await self._pool.fetch(translate(sql), *tuple(params)))
