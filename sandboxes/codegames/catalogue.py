"""Deterministic CodeGames sandbox catalogue: the same offers, ids and prices on every run.

Fixed offers (ids as in the document's examples where it gives them):

* ``2061`` PUBG / 60 UC, 674.47 KZT: a gift card completed at once, ``key`` in the
  create-order answer (the document's first example);
* ``2062`` Steam Wallet / 5 USD: a gift card that answers PROCESSING, completes later and
  never shows its key in order-status: the key comes only from ``/api/v1/offers/keys``
  (a string);
* ``2063`` Razer Gold / 2 x 10 USD: like 2062 with two codes (``/offers/keys`` answers a
  list);
* ``2071`` PUBG / 60 UC by player ID, 674.47 KZT: a top-up, ``isReturnDataForCustomer``
  false and ``required: ["gameUserId"]``, PROCESSING then COMPLETED.

``generate_catalogue(n)`` adds synthetic offers from id 3001 (alternately instant gift
cards and top-ups) until ``n`` offers in all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

KEY_NOW_OFFER_ID = "2061"
KEY_LATER_OFFER_ID = "2062"
KEY_LIST_OFFER_ID = "2063"
TOP_UP_OFFER_ID = "2071"


@dataclass(slots=True)
class SandboxOffer:
    """One offer. ``price`` is in ``currency``. ``returns_key``: isReturnDataForCustomer;
    ``needs_player``: ``required: ["gameUserId"]``; ``instant``: completed in the
    create-order answer (else PROCESSING first); ``key_count``: codes per order;
    ``key_in_status``: a full order-status shows the key (else only ``/offers/keys`` does)."""

    offer_id: int
    product_name: str
    offer_name: str
    price: Decimal
    currency: str
    returns_key: bool
    needs_player: bool = False
    instant: bool = True
    key_count: int = 1
    key_in_status: bool = True
    in_stock: bool = True


_PRODUCTS = [
    ("Mobile Legends", "Diamonds", "USD", "0.0185", [86, 172, 257, 706]),
    ("Free Fire", "Diamonds", "USD", "0.0098", [100, 310, 520, 1060]),
    ("Roblox", "Robux", "USD", "0.0125", [400, 800, 1700]),
    ("Valorant", "VP", "KZT", "5.10", [475, 1000, 2050]),
    ("Steam Wallet", "RUB", "RUB", "1.07", [500, 1000, 2000]),
]


def generate_catalogue(offers: int = 20, *, seed: int = 11) -> list[SandboxOffer]:
    """The four fixed offers, then synthetic ones until ``offers`` in all (same for the
    same ``seed``)."""
    catalogue = [
        SandboxOffer(2061, "PUBG", "60 UC", Decimal("674.47"), "KZT", returns_key=True),
        SandboxOffer(
            2062, "Steam Wallet", "5 USD", Decimal("5.35"), "USD", True,
            instant=False, key_in_status=False,
        ),
        SandboxOffer(
            2063, "Razer Gold", "2 x 10 USD", Decimal("21.40"), "USD", True,
            instant=False, key_count=2, key_in_status=False,
        ),
        SandboxOffer(
            2071, "PUBG", "60 UC", Decimal("674.47"), "KZT", returns_key=False,
            needs_player=True, instant=False,
        ),
    ]  # fmt: skip
    rng = random.Random(seed)
    next_id = 3001
    round_no = 0
    while len(catalogue) < offers:
        for product, unit_name, currency, unit, amounts in _PRODUCTS:
            for amount in amounts:
                if len(catalogue) >= offers:
                    break
                top_up = next_id % 2 == 0
                price = (Decimal(unit) * amount * Decimal(rng.randint(95, 110)) / 100).quantize(
                    Decimal("0.01")
                )
                name = product if round_no == 0 else f"{product} {round_no + 1}"
                catalogue.append(
                    SandboxOffer(
                        next_id,
                        name,
                        f"{amount} {unit_name}" + (" (player ID)" if top_up else ""),
                        max(price, Decimal("0.01")),
                        currency,
                        returns_key=not top_up,
                        needs_player=top_up,
                        instant=not top_up,
                    )
                )
                next_id += 1
        round_no += 1
    return catalogue
