"""Retail prices in Telegram Stars.

retail Stars = ceil(supplier price x USD rate of its currency x (1 + markup) / USD value of a Star)

Supplier money is ``Decimal`` with its currency; Stars are whole ``int``s, at least 1.
Markup and Star value start from settings and can be changed by an admin at run time
(kept in the database, effective at once), within :data:`MARKUP_RANGE` and
:data:`STAR_USD_RANGE`, after a preview of the new prices (:meth:`PricingService.preview`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from services.shared_state import SHOP_SETTINGS, CacheBus
from storage.settings import ShopSettingsRepository

logger = logging.getLogger(__name__)

MARKUP_KEY = "pricing.markup"
STAR_USD_KEY = "pricing.star_usd"

PriceSetting = Literal["markup", "star_usd"]
#: markup as a fraction: from selling at cost to +500 %
MARKUP_RANGE = (Decimal(0), Decimal(5))
#: USD value of one Star: a band around what Telegram pays out (about 0.013 to 0.02)
STAR_USD_RANGE = (Decimal("0.005"), Decimal("0.05"))
#: decimal places an admin may give
PLACES: dict[PriceSetting, int] = {"markup": 4, "star_usd": 6}
RANGES: dict[PriceSetting, tuple[Decimal, Decimal]] = {
    "markup": MARKUP_RANGE,
    "star_usd": STAR_USD_RANGE,
}


class UnknownCurrency(ValueError):
    """No USD rate is configured for a supplier currency: the offer cannot be priced."""


@dataclass(frozen=True, slots=True)
class PriceBook:
    """``usd_rates``: USD per one unit of each currency; ``markup``: 0.15 is +15 %;
    ``star_usd``: USD value of one Telegram Star."""

    usd_rates: Mapping[str, Decimal]
    markup: Decimal
    star_usd: Decimal

    def usd(self, price: Decimal, currency: str) -> Decimal:
        """Supplier price converted to USD. Raises :class:`UnknownCurrency`."""
        rate = self.usd_rates.get(currency.upper())
        if rate is None:
            raise UnknownCurrency(f"no USD rate configured for {currency!r}")
        return price * rate

    def stars(self, price: Decimal, currency: str, delivers_stars: int | None = None) -> int:
        """Retail price in whole Stars (rounded up, at least 1). Raises :class:`UnknownCurrency`.

        A Telegram Stars pack (``delivers_stars``) never sells for fewer Stars than it
        delivers: otherwise a customer could gift Stars to themselves and turn N Stars
        into more, at the shop's supplier balance.
        """
        retail_usd = self.usd(price, currency) * (1 + self.markup)
        stars = int((retail_usd / self.star_usd).to_integral_value(rounding=ROUND_CEILING))
        return max(1, stars, delivers_stars or 0)

    def can_price(self, currency: str) -> bool:
        return currency.upper() in self.usd_rates


@dataclass(frozen=True, slots=True)
class PricedOffer:
    """What an offer costs from the supplier (``price`` in ``currency``); ``stars_amount``
    for a Telegram Stars pack."""

    name: str
    price: Decimal
    currency: str
    stars_amount: int | None = None


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One offer's retail price in whole Stars under the current and the proposed book."""

    name: str
    old_stars: int
    new_stars: int


def sample_offers(book: PriceBook, offers: Sequence[PricedOffer]) -> list[PricedOffer]:
    """The cheapest, a middle and the dearest offer (in USD) that ``book`` can price."""
    priced = sorted(
        (o for o in offers if book.can_price(o.currency)),
        key=lambda o: book.usd(o.price, o.currency),
    )
    if len(priced) <= 3:
        return priced
    return [priced[0], priced[len(priced) // 2], priced[-1]]


class PricingService:
    """Holds the current :class:`PriceBook`; admin changes are saved and applied at once."""

    def __init__(self, defaults: PriceBook, settings: ShopSettingsRepository) -> None:
        self._book = defaults
        self._settings = settings
        self._bus = CacheBus()

    def share_through(self, bus: CacheBus) -> None:
        """Tell other processes about admin changes on ``bus``, and reload the saved
        overrides when another process announces one (several workers)."""
        self._bus = bus
        bus.subscribe(SHOP_SETTINGS, lambda _key: self.load())

    @property
    def settings(self) -> ShopSettingsRepository:
        """Where admins' changes are kept (shared with other run-time switches)."""
        return self._settings

    @property
    def book(self) -> PriceBook:
        return self._book

    async def load(self) -> PriceBook:
        """Apply overrides saved by admins (call once at start)."""
        saved = await self._settings.all()
        changes: dict[str, Decimal] = {}
        if MARKUP_KEY in saved:
            changes["markup"] = Decimal(saved[MARKUP_KEY])
        if STAR_USD_KEY in saved:
            changes["star_usd"] = Decimal(saved[STAR_USD_KEY])
        self._book = replace(self._book, **changes)
        return self._book

    def proposed(self, setting: PriceSetting, value: Decimal) -> PriceBook:
        """The current book with one setting changed (checked). Raises ``ValueError``."""
        low, high = RANGES[setting]
        if not value.is_finite() or not low <= value <= high:
            raise ValueError(f"{setting} must be between {low} and {high}, not {value}")
        return replace(self._book, **{setting: value})

    def preview(
        self, setting: PriceSetting, value: Decimal, offers: Sequence[PricedOffer]
    ) -> list[PriceChange]:
        """Old and new Stars of a few sample offers (:func:`sample_offers`) if ``setting``
        became ``value``. Nothing is saved. Raises ``ValueError`` out of range."""
        new = self.proposed(setting, value)
        return [
            PriceChange(
                o.name,
                self._book.stars(o.price, o.currency, o.stars_amount),
                new.stars(o.price, o.currency, o.stars_amount),
            )
            for o in sample_offers(self._book, offers)
        ]

    async def set_markup(self, markup: Decimal, admin_id: int | None) -> PriceBook:
        """Markup as a fraction (0.15 = +15 %), within :data:`MARKUP_RANGE`.
        Raises ``ValueError`` (nothing saved)."""
        self.proposed("markup", markup)
        await self._settings.set(MARKUP_KEY, str(markup), admin_id)
        self._book = replace(self._book, markup=markup)
        await self._bus.publish(SHOP_SETTINGS, MARKUP_KEY)
        logger.info("markup set to %s by %s", markup, admin_id)
        return self._book

    async def set_star_usd(self, star_usd: Decimal, admin_id: int | None) -> PriceBook:
        """USD value of one Star, within :data:`STAR_USD_RANGE`.
        Raises ``ValueError`` (nothing saved)."""
        self.proposed("star_usd", star_usd)
        await self._settings.set(STAR_USD_KEY, str(star_usd), admin_id)
        self._book = replace(self._book, star_usd=star_usd)
        await self._bus.publish(SHOP_SETTINGS, STAR_USD_KEY)
        logger.info("Star value set to %s USD by %s", star_usd, admin_id)
        return self._book
