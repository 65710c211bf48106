"""Telegram Stars gifting: parse who the recipient is and resolve a @username to the
numeric Telegram user id the supplier needs (``gameUserId`` of a Stars order): from the
shop's own users first, from a supplier's user-info lookup only when the shop never met
them.

Sending Stars the shop pays for itself (campaign rewards, loyalty payouts) goes through
:class:`StarsPackSender`: an amount is made of the supplier's Stars packs
(:func:`split_into_packs`), one create-order per pack, each under a ``transactionId`` the
caller derives from its own row, so a crash or a retry never pays twice.

Suppliers sell 1 to 2,500 Stars per transaction.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from services.suppliers.base import Customer, Supplier
from services.suppliers.errors import (
    OrderOutcomeUnknown,
    RetryLaterError,
    SupplierConnectionError,
    TransactionDuplicate,
    WrongPrice,
)
from services.suppliers.models import OfferDetails, OfferRef, SupplierOrder
from services.suppliers.models import OrderStatus as SupplierStatus
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository

STARS_MIN, STARS_MAX = 1, 2500

_USERNAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"
_LINK = re.compile(
    rf"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/@?({_USERNAME})/?$", re.IGNORECASE
)
_AT_NAME = re.compile(rf"^@?({_USERNAME})$")
_NUMERIC_ID = re.compile(r"^[0-9]{5,15}$")  # ASCII: \d takes any script's digits


@dataclass(frozen=True, slots=True)
class RecipientInput:
    """What the customer typed: a username (without ``@``) or a numeric id."""

    username: str | None = None
    user_id: int | None = None


def parse_recipient(text: str) -> RecipientInput | None:
    """``@name``, ``name``, ``t.me/name`` (any scheme) or a numeric id; ``None`` otherwise."""
    text = text.strip()
    if _NUMERIC_ID.match(text):
        return RecipientInput(user_id=int(text))
    for pattern in (_LINK, _AT_NAME):
        match = pattern.match(text)
        if match:
            return RecipientInput(username=match.group(1))
    return None


def stars_amount_allowed(amount: int) -> bool:
    return STARS_MIN <= amount <= STARS_MAX


@dataclass(frozen=True, slots=True)
class Recipient:
    """A resolved recipient. ``user_id`` is ``None`` when the supplier could not tell it."""

    user_id: int | None
    username: str | None
    first_name: str | None

    @property
    def display(self) -> str:
        name = self.first_name or ""
        if self.username:
            return (
                f"{name} (@{self.username})"
                if name and name != self.username
                else f"@{self.username}"
            )
        return name or str(self.user_id)


class KnownUsers(Protocol):
    """The shop's own users (:class:`storage.users.UsersRepository`)."""

    async def find(self, query: str) -> KnownUser | None: ...


class KnownUser(Protocol):
    id: int
    username: str | None
    first_name: str


class RecipientResolver:
    """Resolves usernames: first from the shop's own users (``users``: anyone who ever
    started this bot, no supplier call), then through a supplier's Telegram user-info
    endpoint (one with ``TELEGRAM_USERS``; ``None``: no supplier can, and a username the
    shop does not know resolves without an id).

    Answers with an id are cached for ``ttl_seconds`` (never longer); answers without an
    id are not cached, so a recipient who just started the supplier's helper bot
    (:attr:`helper_bot`) is found at once.
    """

    def __init__(
        self,
        supplier: Supplier | None,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        users: KnownUsers | None = None,
    ) -> None:
        self._supplier = supplier
        self._users = users
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Recipient]] = {}

    @property
    def helper_bot(self) -> str:
        """The bot a recipient must have started before the supplier can find them
        (the supplier's ``helper_bot``), or ``""`` when it names none."""
        return str(getattr(self._supplier, "helper_bot", "") or "")

    async def resolve(self, username: str) -> Recipient:
        """The recipient ``username`` names; ``user_id`` is ``None`` when neither this shop
        nor its supplier knows their id yet. Raises supplier errors as they come (the
        caller tells the customer to retry)."""
        key = username.lower().removeprefix("@")
        if self._users is not None:
            known = await self._users.find(f"@{key}")
            if known is not None:
                return Recipient(known.id, known.username or key, known.first_name or None)
        now = self._clock()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        self._cache.pop(key, None)
        if self._supplier is None:
            return Recipient(user_id=None, username=key, first_name=None)
        info = await self._supplier.get_telegram_user(f"@{key}")
        user = info.user_info
        recipient = Recipient(
            user_id=info.user_id,
            username=(user.username if user and user.username else info.username) or key,
            first_name=user.first_name if user else None,
        )
        if recipient.user_id is not None and self._ttl > 0:
            self._cache[key] = (now + self._ttl, recipient)
        return recipient


# -- sending Stars packs (campaign rewards, loyalty payouts) ------------------------------

#: a pack order raising one of these may exist at the supplier: keep it "sending" and ask
#: again later with the same ``transactionId`` (never a new one)
IN_FLIGHT_ERRORS = (OrderOutcomeUnknown, SupplierConnectionError, RetryLaterError)


