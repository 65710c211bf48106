"""Migration 0008: a database at schema 0007 with GamesDrop offers, orders and campaign
rewards (integer ids) opens at the latest schema with every row carried over as text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.catalogue import CatalogueRepository
from storage.db import Database, migration_files
from storage.orders import OrdersRepository

NOW = "2026-01-01T00:00:00.000+00:00"


def _database_at_0007(path: Path) -> None:
    conn = sqlite3.connect(path)
    for number, _name, script in migration_files():
        if number <= 7:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.executescript(
        f"""
        INSERT INTO users (id, first_name, first_seen, last_seen) VALUES (7, 'Ann', '{NOW}', '{NOW}');
        INSERT INTO offers (supplier, offer_id, product_id, product_name, offer_name, category,
            price, currency, in_stock, needs_player, needs_server, returns_key, stars_amount,
            active, synced_at)
        VALUES ('gamesdrop', 999, 42, 'Steam Wallet', 'Steam US 5 USD', 'Gift Cards', '23.090',
                'KZT', 1, 0, 0, 1, NULL, 1, '{NOW}'),
               ('gamesdrop', 1001, 43, 'Genshin Impact', '60 Genesis Crystals', 'Top Up', '0.99',
                'USD', 1, 1, 1, 0, NULL, 1, '{NOW}');
        INSERT INTO products (supplier, product_id, name, category, offer_count, sold, offer_names)
        VALUES ('gamesdrop', 42, 'Steam Wallet', 'Gift Cards', 1, 3, 'Steam US 5 USD'),
               ('gamesdrop', 43, 'Genshin Impact', 'Top Up', 1, 0, '60 Genesis Crystals');
        INSERT INTO products_fts (products_fts) VALUES ('rebuild');
        INSERT INTO orders (user_id, chat_id, kind, supplier, offer_id, product_id, product_name,
            offer_name, returns_key, supplier_price, supplier_currency, cost_usd, stars, status,
            transaction_id, charge_id, supplier_order_id, delivered_key, created_at, updated_at)
        VALUES (7, 7, 'goods', 'gamesdrop', 999, 42, 'Steam Wallet', 'Steam US 5 USD', 1,
                '23.090', 'KZT', '0.04618', 5, 'completed', 'shop-1', 'charge-1', 555001,
                'KEY-AAAA', '{NOW}', '{NOW}'),
               (7, 7, 'goods', 'gamesdrop', 1001, 43, 'Genshin Impact', '60 Genesis Crystals', 0,
                '0.99', 'USD', '0.99', 80, 'processing', 'shop-2', 'charge-2', 555002, NULL,
                '{NOW}', '{NOW}');
        INSERT INTO order_events (order_id, at, to_status) VALUES (1, '{NOW}', 'completed');
        INSERT INTO payments (charge_id, order_id, user_id, stars, currency, received_at)
        VALUES ('charge-1', 1, 7, 5, 'XTR', '{NOW}');
        INSERT INTO campaigns (admin_id, name, promo_text, status, created_at)
        VALUES (1, 'promo', 'hi', 'running', '{NOW}');
        INSERT INTO campaign_rewards (campaign_id, line_no, part, raw, user_id, stars, offer_id,
            transaction_id, status, supplier_order_id)
        VALUES (1, 1, 1, '@ann 50', 7, 50, 2001, 'shop-c1-1-1', 'completed', 777);
        DELETE FROM orders WHERE 0;
        """
    )
    conn.close()


async def test_a_0007_database_keeps_every_offer_and_order_with_text_ids(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _database_at_0007(path)
    db = await Database.open(path)
    try:
        assert await db.fetchval("PRAGMA user_version") >= 8
        catalogue = CatalogueRepository(db)
        offer = await catalogue.get("gamesdrop", "999")
        assert offer is not None
        assert (offer.offer_id, offer.product_id, str(offer.price)) == ("999", "42", "23.090")
        assert offer.returns_key is True and offer.image_url is None
        assert [p.product_id for p in await catalogue.search_products("genshin")] == ["43"]
        assert [o.offer_id for o in await catalogue.offers_of("gamesdrop", "42")] == ["999"]

        orders = OrdersRepository(db, "shop")
        first, second = await orders.get(1), await orders.get(2)
        assert first is not None and second is not None
        assert (first.offer_id, first.product_id, first.supplier_order_id) == (
            "999",
            "42",
            "555001",
        )
        assert first.delivered_keys == ["KEY-AAAA"]
        assert first.charge_id == "charge-1" and first.transaction_id == "shop-1"
        assert (second.status.value, second.supplier_order_id) == ("processing", "555002")
        assert await db.fetchval("SELECT count(*) FROM order_events WHERE order_id = 1") == 1
        assert await db.fetchval("SELECT count(*) FROM payments WHERE order_id = 1") == 1
        assert await db.fetchval("PRAGMA foreign_key_check") is None
        reward = await db.fetchone("SELECT * FROM campaign_rewards")
        assert (reward["supplier"], reward["offer_id"], reward["supplier_order_id"]) == (
            "gamesdrop", "2001", "777",
        )  # fmt: skip
        assert await db.fetchval("SELECT typeof(offer_id) FROM orders WHERE id = 1") == "text"
        # new orders keep numbering after the old ones
        assert await db.fetchval("SELECT seq FROM sqlite_sequence WHERE name = 'orders'") == 2
    finally:
        await db.close()
