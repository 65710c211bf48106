"""Deterministic sandbox catalogue: the same offers, ids and prices on every run.

The default catalogue holds a few hundred offers across "Top Up", "Gift Cards" and
"Telegram Stars": test offer 999 (Steam US / TEST OFFER GROUP, 23.09 KZT, returns a
key), key products, direct top-ups that need a player ID, top-ups that also need a
server, and Telegram Stars packs priced from a TON rate. ``generate_catalogue(64_000)``
makes the benchmark catalogue.

Every offer has a settlement method (guide, "Supplier Settlement Compatibility"): most
are MIXED (test offer 999, the Stars packs, the products the shop's tests buy), a few
named products and every tenth synthetic product settle FIAT or USDT only, so a FIAT or
USDT account sees a smaller catalogue than a MIXED one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

TEST_OFFER_ID = 999
STARS_OFFER_IDS = {50: 2001, 100: 2002, 500: 2003, 1000: 2004}
STARS_PRODUCT_ID = 2000
TON_PER_100_STARS = Decimal("0.3")

CATEGORY_TOP_UP = "Top Up"
CATEGORY_GIFT_CARDS = "Gift Cards"
CATEGORY_STARS = "Telegram Stars"
CATEGORY_ALIASES = {"TOP_UP": CATEGORY_TOP_UP, "GIFT_CARD": CATEGORY_GIFT_CARDS}

#: partner balance profile -> the offer settlement methods it may see and buy (guide,
#: "Compatibility rules"); the keys are also the valid balance profiles.
COMPATIBLE_METHODS: dict[str, frozenset[str]] = {
    "FIAT": frozenset({"FIAT", "MIXED"}),
    "USDT": frozenset({"USDT", "MIXED"}),
    "MIXED": frozenset({"FIAT", "USDT", "MIXED"}),
}
#: named products settled through one rail only; every other named product is MIXED.
_SETTLEMENT_BY_PRODUCT = {
    "Free Fire": "USDT",
    "Razer Gold": "USDT",
    "Mobile Legends": "FIAT",
    "PlayStation Store": "FIAT",
    "Spotify Premium": "FIAT",
}


@dataclass(slots=True)
class SandboxOffer:
    """One orderable offer group of the sandbox. ``price`` is in ``currency``."""

    offer_id: int
    product_id: int
    product_name: str
    offer_name: str
    category: str
    price: Decimal
    currency: str
    returns_key: bool
    needs_player: bool = False
    servers: dict[str, str] = field(default_factory=dict)
    in_stock: bool = True
    stars_amount: int | None = None
    #: FIAT, USDT or MIXED: which partner balance profiles may see and buy it
    settlement_method: str = "MIXED"

    @property
    def needs_server(self) -> bool:
        return bool(self.servers)


# (product name, currency, base unit price, denominations, needs player, servers)
_TOP_UPS: list[tuple[str, str, str, list[str], bool, dict[str, str]]] = [
    ("PUBG Mobile", "USD", "0.0165", ["60 UC", "325 UC", "660 UC", "1800 UC", "3850 UC"], True, {}),
    (
        "Free Fire",
        "USD",
        "0.0098",
        ["100 Diamonds", "310 Diamonds", "520 Diamonds", "1060 Diamonds"],
        True,
        {},
    ),
    (
        "Genshin Impact",
        "USD",
        "0.0165",
        [
            "60 Genesis Crystals",
            "300 Genesis Crystals",
            "980 Genesis Crystals",
            "1980 Genesis Crystals",
        ],
        True,
        {"America": "os_usa", "Europe": "os_euro", "Asia": "os_asia", "TW, HK, MO": "os_cht"},
    ),
    (
        "Honkai: Star Rail",
        "USD",
        "0.0165",
        ["60 Oneiric Shards", "300 Oneiric Shards", "980 Oneiric Shards"],
        True,
        {
            "America": "prod_official_usa",
            "Europe": "prod_official_eur",
            "Asia": "prod_official_asia",
        },
    ),
    (
        "Mobile Legends",
        "RUB",
        "1.65",
        ["86 Diamonds", "172 Diamonds", "257 Diamonds", "706 Diamonds", "2195 Diamonds"],
        True,
        {"Zone 2001": "2001", "Zone 2002": "2002", "Zone 5001": "5001"},
    ),
    ("Clash of Clans", "KZT", "8.4", ["80 Gems", "500 Gems", "1200 Gems", "2500 Gems"], True, {}),
    ("Brawl Stars", "KZT", "8.9", ["30 Gems", "80 Gems", "170 Gems", "360 Gems"], True, {}),
    ("Call of Duty: Mobile", "USD", "0.0125", ["80 CP", "400 CP", "800 CP", "2000 CP"], True, {}),
]

# (product name, currency, denominations as (label, face value))
_GIFT_CARDS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Steam Wallet", "USD", [("5 USD", "5"), ("10 USD", "10"), ("20 USD", "20"), ("50 USD", "50")]),
    ("PlayStation Store", "EUR", [("10 EUR", "10"), ("20 EUR", "20"), ("50 EUR", "50")]),
    ("Xbox Gift Card", "USD", [("10 USD", "10"), ("25 USD", "25"), ("50 USD", "50")]),
    ("Google Play", "USD", [("5 USD", "5"), ("10 USD", "10"), ("25 USD", "25")]),
    ("Apple Gift Card", "USD", [("2 USD", "2"), ("10 USD", "10"), ("25 USD", "25")]),
    ("Razer Gold", "USD", [("5 USD", "5"), ("10 USD", "10"), ("20 USD", "20")]),
    ("Roblox", "USD", [("10 USD", "10"), ("25 USD", "25")]),
    ("Valorant Points", "KZT", [("2000 KZT", "2000"), ("5000 KZT", "5000")]),
    ("Spotify Premium", "RUB", [("1 month", "299"), ("3 months", "849")]),
    ("Nintendo eShop", "EUR", [("15 EUR", "15"), ("25 EUR", "25")]),
]

_SYNTHETIC_WORDS = [
    "Dragon", "Star", "Legends", "Arena", "Quest", "Saga", "Heroes", "Racing", "Empire", "Tactics",
    "Royale", "Galaxy", "Kingdom", "Shadow", "Island", "Rush", "Clash", "Knights", "Pixel", "Storm",
]  # fmt: skip

_CENT = Decimal("0.01")
# synthetic ids stay clear of the fixed ones (999, the Stars packs, the named products)
_SYNTHETIC_PRODUCT_START = 100_001
_SYNTHETIC_OFFER_START = 1_000_001


def stars_price_usd(stars: int, ton_usd: Decimal) -> Decimal:
    """USD price of ``stars`` Telegram Stars from the TON rate (100 Stars ~ 0.3 TON)."""
    return (Decimal(stars) / 100 * TON_PER_100_STARS * ton_usd).quantize(_CENT, ROUND_HALF_UP)


def _synthetic_settlement(product_id: int) -> str:
    """Every tenth synthetic product FIAT, every tenth USDT, the rest MIXED (no randomness,
    so prices and ids stay those of earlier catalogues)."""
    return {3: "FIAT", 7: "USDT"}.get(product_id % 10, "MIXED")


def _denomination_units(label: str) -> Decimal:
    return Decimal(label.split()[0])


def generate_catalogue(
    offers: int = 300, *, seed: int = 7, ton_usd: Decimal = Decimal("2.57")
) -> list[SandboxOffer]:
    """Build ``offers`` sandbox offers (at least the fixed ones), the same for the same seed.

    Order: test offer 999, the four Telegram Stars packs, the named top-ups and gift
    cards, then synthetic products ("Dragon Quest 17", ...) until ``offers`` is reached.
    """
    rng = random.Random(seed)
    catalogue: list[SandboxOffer] = [
        SandboxOffer(
            offer_id=TEST_OFFER_ID,
            product_id=TEST_OFFER_ID,
            product_name="Steam US",
            offer_name="TEST OFFER GROUP",
            category=CATEGORY_GIFT_CARDS,
            price=Decimal("23.09"),
            currency="KZT",
            returns_key=True,
        )
    ]
    for stars, offer_id in STARS_OFFER_IDS.items():
        catalogue.append(
            SandboxOffer(
                offer_id=offer_id,
                product_id=STARS_PRODUCT_ID,
                product_name="Telegram Stars",
                offer_name=f"{stars} Stars",
                category=CATEGORY_STARS,
                price=stars_price_usd(stars, ton_usd),
                currency="USD",
                returns_key=True,
                needs_player=True,
                stars_amount=stars,
            )
        )
    next_offer_id = 10_001
    next_product_id = 101
    for name, currency, unit, denominations, needs_player, servers in _TOP_UPS:
        for label in denominations:
            catalogue.append(
                SandboxOffer(
                    offer_id=next_offer_id,
                    product_id=next_product_id,
                    product_name=name,
                    offer_name=label,
                    category=CATEGORY_TOP_UP,
                    price=(_denomination_units(label) * Decimal(unit)).quantize(
                        _CENT, ROUND_HALF_UP
                    ),
                    currency=currency,
                    returns_key=False,
                    needs_player=needs_player,
                    servers=dict(servers),
                    settlement_method=_SETTLEMENT_BY_PRODUCT.get(name, "MIXED"),
                )
            )
            next_offer_id += 1
        next_product_id += 1
    for name, currency, denominations in _GIFT_CARDS:
        for label, face in denominations:
            margin = Decimal(100 + rng.randint(1, 6)) / 100
            catalogue.append(
                SandboxOffer(
                    offer_id=next_offer_id,
                    product_id=next_product_id,
                    product_name=name,
                    offer_name=label,
                    category=CATEGORY_GIFT_CARDS,
                    price=(Decimal(face) * margin).quantize(_CENT, ROUND_HALF_UP),
                    currency=currency,
                    returns_key=True,
                    in_stock=rng.random() > 0.05,
                    settlement_method=_SETTLEMENT_BY_PRODUCT.get(name, "MIXED"),
                )
            )
            next_offer_id += 1
        next_product_id += 1
    currencies = ["USD", "USD", "EUR", "RUB", "KZT"]
    unit_scale = {
        "USD": Decimal("0.012"),
        "EUR": Decimal("0.011"),
        "RUB": Decimal("1.1"),
        "KZT": Decimal("6.1"),
    }
    next_product_id = max(next_product_id, _SYNTHETIC_PRODUCT_START)
    next_offer_id = max(next_offer_id, _SYNTHETIC_OFFER_START)
    while len(catalogue) < offers:
        words = rng.sample(_SYNTHETIC_WORDS, 2)
        name = f"{words[0]} {words[1]} {next_product_id}"
        is_top_up = rng.random() < 0.6
        with_servers = is_top_up and rng.random() < 0.3
        currency = rng.choice(currencies)
        for index in range(rng.randint(2, 8)):
            if len(catalogue) >= offers:
                break
            amount = [60, 120, 300, 600, 980, 1980, 3280, 6480][index]
            catalogue.append(
                SandboxOffer(
                    offer_id=next_offer_id,
                    product_id=next_product_id,
                    product_name=name,
                    offer_name=f"{amount} {'Gems' if is_top_up else 'Credits'}",
                    category=CATEGORY_TOP_UP if is_top_up else CATEGORY_GIFT_CARDS,
                    price=(amount * unit_scale[currency]).quantize(_CENT, ROUND_HALF_UP),
                    currency=currency,
                    returns_key=not is_top_up,
                    needs_player=is_top_up,
                    servers={"Global": "global", "Asia": "asia"} if with_servers else {},
                    in_stock=rng.random() > 0.02,
                    settlement_method=_synthetic_settlement(next_product_id),
                )
            )
            next_offer_id += 1
        next_product_id += 1
    return catalogue
