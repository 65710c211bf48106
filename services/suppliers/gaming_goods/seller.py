"""Async client for the Gaming Goods Seller API (gaming-goods-seller-api.txt).

Base URL ``https://gaming-goods.ru/api/partner/v1`` (the Partner API's), every request
with ``X-API-Key: <seller key>``. Endpoints, one method each:

=========================================  ===============================
``GET /seller/dashboard``                  :meth:`SellerClient.dashboard`
``GET /seller/products``                   :meth:`SellerClient.listings`
``POST /seller/products``                  :meth:`SellerClient.create_listing`
``GET /seller/products/{id}``              :meth:`SellerClient.listing`
``PUT /seller/products/{id}``              :meth:`SellerClient.update_listing`
``POST /seller/products/{id}/deactivate``  :meth:`SellerClient.deactivate`
``POST /seller/products/{id}/codes``       :meth:`SellerClient.upload_codes`
``POST /seller/offers``                    :meth:`SellerClient.add_offers`
``GET /seller/offers``                     :meth:`SellerClient.offers`
``PATCH /seller/offers/{id}/price``        :meth:`SellerClient.update_offer_price`
``DELETE /seller/offers/{id}``             :meth:`SellerClient.delete_offers`
=========================================  ===============================

Money as documented: listing prices are decimal euros (``Decimal`` parsed from the JSON
text and sent back with the same digits), offer prices integer euro cents. Errors
``{"error": {"code", "message"}}`` map to typed errors (``VALIDATION_ERROR`` 400 ->
``InvalidRequestBody``, ``UNAUTHORIZED`` 401 -> ``InvalidToken``, ``NOT_FOUND`` 404 ->
``ListingNotFound``, ``BUSINESS_RULE_VIOLATION`` 422 -> ``RuleViolation``, 429 ->
``RateLimited``, 5xx -> ``RetryLaterError``). The 100 requests per minute are shared
with the buyer client through one :class:`RateLimiter`.

Every call has a timeout. Reads and the writes that give the same answer when repeated
(``PUT`` a listing, deactivate) are retried like the buyer API's reads; the others
(create a listing, upload codes, add offers, change offer prices, delete offers) are
sent once: a 429 (nothing was done) is waited out and sent again, a lost answer or a 5xx
raises ``WriteOutcomeUnknown``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from services import exact_json
from services.suppliers.errors import (
    InvalidRequestBody,
    InvalidToken,
    RateLimited,
    RetryLaterError,
    ServiceUnavailable,
    SupplierAPIError,
    SupplierConnectionError,
    UnknownSupplierError,
)
from services.suppliers.gaming_goods.client import (
    DEFAULT_PARTNER_URL,
    RateLimiter,
    Timeouts,
    _parse,
    read_error,
)
from services.suppliers.marketplace import (
    MAX_PAGE_SIZE,
    CodesUploaded,
    DeliveryType,
    Listing,
    ListingNotFound,
    ListingPage,
    OfferPage,
    RuleViolation,
    SellerDashboard,
    WriteOutcomeUnknown,
)
from services.suppliers.retry import RetryPolicy, parse_retry_after, read_with_retries

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

_BY_CODE: dict[str, type[SupplierAPIError]] = {
    "VALIDATION_ERROR": InvalidRequestBody,
    "UNAUTHORIZED": InvalidToken,
    "NOT_FOUND": ListingNotFound,
    "BUSINESS_RULE_VIOLATION": RuleViolation,
}
_BY_STATUS: dict[int, type[SupplierAPIError]] = {
    400: InvalidRequestBody,
    401: InvalidToken,
    403: InvalidToken,
    404: ListingNotFound,
    422: RuleViolation,
}


def seller_error(status: int, text: str, endpoint: str, headers: httpx.Headers) -> SupplierAPIError:
    """Map a Seller API error answer (``{"error": {"code", "message"}}``) to a typed error.

    429 is :class:`RateLimited` and any 5xx a :class:`RetryLaterError`
    (``SERVICE_UNAVAILABLE``: :class:`ServiceUnavailable`), both with ``retry_after`` from
    ``Retry-After``, whatever the body says. Otherwise the documented code decides, then
    the status (400, 401/403, 404, 422); anything else is :class:`UnknownSupplierError`.
    Code, status and raw body are kept."""
    code, message = read_error(_parse(text))
    retry_after = parse_retry_after(headers)
    if status == 429:
        return RateLimited(code, status, text, message, endpoint, retry_after=retry_after)
    if status >= 500:
        retry_class = (
            ServiceUnavailable if (code or "").upper() == "SERVICE_UNAVAILABLE" else RetryLaterError
        )
        return retry_class(code, status, text, message, endpoint, retry_after=retry_after)
    known = _BY_CODE.get((code or "").upper()) or _BY_STATUS.get(status, UnknownSupplierError)
    return known(code, status, text, message, endpoint)


def _price(price: Decimal) -> Decimal:
    """A listing price to send: a finite, positive ``Decimal`` of whole cents."""
    if not isinstance(price, Decimal):
        raise TypeError("a listing price must be a Decimal (decimal euros), never a float")
    if not price.is_finite() or price <= 0:
        raise ValueError(f"a listing price must be positive, got {price}")
    if price.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"a listing price is whole cents, got {price}")
    return price


def _cents(value: int, name: str = "price_cents") -> int:
    """An offer price to send: a positive ``int`` of euro cents."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of euro cents, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _codes(codes: list[str]) -> list[str]:
    """Codes to send: a non-empty list of non-blank strings, as given."""
    if isinstance(codes, str) or not codes:
        raise ValueError("at least one code is needed")
    if any(not isinstance(code, str) or not code.strip() for code in codes):
        raise ValueError("every code must be non-blank text")
    return list(codes)


