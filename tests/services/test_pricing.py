from decimal import Decimal

import pytest

from services.pricing import PriceBook, PriceChange, PricedOffer, PricingService, UnknownCurrency
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


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("star_usd", Decimal(13)),  # the typo for 0.013: almost everything at 1 Star
        ("star_usd", Decimal("1e-5000")),
        ("star_usd", Decimal("NaN")),
        ("star_usd", Decimal("Infinity")),
        ("markup", Decimal("-0.2")),  # selling under cost
        ("markup", Decimal(6)),
        ("markup", Decimal("sNaN")),
    ],
)
async def test_out_of_range_price_settings_are_refused_and_nothing_is_saved(
    db: Database, setting: str, value: Decimal
) -> None:
    settings = ShopSettingsRepository(db)
    service = PricingService(BOOK, settings)
    setter = service.set_markup if setting == "markup" else service.set_star_usd
    with pytest.raises(ValueError):
        await setter(value, admin_id=1)
    assert service.book == BOOK
    assert await settings.all() == {}


async def test_a_preview_shows_cheapest_middle_and_dearest_offer_and_saves_nothing(
    db: Database,
) -> None:
    settings = ShopSettingsRepository(db)
    service = PricingService(BOOK, settings)
    offers = [
        PricedOffer("Mid", Decimal("0.99"), "USD"),
        PricedOffer("Dear", Decimal("10"), "USD"),
        PricedOffer("Cheap", Decimal("23.09"), "KZT"),
        PricedOffer("Other", Decimal("1.50"), "USD"),
        PricedOffer("Unpriceable", Decimal("1"), "XYZ"),
    ]
    changes = service.preview("star_usd", Decimal("0.02"), offers)
    # 0.99 x 1.15 / 0.013 = 87.6 -> 88, / 0.02 = 56.9 -> 57
    assert changes == [
        PriceChange("Cheap", 5, 3),
        PriceChange("Other", 133, 87),
        PriceChange("Dear", 885, 575),
    ]
    assert service.preview("markup", Decimal("0.15"), offers[:1]) == [PriceChange("Mid", 88, 88)]
    assert service.book == BOOK and await settings.all() == {}
    with pytest.raises(ValueError):
        service.preview("star_usd", Decimal(13), offers)
