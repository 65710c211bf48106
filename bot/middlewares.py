"""Outer middlewares: who is this user (stored, banned?) and are they flooding us.

Payment updates (``pre_checkout_query`` and ``successful_payment``) always reach their
handlers: a pre-checkout must be answered within 10 s and a charge must be recorded
(a banned user's is refunded there), so neither is throttled nor dropped, and neither
waits for a database write here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from aiogram.utils.i18n import I18n

from bot.i18n import pick_locale
from services.flood import SharedUserLimit
from services.shared_state import USER, CacheBus
from storage.users import User as StoredUser
from storage.users import UsersRepository

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

PRUNE_EVERY = 1000  # updates between sweeps of per-user state that no longer matters


def is_payment(event: TelegramObject) -> bool:
    """A ``pre_checkout_query`` or ``successful_payment`` update."""
    return isinstance(event, Update) and (
        event.pre_checkout_query is not None
        or (event.message is not None and event.message.successful_payment is not None)
    )


class UserMiddleware(BaseMiddleware):
    """Stores every user seen (refreshed at most every ``refresh_seconds``), puts the
    stored record in ``data["user_record"]``, and drops updates from banned users after
    telling them once."""

    def __init__(self, users: UsersRepository, i18n: I18n, refresh_seconds: float = 300.0) -> None:
        self._users = users
        self._i18n = i18n
        self._refresh = refresh_seconds
        self._cache: dict[int, tuple[float, StoredUser]] = {}
        self._told_banned: set[int] = set()
        self._calls = 0
        self._bus = CacheBus()

    def share_through(self, bus: CacheBus) -> None:
        """Tell other processes on ``bus`` when a record is forgotten, and forget the
        records other processes announce (several workers: a ban holds in all at once)."""
        self._bus = bus
        bus.subscribe(USER, self._drop)

    def forget(self, user_id: int) -> None:
        """Drop the cached record (after a change such as language or ban), in every
        process sharing the bus."""
        self._cache.pop(user_id, None)
        self._bus.announce(USER, user_id)

    def _drop(self, key: str) -> None:
        """Another process changed user ``key`` (``""``: maybe anyone)."""
        if key:
            self._cache.pop(int(key), None)
        else:
            self._cache.clear()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        telegram_user: User | None = data.get("event_from_user")
        if telegram_user is None or telegram_user.is_bot:
            return await handler(event, data)
        now = time.monotonic()
        self._calls += 1
        if self._calls % PRUNE_EVERY == 0:  # expired entries would be refreshed anyway
            self._cache = {
                uid: entry for uid, entry in self._cache.items() if now - entry[0] <= self._refresh
            }
        cached = self._cache.get(telegram_user.id)
        if is_payment(event):  # read only, never dropped: the handler decides
            data["user_record"] = (
                cached[1] if cached is not None else await self._users.get(telegram_user.id)
            )
            return await handler(event, data)
        if cached is None or now - cached[0] > self._refresh:
            record = await self._users.touch(
                telegram_user.id,
                telegram_user.username,
                telegram_user.full_name,
                telegram_user.language_code,
            )
            self._cache[telegram_user.id] = (now, record)
        else:
            record = cached[1]
        if record.is_banned:
            await self._tell_banned(event, record, telegram_user)
            return None
        data["user_record"] = record
        return await handler(event, data)

    async def _tell_banned(self, event: TelegramObject, record: StoredUser, user: User) -> None:
        if record.id in self._told_banned:
            return
        self._told_banned.add(record.id)
        locale = pick_locale(self._i18n, record.language, user.language_code)
        text = self._i18n.gettext("common.banned", locale=locale)
        message = getattr(event, "message", None)
        if isinstance(message, Message):
            await message.answer(text)
        elif isinstance(getattr(event, "callback_query", None), CallbackQuery):
            await event.callback_query.answer(text, show_alert=True)  # type: ignore[attr-defined]


class ThrottlingMiddleware(BaseMiddleware):
    """Per-user token bucket: ``rate`` updates per second on average, bursts of ``burst``.
    Excess updates are dropped; the user is warned at most once per ``warn_every`` s.

    ``shared`` (with ``REDIS_URL``): the buckets live in Redis and count a user's updates
    across every worker. Should Redis fail, the update goes through (logged): a throttle
    outage must not lock customers out."""

    def __init__(
        self,
        rate: float,
        burst: int,
        warn_every: float = 10.0,
        shared: SharedUserLimit | None = None,
    ) -> None:
        self._shared = shared
        self._rate = rate
        self._burst = float(burst)
        self._warn_every = warn_every
        self._buckets: dict[int, tuple[float, float]] = {}
        self._warned: dict[int, float] = {}
        self._calls = 0

    def allow(self, user_id: int, now: float) -> bool:
        """Take a token from this process's bucket of ``user_id`` (``now``: monotonic s)."""
        self._calls += 1
        if self._calls % PRUNE_EVERY == 0:
            self._prune(now)
        tokens, last = self._buckets.get(user_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1:
            self._buckets[user_id] = (tokens, now)
            return False
        self._buckets[user_id] = (tokens - 1, now)
        return True

    async def _allow(self, user_id: int, now: float) -> bool:
        if self._shared is None:
            return self.allow(user_id, now)
        try:
            return await self._shared.allow(user_id)
        except Exception:
            logger.exception("shared throttle unavailable; update of user %s let through", user_id)
            return True

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (the same as no bucket) and old warnings."""
        refill = self._burst / self._rate
        self._buckets = {uid: b for uid, b in self._buckets.items() if now - b[1] < refill}
        self._warned = {uid: t for uid, t in self._warned.items() if now - t < self._warn_every}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or self._rate <= 0 or is_payment(event):
            return await handler(event, data)
        now = time.monotonic()
        if await self._allow(user.id, now):
            return await handler(event, data)
        logger.info("throttled update from user %s", user.id)
        if now - self._warned.get(user.id, 0.0) >= self._warn_every:
            self._warned[user.id] = now
            i18n: I18n | None = data.get("i18n")
            record: StoredUser | None = data.get("user_record")
            if i18n is not None:
                text = i18n.gettext(
                    "common.too_fast",
                    locale=pick_locale(
                        i18n, record.language if record else None, user.language_code
                    ),
                )
                callback = getattr(event, "callback_query", None)
                message = getattr(event, "message", None)
                if isinstance(callback, CallbackQuery):
                    await callback.answer(text)
                elif isinstance(message, Message):
                    await message.answer(text)
        return None


class StepCommandMiddleware(BaseMiddleware):
    """A command typed inside a conversation step leaves the step, so the command's own
    handler answers instead of the step taking ``/orders`` for a player ID or a recipient.

    Outer middleware on ``message``: when the text is ``/name`` (``/name@bot`` and
    arguments too) and ``name`` is one of ``commands`` (``admin_commands`` too for a user
    in ``admin_ids``), the user's FSM state is cleared before the handlers run.
    ``/cancel`` is left to its handler (it tells whether there was a step to cancel), and
    a command this bot does not know stays in the step, whose handler answers with its
    own hint. Needs the dispatcher's FSM context in ``data["state"]``.
    """

    def __init__(
        self,
        commands: tuple[str, ...],
        admin_commands: tuple[str, ...],
        admin_ids: frozenset[int] | set[int] | list[int],
        keep: tuple[str, ...] = ("cancel",),
    ) -> None:
        self._commands = frozenset(commands) - set(keep)
        self._admin_commands = frozenset(admin_commands) - set(keep)
        self._admin_ids = frozenset(admin_ids)

    def command_of(self, text: str | None) -> str | None:
        """``"/Orders@shop_bot 5"`` -> ``"orders"``; ``None`` for text that is no command."""
        if not text or not text.startswith("/") or len(text) < 2:
            return None
        return text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        name = self.command_of(event.text) if isinstance(event, Message) else None
        state = data.get("state")
        if name is not None and state is not None:
            user: User | None = data.get("event_from_user")
            known = name in self._commands or (
                name in self._admin_commands and user is not None and user.id in self._admin_ids
            )
            step = await state.get_state() if known else None
            if step is not None:
                logger.debug("/%s typed inside step %s: leaving it", name, step)
                await state.clear()
                data["raw_state"] = None  # what StateFilter reads (set before this runs)
        return await handler(event, data)
