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
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import StarTransaction, TransactionPartnerUser

from services.orders import STARS_CURRENCY, OrderNotifier, OrderService, parse_invoice_payload
from services.redact import fingerprint
from storage.orders import OrdersRepository, PendingRefund

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
            refund.order_id, f"refunded {refund.stars} Stars, charge {refund.charge_id}"
        )
        logger.info("order %s refunded: %d Stars", refund.order_id, refund.stars)
        try:
            await self._notifier.order_refunded(order)
        except Exception:
            logger.exception("could not tell the customer about refund of order %s", order.id)
        return True

    async def _retry_later(
        self, refund: PendingRefund, error: Exception, retry_after: float | None = None
    ) -> bool:
        delay = self._retry_delays[min(refund.attempts, len(self._retry_delays) - 1)]
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        logger.warning(
            "refund of order %s failed (attempt %d): %s; next try in %.0fs",
            refund.order_id, refund.attempts + 1, error, delay,
        )  # fmt: skip
        await self._orders.refund_retry(refund.order_id, str(error), self._clock() + delay)
        return False

    async def process_due(self) -> int:
        """Attempt every due refund once; returns how many were confirmed."""
        done = 0
        for refund in await self._orders.due_refunds(self._clock()):
            done += await self.refund(refund)
        return done

    async def run_worker(self) -> None:
        """Forever: drain due refunds, then wait for a wake-up or the next due time."""
        logger.info("refund worker started")
        while True:
            try:
                await self.process_due()
            except Exception:
                logger.exception("refund worker pass failed")
            self._wake.clear()
            next_ts = await self._orders.next_refund_ts()
            delay = (
                self._tick
                if next_ts is None
                else min(self._tick * 30, max(0.0, next_ts - self._clock()))
            )
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass


class PaymentReconciler:
    """Finds Stars payments Telegram took that the order log never recorded, and places
    their orders (Bot API ``getStarTransactions``).

    A ``successful_payment`` update can be lost: the bot may die after long polling
    confirmed the update but before the payment was written. Every incoming transaction
    whose payload names one of our orders and whose charge id is not in ``payments`` is
    recorded and fulfilled as if the update had arrived (``handle_payment`` is idempotent
    per charge id).
    """

    def __init__(self, bot: Bot, orders: OrderService, *, page_size: int = 100) -> None:
        self._bot = bot
        self._orders = orders
        self._page_size = page_size

    async def reconcile(self) -> int:
        """One pass over the bot's Star transactions; returns how many payments were recovered."""
        recovered = 0
        offset = 0
        while True:
            page = await self._bot.get_star_transactions(offset=offset, limit=self._page_size)
            for transaction in page.transactions:
                recovered += await self._recover(transaction)
            if len(page.transactions) < self._page_size:
                return recovered
            offset += self._page_size

    async def _recover(self, transaction: StarTransaction) -> bool:
        source = transaction.source
        if not isinstance(source, TransactionPartnerUser) or transaction.receiver is not None:
            return False  # not an incoming payment from a user
        order_id = parse_invoice_payload(source.invoice_payload or "")
        if order_id is None or await self._orders.orders.payment_recorded(transaction.id):
            return False
        logger.error(
            "Stars payment %s (%d) for order %s was never recorded; recovering it",
            fingerprint(transaction.id), transaction.amount, order_id,
        )  # fmt: skip
        try:
            return await self._orders.handle_payment(
                order_id, source.user.id, transaction.id, transaction.amount, STARS_CURRENCY
            )
        except LookupError:
            logger.error(
                "payment %s names order %s of another user or none; check it by hand",
                fingerprint(transaction.id),
                order_id,
            )
            return False
