"""Gaming Goods sandbox: a local twin of the Catalog and Partner buyer APIs and of the
Seller API."""

from __future__ import annotations

from typing import Any

from sandboxes.gaming_goods.catalogue import (
    FAILING_PRODUCT_ID,
    GIFT_CARD_PRODUCT_ID,
    SOLD_OUT_PRODUCT_ID,
    TWO_KEY_PRODUCT_ID,
    SandboxProduct,
    generate_catalogue,
)
from sandboxes.gaming_goods.seller import (
    DEFAULT_SELLER_KEY,
    FOREIGN_LISTING_ID,
    OTHER_SELLER_KEY,
    SellerDesk,
)
from sandboxes.gaming_goods.server import (
    DEFAULT_API_KEY,
    DEFAULT_JWT,
    Faults,
    GamingGoodsSandbox,
    SandboxConfig,
)


def create_sandbox(**options: Any) -> GamingGoodsSandbox:
    """A :class:`GamingGoodsSandbox` (``vendor = "gaming_goods"``); ``options`` are
    :class:`SandboxConfig` fields, e.g. ``offers=5000``, ``order_api="catalog"``,
    ``rate_limit=5``, ``fulfil_seconds=0.5``."""
    return GamingGoodsSandbox(SandboxConfig(**options))


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_JWT",
    "DEFAULT_SELLER_KEY",
    "FAILING_PRODUCT_ID",
    "FOREIGN_LISTING_ID",
    "GIFT_CARD_PRODUCT_ID",
    "OTHER_SELLER_KEY",
    "SOLD_OUT_PRODUCT_ID",
    "TWO_KEY_PRODUCT_ID",
    "Faults",
    "GamingGoodsSandbox",
    "SandboxConfig",
    "SandboxProduct",
    "SellerDesk",
    "create_sandbox",
    "generate_catalogue",
]
