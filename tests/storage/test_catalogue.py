"""Catalogue queries that only the admin screens make, on both engines."""

from __future__ import annotations

from storage.catalogue import CatalogueRepository
from storage.db import Database, utcnow_iso


async def test_the_price_preview_samples_the_cheapest_middle_and_dearest_of_each_currency(
    db: Database,
) -> None:
    repo = CatalogueRepository(db)
    synced_at = utcnow_iso()
    prices = {"1": ("2.50", "USD"), "2": ("10.00", "USD"), "3": ("99.90", "USD"),
              "4": ("7.00", "USD"), "5": ("45.5", "EUR")}  # fmt: skip
    await repo.upsert_offers([
        ("gamesdrop", offer_id, "p", "Steam", f"{price} {currency}", "Gift Cards", price,
         currency, 1, 0, 0, 1, None, synced_at, 1, None, None, None)
        for offer_id, (price, currency) in prices.items()
    ])  # fmt: skip

    samples = await repo.price_samples()

    assert sorted((str(o.price), o.currency) for o in samples) == [
        ("2.50", "USD"), ("45.5", "EUR"), ("7.00", "USD"), ("99.90", "USD")
    ]  # fmt: skip


async def test_the_search_index_reads_every_listed_product_in_rowid_order_chunk_by_chunk(
    db: Database,
) -> None:
    repo = CatalogueRepository(db)
    synced_at = utcnow_iso()
    await repo.upsert_offers([
        ("gamesdrop", f"o{i}", f"p{i}", f"Game {i}", "10 Gems", "Top Up", "1.00", "USD",
         1, 0, 0, 1, None, synced_at, 1, None, None, None)
        for i in range(5)
    ])  # fmt: skip
    await repo.finish_sync("gamesdrop", synced_at)

    chunks = [rows async for rows in repo.search_index_rows(chunk=2)]

    assert [len(rows) for rows in chunks] == [2, 2, 1]
    rows = [tuple(row) for chunk in chunks for row in chunk]
    assert [row[0] for row in rows] == sorted({row[0] for row in rows})
    assert sorted(row[1:] for row in rows) == [
        ("gamesdrop", f"p{i}", f"Game {i}", "Top Up", 1, "10 Gems") for i in range(5)
    ]
