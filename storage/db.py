"""The shop's database: one interface, two engines.

- **SQLite** (aiosqlite, WAL; the embedded default, ``DATABASE_URL`` unset or
  ``sqlite:///path``): one writer connection and a few read-only connections, each with
  its own aiosqlite thread. Writes go through :meth:`Database.transaction`, which holds an
  ``asyncio.Lock`` so two coroutines can never interleave statements inside one SQLite
  transaction. Reads (``fetchone``, ``fetchall``, ``fetchval``) go to the readers: in WAL
  mode they see the last committed state and never wait for a writer.
- **PostgreSQL** (asyncpg, ``DATABASE_URL=postgresql://...``; :mod:`storage.postgres`):
  a connection pool shared by any number of worker processes.

Repositories write their SQL once, in the dialect both engines share: ``?`` placeholders,
``INSERT ... ON CONFLICT``, ``RETURNING``, 0/1 integer flags and ISO-8601 text times.
Where the engines truly differ (full-text search) a repository asks :attr:`Database.dialect`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

logger = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Row(Protocol):
    """A result row, read by column name or position (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Cursor(Protocol):
    """What ``Connection.execute`` gives: the rows and how many were changed or returned."""

    rowcount: int

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class Connection(Protocol):
    """The connection :meth:`Database.transaction` yields. ``execute`` is awaited for a
    :class:`Cursor` or entered with ``async with``; ``execute_fetchall`` runs a statement
    and returns all its rows at once (with SQLite, one trip to the connection's thread
    instead of three: prefer it, or :func:`first_row`, for a statement that returns rows)."""

    def execute(self, sql: str, params: Iterable[Any] = ..., /) -> Any: ...

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ..., /) -> Iterable[Any]: ...

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]], /) -> Any: ...


async def first_row(conn: Connection, sql: str, params: Iterable[Any] = ()) -> Any:
    """The first row ``sql`` returns inside a transaction (``None`` when none): for lookups
    by key and ``UPDATE ... RETURNING`` of one row; every row is read."""
    return next(iter(await conn.execute_fetchall(sql, tuple(params))), None)


