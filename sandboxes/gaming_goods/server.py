"""A Gaming Goods twin (gaming-goods-api.txt) on aiohttp: both buyer APIs on one host.

* Catalog API under ``/api/v1``: ``GET /products`` (``category``, ``brand``, ``locale``,
  ``sort``, ``page``, ``page_size`` at most 100), ``GET /products/search?q=``,
  ``GET /products/{slug}``, ``GET /categories``, ``GET /brands`` without a token, all
  answers in ``{"data": ...}`` with decimal-euro prices; ``POST /orders`` (Bearer JWT,
  ``Idempotency-Key``: the same key and body answer the first order again, another body
  ``422 idempotency_key_reused``) and ``GET /orders/{id}`` with each item's ``keys``,
  amounts in cents.
* Partner API under ``/api/partner/v1`` (``X-API-Key``): ``GET /brands``,
  ``GET /brands/{brand}/categories``, ``GET /products`` (``limit`` at most 100,
  ``offset``), ``GET /products/{id}``, ``POST /checkout`` (``source`` ``lines`` or
  ``cart``), ``GET /orders`` (newest first) and ``GET /orders/{id}`` with
  ``delivery.codes``; every amount in euro cents.

* Seller API under ``/api/partner/v1/seller`` (a seller's ``X-API-Key``): listings,
  codes, moderation and C2C offers; see :mod:`sandboxes.gaming_goods.seller`.

Buyer errors are ``{"error": {"code", "message"}}`` with lower-case codes (the Seller
API's are upper-case, as its document shows). Every answer carries
``X-RateLimit-Limit/Remaining/Reset`` (Unix seconds); past ``rate_limit`` requests per
``rate_window`` seconds per IP it answers 429 with ``Retry-After``. Orders start
``pending_payment`` (catalog) or ``created`` (partner) and are ``completed`` with their
codes after ``fulfil_seconds``; :data:`FAILING_PRODUCT_ID` ends ``canceled`` and is
refunded. Faults (:class:`Faults`) inject latency, 5xx, 429 and lost create answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandboxes.gaming_goods.catalogue import SandboxProduct, generate_catalogue
from sandboxes.gaming_goods.seller import (
    DEFAULT_SELLER_KEY,
    OTHER_SELLER_KEY,
    SELLER_PATH,
    SellerDesk,
    SellerError,
)
from sandboxes.serving import LocalServer
from services import exact_json

logger = logging.getLogger(__name__)

DEFAULT_JWT = "sandbox.jwt.token"
DEFAULT_API_KEY = "pk_test_sandbox"
CATALOG = "/api/v1"
PARTNER = "/api/partner/v1"
MAX_PAGE_SIZE = 100


@dataclass
class SandboxConfig:
    """The sandbox's behaviour. Money in euro cents, times in seconds."""

    offers: int = 60
    seed: int = 7
    jwts: set[str] = field(default_factory=lambda: {DEFAULT_JWT})
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_API_KEY})
    #: which API the shop is pointed at to place orders (``supplier_settings``)
    order_api: str = "partner"
    balance_cents: int = 50_000
    fulfil_seconds: float = 0.0
    rate_limit: int = 100
    rate_window: float = 60.0
    clock: Callable[[], float] = time.time
    #: Seller API keys (each one seller); ``supplier_settings`` hands out the first
    seller_keys: list[str] = field(default_factory=lambda: [DEFAULT_SELLER_KEY, OTHER_SELLER_KEY])
    #: a new or significantly edited listing stays ``pending`` this long
    moderation_seconds: float = 0.0
    #: moderation rejects a listing whose title or description holds one of these
    refused_words: tuple[str, ...] = ("counterfeit",)


@dataclass
class Faults:
    """Injected trouble; counters go down by one per affected request."""

    latency: float = 0.0
    unavailable: int = 0  # next N requests answer 503 service_unavailable
    rate_limited: int = 0  # next N requests answer 429 with Retry-After
    retry_after: int = 1
    create_rate_limited: int = 0  # next N orders/checkouts: 429, nothing made
    create_unavailable: int = 0  # next N orders/checkouts: 500, nothing made
    create_unavailable_after_making: int = 0  # next N: made, then 500
    drop_create_answers: int = 0  # next N: made, then the connection is cut
    create_latency: float = 0.0  # made, then the answer waits this long