def _count(body: Any, key: str, path: str) -> int:
    value = body.get(key) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnknownSupplierError(
            None, 200, str(body)[:2000], f"expected an integer {key!r}", path
        )
    return value


class SellerClient:
    """The Gaming Goods Seller API over one injected ``httpx.AsyncClient``; implements
    :class:`services.suppliers.marketplace.Marketplace`.

    ``api_key`` is the seller key (``X-API-Key``, never logged nor put in errors);
    ``base_url`` the Partner API base. ``limiter``: share the buyer client's
    :class:`RateLimiter` (one budget of 100 requests per minute per IP)."""

    name = "gaming_goods"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str | SecretStr,
        base_url: str = DEFAULT_PARTNER_URL,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy(max_retry_after=65.0)
        self._sleep = sleep
        self.limiter = limiter or RateLimiter(sleep=sleep)

    def __repr__(self) -> str:
        return f"SellerClient(base_url={self._base!r})"

    # -- transport -------------------------------------------------------------------

    async def _send(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any, timeout: float
    ) -> httpx.Response:
        headers = {"Accept": "application/json", "X-API-Key": self._key.get_secret_value()}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = exact_json.dumps(body).encode()
        await self.limiter.wait()
        response = await self._http.request(
            method,
            f"{self._base}{path}",
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            content=content,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(self._timeouts.connect, timeout)),
        )
        self.limiter.observe(response)
        return response

    @staticmethod
    def _body(response: httpx.Response, path: str) -> Any:
        body = _parse(response.text)
        if response.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
            raise seller_error(response.status_code, response.text, path, response.headers)
        if body is None:
            raise UnknownSupplierError(
                None, response.status_code, response.text, "answer is not JSON", path
            )
        return body

    async def _safe(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """A call that gives the same answer when repeated: retried on timeouts,
        connection errors, 429 (after the limiter's wait) and 5xx."""
        timeout = self._timeouts.read
        response = await read_with_retries(
            lambda: self._send(method, path, params, body, timeout),
            lambda r: seller_error(r.status_code, r.text, path, r.headers),
            what=f"Gaming Goods {method} {path}", timeout=timeout, retry=self._retry,
            sleep=self._sleep,
            waited_elsewhere=lambda r, retry_after: r.status_code == 429 and retry_after is not None,
        )  # fmt: skip
        return self._body(response, path)

    async def _once(self, method: str, path: str, body: Any = None) -> Any:
        """A write that must not be repeated blindly. A 429 did nothing: it is sent again
        after the limiter's wait (``Retry-After`` up to ``max_retry_after`` s, at most
        ``attempts`` times), else raised as ``RateLimited``. Not connected ->
        ``SupplierConnectionError``; timeout, cut answer, 5xx or an unreadable 2xx ->
        ``WriteOutcomeUnknown``; a 4xx -> its typed error."""
        what = f"{method} {path}"
        timeout = self._timeouts.create_order
        for attempt in range(max(1, self._retry.attempts)):
            try:
                response = await self._send(method, path, None, body, timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise SupplierConnectionError(f"{what}: {type(exc).__name__}") from exc
            except httpx.TimeoutException as exc:
                raise WriteOutcomeUnknown(what, f"no answer in {timeout}s") from exc
            except httpx.TransportError as exc:
                raise WriteOutcomeUnknown(what, type(exc).__name__) from exc
            status = response.status_code
            if status == 429:
                error = seller_error(status, response.text, path, response.headers)
                assert isinstance(error, RateLimited)
                last = attempt + 1 >= max(1, self._retry.attempts)
                if (
                    last
                    or error.retry_after is None
                    or error.retry_after > self._retry.max_retry_after
                ):
                    raise error
                logger.warning(
                    "Gaming Goods %s rate limited; again in %.1fs", what, error.retry_after
                )
                continue  # the limiter blocks until Retry-After before the next send
            if status >= 500:
                error = seller_error(status, response.text, path, response.headers)
                raise WriteOutcomeUnknown(
                    what, f"HTTP {status} {error.code or ''}".strip()
                ) from error
            if status < 400 and _parse(response.text) is None:
                raise WriteOutcomeUnknown(what, f"unreadable answer (HTTP {status})")
            return self._body(response, path)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _model(model: type[_M], body: Any, path: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000] if body is not None else "",
                f"unexpected answer shape: {exc}", path,
            ) from exc  # fmt: skip

    def _product(self, body: Any, path: str) -> Listing:
        inner = body.get("product") if isinstance(body, dict) else None
        return self._model(Listing, inner, path)

    @staticmethod
    def _path(product_id: str, suffix: str = "") -> str:
        if not isinstance(product_id, str) or not product_id.strip():
            raise ValueError("a product id is needed")
        return f"/seller/products/{quote(product_id, safe='')}{suffix}"

    @staticmethod
    def _offer_path(product_id: str, suffix: str = "") -> str:
        if not isinstance(product_id, str) or not product_id.strip():
            raise ValueError("a product id is needed")
        return f"/seller/offers/{quote(product_id, safe='')}{suffix}"

    # -- dashboard and listings ------------------------------------------------------

    async def dashboard(self) -> SellerDashboard:
        """``GET /seller/dashboard``: products (total, active, pending), sales, and
        pending and available rewards (integer cents)."""
        path = "/seller/dashboard"
        return self._model(SellerDashboard, await self._safe("GET", path), path)

    async def listings(self, *, limit: int = 20, offset: int = 0) -> ListingPage:
        """``GET /seller/products?limit=&offset=``: one page of the seller's listings;
        ``limit`` is capped to 1..100 (default 20), ``offset`` at least 0."""
        path = "/seller/products"
        params = {"limit": max(1, min(MAX_PAGE_SIZE, limit)), "offset": max(0, offset)}
        return self._model(ListingPage, await self._safe("GET", path, params), path)

    async def listing(self, product_id: str) -> Listing:
        """``GET /seller/products/{productId}``: one listing with its moderation status
        and stock. Raises ``ListingNotFound`` (also for another seller's product)."""
        path = self._path(product_id)
        return self._model(Listing, await self._safe("GET", path), path)

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
        """``POST /seller/products``: a new listing, ``pending`` moderation. ``price`` is
        decimal ``currency`` units (a ``Decimal`` of whole cents: ``TypeError`` /
        ``ValueError`` otherwise, nothing sent); ``delivery_type`` ``AUTO`` with
        ``codes`` or ``MANUAL`` without. Sent once: a lost answer raises
        ``WriteOutcomeUnknown`` (look in :meth:`listings` before creating it again).
        A refusal (a title in use...) raises ``RuleViolation`` or ``InvalidRequestBody``."""
        if delivery_type not in ("AUTO", "MANUAL"):
            raise ValueError(f"delivery_type must be AUTO or MANUAL, not {delivery_type!r}")
        body: dict[str, Any] = {"name": name}
        optional = {"description": description, "category": category, "brand": brand}
        body |= {key: value for key, value in optional.items() if value is not None}
        body |= {"price": _price(price), "currency": currency, "delivery_type": delivery_type}
        if image_url is not None:
            body["image_url"] = image_url
        if codes is not None:
            body["codes"] = _codes(codes)
        path = "/seller/products"
        return self._product(await self._once("POST", path, body), path)

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
        """``PUT /seller/products/{productId}`` with the fields given (``is_active=True``
        re-enables a deactivated listing). The answer's ``moderation_status`` says
        whether the edit sent the listing back to moderation. Repeating it gives the same
        result, so it is retried like a read. Raises ``ListingNotFound``,
        ``InvalidRequestBody``; ``ValueError`` when nothing is to change."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if description is not None:
            body["description"] = description
        if price is not None:
            body["price"] = _price(price)
        if image_url is not None:
            body["image_url"] = image_url
        if is_active is not None:
            body["is_active"] = bool(is_active)
        if not body:
            raise ValueError("nothing to update")
        path = self._path(product_id)
        return self._product(await self._safe("PUT", path, body=body), path)

    async def deactivate(self, product_id: str) -> Listing:
        """``POST /seller/products/{productId}/deactivate``: off sale (``is_active``
        false); :meth:`update_listing` with ``is_active=True`` puts it back. Raises
        ``ListingNotFound``."""
        path = self._path(product_id, "/deactivate")
        return self._product(await self._safe("POST", path), path)

    async def upload_codes(self, product_id: str, codes: list[str]) -> CodesUploaded:
        """``POST /seller/products/{productId}/codes``: add activation codes to an AUTO
        listing; answers ``uploaded`` and ``stock_available``. Sent once. Raises
        ``RuleViolation`` (a MANUAL listing, a duplicate code), ``ListingNotFound``,
        ``WriteOutcomeUnknown``."""
        path = self._path(product_id, "/codes")
        body = {"codes": _codes(codes)}
        return self._model(CodesUploaded, await self._once("POST", path, body), path)

    # -- offers (C2C) ----------------------------------------------------------------

    async def add_offers(self, product_id: str, price_cents: int, codes: list[str]) -> int:
        """``POST /seller/offers``: codes on any marketplace product at ``price_cents``
        (an ``int`` of euro cents: ``TypeError`` / ``ValueError`` otherwise, nothing
        sent). Returns ``added``. Sent once. Raises ``ListingNotFound`` (no such
        product), ``RuleViolation`` (a duplicate code), ``WriteOutcomeUnknown``."""
        if not isinstance(product_id, str) or not product_id.strip():
            raise ValueError("a product id is needed")
        body = {
            "product_id": product_id,
            "price_cents": _cents(price_cents),
            "codes": _codes(codes),
        }
        path = "/seller/offers"
        return _count(await self._once("POST", path, body), "added", path)

    async def offers(self, *, page: int = 1, page_size: int = 20) -> OfferPage:
        """``GET /seller/offers?page=&page_size=``: the seller's offers, one row per
        product and price (``available``, ``sold``); ``page`` from 1, ``page_size``
        capped to 1..100."""
        path = "/seller/offers"
        params = {"page": max(1, page), "page_size": max(1, min(MAX_PAGE_SIZE, page_size))}
        return self._model(OfferPage, await self._safe("GET", path, params), path)

    async def update_offer_price(
        self, product_id: str, old_price_cents: int, new_price_cents: int
    ) -> int:
        """``PATCH /seller/offers/{productId}/price``: every unsold offer of this seller on
        the product at ``old_price_cents`` moves to ``new_price_cents`` (ints of euro
        cents). Returns ``updated`` (0 when none was at the old price). Sent once."""
        body = {
            "old_price_cents": _cents(old_price_cents, "old_price_cents"),
            "new_price_cents": _cents(new_price_cents, "new_price_cents"),
        }
        path = self._offer_path(product_id, "/price")
        return _count(await self._once("PATCH", path, body), "updated", path)

    async def delete_offers(self, product_id: str) -> int:
        """``DELETE /seller/offers/{productId}``: removes every unsold offer of this seller
        on the product (sold ones stay). Returns ``deleted``. Sent once (a repeat would
        answer 0 and hide what the first did)."""
        path = self._offer_path(product_id)
        return _count(await self._once("DELETE", path), "deleted", path)
