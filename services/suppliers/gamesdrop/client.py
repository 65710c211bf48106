"""Async client for the GamesDrop partner API (current and older guide editions).

One :class:`GamesDropClient` owns an injected ``httpx.AsyncClient``. Every call has a
timeout; reads retry on connection errors, HTTP 429 and 5xx with capped backoff;
create-order never retries: a lost answer raises
:class:`~services.suppliers.errors.OrderOutcomeUnknown`, resolved by
:meth:`GamesDropClient.resolve_order` with the same ``transactionId``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from math import ceil
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from services import exact_json
from services.suppliers.base import Capability, Customer, OrderAttempt
from services.suppliers.errors import (
    ERROR_BY_CODE,
    FieldValidationFailed,
    FixRequestError,
    InvalidToken,
    OfferNotFound,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimited,
    RetryLaterError,
    SupplierAPIError,
    SupplierConnectionError,
    SupplierError,
    TransactionDuplicate,
    UnknownSupplierError,
)
from services.suppliers.models import (
    Balance,
    CatalogueRow,
    GameServer,
    OfferDetails,
    PlayerCheck,
    SupplierOrder,
    SyncPage,
    TelegramUserInfo,
    TransactionPage,
)
from services.suppliers.retry import RetryPolicy, parse_retry_after, read_with_retries

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

DEFAULT_BASE_URL = "https://partner.gamesdrop.io"
DEFAULT_USER_INFO_URL = "https://gamesdrop.io/api/aggregator/a6/telegram/user-info"

_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
_CODE_IN_TEXT = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")


class CatalogueIncomplete(SupplierError):
    """A sync run's distinct offer ids did not add up to the ``count`` the supplier announced
    (``fetched`` counts distinct ``offerGroupId``s)."""

    def __init__(self, expected: int, fetched: int) -> None:
        super().__init__(
            f"catalogue sync fetched {fetched} distinct offers, supplier announced {expected}"
        )
        self.expected = expected
        self.fetched = fetched


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` for every read call, ``create_order`` for create-order."""

    connect: float = 5.0
    read: float = 8.0
    create_order: float = 25.0


def _parse_json(text: str) -> Any:
    try:
        return exact_json.loads(text) if text.strip() else None
    except ValueError:
        return None


def read_error_envelope(body: Any) -> tuple[str | None, str | None]:
    """Extract ``(code, message)`` from any error envelope seen in the field.

    Accepts ``{"error": {"code", "message"}}``, a top-level ``code``, ``error`` as a
    string, and a bare ``message`` that is itself a code (FIELD-NOTES.md, GamesDrop).
    """
    if not isinstance(body, dict):
        return None, None
    code: str | None = None
    message: str | None = None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
    elif isinstance(error, str):
        if _CODE_PATTERN.match(error):
            code = error
        else:
            message = error
    if code is None and isinstance(body.get("code"), str):
        code = body["code"]
    if message is None and isinstance(body.get("message"), str):
        message = body["message"]
    if code is None and message:
        found = _CODE_IN_TEXT.search(message)
        if found and found.group(1) in ERROR_BY_CODE:
            code = found.group(1)
    return code, message


def wire_offer_id(offer_id: str | int) -> int:
    """GamesDrop's ``offerId`` is a JSON number: the shop's text id as an int. Raises
    :class:`OfferNotFound` for text that is not a GamesDrop id (no request is sent)."""
    text = str(offer_id).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise OfferNotFound(None, 404, "", f"{offer_id!r} is not a GamesDrop offer id")
    return int(text)


def _wire_order_id(order_id: str | int) -> int | str:
    """GamesDrop order ids are numbers on the wire; text that is not one is sent as is."""
    text = str(order_id).strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _has_error_envelope(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("error"))


_FIELD_VALIDATION = re.compile(r"field validation", re.IGNORECASE)


def error_from_response(
    http_status: int, text: str, endpoint: str, headers: httpx.Headers | None = None
) -> SupplierAPIError:
    """Map an error answer to its typed exception (unknown codes included).

    The HTTP status decides first: a 429 is :class:`RateLimited` whatever code the body
    carries; a 5xx is a :class:`RetryLaterError` (its documented retry-later class when the
    code names one), except a 5xx whose message says a field failed validation
    (:class:`FieldValidationFailed`) or whose code is a documented request error. Other
    answers map by their code. ``retry_after`` comes from the ``Retry-After`` header.
    """
    code, message = read_error_envelope(_parse_json(text))
    if http_status == 429:
        return RateLimited(
            code, http_status, text, message, endpoint, retry_after=parse_retry_after(headers)
        )
    known = ERROR_BY_CODE.get(code or "")
    if http_status >= 500:
        if message and _FIELD_VALIDATION.search(message):
            return FieldValidationFailed(None, http_status, text, message, endpoint)
        if known is not None and issubclass(known, FixRequestError):
            return known(code, http_status, text, message, endpoint)
        retry_class = known if known is not None and issubclass(known, RetryLaterError) else None
        return (retry_class or RetryLaterError)(
            code, http_status, text, message, endpoint, retry_after=parse_retry_after(headers)
        )
    if known is not None:
        return known(code, http_status, text, message, endpoint)
    if code is None and http_status == 401:
        return InvalidToken(None, http_status, text, message, endpoint)
    return UnknownSupplierError(code, http_status, text, message, endpoint)