@dataclass
class SandboxOrder:
    id: str
    api: str  # "catalog" or "partner"
    owner: str
    product: SandboxProduct
    quantity: int
    total_cents: int
    created_at: datetime
    created_clock: float
    codes: list[str]
    idempotency_key: str | None = None
    request_body: str | None = None
    settled: bool = False


class SandboxError(Exception):
    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.message = message


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=exact_json.dumps(body), status=status, content_type="application/json",
        headers=headers,
    )  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _euros(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f" and at most {high}" if high is not None else ""
        raise SandboxError(
            "invalid_request", 400, f"Parameter '{name}' must be an integer from {low}{bound}"
        )
    return int(raw)


class GamingGoodsSandbox(LocalServer):
    """The embeddable sandbox: ``await start()`` -> base URL; ``stop()``;
    :meth:`supplier_settings` points the shop's ``GAMING_GOODS`` section at it."""

    label = "Gaming Goods sandbox"

    vendor = "gaming_goods"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.faults = Faults()
        self.products: dict[str, SandboxProduct] = {
            p.id: p for p in generate_catalogue(self.config.offers, seed=self.config.seed)
        }
        self.by_slug = {p.slug: p for p in self.products.values()}
        self.balance_cents = self.config.balance_cents
        self.orders: dict[str, SandboxOrder] = {}
        self.by_idempotency_key: dict[tuple[str, str], SandboxOrder] = {}
        self.create_calls = 0
        self._windows: dict[str, tuple[float, int]] = {}
        self.seller = SellerDesk(
            self.products, clock=self.config.clock,
            moderation_seconds=self.config.moderation_seconds,
            refused_words=self.config.refused_words,
        )  # fmt: skip
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = self._build_app()

    @property
    def catalog_url(self) -> str:
        return f"{self.base_url}{CATALOG}"

    @property
    def partner_url(self) -> str:
        return f"{self.base_url}{PARTNER}"

    def supplier_settings(self) -> dict[str, Any]:
        """The ``GAMING_GOODS`` section for this sandbox (credentials it accepts, URLs)."""
        return {
            "jwt": next(iter(self.config.jwts)),
            "api_key": next(iter(self.config.api_keys)),
            "order_api": self.config.order_api,
            "catalog_url": self.catalog_url,
            "partner_url": self.partner_url,
            "seller_api_key": self.config.seller_keys[0],
        }

    # -- controls --------------------------------------------------------------------

    def set_price(self, product_id: str, cents: int) -> None:
        self.products[product_id].price_cents = cents

    def set_stock(self, product_id: str, quantity: int) -> None:
        self.products[product_id].quantity = quantity

    # -- app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes([
            web.get(f"{CATALOG}/products", self._catalog_products),
            web.get(f"{CATALOG}/products/search", self._catalog_search),
            web.get(f"{CATALOG}/products/{{slug}}", self._catalog_product),
            web.get(f"{CATALOG}/categories", self._catalog_categories),
            web.get(f"{CATALOG}/brands", self._catalog_brands),
            web.post(f"{CATALOG}/orders", self._catalog_create_order),
            web.get(f"{CATALOG}/orders/{{id}}", self._catalog_order),
            web.get(f"{PARTNER}/brands", self._partner_brands),
            web.get(f"{PARTNER}/brands/{{brand}}/categories", self._partner_brand_categories),
            web.get(f"{PARTNER}/products", self._partner_products),
            web.get(f"{PARTNER}/products/{{id}}", self._partner_product),
            web.post(f"{PARTNER}/checkout", self._partner_checkout),
            web.get(f"{PARTNER}/orders", self._partner_orders),
            web.get(f"{PARTNER}/orders/{{id}}", self._partner_order),
            *self.seller.routes(),
            web.get("/_sandbox/state", self._control_state),
            web.post("/_sandbox/faults", self._control_faults),
        ])  # fmt: skip
        return app

    def _rate_headers(self, ip: str) -> tuple[dict[str, str], bool]:
        """Count one request from ``ip``; the X-RateLimit-* headers and whether it is over."""
        now = self.config.clock()
        start, count = self._windows.get(ip, (now, 0))
        if now - start >= self.config.rate_window:
            start, count = now, 0
        count += 1
        self._windows[ip] = (start, count)
        reset = start + self.config.rate_window
        headers = {
            "X-RateLimit-Limit": str(self.config.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.config.rate_limit - count)),
            "X-RateLimit-Reset": str(int(reset + 0.999)),
        }
        if count > self.config.rate_limit:
            headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
            return headers, True
        return headers, False

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)  # type: ignore[no-any-return]
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        headers, over = self._rate_headers(request.remote or "?")
        try:
            if over:
                raise SandboxError("rate_limit_exceeded", 429, "Too many requests")
            if self.faults.rate_limited > 0:
                self.faults.rate_limited -= 1
                headers["Retry-After"] = str(self.faults.retry_after)
                raise SandboxError("rate_limit_exceeded", 429, "Too many requests")
            if self.faults.unavailable > 0:
                self.faults.unavailable -= 1
                raise SandboxError("service_unavailable", 503, "Service temporarily unavailable")
            self._authorize(request)
            response = await handler(request)
        except (SandboxError, SellerError) as exc:
            if exc.http_status >= 500:
                headers.setdefault("Retry-After", str(self.faults.retry_after))
            code = exc.code.upper() if request.path.startswith(SELLER_PATH) else exc.code
            if exc.http_status == 429 and request.path.startswith(SELLER_PATH):
                code = "TOO_MANY_REQUESTS"
            response = _json({"error": {"code": code, "message": exc.message}}, exc.http_status)
        for name, value in headers.items():
            response.headers[name] = value
        return response  # type: ignore[no-any-return]

    def _authorize(self, request: web.Request) -> None:
        if request.path.startswith(SELLER_PATH):
            if request.headers.get("X-API-Key", "") not in self.config.seller_keys:
                raise SellerError("UNAUTHORIZED", 401, "Missing or invalid X-API-Key")
        elif request.path.startswith(PARTNER):
            if request.headers.get("X-API-Key", "") not in self.config.api_keys:
                raise SandboxError("unauthorized", 401, "Invalid or missing X-API-Key")
        elif request.path.startswith(f"{CATALOG}/orders"):
            self._jwt(request)

    def _jwt(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if token not in self.config.jwts:
            raise SandboxError("unauthorized", 401, "Invalid or missing bearer token")
        return token

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = exact_json.loads(await request.text())
        except ValueError as exc:
            raise SandboxError("invalid_request", 400, "Body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise SandboxError("invalid_request", 400, "Body must be an object")
        return body

    # -- catalog API -------------------------------------------------------------------

    def _catalog_row(self, p: SandboxProduct, *, short: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {"id": p.id, "name": p.title, "slug": p.slug}
        if not short:
            row |= {"category": p.platform, "brand": p.brand}
        row |= {"price": _euros(p.price_cents), "stock_quantity": p.quantity}
        if not short:
            row |= {"currency": "EUR", "image_url": p.image_url}
        row["is_active"] = True
        return row

    def _catalog_page(
        self, request: web.Request, items: list[SandboxProduct], short: bool
    ) -> web.Response:
        page = _int_param(request, "page", 1, 1, None)
        size = _int_param(request, "page_size", 20, 1, MAX_PAGE_SIZE)
        sort = request.query.get("sort")
        if sort == "price_asc":
            items = sorted(items, key=lambda p: p.price_cents)
        elif sort == "price_desc":
            items = sorted(items, key=lambda p: -p.price_cents)
        elif sort == "name":
            items = sorted(items, key=lambda p: p.title)
        elif sort not in (None, "newest"):
            raise SandboxError("invalid_request", 400, f"Unknown sort '{sort}'")
        chunk = items[(page - 1) * size : page * size]
        return _json({"data": {
            "products": [self._catalog_row(p, short=short) for p in chunk],
            "total": len(items), "page": page, "page_size": size,
        }})  # fmt: skip

    async def _catalog_products(self, request: web.Request) -> web.Response:
        items = list(self.products.values())
        if category := request.query.get("category"):
            items = [p for p in items if p.platform.lower() == category.lower()]
        if brand := request.query.get("brand"):
            items = [p for p in items if p.brand.lower() == brand.lower()]
        return self._catalog_page(request, items, short=False)

    async def _catalog_search(self, request: web.Request) -> web.Response:
        query = (request.query.get("q") or request.query.get("query") or "").strip()
        if not query:
            raise SandboxError("invalid_request", 400, "Parameter 'q' is required")
        words = query.casefold().split()
        items = [p for p in self.products.values() if all(w in p.title.casefold() for w in words)]
        return self._catalog_page(request, items, short=True)

    async def _catalog_product(self, request: web.Request) -> web.Response:
        product = self.by_slug.get(request.match_info["slug"])
        if product is None:
            raise SandboxError("product_not_found", 404, "Product not found")
        row = self._catalog_row(product) | {
            "description": f"{product.title}: activation code delivered by e-mail and API.",
            "meta": {"activation_details": f"Redeem on {product.platform}."},
        }
        return _json({"data": row})

    def _counts(self, attribute: str) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for p in self.products.values():
            counts[getattr(p, attribute)] = counts.get(getattr(p, attribute), 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    async def _catalog_categories(self, request: web.Request) -> web.Response:
        return _json(
            {"data": [{"name": n, "product_count": c} for n, c in self._counts("platform")]}
        )

    async def _catalog_brands(self, request: web.Request) -> web.Response:
        return _json({"data": [{"name": n, "product_count": c} for n, c in self._counts("brand")]})

    def _codes(self, order_id: str, count: int) -> list[str]:
        codes = []
        for n in range(count):
            digest = hashlib.sha256(f"{self.config.seed}:{order_id}:{n}".encode()).hexdigest()
            codes.append("-".join(digest[i : i + 5].upper() for i in range(0, 25, 5)))
        return codes

    def _status(self, order: SandboxOrder) -> str:
        if self.config.clock() - order.created_clock < self.config.fulfil_seconds:
            return "pending_payment" if order.api == "catalog" else "created"
        if order.product.fails:
            if not order.settled:
                order.settled = True
                self.balance_cents += order.total_cents
            return "canceled"
        return "completed"

    def _catalog_order_body(self, order: SandboxOrder, status: str | None = None) -> dict[str, Any]:
        status = status or self._status(order)
        item: dict[str, Any] = {
            "product_id": order.product.id, "product_name": order.product.title,
            "price": order.product.price_cents, "quantity": order.quantity,
        }  # fmt: skip
        body: dict[str, Any] = {
            "id": order.id, "status": status, "items": [item], "total": order.total_cents,
            "currency": "EUR", "created_at": _iso(order.created_at),
        }  # fmt: skip
        if status == "completed":
            item["keys"] = order.codes
            body["completed_at"] = _iso(order.created_at)
        if status == "pending_payment":
            body["payment_url"] = f"https://gaming-goods.ru/pay/{order.id}"
        return body

    def _lines(self, raw: Any, name: str) -> tuple[SandboxProduct, int]:
        if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
            raise SandboxError("invalid_request", 400, f"'{name}' must hold one line")
        line = raw[0]
        product_id, quantity = line.get("product_id"), line.get("quantity", 1)
        if not isinstance(product_id, str):
            raise SandboxError("invalid_request", 400, "'product_id' must be a string")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise SandboxError("invalid_request", 400, "'quantity' must be a positive integer")
        product = self.products.get(product_id)
        if product is None:
            raise SandboxError("product_not_found", 404, "Product not found")
        if product.quantity < quantity:
            raise SandboxError("out_of_stock", 409, "Not enough stock")
        return product, quantity

    async def _create_faults(self) -> None:
        self.create_calls += 1
        if self.faults.create_rate_limited > 0:
            self.faults.create_rate_limited -= 1
            raise SandboxError("rate_limit_exceeded", 429, "Too many requests")
        if self.faults.create_unavailable > 0:
            self.faults.create_unavailable -= 1
            raise SandboxError("internal_error", 500, "Internal server error")

    async def _after_making(self, request: web.Request, answer: web.Response) -> web.Response:
        if self.faults.create_latency:
            await asyncio.sleep(self.faults.create_latency)
        if self.faults.create_unavailable_after_making > 0:
            self.faults.create_unavailable_after_making -= 1
            raise SandboxError("internal_error", 500, "Internal server error")
        if self.faults.drop_create_answers > 0:
            self.faults.drop_create_answers -= 1
            logger.info("sandbox: dropping the answer to %s", request.path)
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return answer

    def _make(self, api: str, owner: str, product: SandboxProduct, quantity: int) -> SandboxOrder:
        total = product.price_cents * quantity
        if self.balance_cents < total:
            raise SandboxError("insufficient_balance", 402, "Insufficient balance")
        self.balance_cents -= total
        product.quantity -= quantity
        order_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"gg-sandbox:{len(self.orders)}:{api}"))
        order = SandboxOrder(
            id=order_id, api=api, owner=owner, product=product, quantity=quantity,
            total_cents=total, created_at=datetime.now(UTC), created_clock=self.config.clock(),
            codes=self._codes(order_id, quantity * product.codes_per_unit),
        )  # fmt: skip
        self.orders[order_id] = order
        return order

    async def _catalog_create_order(self, request: web.Request) -> web.Response:
        owner = self._jwt(request)
        await self._create_faults()
        text = await request.text()
        key = request.headers.get("Idempotency-Key")
        if key:
            seen = self.by_idempotency_key.get((owner, key))
            if seen is not None:
                if seen.request_body != text:
                    raise SandboxError(
                        "idempotency_key_reused", 422, "Idempotency-Key used with another body"
                    )
                return _json({"data": self._catalog_order_body(seen)})
        body = await self._body(request)
        product, quantity = self._lines(body.get("items"), "items")
        method = body.get("payment_method", "balance")
        if method != "balance":
            raise SandboxError("invalid_request", 400, "Only payment_method 'balance' is enabled")
        order = self._make("catalog", owner, product, quantity)
        if key:
            order.idempotency_key, order.request_body = key, text
            self.by_idempotency_key[(owner, key)] = order
        answer = _json({"data": self._catalog_order_body(order, "pending_payment")}, 201)
        return await self._after_making(request, answer)

    async def _catalog_order(self, request: web.Request) -> web.Response:
        owner = self._jwt(request)
        order = self.orders.get(request.match_info["id"])
        if order is None or order.api != "catalog" or order.owner != owner:
            raise SandboxError("order_not_found", 404, "Order not found")
        return _json({"data": self._catalog_order_body(order)})

    # -- partner API -------------------------------------------------------------------

    def _partner_product_body(self, p: SandboxProduct, detail: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": p.id, "title": p.title, "brand": p.brand, "category": p.kind,
            "price": p.price_cents, "currency": "EUR", "quantity": p.quantity,
            "is_available": p.quantity > 0, "delivery_type": p.delivery_type,
            "product_type": p.product_type, "images": [p.image_url],
        }  # fmt: skip
        if detail:
            body["description"] = f"{p.title}: activation code."
        body["short_description"] = ""
        if detail:
            body["specifications"] = [{"key": "platform", "value": p.platform}]
        return body

    @staticmethod
    def _window(request: web.Request) -> tuple[int, int]:
        return (
            _int_param(request, "limit", 20, 1, MAX_PAGE_SIZE),
            _int_param(request, "offset", 0, 0, None),
        )

    async def _partner_brands(self, request: web.Request) -> web.Response:
        limit, offset = self._window(request)
        counts = self._counts("brand")
        items = [{"brand": n, "product_count": c} for n, c in counts[offset : offset + limit]]
        return _json({"items": items, "limit": limit, "offset": offset, "total": len(counts)})

    async def _partner_brand_categories(self, request: web.Request) -> web.Response:
        brand = request.match_info["brand"]
        kinds: dict[str, int] = {}
        for p in self.products.values():
            if p.brand.lower() == brand.lower():
                kinds[p.kind] = kinds.get(p.kind, 0) + 1
        if not kinds:
            raise SandboxError("not_found", 404, f"Brand '{brand}' not found")
        return _json({"brand": brand, "categories": [
            {"category": k, "product_count": c} for k, c in sorted(kinds.items())
        ]})  # fmt: skip

    async def _partner_products(self, request: web.Request) -> web.Response:
        limit, offset = self._window(request)
        items = list(self.products.values())
        if brand := request.query.get("brand"):
            items = [p for p in items if p.brand.lower() == brand.lower()]
        if category := request.query.get("category"):
            items = [p for p in items if p.kind.lower() == category.lower()]
        if search := (request.query.get("search") or request.query.get("q")):
            items = [p for p in items if search.casefold() in p.title.casefold()]
        chunk = items[offset : offset + limit]
        return _json({
            "items": [self._partner_product_body(p) for p in chunk],
            "total": len(items), "limit": limit, "offset": offset,
        })  # fmt: skip

    async def _partner_product(self, request: web.Request) -> web.Response:
        product = self.products.get(request.match_info["id"])
        if product is None:
            raise SandboxError("product_not_found", 404, "Product not found")
        return _json(self._partner_product_body(product, detail=True))

    async def _partner_checkout(self, request: web.Request) -> web.Response:
        await self._create_faults()
        body = await self._body(request)
        source = body.get("source")
        if source == "cart":
            raise SandboxError("invalid_request", 400, "Cart is empty")
        if source != "lines":
            raise SandboxError("invalid_request", 400, "'source' must be 'cart' or 'lines'")
        product, quantity = self._lines(body.get("lines"), "lines")
        order = self._make("partner", request.headers["X-API-Key"], product, quantity)
        answer = _json({"orders": [{
            "id": order.id, "status": "created", "total": order.total_cents, "currency": "EUR",
        }]}, 201)  # fmt: skip
        return await self._after_making(request, answer)

    def _partner_orders_of(self, request: web.Request) -> list[SandboxOrder]:
        key = request.headers["X-API-Key"]
        return [o for o in self.orders.values() if o.api == "partner" and o.owner == key]

    async def _partner_orders(self, request: web.Request) -> web.Response:
        limit, offset = self._window(request)
        orders = sorted(self._partner_orders_of(request), key=lambda o: o.created_at, reverse=True)
        items = [
            {"id": o.id, "status": self._status(o), "total": o.total_cents, "currency": "EUR",
             "created_at": _iso(o.created_at)}
            for o in orders[offset : offset + limit]
        ]  # fmt: skip
        return _json({"items": items, "limit": limit, "offset": offset, "total": len(orders)})

    async def _partner_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["id"])
        if order is None or order not in self._partner_orders_of(request):
            raise SandboxError("order_not_found", 404, "Order not found")
        status = self._status(order)
        return _json({
            "id": order.id, "buyer_id": "c3d4e5f6-0000-4000-8000-000000000001", "status": status,
            "items": [{"product_id": order.product.id, "title": order.product.title,
                       "unit_price": order.product.price_cents, "quantity": order.quantity}],
            "amounts": {"buyer_total": order.total_cents, "platform_fee": 0},
            "payment": {"method": "balance",
                        "state": "refunded" if status == "canceled" else "paid"},
            "delivery": {"type": order.product.delivery_type,
                         "codes": order.codes if status == "completed" else []},
            "created_at": _iso(order.created_at), "updated_at": _iso(datetime.now(UTC)),
        })  # fmt: skip

    # -- control endpoints ---------------------------------------------------------------

    async def _control_state(self, request: web.Request) -> web.Response:
        return _json({
            "balance_cents": self.balance_cents, "products": len(self.products),
            "orders": len(self.orders), "create_calls": self.create_calls,
        })  # fmt: skip

    async def _control_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for name in (
            "unavailable", "rate_limited", "retry_after", "create_rate_limited",
            "create_unavailable", "create_unavailable_after_making", "drop_create_answers",
        ):  # fmt: skip
            if isinstance(body.get(name), int) and not isinstance(body.get(name), bool):
                setattr(self.faults, name, body[name])
        for name in ("latency", "create_latency"):
            if isinstance(body.get(name), int | Decimal):
                setattr(self.faults, name, float(body[name]))
        return await self._control_state(request)
