"""Each vendor runs the whole shop by itself, and all three together: the real bot
long-polls the fake Bot API and buys from each vendor's sandbox over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline import OfflineShop
from sandboxes.gaming_goods import GIFT_CARD_PRODUCT_ID, TWO_KEY_PRODUCT_ID
from storage.orders import OrderStatus
from tests.e2e.journeys import buy_offer_ref, only_order

CODEGAMES_KEY_LATER = "2062"  # completes without a key: it comes from /offers/keys
CODEGAMES_TOP_UP = "2071"  # needs the player ID (required: ["gameUserId"])


async def _shop(tmp_path: Path, vendors: tuple[str, ...], **options) -> OfflineShop:
    shop = OfflineShop(tmp_path / "shop.sqlite3", vendors=vendors, **options)
    await shop.start()
    return shop


@pytest.fixture
async def codegames(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    shop = await _shop(
        tmp_path, ("codegames",), sandbox_options={"codegames": {"process_seconds": 0.5}}
    )
    yield shop
    await shop.stop()


@pytest.fixture
async def gaming_goods(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    shop = await _shop(
        tmp_path, ("gaming_goods",), sandbox_options={"gaming_goods": {"fulfil_seconds": 0.3}}
    )
    yield shop
    await shop.stop()


def _keys_calls(shop: OfflineShop) -> int:
    return shop.sandboxes["codegames"].calls.get("/api/v1/offers/keys", 0)  # type: ignore[attr-defined]


async def test_codegames_alone_sells_a_key_fetched_through_offers_keys(
    codegames: OfflineShop,
) -> None:
    user = await buy_offer_ref(codegames, 7101, "c", CODEGAMES_KEY_LATER)

    delivery = await user.wait_for_text("Your key", timeout=15)

    order = await only_order(codegames, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "codegames"
    assert order.delivered_keys and all(k in delivery["text"] for k in order.delivered_keys)
    assert _keys_calls(codegames) >= 1  # the key came from /api/v1/offers/keys


async def test_codegames_alone_sells_a_top_up_without_asking_for_keys(
    codegames: OfflineShop,
) -> None:
    user = await buy_offer_ref(codegames, 7102, "c", CODEGAMES_TOP_UP, player="12345678")

    await user.wait_for_text("is complete", timeout=15)

    order = await only_order(codegames, user.id)
    assert order.status is OrderStatus.COMPLETED and order.game_user_id == "12345678"
    assert _keys_calls(codegames) == 0


async def test_gaming_goods_alone_delivers_both_codes_of_one_order(
    gaming_goods: OfflineShop,
) -> None:
    user = await buy_offer_ref(gaming_goods, 7201, "gg", TWO_KEY_PRODUCT_ID)

    delivery = await user.wait_for_text("Your key", timeout=15)

    order = await only_order(gaming_goods, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "gaming_goods"
    assert len(order.delivered_keys) == 2
    assert all(f"<code>{k}</code>" in delivery["_raw_text"] for k in order.delivered_keys)


async def test_gaming_goods_alone_sells_a_gift_card(gaming_goods: OfflineShop) -> None:
    user = await buy_offer_ref(gaming_goods, 7202, "gg", GIFT_CARD_PRODUCT_ID)

    await user.wait_for_text("Your key", timeout=15)

    order = await only_order(gaming_goods, user.id)
    assert order.status is OrderStatus.COMPLETED and len(order.delivered_keys) == 1


async def test_all_three_vendors_sell_side_by_side(tmp_path: Path) -> None:
    shop = await _shop(
        tmp_path,
        ("gamesdrop", "codegames", "gaming_goods"),
        sandbox_options={
            "gamesdrop": {"topup_seconds": 0.4},
            "codegames": {"process_seconds": 0.5},
            "gaming_goods": {"fulfil_seconds": 0.3},
        },
    )
    try:
        bought = [
            (await buy_offer_ref(shop, 7301, "g", "999"), "gamesdrop"),
            # 2063: a good only CodeGames sells (its 2062 is cheaper at GamesDrop: routed there)
            (await buy_offer_ref(shop, 7302, "c", "2063"), "codegames"),
            (await buy_offer_ref(shop, 7303, "gg", GIFT_CARD_PRODUCT_ID), "gaming_goods"),
        ]
        for user, vendor in bought:
            await user.wait_for_text("Your key", timeout=15)
            order = await only_order(shop, user.id)
            assert order.supplier == vendor and order.status is OrderStatus.COMPLETED
    finally:
        await shop.stop()


async def test_admins_list_more_offers_of_a_vendor_without_a_catalogue_feed(
    tmp_path: Path,
) -> None:
    from bot.offline import ADMIN_ID

    shop = await _shop(
        tmp_path,
        ("gamesdrop", "codegames"),
        settings_overrides={"codegames": {"offer_ids": ["2061"]}},
    )
    try:
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        assert shop.shop is not None
        repo = shop.shop.catalogue.repo
        assert await repo.get("codegames", "2062") is None

        await admin.send("/offers")
        await admin.wait_for_text("without a catalogue feed (codegames)")
        await admin.send("/offers codegames 2062 2071 bad/id")
        await admin.wait_for_text("not an offer id")
        assert await repo.get("codegames", "2062") is None  # bad input changes nothing

        await admin.send("/offers gamesdrop 999")
        await admin.wait_for_text("has a catalogue feed")

        mark = admin.mark()
        await admin.send("/offers codegames 2062 2071 999999")
        done = await admin.wait_for_text("listed", since=mark, timeout=15)

        assert "2 new" in done["text"] or "3 new" in done["text"], done["text"]
        offer = await repo.get("codegames", "2062")
        assert offer is not None and offer.active
        assert (await repo.get("codegames", "2071")).active
        user = await buy_offer_ref(shop, 7401, "c", "2062")
        await user.wait_for_text("Your key", timeout=15)
    finally:
        await shop.stop()
