"""The search service over a real SQLite catalogue: spelling helpers, freshness after a
sync, alias input checks."""

from __future__ import annotations

import pytest

from services.search import SearchService, skeleton, transliterate
from storage.catalogue import CatalogueRepository, OfferRow, Product
from storage.db import Database, utcnow_iso


def _row(
    offer_id: str, product_id: str, name: str, synced_at: str, category: str = "Gift Cards"
) -> OfferRow:
    return (
        "gamesdrop", offer_id, product_id, name, "10 USD", category, "10", "USD",
        1, 0, 0, 1, None, synced_at, 1, None, None, None,
    )  # fmt: skip


async def _sync(repo: CatalogueRepository, *rows: tuple[str, ...]) -> None:
    synced_at = utcnow_iso()
    await repo.upsert_offers([_row(*row[:3], synced_at, *row[3:]) for row in rows])
    await repo.finish_sync("gamesdrop", synced_at)


def test_spelling_helpers_read_cyrillic_and_vowel_slips_alike() -> None:
    assert transliterate("Геншин Импакт") == "genshin impakt"
    assert skeleton("stim") == skeleton("steam") == "stm"
    assert skeleton(transliterate("пабг")) == skeleton("pubg")


async def test_products_of_a_later_sync_are_found_and_gone_ones_are_not(db: Database) -> None:
    repo = CatalogueRepository(db)
    search = SearchService(repo)
    await _sync(repo, ("1", "10", "Steam Wallet"))
    assert [p.name for p in (await search.search("stim")).items] == ["Steam Wallet"]

    await _sync(repo, ("2", "20", "Roblox"))

    assert [p.name for p in (await search.search("roblx")).items] == ["Roblox"]
    assert (await search.search("steam")).total == 0


async def test_a_found_product_is_shown_as_the_catalogue_stores_it(db: Database) -> None:
    repo = CatalogueRepository(db)
    search = SearchService(repo)
    await _sync(
        repo,
        ("1", "10", "Steam Wallet"),
        ("2", "20", "Геншин Импакт 💎", "Top Up"),
        ("3", "20", "Геншин Импакт 💎", "Top Up"),
        ("4", "30", "Pokémon Cards"),
    )

    assert (await search.search("геншин")).items == [
        Product("gamesdrop", "20", "Геншин Импакт 💎", "Top Up", 2)
    ]
    assert (await search.search("pokemon")).items == [
        Product("gamesdrop", "30", "Pokémon Cards", "Gift Cards", 1)
    ]
    assert (await search.search("stim")).items == [
        Product("gamesdrop", "10", "Steam Wallet", "Gift Cards", 1)
    ]
    assert (await search.search("qqqzzz walet")).suggestions == [
        Product("gamesdrop", "10", "Steam Wallet", "Gift Cards", 1)
    ]


@pytest.mark.parametrize(("alias", "target"), [("", "steam"), ("stm", "  "), ("!!", "steam")])
async def test_an_alias_without_words_is_refused_and_not_stored(
    db: Database, alias: str, target: str
) -> None:
    search = SearchService(CatalogueRepository(db))
    before = await search.aliases()
    with pytest.raises(ValueError):
        await search.add_alias(alias, target, admin_id=1)
    assert await search.aliases() == before
