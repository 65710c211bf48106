"""The SQLite engine's write transactions under cancellation (leases cancel job bodies
in normal running: a worker that loses its lease stops at once)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from storage.db import Database


async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.sqlite3"
    db = await Database.open(path)
    other = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    try:
        other.execute("BEGIN IMMEDIATE")  # another worker is writing
        write = asyncio.create_task(
            db.execute("INSERT INTO audit_log (admin_id, action, at) VALUES (1, 'x', 'now')")
        )
        await asyncio.sleep(0.2)  # our BEGIN now waits for the other's lock
        write.cancel()
        other.execute("ROLLBACK")
        await asyncio.sleep(0.3)  # the BEGIN still queued in aiosqlite's thread runs now

        other.execute("BEGIN IMMEDIATE")  # the other worker can write again
        other.execute("ROLLBACK")
        assert (
            await db.execute("INSERT INTO audit_log (admin_id, action, at) VALUES (2, 'y', 'now')")
            == 1
        )
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'x'") == 0
    finally:
        other.close()
        await db.close()
