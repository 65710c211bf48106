"""What admins read: CSV exports that Excel opens safely, and markups written as people
write them, through the real bot and the fake Bot API."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from services.exports import csv_bytes
from tests.e2e.journeys import reach_invoice
from tests.e2e.test_mass_sending import _campaign

BOM = b"\xef\xbb\xbf"


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() -> None:
    content = csv_bytes(
        ("a", "b"),
        [("=1+2", "+7"), ("-3", "@SUM(A1)"), ("\tx", "\rx"), ("Иван", "-")],
    )
    assert content.startswith(BOM)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [
        ["a", "b"],
        ["'=1+2", "'+7"],
        ["'-3", "'@SUM(A1)"],
        ["'\tx", "'\rx"],
        ["Иван", "'-"],
    ]
    # numbers are the shop's own figures, not text a spreadsheet could misread
    assert csv_bytes(("n",), [(-5,), (Decimal("-0.25"),)]).decode("utf-8-sig").split() == [
        "n",
        "-5",
        "-0.25",
    ]


async def test_orders_export_has_a_bom_usernames_and_margins(offline: OfflineShop) -> None:
    buyer = offline.telegram.user(3104, "Григорий", username="grisha")
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await buyer.wait_for_text("Your key")
    admin = offline.telegram.user(ADMIN_ID, "Owner")

    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Export CSV")
    await offline.telegram.wait_until(lambda: offline.telegram.documents)
    [content] = offline.telegram.documents.values()

    assert content.startswith(BOM)  # Excel reads it as UTF-8
    [row] = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert row["username"] == "grisha" and row["first_name"] == "Григорий"
    revenue = (int(row["stars"]) * Decimal("0.013")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    cost = Decimal(row["cost_usd"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert Decimal(row["revenue_usd"]) == revenue
    assert Decimal(row["margin_usd"]) == revenue - cost


async def test_campaign_report_has_a_bom_and_no_formulas(offline: OfflineShop) -> None:
    await _campaign(offline, '1000003\n=HYPERLINK("http://x")\n@alice_gamer')
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.press("Confirm")
    await admin.wait_for_text("Autumn contest done", timeout=20)
    report = await offline.telegram.wait_until(
        lambda: next((b for b in offline.telegram.documents.values() if b"line," in b[:8]), None)
    )

    assert report.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(report.decode("utf-8-sig"))))
    assert '\'=HYPERLINK("http://x")' in {r["recipient"] for r in rows}


@pytest.mark.parametrize(
    ("language", "preview", "applied"),
    [
        ("en", "Markup: +15 % → +20 %", "Markup: +20 %"),
        ("ru", "Наценка: +15 % → +20 %", "Наценка: +20 %"),
    ],
)
async def test_markup_is_shown_as_a_percentage_people_write(
    offline: OfflineShop, language: str, preview: str, applied: str
) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)

    mark = admin.mark()
    await admin.send("/markup 0.2")
    shown = await admin.wait_for_text(preview, since=mark)
    assert "E+" not in shown["text"]
    await admin.press("Apply" if language == "en" else "Применить")
    done = await admin.wait_for_text(applied, since=mark)
    assert "E+" not in done["text"]

    mark = admin.mark()
    await admin.send("/markup 0.125")
    await admin.wait_for_text("+20 % → +12.5 %", since=mark)
