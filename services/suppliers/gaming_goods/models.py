"""Gaming Goods wire answers (gaming-goods-api.txt), parsed from exact JSON.

Two APIs, two money conventions: the Catalog API (``/api/v1``) gives product prices as
decimal euros (``19.99``) but order amounts as integer euro cents (``1999``); the
Partner API (``/api/partner/v1``) gives every amount in integer euro cents. Cents become
``Decimal`` euros exactly through :func:`cents_to_euros`; nothing passes through a float.
Statuses are lower-case words mapped by :func:`map_status`. Unknown fields are ignored.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.suppliers.models import OrderStatus, SupplierTime

logger = logging.getLogger(__name__)


def cents_to_euros(cents: int) -> Decimal:
    """Integer euro cents -> exact ``Decimal`` euros: ``1999`` -> ``Decimal("19.99")``."""
    return Decimal(cents).scaleb(-2)


def euros_to_cents(euros: Decimal) -> int:
    """Exact ``Decimal`` euros -> integer cents; raises ``ValueError`` below a cent."""
    cents = euros.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{euros} EUR is not a whole number of cents")
    return int(cents)


def _whole_cents(value: Any) -> Any:
    """Accept an integer (or an integral Decimal such as ``1999.0``); refuse fractions,
    booleans and text, so a euro amount is never mistaken for cents."""
    if isinstance(value, bool):
        raise ValueError("cents must be an integer")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"cents must be whole, got {value}")
        return int(value)
    if not isinstance(value, int):
        raise ValueError("cents must be an integer")
    return value


Cents = Annotated[int, BeforeValidator(_whole_cents)]

#: lower-case vendor statuses -> the shared ones. Only ``created``, ``pending_payment``
#: and ``completed`` are documented; the rest are the usual words for the other states.
_STATUSES: dict[str, OrderStatus] = {
    "created": OrderStatus.SUBMITTED,
    "new": OrderStatus.SUBMITTED,
    "pending": OrderStatus.SUBMITTED,
    "pending_payment": OrderStatus.SUBMITTED,
    "awaiting_payment": OrderStatus.SUBMITTED,
    "paid": OrderStatus.PROCESSING,
    "processing": OrderStatus.PROCESSING,
    "in_progress": OrderStatus.PROCESSING,
    "delivering": OrderStatus.PROCESSING,
    "completed": OrderStatus.COMPLETED,
    "delivered": OrderStatus.COMPLETED,
    "fulfilled": OrderStatus.COMPLETED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "failed": OrderStatus.FAILED,
    "error": OrderStatus.FAILED,
    "refunded": OrderStatus.REFUND,
    "refund": OrderStatus.REFUND,
}


def map_status(value: str) -> OrderStatus:
    """A vendor status (any case) -> :class:`OrderStatus`. An unknown word is treated as
    still PROCESSING (logged): never a failure, so nothing is refunded on a guess."""
    status = _STATUSES.get(value.strip().lower())
    if status is None:
        logger.warning("Gaming Goods status %r is not known; treated as PROCESSING", value)
        return OrderStatus.PROCESSING
    return status


class GGModel(BaseModel):
    """snake_case as on the wire; ids are text; unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


# -- Catalog API (/api/v1) ----------------------------------------------------------


class CatalogProduct(GGModel):
    """A product of ``GET /products``, ``GET /products/search`` or ``GET /products/:slug``.
    ``price`` is decimal euros as sent; search rows may lack category, brand and image."""

    id: str
    name: str
    slug: str
    category: str | None = None
    brand: str | None = None
    description: str | None = None
    price: Decimal
    currency: str = "EUR"
    stock_quantity: int = 0
    image_url: str | None = None
    is_active: bool = True
    meta: dict[str, Any] | None = None

    @property
    def in_stock(self) -> bool:
        return self.is_active and self.stock_quantity > 0


class CatalogProductPage(GGModel):
    """``{"products": [...], "total", "page", "page_size"}`` inside ``data``."""

    products: list[CatalogProduct]
    total: int
    page: int = 1
    page_size: int = 20


