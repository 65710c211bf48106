"""Catalogue queries that only the admin screens make, on both engines."""

from __future__ import annotations

from storage.catalogue import PAGE_TTL, CatalogueRepository
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


async def test_catalogue_pages_show_a_rebuild_at_once_and_best_sellers_within_the_page_ttl(
    db: Database,
) -> None:
    now = [1000.0]
    repo = CatalogueRepository(db, clock=lambda: now[0])

    async def sync(*names: str) -> None:
        synced_at = utcnow_iso()
        await repo.upsert_offers([
            ("gamesdrop", f"o-{name}", name, name, f"{name} 10 USD", "Gift Cards", "10.00",
             "USD", 1, 0, 0, 1, None, synced_at, 1, None, None, None)
            for name in names
        ])  # fmt: skip
        await repo.finish_sync("gamesdrop", synced_at)

    async def page() -> list[str]:
        items, total = await repo.products("Gift Cards", 0, 8)
        assert total == len(items)
        return [p.name for p in items]

    await sync("Apex", "Roblox", "Steam")
    assert await page() == ["Apex", "Roblox", "Steam"]
    await sync("Apex", "Roblox", "Steam", "Xbox")
    assert await page() == ["Apex", "Roblox", "Steam", "Xbox"]  # a rebuild shows at once

    async with db.transaction() as conn:  # a sale, as OrdersRepository counts it
        await conn.execute("UPDATE products SET sold = sold + 1 WHERE product_id = 'Steam'")
    now[0] += PAGE_TTL
    assert await page() == ["Steam", "Apex", "Roblox", "Xbox"]


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
