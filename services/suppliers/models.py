"""Typed supplier answers, shared by every supplier implementation.

Field names follow GamesDrop's camelCase wire format through aliases (CodeGames uses
the same shapes); unknown fields are ignored. Money is ``Decimal`` with its currency
code next to it: the client parses JSON with :func:`services.exact_json.loads`, so a
price never passes through a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


def parse_supplier_time(value: Any) -> Any:
    """Parse ``2024-05-28 10:08:04.296+00`` and ``2025-08-26T12:30:15.234Z`` (both UTC)."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


SupplierTime = Annotated[datetime, BeforeValidator(parse_supplier_time)]


class SupplierModel(BaseModel):
    """Ids are text whatever the vendor sends (GamesDrop numbers, Gaming Goods UUIDs):
    numbers are turned into their decimal text."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        coerce_numbers_to_str=True,
    )


class OfferRef(NamedTuple):
    """An offer's identity across suppliers: ``("gamesdrop", "999")``. ``supplier`` is the
    supplier's ``name``; ``offer_id`` is the vendor's own id as text."""

    supplier: str
    offer_id: str


class OrderStatus(StrEnum):
    """Supplier order statuses (GamesDrop guide, "Order Statuses")."""

    SUBMITTED = "SUBMITTED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    REFUND = "REFUND"

    @property
    def is_final(self) -> bool:
        return self in (
            OrderStatus.COMPLETED,
            OrderStatus.CANCELED,
            OrderStatus.FAILED,
            OrderStatus.REFUND,
        )

    @property
    def is_failure(self) -> bool:
        return self in (OrderStatus.CANCELED, OrderStatus.FAILED, OrderStatus.REFUND)


class _Requirements(SupplierModel):
    """Understands both ``isRequiredGameUserId``/``isRequiredGameServerId`` booleans
    (GamesDrop) and ``"required": ["gameUserId", ...]`` (CodeGames)."""

    requires_game_user_id: bool = Field(
        default=False,
        validation_alias=AliasChoices("isRequiredGameUserId", "requires_game_user_id"),
    )
    requires_game_server_id: bool = Field(
        default=False,
        validation_alias=AliasChoices("isRequiredGameServerId", "requires_game_server_id"),
    )

    @model_validator(mode="before")
    @classmethod
    def _required_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("required"), list):
            data = dict(data)
            required = {str(item) for item in data["required"]}
            if "gameUserId" in required:
                data.setdefault("isRequiredGameUserId", True)
            if "gameServerId" in required:
                data.setdefault("isRequiredGameServerId", True)
        return data


class Balance(SupplierModel):
    """``GET /api/v1/offers/balance`` (or the older ``/api/v1/balance``). Amounts in ``currency`` (USD)."""

    balance: Decimal
    draft_balance: Decimal = Decimal(0)
    is_postpaid: bool = False
    balance_profile: str | None = None
    partner_id: int | None = None
    currency: str = "USD"

    @model_validator(mode="before")
    @classmethod
    def _currency_object(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("currency"), dict):
            data = {**data, "currency": data["currency"].get("code") or "USD"}
        return data


class BalanceTransaction(SupplierModel):
    """One row of ``GET /api/v1/balance/transactions``; ``amount`` is negative for debits."""

    id: int
    amount: Decimal
    type: str
    description: str = ""
    balance_after: Decimal | None = None
    created_at: SupplierTime | None = None


class TransactionPage(SupplierModel):
    transactions: list[BalanceTransaction]
    total: int


class OfferDetails(_Requirements):
    """``POST /api/v1/offers/find-one``: the current purchase price of one offer."""

    offer_id: str
    product_name: str
    offer_name: str
    count: int = 1
    price: Decimal
    currency: str
    is_return_data_for_customer: bool = True
    settlement_method: str | None = None
    balance_profile: str | None = None
    is_price_fresh: bool | None = None
    quote_expires_at: SupplierTime | None = None
    in_stock: bool = True
    #: a picture of the product (https URL) where the vendor gives one
    image_url: str | None = None


class CatalogueRow(_Requirements):
    """One row of ``POST /api/v1/offers/sync``; ``offer_group_id`` is the orderable offer id."""

    product_id: str
    product_name: str
    offer_group_id: str
    offer_group_name: str
    price: Decimal
    currency: str
    in_stock: bool = True
    #: a picture of the product (https URL) where the vendor gives one
    image_url: str | None = None
    #: whether the offer returns a key, when the catalogue says (``None``: find-one tells)
    returns_key: bool | None = None
    #: the shop's category when the source knows it (own stock); ``None``: inferred
    category: str | None = None


class SyncPage(SupplierModel):
    count: int
    rows: list[CatalogueRow]


class SupplierOrder(SupplierModel):
    """create-order / order-status answer.

    ``key`` is present only for key products once COMPLETED (``keys`` holds every code
    when a vendor delivers several: deliver them all; see :attr:`all_keys`); ``message``
    explains CANCELED/FAILED; ``fulfillment_data`` comes with Telegram Stars orders.
    CodeGames may answer order-status with only ``status``. Ids are text.
    """

    order_id: str | None = None
    status: OrderStatus
    count: int = 1
    price: Decimal | None = None
    currency: str | None = None
    offer_id: str | None = None
    product_name: str | None = None
    offer_name: str | None = None
    is_return_data_for_customer: bool | None = None
    key: str | None = None
    keys: list[str] = Field(default_factory=list)
    message: str | None = None
    fulfillment_data: dict[str, Any] | None = None
    created_at: SupplierTime | None = None

    @property
    def all_keys(self) -> list[str]:
        """Every code delivered: ``keys``, else ``[key]``, else ``[]``."""
        if self.keys:
            return list(self.keys)
        return [self.key] if self.key else []


class PlayerCheck(SupplierModel):
    """``POST /api/v1/offers/check-game-data``: ``VALID`` with the login, or ``INVALID``."""

    status: str
    game_user_login: str | None = None
    message: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.status.upper() == "VALID"


class GameServer(NamedTuple):
    """One entry of the servers answer: ``label`` to show, ``server_id`` to send."""

    label: str
    server_id: str


class TelegramUser(SupplierModel):
    id: int | None = None
    first_name: str | None = None
    username: str | None = None
    photo_url: str | None = None


class TelegramUserInfo(SupplierModel):
    """``POST https://gamesdrop.io/api/aggregator/a6/telegram/user-info``.

    ``user_info.id`` is present only when the user has talked to @gamesdrop_api_bot.
    """

    valid: bool
    username: str | None = None
    user_info: TelegramUser | None = None
    message: str | None = None

    @property
    def user_id(self) -> int | None:
        return self.user_info.id if self.user_info else None
