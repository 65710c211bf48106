"""Deterministic Gaming Goods sandbox catalogue: the same UUIDs, slugs and prices on
every run. Fixed products first (:data:`TWO_KEY_PRODUCT_ID` delivers two codes per unit,
:data:`GIFT_CARD_PRODUCT_ID` one, :data:`SOLD_OUT_PRODUCT_ID` has no stock,
:data:`FAILING_PRODUCT_ID` is canceled by the vendor), then generated ones up to
``offers``. Prices are integer euro cents; the Catalog API shows them as decimal euros.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass

NAMESPACE = uuid.UUID("0d4b8c52-7d0e-4f53-8f5e-2b8f6a1c9e10")
IMAGE_HOST = "https://gaming-goods.ru/images"


def product_uuid(seed: int, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{seed}:{index}"))


TWO_KEY_PRODUCT_ID = product_uuid(7, 0)
GIFT_CARD_PRODUCT_ID = product_uuid(7, 1)
SOLD_OUT_PRODUCT_ID = product_uuid(7, 2)
FAILING_PRODUCT_ID = product_uuid(7, 3)


@dataclass(slots=True)
class SandboxProduct:
    """One product. ``platform`` is the Catalog API's category (Steam, Xbox...),
    ``kind`` the Partner API's category (Game Keys, Gift Card)."""

    id: str
    slug: str
    title: str
    brand: str
    platform: str
    kind: str
    price_cents: int
    quantity: int
    codes_per_unit: int = 1
    fails: bool = False
    delivery_type: str = "EXTERNAL"
    product_type: str = "KINGUIN"

    @property
    def image_url(self) -> str:
        return f"{IMAGE_HOST}/{self.slug}.webp"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# title, brand, platform, kind, cents, quantity, codes per unit, fails
_FIXED = [
    ("It Takes Two Friend's Pass Steam Key", "Hazelight", "Steam", "Game Keys", 1999, 40, 2, False),
    ("Steam Wallet Gift Card 20 EUR", "Steam", "Steam", "Gift Card", 2149, 500, 1, False),
    ("Cyberpunk 2077 Steam Key", "CD Projekt", "Steam", "Game Keys", 2999, 0, 1, False),
    ("Xbox Game Pass Ultimate 1 Month", "Microsoft", "Xbox", "Gift Card", 1299, 25, 1, True),
    ("PlayStation Store 10 EUR", "Sony", "PlayStation", "Gift Card", 1075, 300, 1, False),
    ("Nintendo eShop 25 EUR", "Nintendo", "Nintendo", "Gift Card", 2630, 120, 1, False),
]

_WORDS = ["Dragon", "Star", "Legends", "Arena", "Quest", "Saga", "Heroes", "Racing", "Empire",
          "Tactics", "Royale", "Galaxy", "Kingdom", "Shadow", "Island", "Rush"]  # fmt: skip
_PLATFORMS = [("Steam", "Valve"), ("Xbox", "Microsoft"), ("PlayStation", "Sony"),
              ("Nintendo", "Nintendo"), ("EA App", "Electronic Arts"), ("Ubisoft Connect", "Ubisoft")]  # fmt: skip


def generate_catalogue(offers: int = 60, *, seed: int = 7) -> list[SandboxProduct]:
    """``offers`` products (at least the fixed ones), the same for the same seed."""
    rng = random.Random(seed)
    products: list[SandboxProduct] = []
    for index, (title, brand, platform, kind, cents, qty, codes, fails) in enumerate(_FIXED):
        products.append(
            SandboxProduct(
                id=product_uuid(seed, index), slug=slugify(title), title=title, brand=brand,
                platform=platform, kind=kind, price_cents=cents, quantity=qty,
                codes_per_unit=codes, fails=fails,
            )
        )  # fmt: skip
    index = len(products)
    while len(products) < offers:
        words = rng.sample(_WORDS, 2)
        platform, brand = rng.choice(_PLATFORMS)
        title = f"{words[0]} {words[1]} {index} {platform} Key"
        products.append(
            SandboxProduct(
                id=product_uuid(seed, index), slug=f"{slugify(title)}", title=title, brand=brand,
                platform=platform, kind="Game Keys", price_cents=rng.randint(99, 6999),
                quantity=0 if rng.random() < 0.03 else rng.randint(1, 200),
            )
        )  # fmt: skip
        index += 1
    return products
