"""The delivery outbox worker: sends what :class:`storage.deliveries.DeliveriesRepository`
holds (Bot API ``sendMessage``) until Telegram accepts it or the user has blocked the bot.

A 429 waits its ``retry_after`` (however long) and pauses broadcasts too; network and
server errors back off and retry; 403 marks the user blocked; a 400 (Telegram refuses the
message itself) is given up, logged and alerted. Messages of one chat go in order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup

from services.flood import FloodBudget
from services.workers import PassCounter, run_due_loop
from storage.deliveries import DeliveriesRepository, Delivery
from storage.users import UsersRepository

logger = logging.getLogger(__name__)

Render = Callable[[Delivery], Awaitable[tuple[str, InlineKeyboardMarkup | None]]]


class DeliveryOutbox:
    """Drains the outbox. ``render`` turns a row into text and keyboard in the customer's
    language (:meth:`bot.notifier.BotNotifier.render`); ``retry_delays`` are seconds
    between attempts after transient errors (the last one repeats)."""

    def __init__(
        self,
        bot: Bot,
        repo: DeliveriesRepository,
        users: UsersRepository,
        render: Render,
        flood: FloodBudget,
        alert: Callable[..., Awaitable[None]],
        *,
        retry_delays: tuple[float, ...] = (1, 2, 5, 15, 60, 300),
        tick: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bot = bot
        self._repo = repo
        self._users = users
        self._render = render
        self._flood = flood
        self._alert = alert
        self._retry_delays = retry_delays
        self._tick = tick
        self._clock = clock
        self._wake = asyncio.Event()
        self.passes = PassCounter()
        #: names this outbox in the messages it claims (``deliveries.claimed_by``)
        self.claimant = secrets.token_hex(6)

    def wake(self) -> None:
        self._wake.set()

    async def process_due(self) -> int:
        """Try the due message of every chat once; returns how many were settled (sent,
        or given up for good). One message's failure never stops the others."""
        sent = 0
        for delivery in await self._repo.due(self._clock()):
            # another worker (or this one's previous pass) may have it: send only what is ours
            if not await self._repo.claim(delivery.id, self.claimant, self._clock()):
                continue
            try:
                sent += await self._deliver(delivery)
            except Exception as exc:
                logger.exception("delivery %s (%s): unexpected error", delivery.id, delivery.kind)
                await self._retry(delivery, exc)
        return sent

    async def _deliver(self, delivery: Delivery) -> bool:
        text, markup = await self._render(delivery)
        try:
            with self._flood.urgent():
                await self._bot.send_message(delivery.chat_id, text, reply_markup=markup)
        except TelegramRetryAfter as exc:
            self._flood.pause(float(exc.retry_after))
            await self._retry(delivery, exc, float(exc.retry_after))
            return False
        except TelegramForbiddenError as exc:
            logger.warning(
                "user %s blocked the bot; %s message of order %s not delivered",
                delivery.user_id, delivery.kind, delivery.order_id,
            )  # fmt: skip
            await self._repo.give_up(delivery.id, "blocked", str(exc))
            await self._users.set_blocked(delivery.user_id, True)
            return True  # settled: nothing more can be done
        except TelegramBadRequest as exc:
            logger.error(
                "Telegram refused the %s message of order %s to user %s: %s",
                delivery.kind, delivery.order_id, delivery.user_id, exc,
            )  # fmt: skip
            await self._repo.give_up(delivery.id, "failed", str(exc))
            await self._alert(
                "delivery_failed", "alert.delivery_failed", user_id=delivery.user_id,
                kind=delivery.kind, order=delivery.order_id, error=exc.message,
            )  # fmt: skip
            return True
        except Exception as exc:  # network errors, 5xx: Telegram did not take it
            await self._retry(delivery, exc)
            return False
        await self._repo.sent(delivery.id)
        return True

    async def _retry(
        self, delivery: Delivery, error: Exception, retry_after: float | None = None
    ) -> None:
        delay = self._retry_delays[min(delivery.attempts, len(self._retry_delays) - 1)]
        if retry_after is not None:
            delay = retry_after
        logger.warning(
            "%s message of order %s (attempt %d) failed: %s; next try in %.0f s",
            delivery.kind, delivery.order_id, delivery.attempts + 1, error, delay,
        )  # fmt: skip
        await self._repo.retry(delivery.id, str(error), self._clock() + delay)

    async def run_worker(self) -> None:
        """Forever: queue what a crash left untold, then send due messages and sleep until
        the next is due or something new is queued. Runs in one process at a time (the
        ``delivery outbox`` lease): messages an earlier outbox claimed and never settled
        (it stopped or died mid-send) are due again at once."""
        try:
            released = await self._repo.release_claims(self._clock())
            if released:
                logger.warning("%d message(s) interrupted mid-send are due again", released)
        except Exception:
            logger.exception("could not release the claims of an earlier outbox")
        try:
            recovered = await self._repo.recover_missing(self._clock())
            if recovered:
                logger.warning("%d customer message(s) left untold by a crash queued", recovered)
        except Exception:
            logger.exception("could not look for untold customer messages")
        await run_due_loop(
            "delivery outbox", self.process_due, self._repo.next_ts, self._wake, self._clock,
            idle=self._tick * 30, max_wait=self._tick * 30, passes=self.passes,
        )  # fmt: skip
