"""Search that understands people, through the real bot: typos, other scripts, the owner's
aliases, partial words and word order; counted, paged results; suggestions instead of a
dead end; inline mode on the same search, with thumbnails."""

from __future__ import annotations

from typing import Any

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.telegram import FakeUser

FOUND = {"en": "Found", "ru": "Найден"}
NOTHING = {"en": "Nothing found", "ru": "ничего не нашлось"}


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


async def search(user: FakeUser, query: str, needle: str) -> dict[str, Any]:
    mark = user.mark()
    await user.send(query)
    return await user.wait_for_text(needle, since=mark)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_typos_scripts_aliases_partial_words_and_word_order_find_the_product(
    offline: OfflineShop, language: str
) -> None:
    mia = offline.telegram.user(1501, "Mia", language_code=language)
    for query, product in [
        ("genshn", "Genshin Impact"),
        ("stim", "Steam"),
        ("геншин", "Genshin Impact"),
        ("пабг", "PUBG Mobile"),
        ("стим", "Steam"),
        ("hsr", "Honkai: Star Rail"),
        ("cod", "Call of Duty: Mobile"),
        ("mlbb", "Mobile Legends"),
        ("impact gensh", "Genshin Impact"),
    ]:
        found = await search(mia, query, FOUND[language])
        assert buttons(found)[0].startswith(product), (query, found["text"], buttons(found))


@pytest.mark.parametrize(
    ("language", "first_page", "second_page"),
    [("en", "Found 2 products", "Next ›"), ("ru", "Найдено 2 товара", "Далее ›")],
)
async def test_results_say_how_many_and_page_like_the_catalogue(
    offline: OfflineShop, language: str, first_page: str, second_page: str
) -> None:
    assert offline.shop is not None
    ned = offline.telegram.user(1502, "Ned", language_code=language)
    found = await search(ned, "steam", FOUND[language])
    assert first_page in found["text"], found["text"]  # Steam US and Steam Wallet

    many = await search(ned, "islnd", FOUND[language])  # a typo of ten products' word
    total = int(
        await offline.shop.db.fetchval(
            "SELECT count(*) FROM products WHERE lower(name) LIKE '%island%'"
            " OR lower(offer_names) LIKE '%island%'"
        )
    )
    assert f" {total} " in many["text"], many["text"]
    assert total > 8
    first = {b for b in buttons(many) if "Island" in b}
    assert f"1/{-(-total // 8)}" in buttons(many)
    await ned.press(second_page)
    turned = await offline.telegram.wait_until(
        lambda: f"2/{-(-total // 8)}" in buttons(ned.last) and ned.last
    )
    second = {b for b in buttons(turned) if "Island" in b}
    assert len(first) == 8 and first.isdisjoint(second) and len(first | second) == total


@pytest.mark.parametrize(
    ("language", "category", "opened"),
    [("en", "🎮 Game top-ups", "choose a game"), ("ru", "🎮 Пополнение игр", "выберите игру")],
)
async def test_nothing_found_suggests_the_closest_products_and_the_categories(
    offline: OfflineShop, language: str, category: str, opened: str
) -> None:
    ola = offline.telegram.user(1503, "Ola", language_code=language)
    answer = await search(ola, "genshin qqqzzz", NOTHING[language])

    assert "Genshin Impact" in buttons(answer), buttons(answer)
    assert category in buttons(answer)
    mark = ola.mark()
    await ola.press(category)
    await ola.wait_for_text(opened, since=mark - 1)


@pytest.mark.parametrize(
    ("language", "added", "usage"),
    [("en", "Alias added", "Usage"), ("ru", "Синоним добавлен", "Формат")],
)
async def test_owner_adds_an_alias_lists_it_and_customers_find_by_it(
    offline: OfflineShop, language: str, added: str, usage: str
) -> None:
    owner = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)
    pia = offline.telegram.user(1504, "Pia", language_code=language)
    await search(pia, "музыка", NOTHING[language])  # a dead end before the alias

    mark = owner.mark()
    await owner.send("/alias музыка")
    await owner.wait_for_text(usage, since=mark)
    await owner.send("/alias Музыка = spotify")
    await owner.wait_for_text(added, since=mark)
    await owner.send("/aliases")
    listing = await owner.wait_for_text("музыка → spotify", since=mark)
    assert "hsr → honkai star rail" in listing["text"]

    after = await search(pia, "музыка", FOUND[language])
    assert buttons(after)[0] == "Spotify Premium"


async def test_a_customer_cannot_add_an_alias(offline: OfflineShop) -> None:
    eve = offline.telegram.user(1505, "Eve")
    await eve.send("/alias steam = roblox")
    found = await search(eve, "steam", "Found")
    assert "Roblox" not in buttons(found)


@pytest.mark.parametrize(("language", "buy"), [("en", "Buy in the shop"), ("ru", "Купить")])
async def test_inline_mode_uses_the_same_search_with_thumbnails(
    offline: OfflineShop, language: str, buy: str
) -> None:
    assert offline.shop is not None
    picture = "https://cdn.example.com/genshin.png"
    await offline.shop.db.execute(
        "UPDATE offers SET image_url = ? WHERE product_name = 'Genshin Impact'", (picture,)
    )
    kim = offline.telegram.user(1506, "Kim", language_code=language)

    results = await kim.inline("геншн")

    assert results and all("Genshin Impact" in r["title"] for r in results), results
    assert all(r.get("thumbnail_url") == picture for r in results)
    assert buy in results[0]["reply_markup"]["inline_keyboard"][0][0]["text"]
    pubg = await kim.inline("пабг")
    assert pubg and "PUBG Mobile" in pubg[0]["title"] and "thumbnail_url" not in pubg[0]
