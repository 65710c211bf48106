"""Counts next to nouns read as people say them (gettext plural forms), through the real
bot: ``301 предложение``, ``1 заказ``, ``1 order``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID, SandboxConfig
from tests.e2e.journeys import reach_invoice


def russian_form(n: int, one: str, few: str, many: str) -> str:
    """The Russian plural rule, written out independently of the catalogue."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


@pytest.mark.parametrize(("language", "offers"), [("en", 301), ("ru", 301), ("ru", 302)])
async def test_sync_report_counts_offers_in_the_admins_language(
    tmp_path: Path, language: str, offers: int
) -> None:
    offline = OfflineShop(tmp_path / "shop.sqlite3", sandbox_config=SandboxConfig(offers=offers))
    await offline.start()
    try:
        admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)
        await admin.send("/sync")
        done = await admin.wait_for_text("✅", timeout=15)
    finally:
        await offline.stop()

    n, word = re.search(r"(\d+) (\w+)", done["text"].split(":", 1)[1]).groups()  # type: ignore[union-attr]
    if language == "ru":
        assert word == russian_form(int(n), "предложение", "предложения", "предложений")
    else:
        assert word == ("offer" if n == "1" else "offers")
    assert int(n) == offers


@pytest.mark.parametrize(("language", "caption"), [("en", "1 order,"), ("ru", "1 заказ,")])
async def test_export_caption_counts_one_order(
    offline: OfflineShop, language: str, caption: str
) -> None:
    buyer = offline.telegram.user(3201, "Lena")
    await reach_invoice(offline, buyer, TEST_OFFER_ID)
    paid, error = await buyer.pay()
    assert paid, error
    await buyer.wait_for_text("Your key")
    admin = offline.telegram.user(ADMIN_ID, "Owner", language_code=language)

    await admin.send("/export 2000-01-01 2999-12-31")

    await admin.wait_for_text(caption)
