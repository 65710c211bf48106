"""The supplier interface the shop is written against.

GamesDrop implements it today (:class:`services.suppliers.gamesdrop.client.GamesDropClient`);
CodeGames (same API shape) and Gaming Goods add implementations of their own.
Offers are identified across suppliers by :class:`~services.suppliers.models.OfferRef`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class Supplier(Protocol):
    """What the shop needs from a wholesale supplier. Every method may raise
    :class:`~services.suppliers.errors.SupplierError` subclasses."""

    name: str

    async def get_balance(self) -> Balance: ...

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage: ...

    async def find_offer(self, offer_id: int) -> OfferDetails: ...

    def iter_catalogue(
        self, *, page_size: int = 1000, category: str | None = None, search: str | None = None
    ) -> AsyncIterator[CatalogueRow]: ...

    async def create_order(
        self, offer_id: int, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder: ...

    async def get_order(
        self, *, order_id: int | None = None, transaction_id: str | None = None
    ) -> SupplierOrder: ...

    async def resolve_order(
        self, offer_id: int, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder: ...

    async def get_servers(self, offer_id: int) -> list[GameServer]: ...

    async def check_player(
        self, offer_id: int, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck: ...

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo: ...
