"""The Seller API of the Gaming Goods twin (gaming-goods-seller-api.txt), served by
:class:`~sandboxes.gaming_goods.server.GamingGoodsSandbox` under
``/api/partner/v1/seller`` with ``X-API-Key: <seller key>`` (``config.seller_keys``;
each key is one seller, who sees only its own listings and offers: another seller's
product answers 404).

Field by field as documented:

* ``GET /seller/dashboard``: products (total, active = active and approved, pending
  moderation), sales (codes sold), ``pending_rewards`` / ``available_rewards`` in cents.
* ``GET /seller/products?limit=&offset=`` (``limit`` 1..100, default 20), in creation
  order. ``POST /seller/products``: ``name`` unique among all listings (else 422),
  ``price`` a positive JSON number of whole cents, ``currency``, ``delivery_type``
  ``AUTO`` (``codes`` required) or ``MANUAL`` (no ``codes``); answers ``pending``.
* ``GET /seller/products/{id}``; ``PUT`` (``name``, ``description``, ``price``,
  ``image_url``, ``is_active`` to re-enable): a new name, description or image sends the
  listing back to moderation, a price alone does not; ``POST .../deactivate``.
* Moderation: ``pending`` for ``config.moderation_seconds``, then ``rejected`` when the
  title or description holds a word of ``config.refused_words``, else ``approved``
  (:meth:`SellerDesk.moderate` decides at once).
* ``POST /seller/products/{id}/codes``: AUTO only (MANUAL: 422); a code this seller
  already holds, or twice in one request: 422 and nothing is added.
* ``POST /seller/offers`` on any marketplace product (the buyer catalogue or any
  listing; unknown: 404), ``price_cents`` a positive integer; ``GET /seller/offers?
  page=&page_size=`` one row per product and price; ``PATCH /seller/offers/{id}/price``
  moves unsold offers at ``old_price_cents``; ``DELETE /seller/offers/{id}`` removes the
  unsold ones (sold ones stay).

Errors ``{"error": {"code", "message"}}`` with ``VALIDATION_ERROR`` (400),
``UNAUTHORIZED`` (401), ``NOT_FOUND`` (404), ``BUSINESS_RULE_VIOLATION`` (422); the
server's middleware adds the 100-per-minute limit (429) and injected 503s. Money stays
``Decimal`` (listing prices, as sent) and ``int`` (cents). :meth:`SellerDesk.sell` plays
a buyer buying codes, for the dashboard and the offers' ``sold``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services import exact_json

if TYPE_CHECKING:
    from sandboxes.gaming_goods.catalogue import SandboxProduct

SELLER_PATH = "/api/partner/v1/seller"
DEFAULT_SELLER_KEY = "sk_test_seller"
OTHER_SELLER_KEY = "sk_test_other_seller"
#: a listing of :data:`OTHER_SELLER_KEY` present from the start (404 for anyone else)
FOREIGN_LISTING_ID = "5e11e700-0000-4000-8000-00000000f0f0"
MAX_PAGE_SIZE = 100
CURRENCIES = ("EUR", "USD", "RUB")
_NAMESPACE = uuid.UUID("2f6f3c1a-93c4-4c1e-a7e2-6d3b1d0c5e55")


class SellerError(Exception):
    """An error answer of the Seller API (documented upper-case codes)."""

    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.message = message


def _invalid(message: str) -> SellerError:
    return SellerError("VALIDATION_ERROR", 400, message)


def _refused(message: str) -> SellerError:
    return SellerError("BUSINESS_RULE_VIOLATION", 422, message)


def _not_found() -> SellerError:
    return SellerError("NOT_FOUND", 404, "Product not found")


@dataclass
class SellerListing:
    """A seller's listing: ``price`` decimal units as sent, unsold ``codes``, moderation
    ``pending`` until ``pending_until`` (the desk's clock)."""

    id: str
    owner: str
    title: str
    slug: str
    price: Decimal
    currency: str
    delivery_type: str
    description: str | None = None
    category: str | None = None
    brand: str | None = None
    image_url: str | None = None
    moderation_status: str = "pending"
    pending_until: float = 0.0
    is_active: bool = True
    codes: list[str] = field(default_factory=list)  # unsold, oldest first
    sold: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class OfferCode:
    """One code offered on a marketplace product at ``price_cents`` (C2C)."""

    owner: str
    product_id: str
    price_cents: int
    code: str
    sold: bool = False


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=exact_json.dumps(body), status=status, content_type="application/json")


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _invalid(f"{name} must be a non-empty string")
    if len(value) > 4000:
        raise _invalid(f"{name} is too long")
    return value.strip() if name == "name" else value


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise _invalid("price must be a number")
    price = Decimal(value)
    if price <= 0:
        raise _invalid("price must be positive")
    if price.as_tuple().exponent < -2:  # type: ignore[operator]
        raise _invalid("price must be in whole cents")
    return price


