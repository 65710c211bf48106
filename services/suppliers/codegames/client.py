"""Async client for the CodeGames API hub (``codegames-api.txt``, FIELD-NOTES.md).

CodeGames has the GamesDrop request shapes but only four endpoints, all ``POST``:
``/api/v1/offers/find-one``, ``/api/v1/offers/create-order``,
``/api/v1/offers/order-status`` and ``/api/v1/offers/keys``. There is no catalogue sync:
the shop owner configures the offer ids and refreshes each by find-one.

One :class:`CodeGamesClient` owns an injected ``httpx.AsyncClient``. Every call has a
timeout; reads retry on connection errors, HTTP 429 and 5xx with capped backoff, waiting
the ``Retry-After`` the vendor gave; create-order is never retried: a lost answer, a read
timeout or a 5xx raises :class:`~services.suppliers.errors.OrderOutcomeUnknown`, which the
shop settles by order-status on the vendor's schedule (:attr:`CodeGamesClient.recheck_limit`
checks, :attr:`CodeGamesClient.recheck_interval` seconds apart).

Two answer envelopes are understood on every endpoint:

* the documented one: the body itself on success; on failure an HTTP error status with
  ``{"error": {"code", "message"}}`` (or a top-level ``code``/``error``/``message``, as the
  same operator's GamesDrop answers);
* the older edition: ``{"status": "OK" | "TXN_DUPLICATE" | "WRONG_PRICE" | ..., "comment":
  ...}``, whatever the HTTP status. ``OK`` carries the answer's fields beside ``status``
  (or under ``data``/``result``); an order's own status then comes as ``orderStatus``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

import httpx
from pydantic import SecretStr, ValidationError

from services import exact_json
from services.suppliers.base import Capability, Customer, OrderAttempt
from services.suppliers.errors import (
    ERROR_BY_CODE,
    FieldValidationFailed,
    FixRequestError,
    InvalidToken,
    OrderAlreadyCanceled,
    OrderAlreadyRefunded,
    OrderNotCompleted,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimited,
    RetryLaterError,
    SupplierAPIError,
    SupplierConnectionError,
    TransactionDuplicate,
    UnknownSupplierError,
)
from services.suppliers.models import (
    Balance,
    CatalogueRow,
    GameServer,
    OfferDetails,
    OrderStatus,
    PlayerCheck,
    SupplierOrder,
    TelegramUserInfo,
    TransactionPage,
)
from services.suppliers.retry import RetryPolicy, parse_retry_after, read_with_retries

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.codegames.gg"

FIND_ONE = "/api/v1/offers/find-one"
CREATE_ORDER = "/api/v1/offers/create-order"
ORDER_STATUS = "/api/v1/offers/order-status"
KEYS = "/api/v1/offers/keys"

#: After a 5xx or a read timeout on create-order the vendor asks merchants to re-check
#: the order's status up to this many times (FIELD-NOTES.md, CodeGames older edition)...
RECHECK_LIMIT = 100
#: ...this many seconds apart (2 minutes); then the order goes to the admins.
RECHECK_INTERVAL_SECONDS = 120.0

#: Older-edition status codes that are not the shared code of the same meaning.
LEGACY_CODES: dict[str, type[SupplierAPIError]] = {"TXN_DUPLICATE": TransactionDuplicate}

_ORDER_STATUSES = frozenset(status.value for status in OrderStatus)
_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
_CODE_IN_TEXT = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
_FIELD_VALIDATION = re.compile(r"field validation", re.IGNORECASE)


class KeysNotReturned(FixRequestError):
    """``/api/v1/offers/keys`` has no keys for this order: the offer returns no data to
    the customer (``isReturnDataForCustomer: false``, a top-up), so the endpoint refuses.
    Asking again will not help. ``http_status`` is 0 when the client refused locally,
    without sending anything, because the order already said it is a top-up."""

    default_code = "KEYS_NOT_RETURNED"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` for find-one, order-status and keys; ``create_order`` for
    create-order (FIELD-NOTES.md: 5-10 s reads, 15-30 s create-order)."""

    connect: float = 5.0
    read: float = 8.0
    create_order: float = 25.0