class NamedCount(GGModel):
    """``GET /categories`` / ``GET /brands`` row: ``{"name", "product_count"}``."""

    name: str
    product_count: int = 0


class CatalogOrderItem(GGModel):
    product_id: str
    product_name: str | None = None
    price: Cents | None = None  # euro cents
    quantity: int = 1
    keys: list[str] = Field(default_factory=list)


class CatalogOrder(GGModel):
    """``POST /orders`` and ``GET /orders/:id`` (inside ``data``); amounts in cents."""

    id: str
    status: str
    items: list[CatalogOrderItem] = Field(default_factory=list)
    total: Cents | None = None
    currency: str = "EUR"
    payment_url: str | None = None
    created_at: SupplierTime | None = None
    completed_at: SupplierTime | None = None


# -- Partner API (/api/partner/v1) --------------------------------------------------


class PartnerBrand(GGModel):
    brand: str
    product_count: int = 0


class PartnerBrandPage(GGModel):
    """``GET /brands``: ``{"items", "limit", "offset", "total"}``."""

    items: list[PartnerBrand]
    limit: int = 20
    offset: int = 0
    total: int = 0


class PartnerCategory(GGModel):
    category: str
    product_count: int = 0


class PartnerBrandCategories(GGModel):
    """``GET /brands/{brand}/categories``: ``{"brand", "categories"}``."""

    brand: str
    categories: list[PartnerCategory]


class PartnerSpecification(GGModel):
    key: str
    value: str


class PartnerProduct(GGModel):
    """``GET /products`` row or ``GET /products/{id}``: ``price`` in euro cents."""

    id: str
    title: str
    brand: str | None = None
    category: str | None = None
    price: Cents
    currency: str = "EUR"
    quantity: int = 0
    is_available: bool = True
    delivery_type: str | None = None
    product_type: str | None = None
    images: list[str] = Field(default_factory=list)
    description: str | None = None
    short_description: str | None = None
    specifications: list[PartnerSpecification] = Field(default_factory=list)

    @property
    def price_euros(self) -> Decimal:
        return cents_to_euros(self.price)

    @property
    def in_stock(self) -> bool:
        return self.is_available and self.quantity > 0

    @property
    def image_url(self) -> str | None:
        return self.images[0] if self.images else None


class PartnerProductPage(GGModel):
    items: list[PartnerProduct]
    total: int
    limit: int = 20
    offset: int = 0


class PartnerCheckoutOrder(GGModel):
    """One of ``POST /checkout``'s ``orders``: ``total`` in cents."""

    id: str
    status: str
    total: Cents | None = None
    currency: str = "EUR"


class PartnerCheckout(GGModel):
    orders: list[PartnerCheckoutOrder]


class PartnerOrderRow(GGModel):
    """``GET /orders`` row: no products, only the total (cents) and the time."""

    id: str
    status: str
    total: Cents | None = None
    currency: str = "EUR"
    created_at: SupplierTime | None = None


class PartnerOrderPage(GGModel):
    items: list[PartnerOrderRow]
    limit: int = 20
    offset: int = 0
    total: int = 0


class PartnerOrderItem(GGModel):
    product_id: str
    title: str | None = None
    unit_price: Cents | None = None
    quantity: int = 1


class PartnerAmounts(GGModel):
    buyer_total: Cents | None = None
    platform_fee: Cents | None = None


class PartnerPayment(GGModel):
    method: str | None = None
    state: str | None = None


class PartnerDelivery(GGModel):
    type: str | None = None
    codes: list[str] = Field(default_factory=list)


class PartnerOrder(GGModel):
    """``GET /orders/{id}``: keys in ``delivery.codes`` once fulfilled."""

    id: str
    buyer_id: str | None = None
    status: str
    items: list[PartnerOrderItem] = Field(default_factory=list)
    amounts: PartnerAmounts = Field(default_factory=PartnerAmounts)
    payment: PartnerPayment = Field(default_factory=PartnerPayment)
    delivery: PartnerDelivery = Field(default_factory=PartnerDelivery)
    created_at: SupplierTime | None = None
    updated_at: SupplierTime | None = None