def _cents(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _invalid(f"{name} must be a positive integer (euro cents)")
    return value


def _code_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _invalid("codes must be a non-empty array of strings")
    if any(not isinstance(code, str) or not code.strip() for code in value):
        raise _invalid("every code must be a non-empty string")
    codes = [code.strip() for code in value]
    if len(set(codes)) != len(codes):
        raise _refused("duplicate code in the request")
    return codes


def _int_param(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f" and at most {high}" if high is not None else ""
        raise _invalid(f"{name} must be an integer from {low}{bound}")
    return int(raw)


class SellerDesk:
    """The sellers' state and the ``/seller`` handlers. ``products`` is the buyer
    catalogue (offers may go on any of them); ``clock`` drives moderation."""

    def __init__(
        self,
        products: dict[str, SandboxProduct],
        *,
        clock: Callable[[], float],
        moderation_seconds: float = 0.0,
        refused_words: tuple[str, ...] = ("counterfeit",),
    ) -> None:
        self.products = products
        self.clock = clock
        self.moderation_seconds = moderation_seconds
        self.refused_words = tuple(word.casefold() for word in refused_words)
        self.listings: dict[str, SellerListing] = {}
        self.offer_codes: list[OfferCode] = []
        self.pending_rewards: dict[str, int] = {}
        self.available_rewards: dict[str, int] = {}
        self.writes = 0
        self.listings[FOREIGN_LISTING_ID] = SellerListing(
            id=FOREIGN_LISTING_ID, owner=OTHER_SELLER_KEY, title="Hollow Knight Steam Key",
            slug="hollow-knight-steam-key", price=Decimal("9.49"), currency="EUR",
            delivery_type="AUTO", moderation_status="approved", codes=["HK-0001", "HK-0002"],
        )  # fmt: skip

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes of every Seller API endpoint."""
        base = SELLER_PATH
        return [
            web.get(f"{base}/dashboard", self._dashboard),
            web.get(f"{base}/products", self._list),
            web.post(f"{base}/products", self._create),
            web.get(f"{base}/products/{{id}}", self._detail),
            web.put(f"{base}/products/{{id}}", self._update),
            web.post(f"{base}/products/{{id}}/deactivate", self._deactivate),
            web.post(f"{base}/products/{{id}}/codes", self._upload),
            web.post(f"{base}/offers", self._add_offers),
            web.get(f"{base}/offers", self._list_offers),
            web.patch(f"{base}/offers/{{id}}/price", self._update_price),
            web.delete(f"{base}/offers/{{id}}", self._delete_offers),
        ]

    # -- controls (tests, demo) ------------------------------------------------------

    def moderate(self, product_id: str, status: str) -> None:
        """Decide a listing's moderation now (``approved`` / ``rejected`` / ``pending``)."""
        listing = self.listings[product_id]
        listing.moderation_status, listing.pending_until = status, 0.0

    def sell(self, product_id: str, count: int = 1) -> int:
        """A buyer buys up to ``count`` codes of ``product_id``: a listing's own codes,
        else the cheapest offers first. Rewards go to the sellers' pending rewards (cents).
        Returns how many were sold."""
        sold = 0
        listing = self.listings.get(product_id)
        while listing is not None and listing.codes and sold < count:
            listing.codes.pop(0)
            listing.sold += 1
            sold += 1
            cents = int(listing.price.scaleb(2))
            self.pending_rewards[listing.owner] = self.pending_rewards.get(listing.owner, 0) + cents
        open_offers = sorted(
            (o for o in self.offer_codes if o.product_id == product_id and not o.sold),
            key=lambda o: o.price_cents,
        )
        for offer in open_offers[: max(0, count - sold)]:
            offer.sold = True
            sold += 1
            self.pending_rewards[offer.owner] = (
                self.pending_rewards.get(offer.owner, 0) + offer.price_cents
            )
        return sold

    def release_rewards(self, owner: str = DEFAULT_SELLER_KEY) -> None:
        """Pending rewards of ``owner`` become available (the payout hold is over)."""
        self.available_rewards[owner] = self.available_rewards.get(
            owner, 0
        ) + self.pending_rewards.pop(owner, 0)

    def codes_of(self, owner: str) -> set[str]:
        """Every code ``owner`` holds unsold (listings and offers)."""
        held = {c for lst in self.listings.values() if lst.owner == owner for c in lst.codes}
        return held | {o.code for o in self.offer_codes if o.owner == owner and not o.sold}

    # -- helpers ---------------------------------------------------------------------

    def _status(self, listing: SellerListing) -> str:
        if listing.moderation_status == "pending" and self.clock() >= listing.pending_until:
            text = f"{listing.title} {listing.description or ''}".casefold()
            refused = any(word in text for word in self.refused_words)
            listing.moderation_status = "rejected" if refused else "approved"
        return listing.moderation_status

    def _own(self, request: web.Request) -> SellerListing:
        listing = self.listings.get(request.match_info["id"])
        if listing is None or listing.owner != request.headers.get("X-API-Key"):
            raise _not_found()
        return listing

    def _stock(self, listing: SellerListing) -> int:
        return len(listing.codes) if listing.delivery_type == "AUTO" else 0

    def _row(self, listing: SellerListing) -> dict[str, Any]:
        return {
            "id": listing.id, "slug": listing.slug, "title": listing.title,
            "price": listing.price, "currency": listing.currency,
            "stock_quantity": self._stock(listing), "delivery_type": listing.delivery_type,
            "moderation_status": self._status(listing), "is_active": listing.is_active,
            "stock_available": self._stock(listing), "created_at": _iso(listing.created_at),
        }  # fmt: skip

    def _title_taken(self, title: str, except_id: str | None = None) -> bool:
        wanted = title.casefold()
        return any(
            lst.title.casefold() == wanted and lst.id != except_id for lst in self.listings.values()
        )

    def _check_new_codes(self, owner: str, codes: list[str]) -> None:
        if set(codes) & self.codes_of(owner):
            raise _refused("duplicate code: already uploaded")

    def _exists(self, product_id: str) -> bool:
        return product_id in self.products or product_id in self.listings

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = exact_json.loads(await request.text())
        except ValueError as exc:
            raise _invalid("body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise _invalid("body must be an object")
        return body

    # -- dashboard and listings ------------------------------------------------------

    async def _dashboard(self, request: web.Request) -> web.Response:
        owner = request.headers["X-API-Key"]
        mine = [lst for lst in self.listings.values() if lst.owner == owner]
        statuses = [self._status(lst) for lst in mine]
        sold = sum(lst.sold for lst in mine) + sum(
            1 for o in self.offer_codes if o.owner == owner and o.sold
        )
        return _json({
            "total_products": len(mine),
            "active_products": sum(1 for lst, s in zip(mine, statuses, strict=True)
                                   if lst.is_active and s == "approved"),
            "pending_products": statuses.count("pending"),
            "total_sales": sold,
            "pending_rewards": self.pending_rewards.get(owner, 0),
            "available_rewards": self.available_rewards.get(owner, 0),
        })  # fmt: skip

    async def _list(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 20, 1, MAX_PAGE_SIZE)
        offset = _int_param(request, "offset", 0, 0, None)
        owner = request.headers["X-API-Key"]
        mine = [lst for lst in self.listings.values() if lst.owner == owner]
        return _json({
            "items": [self._row(lst) for lst in mine[offset : offset + limit]],
            "limit": limit, "offset": offset, "total": len(mine),
        })  # fmt: skip

    async def _create(self, request: web.Request) -> web.Response:
        owner = request.headers["X-API-Key"]
        body = await self._body(request)
        name = _text(body, "name", required=True)
        assert name is not None
        description = _text(body, "description")
        category, brand = _text(body, "category"), _text(body, "brand")
        image_url = _text(body, "image_url")
        if image_url is not None and not image_url.startswith(("https://", "http://")):
            raise _invalid("image_url must be an http(s) URL")
        price = _price(body.get("price"))
        currency = body.get("currency", "EUR")
        if currency not in CURRENCIES:
            raise _invalid(f"currency must be one of {', '.join(CURRENCIES)}")
        delivery = body.get("delivery_type")
        if delivery not in ("AUTO", "MANUAL"):
            raise _invalid("delivery_type must be AUTO or MANUAL")
        codes: list[str] = []
        if delivery == "AUTO":
            if body.get("codes") is None:
                raise _invalid("codes are required for AUTO delivery")
            codes = _code_list(body.get("codes"))
            self._check_new_codes(owner, codes)
        elif body.get("codes"):
            raise _invalid("MANUAL listings take no codes")
        if self._title_taken(name):
            raise _refused("a listing with this title already exists")
        listing = SellerListing(
            id=str(uuid.uuid5(_NAMESPACE, f"{len(self.listings)}:{name}")), owner=owner,
            title=name, slug=_slug(name), price=price, currency=currency,
            delivery_type=delivery, description=description, category=category, brand=brand,
            image_url=image_url, pending_until=self.clock() + self.moderation_seconds,
            codes=codes,
        )  # fmt: skip
        self.listings[listing.id] = listing
        self.writes += 1
        return _json({"product": {
            "id": listing.id, "title": listing.title, "price": listing.price,
            "currency": listing.currency, "delivery_type": listing.delivery_type,
            "moderation_status": "pending", "is_active": listing.is_active,
        }}, 201)  # fmt: skip

    async def _detail(self, request: web.Request) -> web.Response:
        row = self._row(self._own(request))
        row.pop("slug"), row.pop("created_at")
        return _json(row)

    async def _update(self, request: web.Request) -> web.Response:
        listing = self._own(request)
        body = await self._body(request)
        fields = ("name", "description", "price", "image_url", "is_active")
        if not any(body.get(name) is not None for name in fields):
            raise _invalid("nothing to update: name, description, price, image_url or is_active")
        name, description = _text(body, "name", required="name" in body), _text(body, "description")
        image_url = _text(body, "image_url")
        if image_url is not None and not image_url.startswith(("https://", "http://")):
            raise _invalid("image_url must be an http(s) URL")
        price = _price(body["price"]) if body.get("price") is not None else None
        is_active = body.get("is_active")
        if is_active is not None and not isinstance(is_active, bool):
            raise _invalid("is_active must be a boolean")
        if name is not None and self._title_taken(name, except_id=listing.id):
            raise _refused("a listing with this title already exists")
        significant = (
            (name is not None and name != listing.title)
            or (description is not None and description != listing.description)
            or (image_url is not None and image_url != listing.image_url)
        )
        if name is not None:
            listing.title, listing.slug = name, _slug(name)
        if description is not None:
            listing.description = description
        if image_url is not None:
            listing.image_url = image_url
        if price is not None:
            listing.price = price
        if is_active is not None:
            listing.is_active = is_active
        if significant:
            listing.moderation_status = "pending"
            listing.pending_until = self.clock() + self.moderation_seconds
        self.writes += 1
        status = "pending" if significant else self._status(listing)
        return _json({"product": {
            "id": listing.id, "title": listing.title, "price": listing.price,
            "moderation_status": status, "is_active": listing.is_active,
        }})  # fmt: skip

    async def _deactivate(self, request: web.Request) -> web.Response:
        listing = self._own(request)
        listing.is_active = False
        self.writes += 1
        return _json({"product": {"id": listing.id, "is_active": False}})

    async def _upload(self, request: web.Request) -> web.Response:
        listing = self._own(request)
        body = await self._body(request)
        codes = _code_list(body.get("codes"))
        if listing.delivery_type != "AUTO":
            raise _refused("codes can be uploaded to AUTO delivery products only")
        self._check_new_codes(listing.owner, codes)
        listing.codes.extend(codes)
        self.writes += 1
        return _json({"uploaded": len(codes), "stock_available": self._stock(listing)})

    # -- offers ----------------------------------------------------------------------

    async def _add_offers(self, request: web.Request) -> web.Response:
        owner = request.headers["X-API-Key"]
        body = await self._body(request)
        product_id = body.get("product_id")
        if not isinstance(product_id, str) or not product_id:
            raise _invalid("product_id is required")
        price_cents = _cents(body, "price_cents")
        codes = _code_list(body.get("codes"))
        if not self._exists(product_id):
            raise _not_found()
        self._check_new_codes(owner, codes)
        self.offer_codes += [OfferCode(owner, product_id, price_cents, code) for code in codes]
        self.writes += 1
        return _json({"added": len(codes)}, 201)

    async def _list_offers(self, request: web.Request) -> web.Response:
        page = _int_param(request, "page", 1, 1, None)
        size = _int_param(request, "page_size", 20, 1, MAX_PAGE_SIZE)
        owner = request.headers["X-API-Key"]
        groups: dict[tuple[str, int], dict[str, Any]] = {}
        for offer in self.offer_codes:
            if offer.owner != owner:
                continue
            row = groups.setdefault(
                (offer.product_id, offer.price_cents),
                {"product_id": offer.product_id, "price_cents": offer.price_cents,
                 "available": 0, "sold": 0},
            )  # fmt: skip
            row["sold" if offer.sold else "available"] += 1
        rows = list(groups.values())
        chunk = rows[(page - 1) * size : page * size]
        return _json({"offers": chunk, "total": len(rows), "page": page, "page_size": size})

    async def _update_price(self, request: web.Request) -> web.Response:
        owner, product_id = request.headers["X-API-Key"], request.match_info["id"]
        body = await self._body(request)
        old, new = _cents(body, "old_price_cents"), _cents(body, "new_price_cents")
        if not self._exists(product_id):
            raise _not_found()
        updated = 0
        for offer in self.offer_codes:
            if (offer.owner, offer.product_id, offer.price_cents, offer.sold) == (
                owner, product_id, old, False,
            ):  # fmt: skip
                offer.price_cents = new
                updated += 1
        self.writes += 1
        return _json({"updated": updated})

    async def _delete_offers(self, request: web.Request) -> web.Response:
        owner, product_id = request.headers["X-API-Key"], request.match_info["id"]
        if not self._exists(product_id):
            raise _not_found()
        keep = [
            o for o in self.offer_codes
            if not (o.owner == owner and o.product_id == product_id and not o.sold)
        ]  # fmt: skip
        deleted = len(self.offer_codes) - len(keep)
        self.offer_codes = keep
        self.writes += 1
        return _json({"deleted": deleted})
