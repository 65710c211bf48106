"""Move a SQLite shop to PostgreSQL, every row, and prove nothing was lost.

    python -m storage.migrate sqlite:///data/shop.sqlite3 postgresql://shop@db:5432/shop

Both databases are first brought to the latest schema (the source with its own
migrations, so an older shop can move too). The target must be a new shop: the tool
never merges two (the search aliases a new shop starts with give way to the source's). Tables are copied parents first (foreign keys checked by PostgreSQL as
rows arrive), in one transaction: a failure leaves the target as empty as it was. Ids
are kept (orders, payments, refunds and events keep pointing at each other and at what
customers and suppliers were told) and each id sequence continues after the largest id.
At the end every table's row count, and the Stars of payments and refunds, are compared;
any difference is an error (exit status 1).

Stop the bot before moving: rows written to SQLite meanwhile would stay behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database

logger = logging.getLogger(__name__)

BATCH = 2000
#: SQLite's own tables and the FTS5 index (PostgreSQL computes its search column)
_SKIPPED_PREFIXES = ("sqlite_", "products_fts")
#: rows every new shop starts with: the source's (the owner's own edits included) replace them
_SEEDED = ("search_aliases",)
#: sums compared besides the counts: the money customers paid and got back
_SUMS = {"payments": "stars", "refunds": "stars", "orders": "stars"}


class MigrationError(RuntimeError):
    """The move was refused or did not check out (the message says which table)."""


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One table after the copy: rows (and summed Stars where money is) on each side."""

    table: str
    source_rows: int
    target_rows: int
    source_sum: int | None = None
    target_sum: int | None = None

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


async def _tables_parents_first(source: Database) -> list[str]:
    rows = await source.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    tables = sorted(r[0] for r in rows if not r[0].startswith(_SKIPPED_PREFIXES))
    parents: dict[str, set[str]] = {}
    for table in tables:
        keys = await source.fetchall(f"PRAGMA foreign_key_list({table})")
        parents[table] = {k["table"] for k in keys if k["table"] != table}
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise MigrationError(f"foreign keys form a cycle among {set(tables) - set(ordered)}")
        ordered.extend(ready)
    return ordered


async def _target_columns(target: Database, table: str) -> set[str]:
    rows = await target.fetchall(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = ?
             AND is_generated = 'NEVER' AND column_name <> 'rowid'""",
        (table,),
    )
    return {r[0] for r in rows}


async def _count(db: Database, table: str) -> tuple[int, int | None]:
    column = _SUMS.get(table)
    if column is None:
        return int(await db.fetchval(f"SELECT count(*) FROM {table}")), None
    row = await db.fetchone(f"SELECT count(*), coalesce(sum({column}), 0) FROM {table}")
    return int(row[0]), int(row[1])


async def copy_shop(source: Database, target: Database) -> list[TableCheck]:
    """Copy every row of ``source`` (SQLite) into the empty ``target`` (PostgreSQL) and
    compare them table by table. Raises :class:`MigrationError` when the target is not
    empty, a table or column is missing there, or a check fails."""
    if source.dialect != "sqlite" or target.dialect != "postgresql":
        raise MigrationError("the source must be SQLite and the target PostgreSQL")
    source_version, target_version = await source.migrate(), await target.migrate()
    if source_version != target_version:
        raise MigrationError(
            f"schema versions differ: SQLite {source_version}, PostgreSQL {target_version}"
        )
    tables = await _tables_parents_first(source)
    for table in tables:
        if table not in _SEEDED and await target.fetchval(f"SELECT count(*) FROM {table}"):
            raise MigrationError(f"the target is not empty: {table} has rows")
    async with target.transaction() as conn:
        for table in _SEEDED:
            await conn.execute(f"DELETE FROM {table}")
        for table in tables:
            info = await source.fetchall(f"PRAGMA table_info({table})")
            wanted = [r["name"] for r in info]
            present = await _target_columns(target, table)
            missing = [c for c in wanted if c not in present]
            if missing:
                raise MigrationError(f"{table}: PostgreSQL has no column {missing}")
            names = ", ".join(wanted)
            marks = ", ".join("?" for _ in wanted)
            insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            offset = 0
            while True:
                rows = await source.fetchall(
                    f"SELECT {names} FROM {table} ORDER BY rowid LIMIT ? OFFSET ?",
                    (BATCH, offset),
                )
                if not rows:
                    break
                await conn.executemany(insert, [tuple(row) for row in rows])
                offset += len(rows)
            logger.info("copied %s: %d rows", table, offset)
            if "id" in wanted:
                await conn.execute(
                    f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                      coalesce((SELECT max(id) FROM {table}), 0) + 1, false)
                        WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL"""
                )
        # checked inside the transaction: a difference rolls the whole copy back
        checks = []
        for table in tables:
            source_rows, source_sum = await _count(source, table)
            column = _SUMS.get(table)
            total = f"coalesce(sum({column}), 0)" if column else "NULL"
            cursor = await conn.execute(f"SELECT count(*), {total} FROM {table}")
            row = await cursor.fetchone()
            target_sum = None if row[1] is None else int(row[1])
            checks.append(TableCheck(table, source_rows, int(row[0]), source_sum, target_sum))
        bad = [c for c in checks if not c.ok]
        if bad:
            raise MigrationError(f"counts differ after the copy: {bad}")
    return checks


async def _main(source_url: str, target_url: str) -> int:
    source = await Database.open(source_url)
    try:
        target = await Database.open(target_url)
        try:
            checks = await copy_shop(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
    width = max(len(c.table) for c in checks)
    for check in checks:
        money = f"  Stars {check.target_sum}" if check.target_sum is not None else ""
        print(f"{check.table:<{width}}  {check.target_rows:>9} rows{money}  ok")
    print(f"moved {sum(c.target_rows for c in checks)} rows in {len(checks)} tables")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m storage.migrate SOURCE TARGET``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m storage.migrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("source", help="sqlite:///path/to/shop.sqlite3 (or the file's path)")
    parser.add_argument("target", help="postgresql://user:password@host:5432/database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.target.startswith(("postgresql://", "postgres://")):
        parser.error("the target must be a postgresql:// URL")
    try:
        return asyncio.run(_main(args.source, args.target))
    except MigrationError as exc:
        print(f"migration refused or failed, nothing kept: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
