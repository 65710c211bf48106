"""Retail prices in Telegram Stars.

retail Stars = ceil(supplier price x USD rate of its currency x (1 + markup) / USD value of a Star)

Supplier money is ``Decimal`` with its currency; Stars are whole ``int``s, at least 1.
Markup and Star value start from settings and can be changed by an admin at run time
(kept in the database, effective at once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal

from storage.settings import ShopSettingsRepository

logger = logging.getLogger(__name__)

MARKUP_KEY = "pricing.markup"
STAR_USD_KEY = "pricing.star_usd"


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


class PricingService:
    """Holds the current :class:`PriceBook`; admin changes are saved and applied at once."""

    def __init__(self, defaults: PriceBook, settings: ShopSettingsRepository) -> None:
        self._book = defaults
        self._settings = settings

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

    async def set_markup(self, markup: Decimal, admin_id: int | None) -> PriceBook:
        """Markup as a fraction (0.15 = +15 %), from -0.5 to 10. Raises ``ValueError``."""
        if not Decimal("-0.5") <= markup <= Decimal(10):
            raise ValueError("markup must be between -0.5 and 10")
        await self._settings.set(MARKUP_KEY, str(markup), admin_id)
        self._book = replace(self._book, markup=markup)
        logger.info("markup set to %s by %s", markup, admin_id)
        return self._book

    async def set_star_usd(self, star_usd: Decimal, admin_id: int | None) -> PriceBook:
        """USD value of one Star, positive. Raises ``ValueError``."""
        if star_usd <= 0:
            raise ValueError("a Star's USD value must be positive")
        await self._settings.set(STAR_USD_KEY, str(star_usd), admin_id)
        self._book = replace(self._book, star_usd=star_usd)
        logger.info("Star value set to %s USD by %s", star_usd, admin_id)
        return self._book
