"""What customers read, end to end: the receipt after delivery, product pictures on offer
cards and invoices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from sandboxes.gaming_goods import GIFT_CARD_PRODUCT_ID
from tests.e2e.journeys import open_offer, open_offer_ref
from tests.e2e.test_mass_sending import _campaign


@pytest.fixture
async def gaming_goods(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    """A shop selling GamingGoods offers, which come with product pictures."""
    shop = OfflineShop(tmp_path / "shop.sqlite3", vendors=("gaming_goods",))
    await shop.start()
    yield shop
    await shop.stop()


async def _buy_key(offline: OfflineShop, user_id: int, language: str):
    user = offline.telegram.user(user_id, "Buyer", language_code=language)
    mark = user.mark()
    await user.send(f"/start offer_{TEST_OFFER_ID}")
    await user.wait_for_text("⭐", since=mark)
    await user.press("Buy for" if language == "en" else "Купить за")
    invoice = await offline.telegram.wait_until(
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None)
    )
    paid, error = await user.pay()
    assert paid, error
    return user, invoice


@pytest.mark.parametrize(
    ("language", "heading", "paid", "date", "charge"),
    [
        ("en", "Receipt", "Paid:", "Date:", "Charge ID for /paysupport:"),
        ("ru", "Чек", "Оплачено:", "Дата:", "ID платежа для /paysupport:"),
    ],
)
async def test_delivery_ends_with_a_receipt_naming_the_charge_id(
    offline: OfflineShop, language: str, heading: str, paid: str, date: str, charge: str
) -> None:
    user, _ = await _buy_key(offline, 5101, language)
    delivery = await user.wait_for_text(heading, timeout=15)

    assert offline.shop is not None
    [order] = (await offline.shop.orders.orders.list_for_user(user.id, 0, 1))[0]
    text = delivery["text"]
    receipt = text[text.index(heading) :]
    assert order.product_name in receipt and order.offer_name in receipt
    assert f"{paid} {order.stars} ⭐" in receipt
    assert f"#{order.id}" in receipt
    assert f"{date} {order.paid_at[:16].replace('T', ' ')} UTC" in receipt
    assert order.charge_id and f"{charge} {order.charge_id}" in receipt
    assert f"<code>{order.charge_id}</code>" in delivery["_raw_text"]


async def test_offer_card_and_invoice_show_the_product_picture(
    gaming_goods: OfflineShop,
) -> None:
    assert gaming_goods.shop is not None
    offer = await gaming_goods.shop.orders.catalogue.repo.get("gaming_goods", GIFT_CARD_PRODUCT_ID)
    assert offer is not None and offer.image_url
    user = gaming_goods.telegram.user(5201, "Pic")
    mark = user.mark()

    await open_offer_ref(gaming_goods, user, "gg", GIFT_CARD_PRODUCT_ID)
    card = await user.wait_for_text("⭐", since=mark)
    assert card["_link_preview"]["url"] == offer.image_url
    assert card["_link_preview"].get("show_above_text") is True

    await user.press("Buy for")
    invoice = await gaming_goods.telegram.wait_until(
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None)
    )
    assert invoice["_photo_url"] == offer.image_url


async def test_offers_without_a_picture_get_a_plain_card_and_invoice(offline: OfflineShop) -> None:
    user = offline.telegram.user(5202, "NoPic")
    mark = user.mark()
    await open_offer(offline, user, TEST_OFFER_ID)
    card = await user.wait_for_text("⭐", since=mark)
    assert not card.get("_link_preview")
    await user.press("Buy for")
    invoice = await offline.telegram.wait_until(
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None)
    )
    assert invoice.get("_photo_url") is None
    paid, error = await user.pay()
    assert paid, error


# -- Stars gifting without exposing the wholesaler --

_GIFT = {
    "en": {"choose": "Choose how many Stars", "who": "Who gets", "confirm": "You are gifting",
           "pay": "Pay", "sent": "Telegram Stars were sent", "invite": "open this link",
           "opened": "opened the shop", "welcome": "gift is on its way"},
    "ru": {"choose": "Выберите, сколько Stars", "who": "Кому отправить", "confirm": "Вы дарите",
           "pay": "Оплатить", "sent": "Telegram Stars отправлены", "invite": "откроет эту ссылку",
           "opened": "открыл(а) магазин", "welcome": "подарок уже в пути"},
}  # fmt: skip


def _count_user_info_calls(offline: OfflineShop) -> list[str]:
    """Record every user-info lookup the shop asks its supplier for."""
    assert offline.shop is not None
    supplier = next(s for s in offline.shop.orders.suppliers if s.name == "gamesdrop")
    calls: list[str] = []
    original = supplier.get_telegram_user

    async def counted(username_or_id: str):
        calls.append(username_or_id)
        return await original(username_or_id)

    supplier.get_telegram_user = counted  # type: ignore[method-assign]
    return calls


async def _start_gift(offline: OfflineShop, giver, language: str, recipient: str) -> int:
    words = _GIFT[language]
    mark = giver.mark()
    await giver.send("/stars")
    await giver.wait_for_text(words["choose"], since=mark)
    await giver.press("100 Stars")
    await giver.wait_for_text(words["who"], since=mark)
    mark = giver.mark()
    await giver.send(recipient)
    return mark


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_recipient_who_started_this_shop_is_found_without_asking_the_supplier(
    offline: OfflineShop, language: str
) -> None:
    words = _GIFT[language]
    friend = offline.telegram.user(5301, "Mia", username="mia_friend")
    await friend.send("/start")
    await friend.wait_for_text("Mia")
    calls = _count_user_info_calls(offline)
    giver = offline.telegram.user(5302, "Giver", language_code=language)

    mark = await _start_gift(offline, giver, language, "@Mia_Friend")
    await giver.wait_for_text(words["confirm"], since=mark)
    await giver.press(words["pay"])
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in giver.messages[mark:]))
    paid, error = await giver.pay()
    assert paid, error
    await giver.wait_for_text(words["sent"], timeout=15)

    assert calls == []
    [order] = offline.sandbox.orders.values()
    assert order.game_user_id == str(friend.id)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_an_unknown_recipient_gets_a_link_to_this_shop_and_the_gift_finishes_when_opened(
    offline: OfflineShop, language: str
) -> None:
    words = _GIFT[language]
    giver = offline.telegram.user(5303, "Giver", language_code=language)
    mark = await _start_gift(offline, giver, language, "@shy_sam")

    invite = await giver.wait_for_text(words["invite"], since=mark)
    assert "gamesdrop" not in invite["text"].lower()
    assert not any("gamesdrop" in text.lower() for text in giver.texts())
    link = next(w for w in invite["text"].split() if "t.me/game_shop_bot?start=" in w)
    payload = link.split("?start=")[1]

    sam = offline.telegram.user(5304, "Sam", username="shy_sam", language_code="en")
    mark = giver.mark()
    await sam.send(f"/start {payload}")
    await sam.wait_for_text(_GIFT["en"]["welcome"])
    told = await giver.wait_for_text(words["opened"], since=mark)
    assert "Sam" in told["text"]
    await giver.wait_for_text(words["confirm"], since=mark)
    await giver.press(words["pay"])
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in giver.messages[mark:]))
    paid, error = await giver.pay()
    assert paid, error
    await giver.wait_for_text(words["sent"], timeout=15)
    [order] = offline.sandbox.orders.values()
    assert order.game_user_id == str(sam.id)

    # the link works once: opening it again is an ordinary start
    mark = giver.mark()
    again = sam.mark()
    await sam.send(f"/start {payload}")
    await sam.wait_for_text("Welcome", since=again)
    assert not any(words["opened"] in m.get("text", "") for m in giver.messages[mark:])


async def test_campaign_winners_who_started_this_shop_are_paid_without_a_supplier_lookup(
    offline: OfflineShop,
) -> None:
    mia = offline.telegram.user(5305, "Mia", username="mia_friend")
    await mia.send("/start")
    await mia.wait_for_text("Welcome")
    calls = _count_user_info_calls(offline)

    preview = await _campaign(offline, "@mia_friend")

    assert "Winners: 1 · Stars: 100" in preview["text"]
    assert calls == []
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.press("Confirm")
    await mia.wait_for_text("You received 100 Telegram Stars", timeout=20)
    [order] = offline.sandbox.orders.values()
    assert order.game_user_id == str(mia.id)
