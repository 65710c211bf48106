from decimal import Decimal

import pytest

from services.pricing import PriceBook, PricingService, UnknownCurrency
from storage.db import Database
from storage.settings import ShopSettingsRepository

BOOK = PriceBook(
    usd_rates={"USD": Decimal(1), "KZT": Decimal("0.0020")},
    markup=Decimal("0.15"),
    star_usd=Decimal("0.013"),
)


def test_retail_stars_round_up() -> None:
    # 0.99 USD x 1.15 / 0.013 = 87.58 -> 88
    assert BOOK.stars(Decimal("0.99"), "USD") == 88
    # 23.09 KZT = 0.04618 USD x 1.15 / 0.013 = 4.09 -> 5
    assert BOOK.stars(Decimal("23.09"), "KZT") == 5


def test_at_least_one_star_and_stars_packs_never_below_what_they_deliver() -> None:
    assert BOOK.stars(Decimal("0.0001"), "USD") == 1
    assert BOOK.stars(Decimal("0.77"), "USD", delivers_stars=100) == 100
    assert BOOK.stars(Decimal("7.71"), "USD", delivers_stars=50) == 683


def test_an_unknown_currency_cannot_be_priced() -> None:
    with pytest.raises(UnknownCurrency):
        BOOK.stars(Decimal(1), "XYZ")


async def test_admin_changes_are_saved_and_survive_a_restart(db: Database) -> None:
    service = PricingService(BOOK, ShopSettingsRepository(db))
    await service.set_markup(Decimal("0.30"), admin_id=1)
    with pytest.raises(ValueError):
        await service.set_star_usd(Decimal(0), admin_id=1)
    reloaded = await PricingService(BOOK, ShopSettingsRepository(db)).load()
    assert reloaded.markup == Decimal("0.30") and reloaded.star_usd == Decimal("0.013")