def _parse_json(text: str) -> Any:
    try:
        return exact_json.loads(text) if text.strip() else None
    except ValueError:
        return None


def is_legacy_envelope(body: Any) -> bool:
    """Whether ``body`` is the older ``{"status": "OK" | <code>, "comment": ...}`` envelope:
    a ``status`` that is not an order status and is ``OK``, a known code, or comes with a
    ``comment``. (An order body with an unheard-of order status is not one: on
    create-order it must stay an unknown outcome, never a refusal.)"""
    if not isinstance(body, dict):
        return False
    status = body.get("status")
    if not isinstance(status, str) or status in _ORDER_STATUSES:
        return False
    return status == "OK" or "comment" in body or error_class(status) is not None


def read_error(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` of an error answer in any envelope, or ``(None, None)``.

    Older edition: a ``status`` other than ``OK`` is the code, ``comment`` the message.
    Documented (GamesDrop's operator): ``{"error": {"code", "message"}}``, a top-level
    ``code``, ``error`` as a string, or a ``message`` naming a documented code.
    """
    if not isinstance(body, dict):
        return None, None
    if is_legacy_envelope(body):
        comment = body.get("comment")
        return body["status"], comment if isinstance(comment, str) and comment else None
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
        if found and (found.group(1) in ERROR_BY_CODE or found.group(1) in LEGACY_CODES):
            code = found.group(1)
    return code, message


def _is_error_body(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if is_legacy_envelope(body):
        return body["status"] != "OK"
    return bool(body.get("error"))


def error_class(code: str | None) -> type[SupplierAPIError] | None:
    """The shared exception class of a documented or older-edition code, else ``None``."""
    if not code:
        return None
    return LEGACY_CODES.get(code) or ERROR_BY_CODE.get(code)


def error_from_response(
    http_status: int, text: str, endpoint: str, headers: httpx.Headers | None = None
) -> SupplierAPIError:
    """Map an error answer (either envelope, any HTTP status) to its typed exception.

    The HTTP status decides first: 429 is :class:`RateLimited`; a 5xx is a
    :class:`RetryLaterError` unless its message says a field failed validation
    (:class:`FieldValidationFailed`) or its code is a request error. Otherwise the code
    decides (``TXN_DUPLICATE`` is :class:`TransactionDuplicate`); a 401 without a code is
    :class:`InvalidToken`; anything else :class:`UnknownSupplierError`. ``Retry-After``
    becomes ``retry_after``.
    """
    code, message = read_error(_parse_json(text))
    if http_status == 429:
        return RateLimited(
            code, http_status, text, message, endpoint, retry_after=parse_retry_after(headers)
        )
    known = error_class(code)
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


def unwrap(body: Any) -> Any:
    """The answer's fields: the body itself (documented envelope), or for an older ``OK``
    envelope its ``data``/``result`` object, else its other fields (``orderStatus``
    becomes the order's ``status``)."""
    if not is_legacy_envelope(body):
        return body
    for name in ("data", "result"):
        if isinstance(body.get(name), dict):
            inner = dict(body[name])
            if "orderStatus" in inner and "status" not in inner:
                inner["status"] = inner.pop("orderStatus")
            return inner
    inner = {k: v for k, v in body.items() if k not in ("status", "comment")}
    if "orderStatus" in inner:
        inner["status"] = inner.pop("orderStatus")
    return inner


def _number_or_text(value: str) -> int | str:
    """Ids are text in the shop; the vendor's examples send them as JSON numbers."""
    return int(value) if value.isdigit() else value


class CodeGamesClient:
    """The CodeGames API hub over one injected ``httpx.AsyncClient``.

    ``token`` is the shop token, sent bare in ``Authorization`` as on the operator's
    GamesDrop API (never logged, never in an exception). Implements
    :class:`services.suppliers.base.Supplier` with :attr:`capabilities`
    ``KEYS_SEPARATE`` and ``IDEMPOTENT_CREATE``; balance, transactions, catalogue sync,
    servers, player check and Telegram user lookup raise ``NotImplementedError`` (the
    document has no such endpoints).

    Re-check schedule after an unknown create-order outcome: :attr:`recheck_limit`
    order-status checks, :attr:`recheck_interval` seconds apart, then hand the order to
    the admins.
    """

    name = "codegames"
    short = "c"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.KEYS_SEPARATE, Capability.IDEMPOTENT_CREATE}
    )
    #: seconds between order-status checks of an order whose create-order outcome is unknown
    recheck_interval: float = RECHECK_INTERVAL_SECONDS
    #: at most this many such checks, then the order goes to the admins
    recheck_limit: int = RECHECK_LIMIT

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._base_url = base_url.rstrip("/")
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"CodeGamesClient(base_url={self._base_url!r}, token=**********)"

    # -- transport -------------------------------------------------------------------

    async def _send(self, path: str, body: dict[str, Any], timeout: float) -> httpx.Response:
        return await self._http.post(
            f"{self._base_url}{path}",
            content=exact_json.dumps(body).encode(),
            headers={
                "Authorization": self._token.get_secret_value(),
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=min(self._timeouts.connect, timeout)),
        )

    async def _request(self, path: str, body: dict[str, Any]) -> Any:
        """A safe-to-repeat ``POST``: retried on connection errors, 429 and 5xx (waiting
        the ``Retry-After`` given; raised at once when it is over ``max_retry_after``).
        Returns the answer's fields (:func:`unwrap`); raises the typed error otherwise."""
        response = await read_with_retries(
            lambda: self._send(path, body, self._timeouts.read),
            lambda r: error_from_response(r.status_code, r.text, path, r.headers),
            what=f"CodeGames {path}", timeout=self._timeouts.read, retry=self._retry,
            sleep=self._sleep,
        )  # fmt: skip
        return self._body_or_error(response, path)

    @staticmethod
    def _body_or_error(response: httpx.Response, path: str) -> Any:
        body = _parse_json(response.text)
        if response.status_code >= 400 or _is_error_body(body):
            raise error_from_response(response.status_code, response.text, path, response.headers)
        if not isinstance(body, dict):
            raise UnknownSupplierError(
                None, response.status_code, response.text, "answer is not a JSON object", path
            )
        return unwrap(body)

    # -- find-one --------------------------------------------------------------------

    async def find_offer(self, offer_id: str) -> OfferDetails:
        """``POST /api/v1/offers/find-one`` ``{"offerId": <number>}``: the latest price.

        ``required: ["gameUserId"]`` sets ``requires_game_user_id`` (a top-up);
        ``isReturnDataForCustomer`` says whether the offer returns a key. Raises
        ``OfferNotFound`` when the offer is gone.
        """
        body = await self._request(FIND_ONE, {"offerId": _number_or_text(offer_id)})
        try:
            return OfferDetails.model_validate(body)
        except ValidationError as exc:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000], f"unexpected answer: {exc}", FIND_ONE
            ) from exc

    # -- orders ----------------------------------------------------------------------

    async def create_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """``POST /api/v1/offers/create-order``. Never retried.

        Sends ``{"offerId", "price", "transactionId"}`` plus ``customer`` (``gameUserId``,
        and ``gameServerId``/``email`` when set) only when the customer has a field.
        ``price`` is the find-one price, written back with its exact digits. A COMPLETED
        key order carries ``key``; a PROCESSING one has none yet.

        Raises the typed refusal (``WrongPrice``, ``OfferNotFound``, ``InsufficientBalance``,
        ``TransactionDuplicate`` (also ``TXN_DUPLICATE``): an order with this transaction
        id exists...), :class:`RateLimited` on 429 (nothing was made; send again later with
        the same id), :class:`SupplierConnectionError` when no connection was made, and
        :class:`OrderOutcomeUnknown` after a read timeout, a cut connection, any 5xx or an
        unreadable answer: re-check by :meth:`get_order` on the vendor's schedule
        (:attr:`recheck_limit` times, :attr:`recheck_interval` s apart), never re-create
        with another id.
        """
        if not isinstance(price, Decimal):
            raise TypeError("price must be the Decimal received from find-one")
        body: dict[str, Any] = {
            "offerId": _number_or_text(offer_id),
            "price": price,
            "transactionId": transaction_id,
        }
        if customer_body := customer.wire():
            body["customer"] = customer_body
        try:
            response = await self._send(CREATE_ORDER, body, self._timeouts.create_order)
        except httpx.ConnectError as exc:
            raise SupplierConnectionError(f"{CREATE_ORDER}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise OrderOutcomeUnknown(
                transaction_id, f"no answer in {self._timeouts.create_order}s"
            ) from exc
        except httpx.TransportError as exc:
            raise OrderOutcomeUnknown(transaction_id, type(exc).__name__) from exc
        if response.status_code == 429 or response.status_code >= 500:
            error = error_from_response(
                response.status_code, response.text, CREATE_ORDER, response.headers
            )
            if response.status_code == 429 or isinstance(error, FixRequestError):
                raise error
            raise OrderOutcomeUnknown(
                transaction_id,
                f"HTTP {response.status_code} {error.code or 'without a code'}",
                retry_after=getattr(error, "retry_after", None),
            ) from error
        if response.status_code < 400 and _parse_json(response.text) is None:
            raise OrderOutcomeUnknown(transaction_id, "unreadable answer")
        answer = self._body_or_error(response, CREATE_ORDER)
        if "status" not in answer:
            answer = {**answer, "status": OrderStatus.PROCESSING.value}  # "OK": made, status to ask
        try:
            return SupplierOrder.model_validate(answer)
        except ValidationError as exc:
            raise OrderOutcomeUnknown(transaction_id, f"unexpected answer: {exc}") from exc

    async def get_order(
        self,
        *,
        order_id: str | None = None,
        transaction_id: str | None = None,
        attempt: OrderAttempt | None = None,
    ) -> SupplierOrder:
        """``POST /api/v1/offers/order-status`` by ``{"orderId"}`` (documented), else by
        ``{"transactionId"}`` (the operator's shared shape; the only id known after an
        unknown create-order outcome). ``attempt`` is not needed: the transaction id finds
        the order.

        The answer may be minimal, ``{status, isReturnDataForCustomer}``: the requested
        ``orderId`` is then filled in. Statuses: PROCESSING, COMPLETED, CANCELED, REFUND.
        Raises ``OrderNotFound`` when the vendor has no such order.
        """
        if order_id is None and transaction_id is None:
            raise ValueError("order_id or transaction_id is required")
        request: dict[str, Any] = (
            {"orderId": _number_or_text(order_id)}
            if order_id is not None
            else {"transactionId": transaction_id}
        )
        body = await self._request(ORDER_STATUS, request)
        try:
            order = SupplierOrder.model_validate(body)
        except ValidationError as exc:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000], f"unexpected answer: {exc}", ORDER_STATUS
            ) from exc
        if order.order_id is None and order_id is not None:
            order = order.model_copy(update={"order_id": order_id})
        return order

    async def resolve_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Settle an order whose create-order outcome is unknown, never ordering twice.

        Asks order-status by ``transaction_id``; when the vendor proves there is no such
        order, sends create-order again with the *same* transaction id; a
        ``TXN_DUPLICATE``/``TRANSACTION_DUPLICATE`` answer means the first one exists, so
        its status is read again. Raises what those calls raise (``OrderOutcomeUnknown``
        while it is still unknown).
        """
        try:
            return await self.get_order(transaction_id=transaction_id)
        except OrderNotFound:
            logger.info("order %s unknown to CodeGames, re-sending the same id", transaction_id)
        try:
            return await self.create_order(offer_id, price, transaction_id, customer)
        except TransactionDuplicate:
            return await self.get_order(transaction_id=transaction_id)

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        """``POST /api/v1/offers/keys`` ``{"orderId"}``: the codes of a COMPLETED key order
        that came without them. ``key`` may be a string or a list of strings; every code
        is returned, in order. Codes already on ``order`` are returned without a call.

        Never called for a top-up: an order with ``isReturnDataForCustomer: false`` raises
        :class:`KeysNotReturned` at once (the vendor would answer an error). An error
        answer of the endpoint is :class:`KeysNotReturned` too, unless it is a documented
        order error (``OrderNotFound``, ``OrderNotCompleted``...), a token error, a 429 or
        a 5xx. When ``order`` has no ``order_id`` (a minimal status read by transaction
        id) the request names ``transactionId`` instead. An answer without any code
        raises ``UnknownSupplierError``.
        """
        if order.all_keys:
            return order.all_keys
        if order.is_return_data_for_customer is False:
            raise KeysNotReturned(
                None,
                0,
                "",
                f"order {order.order_id or transaction_id} is a top-up "
                "(isReturnDataForCustomer false): it has no keys",
                KEYS,
            )
        request: dict[str, Any] = (
            {"orderId": _number_or_text(order.order_id)}
            if order.order_id is not None
            else {"transactionId": transaction_id}
        )
        try:
            body = await self._request(KEYS, request)
        except SupplierAPIError as exc:
            if isinstance(
                exc,
                RetryLaterError
                | InvalidToken
                | OrderNotFound
                | OrderNotCompleted
                | OrderAlreadyCanceled
                | OrderAlreadyRefunded
                | FieldValidationFailed,
            ):
                raise
            raise KeysNotReturned(
                exc.code, exc.http_status, exc.raw_body, exc.supplier_message, KEYS
            ) from exc
        keys = self._keys_of(body)
        if not keys:
            raise UnknownSupplierError(
                None, 200, exact_json.dumps(body)[:2000], "answer carries no key", KEYS
            )
        return keys

    @staticmethod
    def _keys_of(body: dict[str, Any]) -> list[str]:
        keys: list[str] = []
        for name in ("key", "keys"):
            value = body.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                keys.append(str(value))
            elif isinstance(value, list):
                keys.extend(str(item) for item in value if isinstance(item, str | int) and item)
        return [key for key in keys if key]

    # -- what CodeGames does not have -------------------------------------------------

    def _missing(self, what: str) -> NoReturn:
        raise NotImplementedError(f"CodeGames has no {what} endpoint")

    async def get_balance(self) -> Balance:
        """Not documented by CodeGames: raises ``NotImplementedError``."""
        self._missing("balance")

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage:
        """Not documented by CodeGames: raises ``NotImplementedError``."""
        self._missing("transaction history")

    def iter_catalogue(
        self, *, page_size: int = 1000, category: str | None = None, search: str | None = None
    ) -> AsyncIterator[CatalogueRow]:
        """No sync endpoint (the owner configures offer ids): raises ``NotImplementedError``."""
        self._missing("catalogue sync")

    async def get_servers(self, offer_id: str) -> list[GameServer]:
        """Not documented by CodeGames: raises ``NotImplementedError``."""
        self._missing("servers")

    async def check_player(
        self, offer_id: str, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck:
        """Not documented by CodeGames: raises ``NotImplementedError``."""
        self._missing("player check")

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo:
        """Not documented by CodeGames: raises ``NotImplementedError``."""
        self._missing("Telegram user lookup")
