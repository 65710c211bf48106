"""Alerts reach each admin in the admin's own language and name customers by @username;
the audit log pages and exports; through the real bot and the fake Bot API."""

from __future__ import annotations

import csv
import io
import sys
from decimal import ROUND_HALF_UP, Decimal

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


def _has_button(user, text: str) -> bool:
    try:
        user.find_button(text)
    except LookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("language", "button", "first_page", "second_page", "csv_button"),
    [
        ("en", "Audit log", "Audit log, page 1 of 2", "page 2 of 2", "CSV"),
        ("ru", "Журнал действий", "Журнал действий, стр. 1 из 2", "стр. 2 из 2", "CSV"),
    ],
)
async def test_the_audit_log_pages_and_exports_naming_admins_by_username(
    offline: OfflineShop,
    language: str,
    button: str,
    first_page: str,
    second_page: str,
    csv_button: str,
) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner", username="owner_nick", language_code=language)
    assert offline.shop is not None
    admin_service = offline.shop.dispatcher["admin_service"]
    for day in range(1, 12):  # eleven earlier actions, as the handlers record them
        await admin_service.audit(ADMIN_ID, "export", f"2026-01-{day:02d}..2026-01-{day:02d}")
    await admin.send("/export 2026-01-12 2026-01-12")  # and a twelfth, through the bot
    await offline.telegram.wait_until(lambda: len(offline.telegram.documents) == 1)

    await admin.send("/admin")
    await offline.telegram.wait_until(lambda: _has_button(admin, button))
    await admin.press(button)
    page = await admin.wait_for_text("@owner_nick")
    assert first_page in page["text"]
    assert "2026-01-12..2026-01-12" in page["text"]  # newest first
    assert "2026-01-01..2026-01-01" not in page["text"]
    await admin.press("›")
    later = await admin.wait_for_text("2026-01-01..2026-01-01")
    assert second_page in later["text"]

    await admin.press(csv_button)
    await offline.telegram.wait_until(lambda: len(offline.telegram.documents) == 2)
    content = list(offline.telegram.documents.values())[-1]
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 12
    assert {(r["admin_id"], r["admin_username"], r["action"]) for r in rows} == {
        (str(ADMIN_ID), "owner_nick", "export")
    }
    assert rows[0]["detail"].startswith("2026-01-01..2026-01-01")


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("language", "stats", "today", "week", "caption"),
    [
        ("en", "Stats", "Stats: today", "7 days", "revenue, orders and refunds per day"),
        ("ru", "Статистика", "Статистика: сегодня", "7 дней", "выручка, заказы и возвраты по дням"),
    ],
)
async def test_weekly_stats_come_with_a_chart_and_the_same_series_as_csv(
    offline: OfflineShop, language: str, stats: str, today: str, week: str, caption: str
) -> None:
    buyer = offline.telegram.user(3013, "Mia")
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await buyer.wait_for_text("Your key")
    offline.sandbox.faults.out_of_stock.add(TEST_OFFER_ID)
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await buyer.wait_for_text("were refunded")

    admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)
    await admin.send("/admin")
    await offline.telegram.wait_until(lambda: _has_button(admin, stats))
    await admin.press(stats)
    await admin.wait_for_text(today)
    await admin.press(week)
    chart = await admin.wait_for_text(caption)
    assert chart.get("photo")
    [png] = offline.telegram.photos.values()
    assert png.startswith(PNG)
    await offline.telegram.wait_until(lambda: offline.telegram.documents)
    [content] = offline.telegram.documents.values()
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 7
    today = rows[-1]
    assert (today["orders"], today["refunds"]) == ("2", "1")
    stars = int(today["stars_taken"]) - int(today["stars_refunded"])
    assert Decimal(today["revenue_usd"]) == (stars * Decimal("0.013")).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert all(r["orders"] == "0" for r in rows[:-1])
    assert "matplotlib" not in sys.modules  # drawn in a child process, not in the bot


@pytest.mark.parametrize(
    ("language", "stats", "today", "month", "failed"),
    [
        ("en", "Stats", "Stats: today", "30 days", "The chart could not be drawn"),
        (
            "ru",
            "Статистика",
            "Статистика: сегодня",
            "30 дней",
            "График сейчас не удалось построить",
        ),
    ],
)
async def test_a_chart_that_cannot_be_drawn_is_said_and_the_csv_still_comes(
    offline: OfflineShop,
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    stats: str,
    today: str,
    month: str,
    failed: str,
) -> None:
    from bot.handlers.admin import stats as handlers
    from services.charts import ChartError

    async def broken(*_: object, **__: object) -> bytes:
        raise ChartError("chart process exited with 1")

    monkeypatch.setattr(handlers, "render_stats_chart", broken)
    admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)
    await admin.send("/admin")
    await offline.telegram.wait_until(lambda: _has_button(admin, stats))
    await admin.press(stats)
    await admin.wait_for_text(today)
    await admin.press(month)
    await admin.wait_for_text(failed)
    await offline.telegram.wait_until(lambda: offline.telegram.documents)
    [content] = offline.telegram.documents.values()
    assert len(content.decode("utf-8-sig").splitlines()) == 1 + 30
    assert not offline.telegram.photos
