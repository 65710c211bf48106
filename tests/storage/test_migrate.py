"""Moving a SQLite shop to PostgreSQL: ``python -m storage.migrate``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from storage.catalogue import CatalogueRepository
from storage.db import Database, utcnow_iso
from storage.migrate import MigrationError, copy_shop
from storage.orders import OrdersRepository, OrderStatus
from tests.conftest import fresh_postgres_database
from tests.servers.postgres import PostgresServer
from tests.storage.test_orders_repository import _order, _pay


async def _shop_with_history(path: Path) -> None:
    """Orders in every state money can be in: paid and delivered, failed and refunded,
    awaiting payment; a catalogue customers search."""
    db = await Database.open(path)
    try:
        repo = OrdersRepository(db)
        delivered = await _order(db, repo, user_id=1)
        await _pay(repo, delivered.id, "charge-delivered", user_id=1)
        await repo.transition(delivered.id, OrderStatus.PROCESSING, "sent to the supplier")
        await repo.transition(delivered.id, OrderStatus.COMPLETED, "key delivered")
        refunded = await _order(db, repo, user_id=2)
        await _pay(repo, refunded.id, "charge-refunded", user_id=2)
        await repo.fail_and_queue_refund(refunded.id, "out of stock", "OUT_OF_STOCK", 0.0)
        await _order(db, repo, user_id=3)
        catalogue = CatalogueRepository(db)
        synced_at = utcnow_iso()
        await catalogue.upsert_offers([
            ("gamesdrop", str(n), f"p{n}", name, "10 USD", "Gift Cards", "10.50", "USD",
             1, 0, 0, 1, None, synced_at, 1, None, None, None)
            for n, name in enumerate(["Steam Wallet", "Genshin Impact", "Pokémon TCG", "Роблокс"])
        ])  # fmt: skip
        await catalogue.finish_sync("gamesdrop", synced_at)
    finally:
        await db.close()


async def test_a_sqlite_shop_moves_to_postgresql_with_every_order_payment_refund_and_event(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source_path = tmp_path / "shop.sqlite3"
    await _shop_with_history(source_path)
    target_url = await fresh_postgres_database(postgres)

    command = [sys.executable, "-m", "storage.migrate", f"sqlite:///{source_path}", target_url]
    moved = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(moved.communicate(), 60)
    assert moved.returncode == 0, err.decode()
    assert b"payments" in out and b"Stars 10" in out

    source, target = await Database.open(source_path), await Database.open(target_url)
    try:
        before, after = OrdersRepository(source), OrdersRepository(target)
        for order_id in (1, 2, 3):
            assert await after.get(order_id) == await before.get(order_id)
            assert await after.events(order_id) == await before.events(order_id)
        assert (await after.get(2)).status is OrderStatus.FAILED
        assert await after.refund_status(2) == await before.refund_status(2) == "pending"
        assert await after.payment_recorded("charge-refunded")
        # the next order continues the ids: nothing a customer was told is reused
        assert (await _order(target, after, user_id=4)).id == 4
        # customers find the same products on the new engine
        for text in ("steam", "pokemon", "роблокс", "gen imp"):
            old = [p.name for p in await CatalogueRepository(source).search_products(text)]
            new = [p.name for p in await CatalogueRepository(target).search_products(text)]
            assert new == old and new, text
    finally:
        await source.close()
        await target.close()


async def test_a_target_that_already_holds_a_shop_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source_path = tmp_path / "shop.sqlite3"
    await _shop_with_history(source_path)
    source = await Database.open(source_path)
    target = await Database.open(await fresh_postgres_database(postgres))
    try:
        await copy_shop(source, target)
        try:
            await copy_shop(source, target)
        except MigrationError as exc:
            assert "not empty" in str(exc)
        else:
            raise AssertionError("a second copy into the same shop was not refused")
        assert await target.fetchval("SELECT count(*) FROM orders") == 3
    finally:
        await source.close()
        await target.close()


async def test_a_new_shop_starts_alike_on_both_engines(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """The PostgreSQL schema is SQLite's: the same tables and columns, and the same rows a
    new shop starts with (search aliases customers rely on)."""
    sqlite = await Database.open(tmp_path / "new.sqlite3")
    pg = await Database.open(await fresh_postgres_database(postgres))
    try:
        tables = [
            r[0]
            for r in await sqlite.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith(("sqlite_", "products_fts"))
        ]
        for table in tables:
            names = [r["name"] for r in await sqlite.fetchall(f"PRAGMA table_info({table})")]
            columns = set(names)
            on_pg = {
                r[0]
                for r in await pg.fetchall(
                    """SELECT column_name FROM information_schema.columns
                       WHERE table_schema = current_schema() AND table_name = ?""",
                    (table,),
                )
            }
            assert columns <= on_pg, (table, columns - on_pg)
            rows = f"SELECT {', '.join(names)} FROM {table} ORDER BY 1"
            assert [tuple(r) for r in await pg.fetchall(rows)] == [
                tuple(r) for r in await sqlite.fetchall(rows)
            ], table
    finally:
        await sqlite.close()
        await pg.close()
