"""Async client for the Gaming Goods buyer APIs (gaming-goods-api.txt).

Two APIs on one host, with their own auth and shapes:

* Catalog API, ``https://gaming-goods.ru/api/v1``: public reads (products, product by
  slug, search, categories, brands) without a token; orders with
  ``Authorization: Bearer <jwt>``. Answers are wrapped in ``{"data": ...}``; product prices
  are decimal euros, order amounts integer euro cents. ``POST /orders`` takes an
  ``Idempotency-Key``: derived from the shop's transaction id, so a re-send never makes a
  second order.
* Partner API, ``https://gaming-goods.ru/api/partner/v1``: ``X-API-Key``; every amount in
  integer euro cents; ``POST /checkout`` has no idempotency key, so after a lost answer
  the order is looked for in ``GET /orders`` (by time, product and amount) and never
  checked out again until the list proves it absent.

Errors come as ``{"error": {"code", "message"}}`` and map into the shared tree in
:mod:`services.suppliers.errors`. The APIs allow 100 requests per minute per IP: a
:class:`RateLimiter` shared by every call waits when ``X-RateLimit-Remaining`` reaches 0
until ``X-RateLimit-Reset``, and after a 429 for its ``Retry-After``. Every call has a
timeout; reads retry with capped backoff; order creation never retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from services import exact_json
from services.suppliers.base import Capability, Customer, OrderAttempt
from services.suppliers.errors import (
    InsufficientBalance,
    InvalidRequestBody,
    InvalidToken,
    OfferNotFound,
    OrderNotFound,
    OrderOutcomeUnknown,
    OutOfStock,
    RateLimited,
    RetryLaterError,
    ServiceUnavailable,
    SupplierAPIError,
    SupplierConnectionError,
    TransactionDuplicate,
    UnknownSupplierError,
    WrongPrice,
)
from services.suppliers.gaming_goods.models import (
    CatalogOrder,
    CatalogProduct,
    CatalogProductPage,
    NamedCount,
    PartnerBrandCategories,
    PartnerBrandPage,
    PartnerCheckout,
    PartnerOrder,
    PartnerOrderPage,
    PartnerOrderRow,
    PartnerProduct,
    PartnerProductPage,
    cents_to_euros,
    euros_to_cents,
    map_status,
)
from services.suppliers.models import (
    Balance,
    CatalogueRow,
    GameServer,
    OfferDetails,
    PlayerCheck,
    SupplierOrder,
    TelegramUserInfo,
    TransactionPage,
)
from services.suppliers.retry import RetryPolicy, parse_retry_after, read_with_retries

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

DEFAULT_CATALOG_URL = "https://gaming-goods.ru/api/v1"
DEFAULT_PARTNER_URL = "https://gaming-goods.ru/api/partner/v1"
#: the documented page size cap of every paginated list
MAX_PAGE_SIZE = 100
CURRENCY = "EUR"

OrderApi = Literal["catalog", "partner"]
_Api = Literal["catalog", "partner"]
_Context = Literal["product", "order"] | None

#: namespace of the Idempotency-Key derived from a transaction id (uuid5: stable, opaque)
IDEMPOTENCY_NAMESPACE = uuid.UUID("6b1e9c8e-2f0a-4d4b-9a57-3c5f0e1d2a77")


def idempotency_key(transaction_id: str) -> str:
    """The ``Idempotency-Key`` sent with ``POST /orders`` for ``transaction_id``: always the
    same for the same id (a UUID-5 of it), so a re-send is recognised."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, transaction_id))


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: ``read`` for every read, ``create_order`` for ``POST /orders`` / ``/checkout``."""

    connect: float = 5.0
    read: float = 8.0
    create_order: float = 25.0


class RateLimiter:
    """The 100-requests-per-minute budget, shared by every call of a client (share one
    instance between clients that use the same IP).

    :meth:`observe` reads each answer: ``X-RateLimit-Remaining: 0`` blocks until
    ``X-RateLimit-Reset`` (Unix seconds as documented, or seconds from now when the value
    is small); a 429 blocks for its ``Retry-After`` (else until the reset). :meth:`wait`
    sleeps out a block before a request. A block never lasts over ``max_wait`` s (a wrong
    clock must not stall the shop)."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_wait: float = 65.0,
    ) -> None:
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._max_wait = max_wait
        self._blocked_until = 0.0

    @property
    def blocked_for(self) -> float:
        """Seconds until requests may go again (0 when they may go now)."""
        return max(0.0, self._blocked_until - self._clock())

    def block(self, seconds: float) -> None:
        until = self._clock() + min(max(seconds, 0.0), self._max_wait)
        self._blocked_until = max(self._blocked_until, until)

    def _reset_in(self, headers: httpx.Headers) -> float | None:
        raw = headers.get("x-ratelimit-reset", "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            return None
        return value - self._wall() if value > 1_000_000_000 else value

    def observe(self, response: httpx.Response) -> None:
        """Update the budget from an answer's ``X-RateLimit-*`` / ``Retry-After`` headers."""
        headers = response.headers
        if response.status_code == 429:
            wait = parse_retry_after(headers)
            if wait is None:
                wait = self._reset_in(headers)
            self.block(1.0 if wait is None else wait)
            return
        remaining = headers.get("x-ratelimit-remaining", "").strip()
        if remaining.isdigit() and int(remaining) == 0:
            reset_in = self._reset_in(headers)
            if reset_in is not None and reset_in > 0:
                logger.info("Gaming Goods rate budget spent; waiting %.1fs for the reset", reset_in)
                self.block(reset_in)

    async def wait(self) -> None:
        """Sleep out the current block, if any."""
        delay = self.blocked_for
        if delay > 0:
            await self._sleep(delay)


# -- error mapping -----------------------------------------------------------------

_BY_CODE: dict[str, type[SupplierAPIError]] = {
    "invalid_request": InvalidRequestBody,
    "validation_error": InvalidRequestBody,
    "bad_request": InvalidRequestBody,
    "unauthorized": InvalidToken,
    "invalid_token": InvalidToken,
    "token_expired": InvalidToken,
    "invalid_api_key": InvalidToken,
    "forbidden": InvalidToken,
    "product_not_found": OfferNotFound,
    "order_not_found": OrderNotFound,
    "out_of_stock": OutOfStock,
    "insufficient_stock": OutOfStock,
    "product_unavailable": OutOfStock,
    "price_changed": WrongPrice,
    "insufficient_balance": InsufficientBalance,
    "insufficient_funds": InsufficientBalance,
    "idempotency_key_reused": TransactionDuplicate,
    "idempotency_conflict": TransactionDuplicate,
    "idempotency_key_in_use": RetryLaterError,
    "service_unavailable": ServiceUnavailable,
    "internal_error": ServiceUnavailable,
}
_BY_STATUS: dict[int, type[SupplierAPIError]] = {
    400: InvalidRequestBody,
    401: InvalidToken,
    402: InsufficientBalance,
    403: InvalidToken,
    422: InvalidRequestBody,
}


def read_error(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` of ``{"error": {"code", "message"}}`` (also a bare string
    ``error`` or top-level ``code``/``message``), else ``(None, None)``."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
    elif isinstance(error, str):
        code, message = error, None
    else:
        code, message = body.get("code"), body.get("message")
    return (code if isinstance(code, str) else None), (
        message if isinstance(message, str) else None
    )


def _parse(text: str) -> Any:
    try:
        return exact_json.loads(text) if text.strip() else None
    except ValueError:
        return None


def error_from_response(
    status: int, text: str, endpoint: str, headers: httpx.Headers, context: _Context = None
) -> SupplierAPIError:
    """Map an error answer to the shared typed errors.

    429 is :class:`RateLimited` (``retry_after`` from ``Retry-After``) and any 5xx a
    :class:`RetryLaterError`, whatever the body says. Otherwise the (lower-case) code
    decides, then the HTTP status: 400/422 bad request, 401/403 bad credentials, 402 no
    money, 404 :class:`OfferNotFound` on product endpoints and :class:`OrderNotFound` on
    order endpoints. Anything else is :class:`UnknownSupplierError`; the code, status and
    raw body are kept."""
    code, message = read_error(_parse(text))
    retry_after = parse_retry_after(headers)
    if status == 429:
        return RateLimited(code, status, text, message, endpoint, retry_after=retry_after)
    known = _BY_CODE.get((code or "").lower())
    if status >= 500:
        retry_class = known if known and issubclass(known, RetryLaterError) else RetryLaterError
        return retry_class(code, status, text, message, endpoint, retry_after=retry_after)
    if known is None and status == 404 and context is not None:
        known = OfferNotFound if context == "product" else OrderNotFound
    if known is None:
        known = _BY_STATUS.get(status, UnknownSupplierError)
    if issubclass(known, RetryLaterError):
        return known(code, status, text, message, endpoint, retry_after=retry_after)
    return known(code, status, text, message, endpoint)


class GamingGoodsClient:
    """Gaming Goods over one injected ``httpx.AsyncClient``; implements
    :class:`services.suppliers.base.Supplier`.

    ``order_api`` chooses where orders go: ``"catalog"`` (``POST /api/v1/orders`` with the
    ``jwt`` and an ``Idempotency-Key``: ``IDEMPOTENT_CREATE``) or ``"partner"``
    (``POST /api/partner/v1/checkout`` with the ``api_key``). The catalogue, offer prices
    and order reads follow the same API, so an offer is priced where it is bought.
    Offer ids are the products' UUIDs. Credentials are never logged nor put in errors.
    """

    name = "gaming_goods"
    short = "gg"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        jwt: str | SecretStr | None = None,
        api_key: str | SecretStr | None = None,
        order_api: OrderApi = "partner",
        catalog_url: str = DEFAULT_CATALOG_URL,
        partner_url: str = DEFAULT_PARTNER_URL,
        locale: str | None = None,
        promo_code: str | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        order_clock_skew: float = 120.0,
        max_order_pages: int = 50,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if order_api not in ("catalog", "partner"):
            raise ValueError(f"order_api must be 'catalog' or 'partner', not {order_api!r}")
        self._http = http
        self._jwt = SecretStr(jwt) if isinstance(jwt, str) else jwt
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.order_api: OrderApi = order_api
        self._urls = {"catalog": catalog_url.rstrip("/"), "partner": partner_url.rstrip("/")}
        self._locale = locale
        self._promo_code = promo_code
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy(max_retry_after=65.0)
        self._sleep = sleep
        self.limiter = limiter or RateLimiter(sleep=sleep)
        self._skew = timedelta(seconds=order_clock_skew)
        self._max_order_pages = max(1, max_order_pages)
        self._now = now
        self._search_path: str | None = None
        #: product UUID -> slug (the Catalog API reads one product by slug only)
        self._slugs: dict[str, str] = {}
        #: transaction id -> vendor order id, and what each create sent (this process)
        self._order_ids: dict[str, str] = {}
        self._attempts: dict[str, OrderAttempt] = {}
        self.capabilities: frozenset[Capability] = frozenset(
            {Capability.CATALOGUE_SYNC}
            | ({Capability.IDEMPOTENT_CREATE} if order_api == "catalog" else set())
        )

    def __repr__(self) -> str:
        return f"GamingGoodsClient(order_api={self.order_api!r}, catalog={self._urls['catalog']!r})"

    # -- transport -------------------------------------------------------------------

    def _headers(self, api: _Api, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if api == "partner":
            if self._api_key is None:
                raise InvalidToken(None, 0, "", "no Gaming Goods partner API key configured")
            headers["X-API-Key"] = self._api_key.get_secret_value()
        elif auth:
            if self._jwt is None:
                raise InvalidToken(None, 0, "", "no Gaming Goods JWT configured")
            headers["Authorization"] = f"Bearer {self._jwt.get_secret_value()}"
        return headers

    async def _send(
        self,
        method: str,
        api: _Api,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: Any,
        auth: bool,
        timeout: float,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = self._headers(api, auth) | (extra_headers or {})
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = exact_json.dumps(body).encode()
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        await self.limiter.wait()
        response = await self._http.request(
            method,
            f"{self._urls[api]}{path}",
            params=clean or None,
            content=content,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(self._timeouts.connect, timeout)),
        )
        self.limiter.observe(response)
        return response

    def _body(self, response: httpx.Response, api: _Api, path: str, context: _Context) -> Any:
        body = _parse(response.text)
        if response.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
            raise error_from_response(
                response.status_code, response.text, path, response.headers, context
            )
        if body is None:
            raise UnknownSupplierError(
                None, response.status_code, response.text, "answer is not JSON", path
            )
        if api == "catalog" and isinstance(body, dict) and "data" in body:
            return body["data"]
        return body

    async def _read(
        self,
        api: _Api,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        auth: bool = False,
        context: _Context = None,
    ) -> Any:
        """A GET, safe to repeat: retried on timeouts, connection errors, 429 and 5xx.
        A 429's wait comes from the limiter (``Retry-After``); one longer than
        ``max_retry_after`` is raised at once."""
        response = await read_with_retries(
            lambda: self._send(
                "GET", api, path, params=params, body=None, auth=auth, timeout=self._timeouts.read
            ),
            lambda r: error_from_response(r.status_code, r.text, path, r.headers, context),
            what=f"Gaming Goods {path}", timeout=self._timeouts.read, retry=self._retry,
            sleep=self._sleep,
            # a 429 with Retry-After: the rate limiter waits it out before the next send
            waited_elsewhere=lambda r, retry_after: r.status_code == 429 and retry_after is not None,
        )  # fmt: skip
        return self._body(response, api, path, context)

    async def _create(
        self,
        api: _Api,
        path: str,
        body: Any,
        transaction_id: str,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        """A POST that places an order: never retried. Not sent (connect failure) ->
        ``SupplierConnectionError``; 429 -> ``RateLimited`` (nothing was made); timeout,
        broken answer or 5xx -> ``OrderOutcomeUnknown``; a 4xx -> its typed error."""
        try:
            response = await self._send(
                "POST", api, path, params=None, body=body, auth=True,
                timeout=self._timeouts.create_order, extra_headers=extra_headers,
            )  # fmt: skip
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SupplierConnectionError(f"{path}: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:
            raise OrderOutcomeUnknown(
                transaction_id, f"no answer in {self._timeouts.create_order}s"
            ) from exc
        except httpx.TransportError as exc:
            raise OrderOutcomeUnknown(transaction_id, type(exc).__name__) from exc
        status = response.status_code
        if status == 429:
            raise error_from_response(status, response.text, path, response.headers, "order")
        if status >= 500:
            error = error_from_response(status, response.text, path, response.headers, "order")
            raise OrderOutcomeUnknown(
                transaction_id,
                f"HTTP {status} {error.code or 'without a code'}",
                retry_after=getattr(error, "retry_after", None),
            ) from error
        if status < 400 and _parse(response.text) is None:
            raise OrderOutcomeUnknown(transaction_id, f"unreadable answer (HTTP {status})")
        return self._body(response, api, path, "order")

    @staticmethod
    def _model(model: type[_M], body: Any, path: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000] if body is not None else "",
                f"unexpected answer shape: {exc}", path,
            ) from exc  # fmt: skip

    @staticmethod
    def _page_size(page_size: int) -> int:
        return max(1, min(MAX_PAGE_SIZE, page_size))

    # -- Catalog API: public reads ---------------------------------------------------

    async def list_products(
        self,
        *,
        page: int = 1,
        page_size: int = MAX_PAGE_SIZE,
        category: str | None = None,
        brand: str | None = None,
        sort: str | None = None,
    ) -> CatalogProductPage:
        """``GET /api/v1/products?category=&brand=&locale=&sort=&page=&page_size=`` (no
        token). ``page_size`` is capped at 100; ``sort`` is ``price_asc``, ``price_desc``,
        ``name`` or ``newest``. Prices are decimal euros."""
        path = "/products"
        params = {
            "page": page, "page_size": self._page_size(page_size), "category": category,
            "brand": brand, "sort": sort, "locale": self._locale,
        }  # fmt: skip
        result = self._model(CatalogProductPage, await self._read("catalog", path, params), path)
        self._remember(result.products)
        return result

    async def get_product(self, slug: str) -> CatalogProduct:
        """``GET /api/v1/products/{slug}``: one product with description and ``meta``.
        Raises ``OfferNotFound``."""
        path = f"/products/{quote(slug, safe='')}"
        body = await self._read("catalog", path, {"locale": self._locale}, context="product")
        product = self._model(CatalogProduct, body, path)
        self._remember([product])
        return product

    async def search(
        self, query: str, *, page: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> CatalogProductPage:
        """Full-text search: ``GET /api/v1/products/search?q=`` (``/api/v1/search`` where
        that path answers 404). Rows carry fewer fields than the catalogue."""
        params = {
            "q": query, "query": query, "page": page,
            "page_size": self._page_size(page_size), "locale": self._locale,
        }  # fmt: skip
        paths = [self._search_path] if self._search_path else ["/products/search", "/search"]
        for index, path in enumerate(paths):
            try:
                body = await self._read("catalog", path, params)
            except UnknownSupplierError as exc:
                if exc.http_status == 404 and index + 1 < len(paths):
                    continue
                raise
            self._search_path = path
            result = self._model(CatalogProductPage, body, path)
            self._remember(result.products)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def categories(self) -> list[NamedCount]:
        """``GET /api/v1/categories``: every category with its product count."""
        body = await self._read("catalog", "/categories", {"locale": self._locale})
        return [self._model(NamedCount, row, "/categories") for row in _list(body, "/categories")]

    async def brands(self) -> list[NamedCount]:
        """``GET /api/v1/brands``: every brand with its product count."""
        body = await self._read("catalog", "/brands", {"locale": self._locale})
        return [self._model(NamedCount, row, "/brands") for row in _list(body, "/brands")]

    def _remember(self, products: list[CatalogProduct]) -> None:
        for product in products:
            self._slugs[product.id] = product.slug

    # -- Catalog API: orders (Bearer) ------------------------------------------------

    async def catalog_order(self, order_id: str) -> CatalogOrder:
        """``GET /api/v1/orders/{id}`` (Bearer): status and, once paid, each item's
        ``keys``. Raises ``OrderNotFound``."""
        path = f"/orders/{quote(order_id, safe='')}"
        return self._model(
            CatalogOrder, await self._read("catalog", path, auth=True, context="order"), path
        )

    async def _place_catalog_order(self, offer_id: str, transaction_id: str) -> SupplierOrder:
        """``POST /api/v1/orders`` with ``Idempotency-Key: idempotency_key(transaction_id)``."""
        path = "/orders"
        body: dict[str, Any] = {
            "items": [{"product_id": offer_id, "quantity": 1}],
            "payment_method": "balance",
        }
        if self._promo_code:
            body["promo_code"] = self._promo_code
        answer = await self._create(
            "catalog", path, body, transaction_id,
            {"Idempotency-Key": idempotency_key(transaction_id)},
        )  # fmt: skip
        try:
            order = CatalogOrder.model_validate(answer)
        except ValidationError as exc:
            raise OrderOutcomeUnknown(transaction_id, f"unexpected answer shape: {exc}") from exc
        self._order_ids[transaction_id] = order.id
        return _from_catalog_order(order)

    # -- Partner API (X-API-Key) ------------------------------------------------------

    async def partner_brands(
        self, *, limit: int = MAX_PAGE_SIZE, offset: int = 0
    ) -> PartnerBrandPage:
        """``GET /api/partner/v1/brands?limit=&offset=``: brands with product counts."""
        params = {"limit": self._page_size(limit), "offset": offset}
        return self._model(
            PartnerBrandPage, await self._read("partner", "/brands", params), "/brands"
        )

    async def partner_brand_categories(self, brand: str) -> PartnerBrandCategories:
        """``GET /api/partner/v1/brands/{brand}/categories``: a brand's categories."""
        path = f"/brands/{quote(brand, safe='')}/categories"
        return self._model(PartnerBrandCategories, await self._read("partner", path), path)

    async def partner_products(
        self,
        *,
        limit: int = MAX_PAGE_SIZE,
        offset: int = 0,
        brand: str | None = None,
        category: str | None = None,
        search: str | None = None,
    ) -> PartnerProductPage:
        """``GET /api/partner/v1/products?limit=&offset=&brand=&category=&search=``:
        products with prices in euro cents (``price_euros`` gives exact ``Decimal``)."""
        params = {
            "limit": self._page_size(limit), "offset": offset, "brand": brand,
            "category": category, "search": search,
        }  # fmt: skip
        return self._model(
            PartnerProductPage, await self._read("partner", "/products", params), "/products"
        )

    async def partner_product(self, product_id: str) -> PartnerProduct:
        """``GET /api/partner/v1/products/{id}``: one product by UUID (cents). Raises
        ``OfferNotFound``."""
        path = f"/products/{quote(product_id, safe='')}"
        return self._model(
            PartnerProduct, await self._read("partner", path, context="product"), path
        )

    async def partner_orders(
        self, *, limit: int = MAX_PAGE_SIZE, offset: int = 0
    ) -> PartnerOrderPage:
        """``GET /api/partner/v1/orders?limit=&offset=``: the partner's orders (id,
        status, total in cents, created_at)."""
        params = {"limit": self._page_size(limit), "offset": offset}
        return self._model(
            PartnerOrderPage, await self._read("partner", "/orders", params), "/orders"
        )

    async def partner_order(self, order_id: str) -> PartnerOrder:
        """``GET /api/partner/v1/orders/{id}``: items, amounts (cents), payment and
        ``delivery.codes`` (every code, once fulfilled). Raises ``OrderNotFound``."""
        path = f"/orders/{quote(order_id, safe='')}"
        return self._model(PartnerOrder, await self._read("partner", path, context="order"), path)

    async def _checkout(self, offer_id: str, transaction_id: str) -> SupplierOrder:
        """``POST /api/partner/v1/checkout`` with ``{"source": "lines", "lines": [...]}``."""
        path = "/checkout"
        body = {"source": "lines", "lines": [{"product_id": offer_id, "quantity": 1}]}
        answer = await self._create("partner", path, body, transaction_id)
        try:
            checkout = PartnerCheckout.model_validate(answer)
        except ValidationError as exc:
            raise OrderOutcomeUnknown(transaction_id, f"unexpected answer shape: {exc}") from exc
        if not checkout.orders:
            raise OrderOutcomeUnknown(transaction_id, "checkout answered without an order")
        made = checkout.orders[0]
        if len(checkout.orders) > 1:
            logger.error(
                "Gaming Goods checkout for %s made %d orders: %s", transaction_id,
                len(checkout.orders), [o.id for o in checkout.orders],
            )  # fmt: skip
        self._order_ids[transaction_id] = made.id
        return SupplierOrder(
            order_id=made.id,
            status=map_status(made.status),
            price=cents_to_euros(made.total) if made.total is not None else None,
            currency=made.currency,
            offer_id=offer_id,
        )

    # -- Supplier protocol: catalogue ------------------------------------------------

    async def iter_catalogue(
        self, *, page_size: int = MAX_PAGE_SIZE, category: str | None = None,
        search: str | None = None,
    ) -> AsyncIterator[CatalogueRow]:  # fmt: skip
        """Every product as a :class:`CatalogueRow`, page by page (``page_size`` capped
        at 100), from the API that places orders: ``GET /api/partner/v1/products``
        (cents -> exact euros, first of ``images``) or ``GET /api/v1/products`` /
        ``/products/search`` (decimal euros, ``image_url``). Reads until a short or empty
        page or ``total`` is reached; a repeated id is dropped."""
        size = self._page_size(page_size)
        seen: set[str] = set()
        if self.order_api == "partner":
            offset = 0
            while True:
                page = await self.partner_products(
                    limit=size, offset=offset, category=category, search=search
                )
                for product in page.items:
                    if product.id not in seen:
                        seen.add(product.id)
                        yield _row_from_partner(product)
                offset += len(page.items)
                if len(page.items) < size or offset >= page.total:
                    return
        else:
            number = 1
            while True:
                if search:
                    result = await self.search(search, page=number, page_size=size)
                else:
                    result = await self.list_products(
                        page=number, page_size=size, category=category
                    )
                for product in result.products:
                    if product.id not in seen:
                        seen.add(product.id)
                        yield _row_from_catalog(product)
                if len(result.products) < size or number * size >= result.total:
                    return
                number += 1

    async def find_offer(self, offer_id: str) -> OfferDetails:
        """The current price of one product (UUID), from the API that places orders:
        ``GET /api/partner/v1/products/{id}``, or ``GET /api/v1/products/{slug}`` (the slug
        known from the catalogue; else the catalogue is paged through to find it).
        Raises ``OfferNotFound``."""
        if self.order_api == "partner":
            product = await self.partner_product(offer_id)
            return OfferDetails(
                offer_id=product.id, product_name=product.title, offer_name=product.title,
                price=product.price_euros, currency=product.currency, in_stock=product.in_stock,
                image_url=product.image_url, is_return_data_for_customer=True,
            )  # fmt: skip
        slug = self._slugs.get(offer_id) or await self._find_slug(offer_id)
        detail = await self.get_product(slug)
        return OfferDetails(
            offer_id=detail.id, product_name=detail.name, offer_name=detail.name,
            price=detail.price, currency=detail.currency, in_stock=detail.in_stock,
            image_url=detail.image_url, is_return_data_for_customer=True,
        )  # fmt: skip

    async def _find_slug(self, offer_id: str) -> str:
        async for row in self.iter_catalogue():
            if row.offer_group_id == offer_id:
                return self._slugs[offer_id]
        raise OfferNotFound(None, 404, "", f"no product {offer_id} in the catalogue", "/products")

    # -- Supplier protocol: orders ----------------------------------------------------

    async def create_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Buy one unit of product ``offer_id`` at no more than ``price`` EUR. Never retried.

        Neither API takes a price, so the current one is read first (:meth:`find_offer`):
        a higher price raises ``WrongPrice``, no stock ``OutOfStock`` (both with
        ``http_status`` 0: refused before ordering). Then ``POST /api/v1/orders`` with the
        ``Idempotency-Key`` derived from ``transaction_id`` (catalog) or
        ``POST /api/partner/v1/checkout`` (partner). A lost answer or 5xx raises
        ``OrderOutcomeUnknown``: resolve it with :meth:`get_order` / :meth:`resolve_order`,
        never with another checkout. ``customer`` is not sent (the APIs take none)."""
        if not isinstance(price, Decimal):
            raise TypeError("price must be the Decimal received from the supplier")
        current = await self.find_offer(offer_id)
        if not current.in_stock:
            raise OutOfStock(None, 0, "", f"{current.product_name} is out of stock", "create_order")
        if current.price > price:
            raise WrongPrice(
                None, 0, "", f"current price is {current.price} {current.currency}", "create_order"
            )
        self._attempts[transaction_id] = OrderAttempt(
            offer_id=offer_id, price=price, currency=current.currency, placed_after=self._now()
        )
        if self.order_api == "catalog":
            return await self._place_catalog_order(offer_id, transaction_id)
        return await self._checkout(offer_id, transaction_id)

    async def get_order(
        self,
        *,
        order_id: str | None = None,
        transaction_id: str | None = None,
        attempt: OrderAttempt | None = None,
    ) -> SupplierOrder:
        """The order by its Gaming Goods id (``GET /api/v1/orders/{id}`` or
        ``GET /api/partner/v1/orders/{id}``), or by our ``transaction_id``.

        By transaction id: the order id this client got for it, else (partner) the order
        list ``GET /api/partner/v1/orders`` is searched for an order placed after
        ``attempt.placed_after`` (less a clock-skew margin) for product ``attempt.offer_id``
        at no more than ``attempt.price``, each candidate confirmed by its detail; an
        order already matched to another transaction is never matched twice. Raises
        ``OrderNotFound`` only when the whole relevant list has been read and holds none;
        ``OrderOutcomeUnknown`` when it cannot tell (no ``attempt``, list too long, or the
        Catalog API, which finds orders only by id: see :meth:`resolve_order`)."""
        if order_id is None and transaction_id is None:
            raise ValueError("order_id or transaction_id is required")
        if order_id is None and transaction_id in self._order_ids:
            order_id = self._order_ids[transaction_id]
        if order_id is not None:
            if self.order_api == "catalog":
                return _from_catalog_order(await self.catalog_order(order_id))
            return _from_partner_order(await self.partner_order(order_id))
        assert transaction_id is not None
        if self.order_api == "catalog":
            raise OrderOutcomeUnknown(
                transaction_id,
                "the Catalog API finds orders only by id; re-send with the same Idempotency-Key",
            )
        attempt = attempt or self._attempts.get(transaction_id)
        if attempt is None:
            raise OrderOutcomeUnknown(
                transaction_id, "partner checkout has no key: the attempt is needed to find it"
            )
        return await self._find_in_order_list(transaction_id, attempt)

    async def _find_in_order_list(
        self, transaction_id: str, attempt: OrderAttempt
    ) -> SupplierOrder:
        since = attempt.placed_after - self._skew
        try:
            most = euros_to_cents(attempt.price)
        except ValueError:
            most = int(attempt.price.scaleb(2))  # a fraction of a cent: round down, stricter
        claimed = {oid for tid, oid in self._order_ids.items() if tid != transaction_id}
        candidates: list[PartnerOrderRow] = []
        offset, complete = 0, False
        for _ in range(self._max_order_pages):
            page = await self.partner_orders(limit=MAX_PAGE_SIZE, offset=offset)
            rows = page.items
            candidates += [
                row for row in rows
                if row.id not in claimed
                and (row.created_at is None or row.created_at >= since)
                and (row.total is None or row.total <= most)
                and row.currency.upper() == attempt.currency.upper()
            ]  # fmt: skip
            offset += len(rows)
            times = [row.created_at for row in rows if row.created_at is not None]
            newest_first = times == sorted(times, reverse=True)
            if not rows or offset >= page.total or (newest_first and times and times[-1] < since):
                complete = True
                break
        candidates.sort(key=lambda r: (r.total != most, r.created_at or since))
        for row in candidates:
            try:
                detail = await self.partner_order(row.id)
            except OrderNotFound:
                continue  # listed but gone: not ours either way
            if any(item.product_id == attempt.offer_id for item in detail.items):
                logger.info(
                    "Gaming Goods order %s found in the order list for %s", row.id, transaction_id
                )
                self._order_ids[transaction_id] = detail.id
                return _from_partner_order(detail)
        if not complete:
            raise OrderOutcomeUnknown(
                transaction_id, f"order list longer than {self._max_order_pages} pages"
            )
        raise OrderNotFound(
            None, 404, "",
            f"no order for {attempt.offer_id} at <= {attempt.price} {attempt.currency} "
            f"since {since.isoformat()} in the order list", "/orders",
        )  # fmt: skip

    async def resolve_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Settle an order whose outcome is unknown, never ordering twice.

        Catalog: the order by its id when known, else ``POST /api/v1/orders`` again with
        the same ``Idempotency-Key`` (the vendor answers the first order; no price check,
        which could refuse an order that exists). Partner: :meth:`get_order` through the
        order list with the attempt this client recorded; ``OrderNotFound`` when the list
        proves there is none (checking out again is then the caller's decision), and
        ``OrderOutcomeUnknown`` when this process never recorded the attempt."""
        if transaction_id in self._order_ids:
            return await self.get_order(transaction_id=transaction_id)
        if self.order_api == "catalog":
            return await self._place_catalog_order(offer_id, transaction_id)
        return await self.get_order(transaction_id=transaction_id)

    # -- capabilities Gaming Goods does not have --------------------------------------

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        """Not offered: keys come with the order itself (``keys`` / ``delivery.codes``)."""
        raise NotImplementedError("Gaming Goods delivers keys with the order")

    async def get_balance(self) -> Balance:
        """Not documented by Gaming Goods."""
        raise NotImplementedError("Gaming Goods documents no balance endpoint")

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage:
        """Not documented by Gaming Goods."""
        raise NotImplementedError("Gaming Goods documents no transaction history")

    async def get_servers(self, offer_id: str) -> list[GameServer]:
        """Not documented by Gaming Goods."""
        raise NotImplementedError("Gaming Goods documents no game servers")

    async def check_player(
        self, offer_id: str, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck:
        """Not documented by Gaming Goods."""
        raise NotImplementedError("Gaming Goods documents no player check")

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo:
        """Not documented by Gaming Goods."""
        raise NotImplementedError("Gaming Goods documents no Telegram user lookup")


def _list(body: Any, path: str) -> list[Any]:
    if not isinstance(body, list):
        raise UnknownSupplierError(None, 200, str(body)[:2000], "expected a list", path)
    return body


def _row_from_partner(product: PartnerProduct) -> CatalogueRow:
    return CatalogueRow(
        product_id=product.id, product_name=product.title,
        offer_group_id=product.id, offer_group_name=product.title,
        price=product.price_euros, currency=product.currency, in_stock=product.in_stock,
        image_url=product.image_url, returns_key=True,
    )  # fmt: skip


def _row_from_catalog(product: CatalogProduct) -> CatalogueRow:
    return CatalogueRow(
        product_id=product.id, product_name=product.name,
        offer_group_id=product.id, offer_group_name=product.name,
        price=product.price, currency=product.currency, in_stock=product.in_stock,
        image_url=product.image_url, returns_key=True,
    )  # fmt: skip


def _from_catalog_order(order: CatalogOrder) -> SupplierOrder:
    keys = [key for item in order.items for key in item.keys]
    first = order.items[0] if order.items else None
    return SupplierOrder(
        order_id=order.id,
        status=map_status(order.status),
        count=sum(item.quantity for item in order.items) or 1,
        price=cents_to_euros(order.total) if order.total is not None else None,
        currency=order.currency,
        offer_id=first.product_id if first else None,
        product_name=first.product_name if first else None,
        offer_name=first.product_name if first else None,
        is_return_data_for_customer=True,
        key=keys[0] if keys else None,
        keys=keys,
        created_at=order.created_at,
    )


def _from_partner_order(order: PartnerOrder) -> SupplierOrder:
    keys = list(order.delivery.codes)
    first = order.items[0] if order.items else None
    total = order.amounts.buyer_total
    return SupplierOrder(
        order_id=order.id,
        status=map_status(order.status),
        count=sum(item.quantity for item in order.items) or 1,
        price=cents_to_euros(total) if total is not None else None,
        currency=CURRENCY,
        offer_id=first.product_id if first else None,
        product_name=first.title if first else None,
        offer_name=first.title if first else None,
        is_return_data_for_customer=True,
        key=keys[0] if keys else None,
        keys=keys,
        created_at=order.created_at,
    )