def utcnow_iso() -> str:
    """Current UTC time as ISO-8601 text with milliseconds (sortable)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migration_files(engine: str = "") -> list[tuple[int, str, str]]:
    """``(number, file name, SQL)`` of ``storage/migrations`` (SQLite) or of its
    ``engine`` subfolder (``"postgresql"``), in order."""
    folder = resources.files("storage") / "migrations"
    if engine:
        folder = folder / engine
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def _connect(path: str, pragmas: Iterable[str]) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    for pragma in pragmas:
        await connection.execute(pragma)
    return connection


class Database:
    """The interface every repository uses; :meth:`open` picks the engine.

    ``transaction()`` yields a connection whose ``execute(sql, params)`` returns a cursor
    (``fetchone``, ``fetchall``, ``rowcount``; awaitable or ``async with``) and whose
    ``executemany(sql, rows)`` runs one statement per row, all inside the transaction."""

    #: ``"sqlite"`` or ``"postgresql"``
    dialect: str = "sqlite"
    #: what a statement raises when it breaks a UNIQUE, CHECK or foreign key constraint
    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)

    @staticmethod
    async def open(target: str | Path, *, readers: int = 2) -> Database:
        """Open the database at ``target`` and apply pending migrations.

        ``target``: a SQLite path, ``sqlite:///path``, ``":memory:"`` (tests), or a
        ``postgresql://`` URL. Raises ``OSError``/``aiosqlite.Error`` or asyncpg's errors
        when the database cannot be opened."""
        text = str(target)
        if text.startswith(("postgresql://", "postgres://")):
            from storage.postgres import PostgresDatabase

            return await PostgresDatabase.connect(text)
        if text.startswith("sqlite:///"):
            text = text.removeprefix("sqlite:///")
        return await SQLiteDatabase.connect(text, readers=readers)

    async def close(self) -> None:
        raise NotImplementedError

    async def migrate(self) -> int:
        raise NotImplementedError

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """One write transaction, serialised with every other writer (on PostgreSQL across
        processes too): ``COMMIT`` at the end, ``ROLLBACK`` on any exception."""
        raise NotImplementedError

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One write statement in its own transaction; returns the rows changed."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return int(cursor.rowcount)

    async def maintain(self, table: str) -> None:
        """Refresh what the engine knows about ``table`` after it was rebuilt (PostgreSQL:
        ``VACUUM (ANALYZE)``; SQLite needs nothing)."""
        return None

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def fetchval(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return row[0] if row is not None else None


#: page cache of each SQLite read connection, KiB (SQLite's default: 2,000)
READER_CACHE_KIB = 512


class SQLiteDatabase(Database):
    """The embedded engine (see the module). Create with :meth:`Database.open`."""

    dialect = "sqlite"

    def __init__(
        self, connection: aiosqlite.Connection, readers: list[aiosqlite.Connection] | None = None
    ) -> None:
        self._conn = connection
        self._readers = readers or [connection]
        self._reads_in_flight = [0] * len(self._readers)
        self._reader_idle = asyncio.Condition()
        self._write_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str | Path, *, readers: int = 2) -> SQLiteDatabase:
        """Open (creating if needed) the database at ``path``, apply pending migrations and
        open ``readers`` read-only connections.

        ``":memory:"`` gives a private in-memory database (tests) read through the writer.
        """
        in_memory = str(path) == ":memory:"
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await _connect(
            str(path),
            (
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 10000",
            ),
        )
        database = cls(connection)
        try:
            await database.migrate()
        except BaseException:
            # a failed migration must not leave aiosqlite's thread (and the process) alive
            await connection.close()
            raise
        if not in_memory and readers > 0:
            # a reader's page cache is 512 KiB, not SQLite's 2 MiB: readers make indexed
            # lookups and page reads, the OS caches the file anyway, and the bot's steady
            # memory was ~2.5 MiB lower in the benchmark (issue 15) at no CPU measured
            database._readers = [
                await _connect(
                    str(path),
                    (
                        "PRAGMA query_only = ON",
                        "PRAGMA busy_timeout = 2000",
                        f"PRAGMA cache_size = -{READER_CACHE_KIB}",
                    ),
                )
                for _ in range(readers)
            ]
            database._reads_in_flight = [0] * readers
        return database

    async def close(self) -> None:
        for reader in self._readers:
            if reader is not self._conn:
                await reader.close()
        await self._conn.close()

    async def migrate(self) -> int:
        """Apply every ``storage/migrations/NNNN_name.sql`` above ``PRAGMA user_version``,
        each in its own transaction. Returns the schema version reached."""
        async with self._conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        for number, name, script in migration_files():
            if number <= version:
                continue
            logger.info("applying migration %s", name)
            async with self._write_lock:
                # Foreign keys are off while a migration rebuilds a table others refer to
                # (the SQLite "12-step" table change); checked before the commit.
                await self._conn.execute("PRAGMA foreign_keys = OFF")
                try:
                    await self._conn.executescript(
                        f"BEGIN;\n{script}\nPRAGMA user_version = {number};"
                    )
                    async with self._conn.execute("PRAGMA foreign_key_check") as cursor:
                        broken = await cursor.fetchall()
                    if broken:
                        raise RuntimeError(f"migration {name} breaks foreign keys: {broken[:5]}")
                    await self._conn.commit()
                finally:
                    if self._conn.in_transaction:
                        await self._conn.rollback()
                    await self._conn.execute("PRAGMA foreign_keys = ON")
            version = number
        return version

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception), serialised."""
        async with self._write_lock:
            try:
                # inside the try: cancelled while waiting for another process's lock, the
                # BEGIN still runs in aiosqlite's thread, and the rollback queued after it
                # must end it (or this connection would hold the write lock for good)
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                await self._conn.rollback()
                raise
            else:
                await self._conn.commit()

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """An idle read connection, waiting for one when every one is busy.

        A busy one may be inside a statement begun before the caller's last commit: SQLite
        keeps that statement's snapshot for the whole connection, so a read there would not
        see the caller's own write (under load: an order just created read back as missing).
        Each connection runs its statements one at a time anyway, so waiting costs nothing."""
        async with self._reader_idle:
            await self._reader_idle.wait_for(lambda: 0 in self._reads_in_flight)
            index = self._reads_in_flight.index(0)
            self._reads_in_flight[index] += 1
        try:
            yield self._readers[index]
        finally:
            async with self._reader_idle:
                self._reads_in_flight[index] -= 1
                self._reader_idle.notify()

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        """The first row of a read (committed state, never waiting for a writer). Meant for
        lookups by key: every row the statement gives is read, in one trip to the
        connection's thread instead of three (a payment made ~20 such reads)."""
        async with self._reader() as conn:
            return await first_row(conn, sql, params)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """Every row of a read (committed state, never waiting for a writer)."""
        # one trip to the connection's thread (execute, fetch, and the statement reset by
        # reading to its end) instead of three: a catalogue page read 0.2-0.4 -> ~0.1 ms
        async with self._reader() as conn:
            return list(await conn.execute_fetchall(sql, tuple(params)))