def split_into_packs(amount: int, packs: list[int]) -> list[int] | None:
    """Express ``amount`` Stars as available pack sizes, fewest orders first
    (250 with packs 50/100/500/1000 -> [100, 100, 50]); ``None`` when impossible."""
    best: dict[int, list[int]] = {0: []}
    for total in range(1, amount + 1):
        options = [best[total - p] + [p] for p in packs if p <= total and (total - p) in best]
        if options:
            best[total] = min(options, key=len)
    found = best.get(amount)
    return sorted(found, reverse=True) if found is not None else None


def largest_payable(amount: int, packs: list[int]) -> tuple[int, list[int]]:
    """The largest number of Stars up to ``amount`` (and :data:`STARS_MAX` per payout)
    that the pack sizes make, with its packs: ``(0, [])`` when even the smallest pack is
    more than ``amount`` (130 with packs 50/100 -> ``(100, [100])``)."""
    for total in range(min(amount, STARS_MAX), 0, -1):
        parts = split_into_packs(total, packs)
        if parts is not None:
            return total, parts
    return 0, []


def pack_status(result: SupplierOrder) -> str:
    """``completed``, ``failed`` (CANCELED/FAILED/REFUND: nothing delivered) or
    ``sending`` (the supplier is still at it) for a Stars pack order's answer."""
    if result.status is SupplierStatus.COMPLETED:
        return "completed"
    return "failed" if result.status.is_failure else "sending"


class Pacer:
    """Spaces calls ``1/rate`` seconds apart for everyone sharing it; :meth:`pause` holds
    all of them (a 429's ``retry_after``)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    async def wait(self) -> None:
        now = self._clock()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, self._clock() + seconds)


@dataclass(frozen=True, slots=True)
class PackOrder:
    """One Stars pack order: ``ref`` (a Stars pack offer) for Telegram user ``user_id``,
    under the caller's ``transaction_id``. ``in_flight``: an earlier attempt may have made
    it (the caller's row was left "sending"), so it is resolved before anything is ordered."""

    ref: OfferRef
    user_id: int
    transaction_id: str
    in_flight: bool


class StarsPackSender:
    """Places Stars pack orders for the shop's own payouts (campaigns, loyalty), paced at
    ``supplier_rate`` calls per second by the caller's :class:`Pacer`.

    Follows the supplier's find-one, create-order and order-status by ``transactionId``
    (``resolve_order``): an order whose outcome is unknown is never re-created with a new
    id; a ``WRONG_PRICE`` refusal (nothing ordered) is tried once more at the new price."""

    def __init__(self, suppliers: Suppliers, catalogue: CatalogueRepository) -> None:
        self._suppliers = suppliers
        self._catalogue = catalogue

    async def packs(self) -> dict[int, OfferRef]:
        """Stars amount -> the Stars pack offer in the catalogue (of a supplier this shop
        runs, in stock; the first one listed when several sell the same amount)."""
        packs: dict[int, OfferRef] = {}
        for o in await self._catalogue.stars_offers():
            if o.stars_amount and o.in_stock and o.supplier in self._suppliers:
                packs.setdefault(o.stars_amount, OfferRef(o.supplier, o.offer_id))
        return packs

    async def send(
        self,
        order: PackOrder,
        mark_sending: Callable[[], Awaitable[object]],
        pacer: Pacer,
        prices: dict[OfferRef, OfferDetails],
    ) -> SupplierOrder:
        """Order (or, ``in_flight``, find) one pack. ``mark_sending`` durably records that
        a create-order is about to go out, before it does. ``prices`` caches find-one
        answers per offer (the price ordered at stays there).

        Raises ``UnknownSupplier`` (the shop no longer runs it), one of
        :data:`IN_FLIGHT_ERRORS` (outcome unknown: ask again later with the same id) or
        ``SupplierAPIError`` (refused: nothing was ordered)."""
        supplier = self._suppliers.get(order.ref.supplier)
        customer = Customer(game_user_id=str(order.user_id))
        await pacer.wait()
        details = prices.get(order.ref) or await supplier.find_offer(order.ref.offer_id)
        prices[order.ref] = details
        await pacer.wait()
        if order.in_flight:  # interrupted earlier: the order may exist
            return await supplier.resolve_order(
                order.ref.offer_id, details.price, order.transaction_id, customer
            )
        await mark_sending()
        try:
            return await supplier.create_order(
                order.ref.offer_id, details.price, order.transaction_id, customer
            )
        except TransactionDuplicate:
            return await supplier.get_order(transaction_id=order.transaction_id)
        except WrongPrice:  # refused, so nothing was ordered: once more at the new price
            await pacer.wait()
            details = prices[order.ref] = await supplier.find_offer(order.ref.offer_id)
            await pacer.wait()
            return await supplier.create_order(
                order.ref.offer_id, details.price, order.transaction_id, customer
            )