class GamesDropClient:
    """GamesDrop partner API over one injected ``httpx.AsyncClient``.

    ``token`` is the shop API token, sent bare in ``Authorization`` (never logged, never
    in an exception). ``base_url`` defaults to ``https://partner.gamesdrop.io``;
    ``user_info_url`` is the Telegram user-info endpoint on its own host.
    Implements :class:`services.suppliers.base.Supplier`.
    """

    name = "gamesdrop"
    short = "g"
    capabilities = frozenset(
        {
            Capability.CATALOGUE_SYNC,
            Capability.PLAYER_CHECK,
            Capability.SERVERS,
            Capability.BALANCE,
            Capability.TRANSACTIONS,
            Capability.TELEGRAM_USERS,
            Capability.IDEMPOTENT_CREATE,
        }
    )
    #: the Telegram bot a Stars recipient must have started before user-info finds them
    helper_bot = "@gamesdrop_api_bot"

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_info_url: str = DEFAULT_USER_INFO_URL,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        sync_concurrency: int = 4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._base_url = base_url.rstrip("/")
        self._user_info_url = user_info_url
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy()
        self._sync_concurrency = max(1, sync_concurrency)
        self._sleep = sleep
        self._balance_path: str | None = None
        self._servers_path: str | None = None

    def __repr__(self) -> str:
        return f"GamesDropClient(base_url={self._base_url!r}, token=**********)"

    # -- transport -------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, body: Any, params: dict[str, Any] | None, timeout: float
    ) -> httpx.Response:
        headers = {"Authorization": self._token.get_secret_value(), "Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = exact_json.dumps(body).encode()
        return await self._http.request(
            method,
            url,
            content=content,
            params=params,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(self._timeouts.connect, timeout)),
        )

    async def _read(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        url: str | None = None,
    ) -> Any:
        """A safe-to-repeat call: retried on connection errors, 429 and 5xx, waiting the
        ``Retry-After`` the supplier gave (raised at once when it is over ``max_retry_after``)."""
        target = url or f"{self._base_url}{path}"
        response = await read_with_retries(
            lambda: self._send(method, target, body, params, self._timeouts.read),
            lambda r: error_from_response(r.status_code, r.text, path, r.headers),
            what=f"GamesDrop {path}", timeout=self._timeouts.read, retry=self._retry,
            sleep=self._sleep,
        )  # fmt: skip
        return self._body_or_error(response, path)

    def _body_or_error(self, response: httpx.Response, path: str) -> Any:
        body = _parse_json(response.text)
        if response.status_code >= 400 or _has_error_envelope(body):
            raise error_from_response(response.status_code, response.text, path, response.headers)
        if body is None:
            raise UnknownSupplierError(
                None, response.status_code, response.text, "answer is not JSON", path
            )
        return body

    @staticmethod
    def _model(model: type[_M], body: Any, path: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000], f"unexpected answer shape: {exc}", path
            ) from exc

    # -- balance ---------------------------------------------------------------------

    async def get_balance(self) -> Balance:
        """``GET /api/v1/offers/balance``, falling back to ``GET /api/v1/balance`` (older
        guide) where the first answers 404. Amounts are ``Decimal`` USD."""
        paths = (
            [self._balance_path]
            if self._balance_path
            else [
                "/api/v1/offers/balance",
                "/api/v1/balance",
            ]
        )
        for index, path in enumerate(paths):
            try:
                body = await self._read("GET", path)
            except SupplierAPIError as exc:
                if exc.http_status == 404 and index + 1 < len(paths):
                    logger.info("GamesDrop %s not found, trying %s", path, paths[index + 1])
                    continue
                raise
            self._balance_path = path
            return self._model(Balance, body, path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage:
        """``GET /api/v1/balance/transactions?page=&limit=``: one page of balance history."""
        path = "/api/v1/balance/transactions"
        body = await self._read("GET", path, params={"page": page, "limit": limit})
        return self._model(TransactionPage, body, path)

    # -- catalogue -------------------------------------------------------------------

    async def find_offer(self, offer_id: str) -> OfferDetails:
        """``POST /api/v1/offers/find-one``: the latest purchase price of ``offer_id``.

        Raises ``OfferNotFound`` when the offer is gone or hidden from this account.
        """
        path = "/api/v1/offers/find-one"
        return self._model(
            OfferDetails,
            await self._read("POST", path, {"offerId": wire_offer_id(offer_id)}),
            path,
        )

    async def sync_page(
        self,
        page: int,
        limit: int = 1000,
        *,
        category: str | None = None,
        search: str | None = None,
    ) -> SyncPage:
        """``POST /api/v1/offers/sync`` for one 1-based ``page`` of ``limit`` rows."""
        path = "/api/v1/offers/sync"
        body: dict[str, Any] = {"limit": limit, "page": page}
        if category:
            body["category"] = category
        if search:
            body["search"] = search
        return self._model(SyncPage, await self._read("POST", path, body), path)

    async def iter_catalogue(
        self, *, page_size: int = 1000, category: str | None = None, search: str | None = None
    ) -> AsyncIterator[CatalogueRow]:
        """Every sync row, page by page in order, at most ``sync_concurrency`` pages in flight.

        Pages are read until one comes back short or empty, never merely up to
        ``ceil(count / page_size)``: the supplier has been seen repeating a row across
        adjacent pages, which pushes the last offers onto an extra page. Duplicate
        ``offerGroupId`` rows are dropped (first one kept). After the last page raises
        :class:`CatalogueIncomplete` when the distinct ids differ from ``count`` (or the
        pages run on far past it), so a caller can refuse to apply a partial catalogue.
        """
        page_size = max(1, page_size)
        first = await self.sync_page(1, page_size, category=category, search=search)
        expected_pages = max(1, ceil(first.count / page_size))
        # A supplier that never answers a short page (ignoring ``page``) must not loop forever.
        max_pages = 2 * expected_pages + 2
        # Pages past the announced ones are asked for one at a time, only after a full one.
        last_to_ask = expected_pages
        seen: set[int] = set()
        duplicates = 0
        pending: deque[asyncio.Task[SyncPage]] = deque()
        next_page = 2
        runaway = False

        def schedule() -> None:
            nonlocal next_page
            while next_page <= last_to_ask and len(pending) < self._sync_concurrency:
                pending.append(
                    asyncio.create_task(
                        self.sync_page(next_page, page_size, category=category, search=search)
                    )
                )
                next_page += 1

        try:
            schedule()
            current, number = first, 1
            while True:
                for row in current.rows:
                    if row.offer_group_id in seen:
                        duplicates += 1
                        continue
                    seen.add(row.offer_group_id)
                    yield row
                if len(current.rows) < page_size:
                    break
                if number >= max_pages:
                    logger.error("GamesDrop sync pages still full at page %d; giving up", number)
                    runaway = True
                    break
                last_to_ask = max(last_to_ask, number + 1)
                schedule()
                current, number = await pending.popleft(), number + 1
                schedule()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if duplicates:
            logger.warning("GamesDrop sync dropped %d duplicate offerGroupId rows", duplicates)
        if runaway or len(seen) != first.count:
            raise CatalogueIncomplete(first.count, len(seen))

    async def get_servers(self, offer_id: str) -> list[GameServer]:
        """``POST /api/v1/offers/servers`` (or ``/api/v1/partner/product-offer/servers``
        where the short path answers 404): ``{label: serverId}`` as a list, in order."""
        paths = (
            [self._servers_path]
            if self._servers_path
            else [
                "/api/v1/offers/servers",
                "/api/v1/partner/product-offer/servers",
            ]
        )
        for index, path in enumerate(paths):
            try:
                body = await self._read("POST", path, {"offerId": wire_offer_id(offer_id)})
            except SupplierAPIError as exc:
                if exc.http_status == 404 and exc.code is None and index + 1 < len(paths):
                    continue
                raise
            self._servers_path = path
            if not isinstance(body, dict):
                raise UnknownSupplierError(None, 200, str(body), "servers is not an object", path)
            return [GameServer(str(label), str(server_id)) for label, server_id in body.items()]
        raise AssertionError("unreachable")  # pragma: no cover

    async def check_player(
        self, offer_id: str, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck:
        """``POST /api/v1/offers/check-game-data``: ``VALID`` with the player's login or
        ``INVALID`` (with a message, possibly Russian). Sends the fields both flat (current
        guide) and under ``customer`` (older guide)."""
        path = "/api/v1/offers/check-game-data"
        customer: dict[str, Any] = {"gameUserId": game_user_id}
        if game_server_id:
            customer["gameServerId"] = game_server_id
        body = {"offerId": wire_offer_id(offer_id), **customer, "customer": customer}
        return self._model(PlayerCheck, await self._read("POST", path, body), path)

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo:
        """Telegram user-info (its own host): resolves ``@username``/``username``/id to a
        numeric id, present only when the user has talked to @gamesdrop_api_bot."""
        path = "telegram/user-info"
        body = await self._read("POST", path, {"username": username_or_id}, url=self._user_info_url)
        return self._model(TelegramUserInfo, body, path)

    # -- orders ----------------------------------------------------------------------

    async def create_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """``POST /api/v1/offers/create-order``. Never retried.

        ``price`` is the GamesDrop price last received from find-one/sync, sent with the
        exact digits it came with. ``transaction_id`` is the idempotency key.
        Raises the typed error for a refusal (``WrongPrice``, ``OutOfStock``,
        ``InsufficientBalance``, ``TransactionDuplicate``...); :class:`RateLimited` for
        any 429 (send again later with the same id, after its ``retry_after``); and
        :class:`OrderOutcomeUnknown` when the outcome is not known: a timeout, a broken
        connection, any 5xx whatever its code (the order may have been made), or an
        unreadable body. A 5xx saying a field failed validation is
        :class:`FieldValidationFailed`, a request error.
        """
        path = "/api/v1/offers/create-order"
        if not isinstance(price, Decimal):
            raise TypeError("price must be the Decimal received from the supplier")
        body: dict[str, Any] = {
            "offerId": wire_offer_id(offer_id),
            "price": price,
            "transactionId": transaction_id,
        }
        if customer_body := customer.wire():
            body["customer"] = customer_body
        try:
            response = await self._send(
                "POST", f"{self._base_url}{path}", body, None, self._timeouts.create_order
            )
        except httpx.ConnectError as exc:
            # The connection was never made, so the request cannot have been received.
            raise SupplierConnectionError(f"{path}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise OrderOutcomeUnknown(
                transaction_id, f"no answer in {self._timeouts.create_order}s"
            ) from exc
        except httpx.TransportError as exc:
            raise OrderOutcomeUnknown(transaction_id, type(exc).__name__) from exc
        parsed = _parse_json(response.text)
        if response.status_code < 400 and parsed is None:
            raise OrderOutcomeUnknown(transaction_id, "unreadable answer")
        if response.status_code == 429 or response.status_code >= 500:
            error = error_from_response(response.status_code, response.text, path, response.headers)
            if response.status_code == 429 or isinstance(error, FixRequestError):
                raise error
            raise OrderOutcomeUnknown(
                transaction_id,
                f"HTTP {response.status_code} {error.code or 'without a code'}",
                retry_after=getattr(error, "retry_after", None),
            ) from error
        answer = self._body_or_error(response, path)
        try:
            return SupplierOrder.model_validate(answer)
        except ValidationError as exc:
            raise OrderOutcomeUnknown(transaction_id, f"unexpected answer shape: {exc}") from exc

    async def get_order(
        self,
        *,
        order_id: str | None = None,
        transaction_id: str | None = None,
        attempt: OrderAttempt | None = None,
    ) -> SupplierOrder:
        """``POST /api/v1/offers/order-status`` by ``orderId`` (sent as the JSON number
        GamesDrop gave) or by ``transactionId``. ``attempt`` is not needed (GamesDrop finds
        orders by ``transactionId``) and is ignored.

        Raises ``OrderNotFound`` when the supplier has no such order.
        """
        if order_id is None and transaction_id is None:
            raise ValueError("order_id or transaction_id is required")
        path = "/api/v1/offers/order-status"
        body: dict[str, Any] = (
            {"orderId": _wire_order_id(order_id)}
            if order_id is not None
            else {"transactionId": transaction_id}
        )
        return self._model(SupplierOrder, await self._read("POST", path, body), path)

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        """GamesDrop returns a key order's key with the order itself: no
        ``KEYS_SEPARATE`` capability."""
        raise NotImplementedError("GamesDrop delivers keys with the order")

    async def resolve_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Settle an order whose create-order outcome is unknown, without ever ordering twice.

        Asks order-status by ``transaction_id``; when the supplier has no such order,
        sends create-order again with the *same* ``transaction_id`` (the supplier's
        idempotency key), and a ``TRANSACTION_DUPLICATE`` answer means the first one
        exists, so its status is read again. Raises what create-order raises when the
        re-send is refused (the order then surely does not exist), and
        ``OrderOutcomeUnknown`` when it is still unknown.
        """
        try:
            return await self.get_order(transaction_id=transaction_id)
        except OrderNotFound:
            logger.info(
                "order %s unknown to GamesDrop, re-sending with the same id", transaction_id
            )
        try:
            return await self.create_order(offer_id, price, transaction_id, customer)
        except TransactionDuplicate:
            return await self.get_order(transaction_id=transaction_id)
