"""Selling on the Gaming Goods marketplace from the admin chat, through the real bot:
the fake Bot API in front, the Gaming Goods sandbox (Seller API) behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gaming_goods import (
    DEFAULT_SELLER_KEY,
    FOREIGN_LISTING_ID,
    GIFT_CARD_PRODUCT_ID,
    GamingGoodsSandbox,
)
from sandboxes.gaming_goods.seller import SellerListing
from tests.services.test_marketplace import FakeStock, StockRow


async def _shop(tmp_path: Path, **overrides) -> OfflineShop:
    # an admin pressing through screens faster than any person: no throttling here
    settings = {"throttle_rate": 100.0, "throttle_burst": 100}
    shop = OfflineShop(
        tmp_path / "shop.sqlite3",
        vendors=("gaming_goods",),
        settings_overrides=settings | ({"gaming_goods": overrides} if overrides else {}),
    )
    await shop.start()
    return shop


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    shop = await _shop(tmp_path)
    yield shop
    await shop.stop()


def _desk(shop: OfflineShop):
    sandbox: GamingGoodsSandbox = shop.sandboxes["gaming_goods"]  # type: ignore[assignment]
    return sandbox.seller


async def _audit(shop: OfflineShop, action: str) -> list[str]:
    assert shop.shop is not None
    rows = await shop.shop.db.fetchall(
        "SELECT detail FROM audit_log WHERE action = ? ORDER BY id", (action,)
    )
    return [row["detail"] for row in rows]


async def _press(shop: OfflineShop, admin, text: str) -> None:
    """Press a button and wait until the bot has handled it (screens are edited in place,
    so waiting for a text could find an older screen's)."""
    since = shop.telegram.last_update_id
    await admin.press(text)
    await shop.wait_handled(since)


async def _press_data(shop: OfflineShop, admin, data: str) -> None:
    since = shop.telegram.last_update_id
    await admin.press_data(data)
    await shop.wait_handled(since)


async def _send(shop: OfflineShop, admin, text: str) -> None:
    since = shop.telegram.last_update_id
    await admin.send(text)
    await shop.wait_handled(since)


async def _open(shop: OfflineShop):
    """The admin opens /admin, then Marketplace (the dashboard); returns the admin and
    the mark before /admin (screens are edited in place)."""
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    start = admin.mark()
    await admin.send("/admin")
    await admin.wait_for_text("Admin", since=start)
    await _press(shop, admin, "Marketplace")
    await admin.wait_for_text("your seller account", since=start)
    return admin, start


async def test_admin_publishes_an_auto_listing_with_codes_from_a_file_then_adds_more(
    market: OfflineShop,
) -> None:
    admin, start = await _open(market)
    await _press(market, admin, "New listing")
    await admin.wait_for_text("Send its title", since=start)
    await _send(market, admin, "Stardew Valley Steam Key")
    await admin.wait_for_text("price in EUR", since=start)
    await _send(market, admin, "12,50")
    await admin.wait_for_text("How are codes delivered", since=start)
    await _press(market, admin, "Automatically")
    await admin.wait_for_text("Send the codes", since=start)
    await admin.send_document("codes.txt", b"SDV-0001\nSDV-0002\n\nSDV-0001\n")

    card = await admin.wait_for_text("The listing is created", since=start)
    assert "Moderation: ⏳ pending" in card["text"]
    assert "Repeated codes sent once: 1 (lines 4)" in card["text"]
    assert "Codes for sale: 2" in card["text"] and "12.50 EUR" in card["text"]
    [listing] = [
        x for x in _desk(market).listings.values() if x.title == "Stardew Valley Steam Key"
    ]
    assert listing.price == Decimal("12.50") and str(listing.price) == "12.50"
    assert listing.codes == ["SDV-0001", "SDV-0002"] and listing.delivery_type == "AUTO"

    mark = admin.mark()
    await _press(market, admin, "Upload codes")
    await admin.wait_for_text("Send the codes", since=start)
    await _send(market, admin, "SDV-0003\nSDV-0004")
    done = await admin.wait_for_text("Codes uploaded: 2", since=mark)
    assert "Codes for sale now: 4" in done["text"] and "✅ approved" in done["text"]
    assert listing.codes[-2:] == ["SDV-0003", "SDV-0004"]
    assert await _audit(market, "market_codes") == [f"{listing.id} 2"]


async def test_admin_adds_offers_and_updates_their_price_in_cents(market: OfflineShop) -> None:
    admin, start = await _open(market)
    await _press(market, admin, "Add offer")
    await admin.wait_for_text("marketplace product id", since=start)
    await _send(market, admin, f"gg:{GIFT_CARD_PRODUCT_ID}")
    await admin.wait_for_text("price per code", since=start)
    await _send(market, admin, "17.99")
    await admin.wait_for_text("Send the codes", since=start)
    await _send(market, admin, "GC-1\nGC-2\nGC-3")
    await admin.wait_for_text("at 17.99 € (1799 cents): 3", since=start)
    _desk(market).sell(GIFT_CARD_PRODUCT_ID, 1)

    await _press(market, admin, "Offers")
    page = await admin.wait_for_text("Your offers", since=start)
    assert "17.99 € (1799 cents), for sale 2, sold 1" in page["text"]
    await _press(market, admin, "✏️ 17.99 €")
    await admin.wait_for_text("Send the new price in EUR", since=start)
    await _send(market, admin, "16.99")

    await admin.wait_for_text("moved from 17.99 € to 16.99 €: 2", since=start)
    prices = sorted((o.price_cents, o.sold) for o in _desk(market).offer_codes)
    assert prices == [(1699, False), (1699, False), (1799, True)]
    assert await _audit(market, "market_offer_price") == [
        f"{GIFT_CARD_PRODUCT_ID} 1799 -> 1699 (2)"
    ]


async def test_admin_edits_deactivates_and_re_enables_a_listing(market: OfflineShop) -> None:
    admin, start = await _open(market)
    await _press(market, admin, "New listing")
    await admin.wait_for_text("Send its title", since=start)
    await _send(market, admin, "Tutoring Hour")
    await admin.wait_for_text("price in EUR", since=start)
    await _send(market, admin, "30")
    await _press(market, admin, "Manually")
    await admin.wait_for_text("The listing is created", since=start)
    [listing] = [x for x in _desk(market).listings.values() if x.title == "Tutoring Hour"]
    assert listing.delivery_type == "MANUAL" and listing.codes == []

    await _press(market, admin, "Title")
    await admin.wait_for_text("Send the new title", since=start)
    await _send(market, admin, "Tutoring Hour (EN)")
    saved = await admin.wait_for_text("Saved. Moderation: ⏳ pending", since=start)
    assert "checked by the marketplace again" in saved["text"]
    assert listing.title == "Tutoring Hour (EN)"

    await _press(market, admin, "Take off sale")
    await admin.wait_for_text("The listing is off sale", since=start)
    assert listing.is_active is False
    await _press(market, admin, "Put back on sale")
    await admin.wait_for_text("on sale again", since=start)
    assert listing.is_active is True

    await _press(market, admin, "Back")
    page = await admin.wait_for_text("Your listings", since=start)
    assert "1 in all" in page["text"]
    admin.find_button("Tutoring Hour (EN)")


async def test_a_refused_listing_is_explained_and_changes_nothing(market: OfflineShop) -> None:
    before = len(_desk(market).listings)
    admin, start = await _open(market)
    await _press(market, admin, "New listing")
    await admin.wait_for_text("Send its title", since=start)
    await _send(market, admin, _desk(market).listings[FOREIGN_LISTING_ID].title)  # taken
    await admin.wait_for_text("price in EUR", since=start)
    await _send(market, admin, "9.99")
    await _press(market, admin, "Automatically")
    await admin.wait_for_text("Send the codes", since=start)
    await _send(market, admin, "HK-9999")

    refused = await admin.wait_for_text("The marketplace refused it", since=start)
    assert "a listing with this title already exists" in refused["text"]
    assert "Nothing was changed" in refused["text"]
    assert len(_desk(market).listings) == before
    assert await _audit(market, "market_create") == []


async def test_a_bad_seller_key_is_explained(tmp_path: Path) -> None:
    shop = await _shop(tmp_path, seller_api_key="sk_live_wrong")
    try:
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        start = admin.mark()
        await admin.send("/admin")
        await admin.wait_for_text("Admin", since=start)
        await _press(shop, admin, "Marketplace")
        await admin.wait_for_text("refused the seller key", since=start)
        assert "sk_live_wrong" not in "".join(admin.texts())
    finally:
        await shop.stop()


async def test_no_seller_key_no_marketplace_screens(tmp_path: Path) -> None:
    shop = await _shop(tmp_path, seller_api_key=None)
    try:
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        start = admin.mark()
        await admin.send("/admin")
        await admin.wait_for_text("Admin", since=start)
        with pytest.raises(LookupError):
            admin.find_button("Marketplace")
        since = shop.telegram.last_update_id
        await admin.press_data("adm:mk:")
        await shop.wait_handled(since)
        assert not [t for t in admin.texts() if "seller account" in t]
    finally:
        await shop.stop()


async def test_admin_moves_keys_from_own_stock_to_a_listing(market: OfflineShop) -> None:
    assert market.shop is not None
    stock = FakeStock(StockRow(3, "Hades", "Steam Key", ["HD-1", "HD-2", "HD-3"]))
    market.shop.dispatcher["own_stock"] = stock
    admin, start = await _open(market)
    await _press(market, admin, "New listing")
    await _send(market, admin, "Hades Steam Key")
    await _send(market, admin, "14.99")
    await _press(market, admin, "Automatically")
    await _send(market, admin, "HD-0")
    await admin.wait_for_text("The listing is created", since=start)

    await _press(market, admin, "Upload codes")
    await _press(market, admin, "From own stock")
    await _press(market, admin, "Hades — Steam Key (3)")
    await admin.wait_for_text("They leave own stock now", since=start)
    await _send(market, admin, "5")
    await admin.wait_for_text("only 3 free keys", since=start)
    await _send(market, admin, "2")

    moved = await admin.wait_for_text("Keys moved from own stock: 2", since=start)
    assert "Codes for sale now: 3" in moved["text"]
    [listing] = [x for x in _desk(market).listings.values() if x.title == "Hades Steam Key"]
    assert listing.codes == ["HD-0", "HD-1", "HD-2"]
    assert stock.rows["3"].keys == ["HD-3"]  # never sold by the shop again


async def test_bad_input_is_explained_and_nothing_reaches_the_marketplace(
    market: OfflineShop,
) -> None:
    desk = _desk(market)
    admin, _ = await _open(market)
    await _press(market, admin, "New listing")
    await _send(market, admin, "Celeste Steam Key")
    mark = admin.mark()
    await _send(market, admin, "1.999")
    await admin.wait_for_text("decimal places", since=mark)
    await _send(market, admin, "12.00")
    await _press(market, admin, "Automatically")
    mark = admin.mark()
    since = market.telegram.last_update_id
    await admin.send_document("codes.pdf", b"%PDF-1.4")
    await market.wait_handled(since)
    await admin.wait_for_text("I can read a .txt or .csv file", since=mark)
    await _send(market, admin, "   \n\n")
    await admin.wait_for_text("There are no codes in that", since=mark)
    assert desk.writes == 0

    await _press(market, admin, "Back")
    await _press(market, admin, "Add offer")
    await _send(market, admin, GIFT_CARD_PRODUCT_ID)
    mark = admin.mark()
    await _send(market, admin, "0")
    await admin.wait_for_text("outside the allowed range", since=mark)
    assert desk.writes == 0 and desk.offer_codes == []


async def test_a_lost_answer_is_not_sent_again_and_says_to_check(market: OfflineShop) -> None:
    sandbox: GamingGoodsSandbox = market.sandboxes["gaming_goods"]  # type: ignore[assignment]
    admin, start = await _open(market)
    await _press(market, admin, "Add offer")
    await _send(market, admin, GIFT_CARD_PRODUCT_ID)
    await _send(market, admin, "5")
    sandbox.faults.unavailable = 1
    await _send(market, admin, "LOST-1")
    await admin.wait_for_text("may or may not have been made", since=start)
    assert _desk(market).offer_codes == [] and sandbox.faults.unavailable == 0
    assert await _audit(market, "market_offers") == []


async def test_another_sellers_listing_is_not_shown(market: OfflineShop) -> None:
    admin, start = await _open(market)
    await _press_data(market, admin, f"adm:mkd:{FOREIGN_LISTING_ID}")
    await admin.wait_for_text("another seller's", since=start)
    since = market.telegram.last_update_id
    await admin.press_data(f"adm:mkoff:{FOREIGN_LISTING_ID}")
    await market.wait_handled(since)
    assert _desk(market).listings[FOREIGN_LISTING_ID].is_active is True


async def test_a_deactivation_left_without_an_answer_is_said_to_be_unknown(
    market: OfflineShop,
) -> None:
    desk = _desk(market)
    desk.listings["own-1"] = SellerListing(
        id="own-1", owner=DEFAULT_SELLER_KEY, title="Owned", slug="owned",
        price=Decimal("2.00"), currency="EUR", delivery_type="MANUAL",
    )  # fmt: skip
    sandbox: GamingGoodsSandbox = market.sandboxes["gaming_goods"]  # type: ignore[assignment]
    sandbox.faults.retry_after = 0
    admin, start = await _open(market)
    sandbox.faults.unavailable = 3  # every try of the deactivation answers 503
    await _press_data(market, admin, "adm:mkoff:own-1")
    await admin.wait_for_text("may or may not have been made", since=start)
    assert await _audit(market, "market_deactivate") == []


async def test_cancel_leaves_a_marketplace_prompt_without_sending_anything(
    market: OfflineShop,
) -> None:
    admin, _ = await _open(market)
    await _press(market, admin, "New listing")
    mark = admin.mark()
    await _send(market, admin, "/cancel")
    await admin.wait_for_text("Cancelled", since=mark)
    await _send(market, admin, "Not A Title")  # a search now, not a listing's title
    assert _desk(market).writes == 0
    assert not [x for x in _desk(market).listings.values() if x.title == "Not A Title"]
