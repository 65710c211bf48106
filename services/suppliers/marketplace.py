"""Selling on a supplier's marketplace: the vendor-neutral side of a seller API.

A marketplace seller has *listings* (its own products, moderated, delivered AUTO from
codes uploaded in advance or MANUAL by hand) and *offers* (codes attached to any product
of the marketplace at a price in integer cents, the cheapest offer selling first). A
vendor package that has a seller API exports a builder for a :class:`Marketplace`
through ``VendorSpec.marketplace``; the admin console is written against this module
and never names the vendor.

Money: listing prices are decimal units of ``currency`` (``Decimal`` read from the JSON
text, sent back with the same digits); offer prices and rewards are integer cents.
Nothing passes through a float.

Errors are the shared tree of :mod:`services.suppliers.errors` plus the three below:
a listing or product that is not found (or is another seller's), a business rule the
marketplace refused (a duplicate code, codes for a MANUAL listing, a title already
used), and a write whose answer was lost.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.suppliers.errors import FixRequestError, SupplierError
from services.suppliers.models import SupplierTime

DeliveryType = Literal["AUTO", "MANUAL"]
#: the largest page a seller list answers (``limit`` / ``page_size``)
MAX_PAGE_SIZE = 100


class ListingNotFound(FixRequestError):
    """HTTP 404 ``NOT_FOUND``: no such product, or it is another seller's."""

    default_code = "NOT_FOUND"


class RuleViolation(FixRequestError):
    """HTTP 422 ``BUSINESS_RULE_VIOLATION``: the marketplace refused the change (a
    duplicate code, codes for a MANUAL listing, a title in use). Nothing was changed."""

    default_code = "BUSINESS_RULE_VIOLATION"


class WriteOutcomeUnknown(SupplierError):
    """A write that is not safe to repeat (create a listing, upload codes, add offers,
    change offer prices) was sent but its answer was lost (timeout, reset, 5xx,
    unreadable body). It may or may not have happened: look (list, detail) before
    sending it again. ``what`` names the call (``"POST /seller/products"``)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"outcome of {what} is unknown: {reason}")
        self.what = what
        self.reason = reason


def _money(value: Any) -> Any:
    """A decimal price as parsed from JSON text: ``Decimal`` or ``int`` only (never a
    float, a boolean or text)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError("a price must be a JSON number")
    return Decimal(value)


def _whole(value: Any) -> Any:
    """Integer cents: an ``int`` (or an integral ``Decimal`` such as ``1799.0``); refuses
    fractions, booleans and text so euros are never taken for cents."""
    if isinstance(value, bool):
        raise ValueError("cents must be an integer")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"cents must be whole, got {value}")
        return int(value)
    if not isinstance(value, int):
        raise ValueError("cents must be an integer")
    return value


