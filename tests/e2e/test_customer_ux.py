"""What customers read, end to end: the receipt after delivery, product pictures on offer
cards and invoices."""

from __future__ import annotations

import pytest

from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID


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
