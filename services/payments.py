"""Stars refunds through a durable outbox.

A failed order gets a row in ``refunds`` in the same transaction that marks it failed.
:class:`RefundService` calls Bot API ``refundStarPayment`` for each pending row until
Telegram confirms; ``CHARGE_ALREADY_REFUNDED`` means an earlier attempt went through and
counts as done. Retries back off and survive restarts (the rows are in the database).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import StarTransaction, StarTransactions, TransactionPartnerUser

from services.orders import STARS_CURRENCY, OrderNotifier, OrderService, parse_invoice_payload
from services.workers import PassCounter, run_due_loop
from storage.orders import IncomingCharge, OrdersRepository, PendingRefund
from storage.settings import ShopSettingsRepository

logger = logging.getLogger(__name__)


class RefundService:
    """Drains the refund outbox. ``retry_delays`` are seconds between attempts (the last
    one repeats)."""

    def __init__(
        self,
        bot: Bot,
        orders: OrdersRepository,
        notifier: OrderNotifier,
        *,
        retry_delays: tuple[float, ...] = (5, 30, 120, 600),
        tick: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bot = bot
        self._orders = orders
        self._notifier = notifier
        self._retry_delays = retry_delays
        self._tick = tick
        self._clock = clock
        self._wake = asyncio.Event()
        self.passes = PassCounter()

    def wake(self) -> None:
        self._wake.set()

    async def refund(self, refund: PendingRefund) -> bool:
        """One ``refundStarPayment`` attempt; ``True`` when the Stars are back."""
        try:
            await self._bot.refund_star_payment(
                user_id=refund.user_id, telegram_payment_charge_id=refund.charge_id
            )
        except TelegramBadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" not in exc.message:
                return await self._retry_later(refund, exc)
            logger.info("charge of order %s was already refunded", refund.order_id)
        except TelegramRetryAfter as exc:
            return await self._retry_later(refund, exc, exc.retry_after)
        except TelegramAPIError as exc:
            return await self._retry_later(refund, exc)
        order = await self._orders.refund_done(
            refund, f"refunded {refund.stars} Stars, charge {refund.charge_id}"
        )
        logger.info("order %s refunded: %d Stars", refund.order_id, refund.stars)
        try:
            if refund.settles_order and order is not None:
                await self._notifier.order_refunded(order)
            else:
                await self._notifier.charge_refunded(refund)
        except Exception:
            logger.exception("could not tell user %s about the refund", refund.user_id)
        return True

    async def _retry_later(
        self, refund: PendingRefund, error: Exception, retry_after: float | None = None
    ) -> bool:
        delay = self._retry_delays[min(refund.attempts, len(self._retry_delays) - 1)]
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        logger.warning(
            "refund for order %s failed (attempt %d): %s; next try in %.0fs",
            refund.order_id, refund.attempts + 1, error, delay,
        )  # fmt: skip
        await self._orders.refund_retry(refund.charge_id, str(error), self._clock() + delay)
        return False

    async def process_due(self) -> int:
        """Attempt every due refund once; returns how many were confirmed. One refund's
        unexpected error is logged and does not stop the others."""
        done = 0
        for refund in await self._orders.due_refunds(self._clock()):
            try:
                done += await self.refund(refund)
            except Exception as exc:
                logger.exception("refund for order %s: unexpected error", refund.order_id)
                await self._retry_later(refund, exc)
        return done

    async def run_worker(self) -> None:
        """Forever: drain due refunds, then wait for a wake-up or the next due time."""
        await run_due_loop(
            "refund worker", self.process_due, self._orders.next_refund_ts, self._wake,
            self._clock, idle=self._tick, max_wait=self._tick * 30, passes=self.passes,
        )  # fmt: skip


def _seconds(transaction: StarTransaction) -> int:
    """A transaction's date as Unix seconds (aiogram parses it into a ``datetime``)."""
    date: Any = transaction.date
    return int(date.timestamp()) if isinstance(date, datetime) else int(date)