Price = Annotated[Decimal, BeforeValidator(_money)]
Cents = Annotated[int, BeforeValidator(_whole)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class SellerDashboard(_Wire):
    """``GET /seller/dashboard``: counts of products and sales; ``pending_rewards`` and
    ``available_rewards`` are integer cents (the document gives no unit; the API's other
    amounts are euro cents)."""

    total_products: int = 0
    active_products: int = 0
    pending_products: int = 0
    total_sales: int = 0
    pending_rewards: Cents = 0
    available_rewards: Cents = 0


class Listing(_Wire):
    """A seller's product, from the list, the detail, or the ``product`` of a create,
    update or deactivate answer (those carry fewer fields: the rest are ``None``).
    ``price`` is decimal ``currency`` units exactly as sent; ``moderation_status`` is
    ``pending``, ``approved`` or ``rejected`` (other words are kept as sent)."""

    id: str
    slug: str | None = None
    title: str | None = None
    price: Price | None = None
    currency: str | None = None
    stock_quantity: int | None = None
    delivery_type: str | None = None
    moderation_status: str | None = None
    is_active: bool | None = None
    stock_available: int | None = None
    created_at: SupplierTime | None = None


class ListingPage(_Wire):
    """``GET /seller/products``: ``items``, ``limit``, ``offset``, ``total``."""

    items: list[Listing] = Field(default_factory=list)
    limit: int = 20
    offset: int = 0
    total: int = 0


class CodesUploaded(_Wire):
    """``POST /seller/products/{id}/codes``: codes added and codes now for sale."""

    uploaded: int
    stock_available: int


class Offer(_Wire):
    """One row of ``GET /seller/offers``: the seller's codes on a product at one price
    (``price_cents``, integer cents), ``available`` unsold and ``sold``."""

    product_id: str
    price_cents: Cents
    available: int = 0
    sold: int = 0


class OfferPage(_Wire):
    """``GET /seller/offers``: ``offers``, ``total``, ``page`` (1-based), ``page_size``."""

    offers: list[Offer] = Field(default_factory=list)
    total: int = 0
    page: int = 1
    page_size: int = 20


class Marketplace(Protocol):
    """A seller API (one vendor's marketplace). ``name`` is the vendor's name. Every
    method may raise :class:`~services.suppliers.errors.SupplierError` subclasses:
    ``InvalidToken`` (bad key), ``InvalidRequestBody`` (validation), :class:`ListingNotFound`,
    :class:`RuleViolation`, ``RateLimited``, ``RetryLaterError``, and for writes that are
    not repeated :class:`WriteOutcomeUnknown`. Bad money arguments raise ``TypeError`` /
    ``ValueError`` before anything is sent."""

    name: str

    async def dashboard(self) -> SellerDashboard:
        """``GET /seller/dashboard``."""
        ...

    async def listings(self, *, limit: int = 20, offset: int = 0) -> ListingPage:
        """``GET /seller/products?limit=&offset=`` (limit at most 100)."""
        ...

    async def listing(self, product_id: str) -> Listing:
        """``GET /seller/products/{productId}``; raises :class:`ListingNotFound`."""
        ...

    async def create_listing(
        self,
        *,
        name: str,
        price: Decimal,
        delivery_type: DeliveryType,
        codes: list[str] | None = None,
        description: str | None = None,
        category: str | None = None,
        brand: str | None = None,
        currency: str = "EUR",
        image_url: str | None = None,
    ) -> Listing:
        """``POST /seller/products``: answers the listing, moderation ``pending``."""
        ...

    async def update_listing(
        self,
        product_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        price: Decimal | None = None,
        image_url: str | None = None,
        is_active: bool | None = None,
    ) -> Listing:
        """``PUT /seller/products/{productId}``: a changed title, description or image may
        send it back to moderation; ``is_active=True`` re-enables."""
        ...

    async def deactivate(self, product_id: str) -> Listing:
        """``POST /seller/products/{productId}/deactivate``."""
        ...

    async def upload_codes(self, product_id: str, codes: list[str]) -> CodesUploaded:
        """``POST /seller/products/{productId}/codes`` (AUTO only): ``uploaded``,
        ``stock_available``."""
        ...

    async def add_offers(self, product_id: str, price_cents: int, codes: list[str]) -> int:
        """``POST /seller/offers``: codes on any product at ``price_cents``; returns
        ``added``."""
        ...

    async def offers(self, *, page: int = 1, page_size: int = 20) -> OfferPage:
        """``GET /seller/offers?page=&page_size=``."""
        ...

    async def update_offer_price(
        self, product_id: str, old_price_cents: int, new_price_cents: int
    ) -> int:
        """``PATCH /seller/offers/{productId}/price``; returns ``updated``."""
        ...

    async def delete_offers(self, product_id: str) -> int:
        """``DELETE /seller/offers/{productId}``: unsold offers only; returns ``deleted``."""
        ...


def to_cents(price: Decimal) -> int:
    """Exact decimal units -> integer cents (``Decimal("17.99")`` -> ``1799``); raises
    ``ValueError`` for a fraction of a cent."""
    cents = price.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{price} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """Integer cents -> exact decimal units (``1799`` -> ``Decimal("17.99")``)."""
    return Decimal(cents).scaleb(-2)


__all__ = [
    "MAX_PAGE_SIZE",
    "CodesUploaded",
    "DeliveryType",
    "Listing",
    "ListingNotFound",
    "ListingPage",
    "Marketplace",
    "Offer",
    "OfferPage",
    "RuleViolation",
    "SellerDashboard",
    "WriteOutcomeUnknown",
    "from_cents",
    "to_cents",
]
