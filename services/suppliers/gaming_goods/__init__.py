"""Gaming Goods: a buyer vendor over its Catalog API (``/api/v1``, JWT) or Partner API
(``/api/partner/v1``, ``X-API-Key``); see gaming-goods-api.txt.

Settings section ``GAMING_GOODS__...``: ``JWT``, ``API_KEY``, ``ORDER_API``
(``partner`` or ``catalog``), ``CATALOG_URL``, ``PARTNER_URL``, ``LOCALE``,
``PROMO_CODE``, timeouts in seconds, and ``SELLER_API_KEY``: the Seller API
(gaming-goods-seller-api.txt, :mod:`.seller`) for selling on the marketplace from the
admin console, enabled on its own (a shop may sell there without buying there).
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import SecretStr

from services.suppliers.base import VendorSettings, VendorSpec
from services.suppliers.gaming_goods.client import (
    DEFAULT_CATALOG_URL,
    DEFAULT_PARTNER_URL,
    GamingGoodsClient,
    RateLimiter,
    RetryPolicy,
    Timeouts,
    idempotency_key,
)
from services.suppliers.gaming_goods.seller import SellerClient


class GamingGoodsSettings(VendorSettings):
    """The ``GAMING_GOODS`` section. ``order_api="partner"`` buys through
    ``POST /api/partner/v1/checkout`` with ``api_key``; ``"catalog"`` through
    ``POST /api/v1/orders`` with ``jwt`` (Bearer) and an ``Idempotency-Key``. Timeouts are
    seconds. Enabled when the credential of the chosen order API is set."""

    jwt: SecretStr | None = None
    api_key: SecretStr | None = None
    order_api: Literal["partner", "catalog"] = "partner"
    catalog_url: str = DEFAULT_CATALOG_URL
    partner_url: str = DEFAULT_PARTNER_URL
    locale: str | None = None
    promo_code: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 8.0
    create_timeout: float = 25.0
    #: Seller API key (``X-API-Key`` of ``/seller/...`` on ``partner_url``); the
    #: marketplace screens of the admin console appear when it is set.
    seller_api_key: SecretStr | None = None

    def enabled(self) -> bool:
        """``True`` when the chosen order API's credential is set (non-empty)."""
        secret = self.jwt if self.order_api == "catalog" else self.api_key
        return secret is not None and bool(secret.get_secret_value().strip())


def build(section: GamingGoodsSettings, http: httpx.AsyncClient) -> GamingGoodsClient:
    """The client for a settings section, over the shop's shared ``http`` client."""
    return GamingGoodsClient(
        http,
        jwt=section.jwt,
        api_key=section.api_key,
        order_api=section.order_api,
        catalog_url=section.catalog_url,
        partner_url=section.partner_url,
        locale=section.locale,
        promo_code=section.promo_code,
        timeouts=Timeouts(
            connect=section.connect_timeout,
            read=section.read_timeout,
            create_order=section.create_timeout,
        ),
    )


def build_marketplace(
    section: GamingGoodsSettings, http: httpx.AsyncClient, supplier: object | None = None
) -> SellerClient | None:
    """The Seller API client when ``seller_api_key`` is set (else ``None``), over the
    shop's ``http`` client. ``supplier``: this vendor's buyer client when the shop runs
    one, whose rate limiter is shared (one budget of 100 requests per minute per IP)."""
    key = section.seller_api_key
    if key is None or not key.get_secret_value().strip():
        return None
    limiter = supplier.limiter if isinstance(supplier, GamingGoodsClient) else None
    return SellerClient(
        http,
        api_key=key,
        base_url=section.partner_url,
        timeouts=Timeouts(
            connect=section.connect_timeout,
            read=section.read_timeout,
            create_order=section.create_timeout,
        ),
        limiter=limiter,
    )


VENDOR = VendorSpec(
    name="gaming_goods",
    short="gg",
    settings=GamingGoodsSettings,
    build=build,
    sandbox="sandboxes.gaming_goods",
    marketplace=build_marketplace,
)

__all__ = [
    "VENDOR",
    "GamingGoodsClient",
    "GamingGoodsSettings",
    "RateLimiter",
    "RetryPolicy",
    "SellerClient",
    "Timeouts",
    "build",
    "build_marketplace",
    "idempotency_key",
]
