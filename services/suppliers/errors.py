"""Typed supplier errors, grouped by what the caller should do about them.

The tree, vendor-neutral so the order service can handle every supplier alike::

    SupplierError
    ├── SupplierConnectionError          network failure, nothing was answered
    │   └── SupplierTimeout
    ├── OrderOutcomeUnknown              create-order sent, answer lost or 5xx: ask order-status
    └── SupplierAPIError                 the supplier answered with an error (status, body kept)
        ├── RetryLaterError              SERVICE_UNAVAILABLE, BALANCE_UNAVAILABLE, any HTTP 429
        │   └── RateLimited              (whatever code its body carries), any other 5xx
        ├── FixRequestError              INVALID_TOKEN, INVALID_REQUEST_BODY, TRANSACTION_DUPLICATE,
        │                                ORDER_NOT_FOUND, ORDER_NOT_PROCESSING, ORDER_NOT_COMPLETED,
        │                                ORDER_ALREADY_CANCELED, ORDER_ALREADY_REFUNDED
        │   └── FieldValidationFailed    a 5xx whose message says a field failed validation
        ├── RefreshPriceError            WRONG_PRICE, OUT_OF_STOCK, OFFER_NOT_FOUND
        ├── MoneyError                   INSUFFICIENT_BALANCE
        └── UnknownSupplierError         any code the documents do not list

The HTTP status decides the family before the code does: a 429 is always
:class:`RateLimited` and a 5xx always a retry-later error (or, on create-order,
:class:`OrderOutcomeUnknown`), whatever code the body names; the one exception is a 5xx
whose message says a field failed validation (FIELD-NOTES.md), a request error.

Every :class:`SupplierAPIError` keeps ``code``, ``http_status`` and ``raw_body``. None of
them ever carries the shop token.
"""

from __future__ import annotations


class SupplierError(Exception):
    """Base of every error raised by a supplier client."""


class SupplierConnectionError(SupplierError):
    """The supplier could not be reached (DNS, refused connection, reset)."""


class SupplierTimeout(SupplierConnectionError):
    """The supplier did not answer within the configured timeout."""


class OrderOutcomeUnknown(SupplierError):
    """A create-order was sent but its answer was lost (timeout, reset, unreadable body).

    The order may or may not exist. Never create a new order for it: resolve it by
    order-status with the same ``transaction_id``. ``retry_after`` (seconds) is set when the
    supplier said how long to wait before asking again.
    """

    def __init__(self, transaction_id: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"outcome of create-order {transaction_id!r} is unknown: {reason}")
        self.transaction_id = transaction_id
        self.reason = reason
        self.retry_after = retry_after


class SupplierAPIError(SupplierError):
    """The supplier answered with an error.

    Attributes: ``code`` (the vendor's error code, or ``None`` when the body had none),
    ``http_status`` (int), ``raw_body`` (the answer text, at most 2,000 characters),
    ``supplier_message`` (the vendor's human message, if any).
    """

    default_code: str | None = None

    def __init__(
        self,
        code: str | None,
        http_status: int,
        raw_body: str,
        supplier_message: str | None = None,
        endpoint: str = "",
    ) -> None:
        self.code = code or self.default_code
        self.http_status = http_status
        self.raw_body = raw_body[:2000]
        self.supplier_message = supplier_message
        self.endpoint = endpoint
        detail = f": {supplier_message}" if supplier_message else ""
        where = f" on {endpoint}" if endpoint else ""
        super().__init__(f"{self.code or 'HTTP error'} (HTTP {http_status}){where}{detail}")


class RetryLaterError(SupplierAPIError):
    """Temporary trouble on the supplier side; the same request may succeed later.

    ``retry_after`` is seconds (float) when the supplier said so (``Retry-After``)."""

    def __init__(self, *args: object, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class FixRequestError(SupplierAPIError):
    """The request itself is wrong (token, body, ids); repeating it will not help."""


class RefreshPriceError(SupplierAPIError):
    """The offer changed (price, stock, availability): refresh it and ask the customer again."""


class MoneyError(SupplierAPIError):
    """The shop's supplier balance cannot pay for this."""


class UnknownSupplierError(SupplierAPIError):
    """An error answer whose code the vendor documents do not list."""


class RateLimited(RetryLaterError):
    """HTTP 429, whatever code its body names (``TOO_MANY_REQUESTS``, ``RATE_LIMITED``...)."""

    default_code = "RATE_LIMITED"


class ServiceUnavailable(RetryLaterError):
    default_code = "SERVICE_UNAVAILABLE"


class BalanceUnavailable(RetryLaterError):
    default_code = "BALANCE_UNAVAILABLE"


class InvalidToken(FixRequestError):
    default_code = "INVALID_TOKEN"


class InvalidRequestBody(FixRequestError):
    default_code = "INVALID_REQUEST_BODY"


class FieldValidationFailed(InvalidRequestBody):
    """A 5xx whose message says a field failed validation, e.g. ``500 {"error": {"code":
    "SERVICE_UNAVAILABLE", "message": "Field validation for 'GameUserID' failed"}}``
    (FIELD-NOTES.md): the request is wrong, repeating it will not help."""


class TransactionDuplicate(FixRequestError):
    """The ``transactionId`` was used before: an order with it already exists."""

    default_code = "TRANSACTION_DUPLICATE"


class OrderNotFound(FixRequestError):
    default_code = "ORDER_NOT_FOUND"


class OrderNotProcessing(FixRequestError):
    default_code = "ORDER_NOT_PROCESSING"


class OrderNotCompleted(FixRequestError):
    default_code = "ORDER_NOT_COMPLETED"


class OrderAlreadyCanceled(FixRequestError):
    default_code = "ORDER_ALREADY_CANCELED"


class OrderAlreadyRefunded(FixRequestError):
    default_code = "ORDER_ALREADY_REFUNDED"


class WrongPrice(RefreshPriceError):
    default_code = "WRONG_PRICE"


class OutOfStock(RefreshPriceError):
    default_code = "OUT_OF_STOCK"


class OfferNotFound(RefreshPriceError):
    default_code = "OFFER_NOT_FOUND"


class InsufficientBalance(MoneyError):
    default_code = "INSUFFICIENT_BALANCE"


ERROR_BY_CODE: dict[str, type[SupplierAPIError]] = {
    cls.default_code: cls
    for cls in (
        ServiceUnavailable,
        BalanceUnavailable,
        InvalidToken,
        InvalidRequestBody,
        TransactionDuplicate,
        OrderNotFound,
        OrderNotProcessing,
        OrderNotCompleted,
        OrderAlreadyCanceled,
        OrderAlreadyRefunded,
        WrongPrice,
        OutOfStock,
        OfferNotFound,
        InsufficientBalance,
    )
    if cls.default_code
}
"""Documented error code -> exception class (GamesDrop and CodeGames share the codes)."""
