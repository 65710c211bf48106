"""Telegram Stars gifting: parse who the recipient is and resolve a @username to the
numeric Telegram user id the supplier needs (``gameUserId`` of a Stars order): from the
shop's own users first, from a supplier's user-info lookup only when the shop never met
them.

Suppliers sell 1 to 2,500 Stars per transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.suppliers.base import Supplier

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
