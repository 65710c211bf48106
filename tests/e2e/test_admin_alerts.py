"""Alerts reach each admin in the admin's own language and name customers by @username,
through the real bot and the fake Bot API."""

from __future__ import annotations

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from tests.e2e.journeys import reach_invoice


async def _admin_speaking(offline: OfflineShop, language: str):
    """The admin, having written to the shop once, so it knows their language."""
    admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)
    mark = admin.mark()
    await admin.send("/start")
    await offline.telegram.wait_until(lambda: len(admin.texts()) > mark)
    return admin


@pytest.mark.parametrize(
    ("language", "failed", "refunded"),
    [
        ("en", "for @kay_buyer failed: OUT_OF_STOCK", "refunded to @kay_buyer"),
        (
            "ru",
            "покупателя @kay_buyer не выполнен: OUT_OF_STOCK",
            "возвращены покупателю @kay_buyer",
        ),
    ],
)
async def test_order_alerts_are_in_the_admins_language_and_name_the_buyer(
    offline: OfflineShop, language: str, failed: str, refunded: str
) -> None:
    admin = await _admin_speaking(offline, language)
    buyer = offline.telegram.user(3011, "Kay", username="kay_buyer")
    offline.sandbox.faults.out_of_stock.add(TEST_OFFER_ID)
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await admin.wait_for_text(failed)
    await admin.wait_for_text(refunded)
    assert not any("user 3011" in text for text in admin.texts())


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "refunded to id 3012"), ("ru", "возвращены покупателю id 3012")],
)
async def test_a_buyer_without_a_username_is_named_by_id(
    offline: OfflineShop, language: str, expected: str
) -> None:
    admin = await _admin_speaking(offline, language)
    buyer = offline.telegram.user(3012, "Lou")
    offline.sandbox.faults.out_of_stock.add(TEST_OFFER_ID)
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await admin.wait_for_text(expected)
