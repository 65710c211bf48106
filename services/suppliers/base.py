"""The supplier interface the shop is written against.

Each vendor implements it in a package of its own under ``services/suppliers/`` that
exports ``VENDOR`` (:class:`VendorSpec`); the shop finds them through
:mod:`services.suppliers.registry` and never names one. Offers are identified across
suppliers by :class:`~services.suppliers.models.OfferRef` (supplier code, id as text).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

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


@dataclass(frozen=True, slots=True)
class Customer:
    """Who an order is for: ``game_user_id`` (player ID or numeric Telegram id for Stars),
    ``game_server_id`` where the offer needs one, optional ``email``."""

    game_user_id: str | None = None
    game_server_id: str | None = None
    email: str | None = None

    def wire(self) -> dict[str, str]:
        """The ``customer`` object of a create-order in the GamesDrop request shape
        (CodeGames shares it): ``{"email", "gameUserId", "gameServerId"}``, empty fields
        left out."""
        fields = (
            ("email", self.email),
            ("gameUserId", self.game_user_id),
            ("gameServerId", self.game_server_id),
        )
        return {key: value for key, value in fields if value}


class Capability(StrEnum):
    """What a vendor can do beyond placing and reading orders. The shop asks
    :attr:`Supplier.capabilities` instead of calling what a vendor does not have."""

    CATALOGUE_SYNC = "catalogue_sync"  # iter_catalogue lists the whole catalogue
    PLAYER_CHECK = "player_check"  # check_player validates a player ID before payment
    SERVERS = "servers"  # get_servers lists game servers of an offer
    KEYS_SEPARATE = "keys_separate"  # a completed key order may need fetch_keys
    BALANCE = "balance"  # get_balance
    TRANSACTIONS = "transactions"  # list_transactions (balance history)
    TELEGRAM_USERS = "telegram_users"  # get_telegram_user resolves @usernames
    IDEMPOTENT_CREATE = "idempotent_create"  # create_order with a seen transaction_id
    #                                          never makes a second order


@dataclass(frozen=True, slots=True)
class OrderAttempt:
    """What the shop sent in a create-order, for vendors that can find an order only by
    what it was (no idempotency key): ``placed_after`` is when the attempt started (UTC)."""

    offer_id: str
    price: Decimal
    currency: str
    placed_after: datetime


@runtime_checkable
class Supplier(Protocol):
    """What the shop needs from a wholesale supplier. ``name`` is the supplier's code
    (``gamesdrop``, ``codegames``, ``gaming_goods``: stored with every offer and order);
    ``short`` a one- or two-letter code for callback data (64 bytes). Offer and supplier
    order ids are text. Every method may raise
    :class:`~services.suppliers.errors.SupplierError` subclasses; a method whose
    capability is missing raises ``NotImplementedError``.

    Optional attributes: ``recheck_interval`` (seconds) and ``recheck_limit`` (checks),
    a vendor's own schedule for re-checking an order whose outcome is unknown; after the
    last check the order is handed to the admins (checks go on).
    """

    name: str
    short: str
    capabilities: frozenset[Capability]

    async def get_balance(self) -> Balance: ...

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage: ...

    async def find_offer(self, offer_id: str) -> OfferDetails:
        """The latest price and requirements of one offer. Raises ``OfferNotFound``."""
        ...

    def iter_catalogue(
        self, *, page_size: int = 1000, category: str | None = None, search: str | None = None
    ) -> AsyncIterator[CatalogueRow]: ...

    async def create_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Place an order at exactly ``price`` (as last received). ``transaction_id`` is
        the shop's idempotency key. An answer lost or a 5xx raises ``OrderOutcomeUnknown``
        (never repeat with another id: resolve with :meth:`get_order`)."""
        ...

    async def get_order(
        self,
        *,
        order_id: str | None = None,
        transaction_id: str | None = None,
        attempt: OrderAttempt | None = None,
    ) -> SupplierOrder:
        """order-status by the vendor's order id or by our ``transaction_id`` (with the
        ``attempt`` for vendors that find orders by what they were). Raises
        ``OrderNotFound`` only when the vendor proves there is no such order."""
        ...

    async def resolve_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder: ...

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        """Keys of a completed key order that came without them (``KEYS_SEPARATE``)."""
        ...

    async def get_servers(self, offer_id: str) -> list[GameServer]: ...

    async def check_player(
        self, offer_id: str, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck: ...

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo: ...


class VendorSettings(BaseModel):
    """A vendor's settings section (``<NAME>__...`` in the environment). A vendor takes
    part in the shop when :meth:`enabled` (its credentials are set)."""

    def enabled(self) -> bool:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class VendorSpec:
    """How the shop finds and builds a vendor without naming it: every package under
    ``services/suppliers/`` that exports ``VENDOR = VendorSpec(...)`` is one.

    ``name``: the stored supplier code and the settings section (``codegames`` ->
    ``CODEGAMES__TOKEN``); ``short``: its code in callback data; ``settings``: the
    section's model; ``build(section, http)``: the client; ``sandbox``: the import path
    of its sandbox package (exports ``create_sandbox``); ``marketplace(section, http,
    supplier)``: for a vendor with a seller API, its
    :class:`~services.suppliers.marketplace.Marketplace` client or ``None`` when the
    section holds no seller credentials (``supplier`` is the vendor's buyer client, when
    the shop runs it, to share its rate budget)."""

    name: str
    short: str
    settings: type[VendorSettings]
    build: Any  # Callable[[VendorSettings, httpx.AsyncClient], Supplier]
    sandbox: str
    marketplace: Any = (
        None  # Callable[[VendorSettings, AsyncClient, Supplier | None], Marketplace | None]
    )


def build_supplier(spec: VendorSpec, section: VendorSettings, http: httpx.AsyncClient) -> Supplier:
    """``spec.build(section, http)``, typed."""
    supplier: Supplier = spec.build(section, http)
    return supplier