class PaymentReconciler:
    """Finds Stars payments Telegram took that the order log never recorded, and settles
    them (Bot API ``getStarTransactions``).

    A ``successful_payment`` update can be lost: the bot may die after long polling
    confirmed the update but before the payment was written. Every incoming transaction
    from a user whose charge id is not in ``payments`` goes through
    :meth:`OrderService.handle_payment` as if the update had arrived: delivered when it
    fits an open order, refunded otherwise.

    The Bot API lists transactions "in chronological order". Oldest first, each pass
    starts where the last one stopped (``offset``, kept in ``cursor``), less ``overlap``
    transactions read again in case the list shifted. Should Telegram list newest first
    (seen on the first page: dates going down), each pass reads from the newest back to
    the newest date of the last pass, less ``margin`` seconds. Either way every
    transaction is handled on its own, and the saved position never moves past one whose
    handling failed, so it is tried again next pass.
    """

    CURSOR_KEY = "star_transactions_offset"
    WATERMARK_KEY = "star_transactions_newest_date"

    def __init__(
        self,
        bot: Bot,
        orders: OrderService,
        cursor: ShopSettingsRepository,
        *,
        page_size: int = 100,
        overlap: int = 20,
        margin: int = 3600,
        on_error: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._bot = bot
        self._orders = orders
        self._cursor = cursor
        self._page_size = page_size
        self._overlap = overlap
        self._margin = margin
        self._on_error = on_error

    async def reconcile(self) -> int:
        """One pass over the transactions not seen by earlier passes; returns how many
        payments were recovered. Raises the Bot API error of a page that cannot be read
        (the saved position then stays where the last good page left it)."""
        head = (await self._page(0)).transactions
        if len(head) >= 2 and _seconds(head[0]) > _seconds(head[-1]):
            return await self._newest_first(head)
        return await self._oldest_first(head)

    async def _page(self, offset: int) -> StarTransactions:
        return await self._bot.get_star_transactions(offset=offset, limit=self._page_size)

    async def _oldest_first(self, head: list[StarTransaction]) -> int:
        saved = int(await self._cursor.get(self.CURSOR_KEY) or 0)
        offset = max(0, saved - self._overlap)
        page = head if offset == 0 else (await self._page(offset)).transactions
        resume: int | None = None  # the first transaction that failed this pass
        recovered = 0
        while True:
            for index, transaction in enumerate(page):
                ok, found = await self._settle(transaction)
                recovered += found
                if not ok and resume is None:
                    resume = offset + index
            offset += len(page)
            await self._cursor.set(
                self.CURSOR_KEY, str(max(offset, saved) if resume is None else resume)
            )
            if len(page) < self._page_size:
                return recovered
            page = (await self._page(offset)).transactions

    async def _newest_first(self, head: list[StarTransaction]) -> int:
        watermark = int(await self._cursor.get(self.WATERMARK_KEY) or 0)
        newest, oldest_failed = watermark, None
        offset, page, recovered = 0, head, 0
        while True:
            for transaction in page:
                ok, found = await self._settle(transaction)
                recovered += found
                at = _seconds(transaction)
                newest = max(newest, at)
                if not ok:
                    oldest_failed = at if oldest_failed is None else min(oldest_failed, at)
            offset += len(page)
            if len(page) < self._page_size or (
                watermark and _seconds(page[-1]) < watermark - self._margin
            ):
                break
            page = (await self._page(offset)).transactions
        keep = newest if oldest_failed is None else min(newest, oldest_failed)
        await self._cursor.set(self.WATERMARK_KEY, str(keep))
        return recovered

    async def _settle(self, transaction: StarTransaction) -> tuple[bool, bool]:
        """Recover one transaction on its own: ``(handled, recovered)``; an unexpected
        error is logged and alerted, never raised."""
        try:
            return True, await self._recover(transaction)
        except Exception as exc:
            logger.exception("Star transaction of %s: recovery failed", transaction.date)
            if self._on_error is not None:
                await self._on_error(
                    f"payment recovery failed for a Star transaction: {type(exc).__name__}"
                )
            return False, False

    async def _recover(self, transaction: StarTransaction) -> bool:
        source = transaction.source
        if not isinstance(source, TransactionPartnerUser) or transaction.receiver is not None:
            return False  # not an incoming payment from a user
        if await self._orders.orders.payment_recorded(transaction.id):
            return False
        payload = source.invoice_payload or ""
        order_id = parse_invoice_payload(payload)
        logger.error(
            "Stars payment of %d from user %s for order %s was never recorded; recovering it",
            transaction.amount, source.user.id, order_id,
        )  # fmt: skip
        recorded = await self._orders.handle_payment(
            IncomingCharge(
                transaction.id,
                source.user.id,
                transaction.amount,
                STARS_CURRENCY,
                payload,
                order_id,
            )
        )
        return recorded.new
