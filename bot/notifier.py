"""Messages about orders sent outside any handler: delivery, processing, failure, refund,
and alerts to admins. Implements :class:`services.orders.OrderNotifier`."""

from __future__ import annotations

import asyncio
import logging
from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import keyboards, texts
from bot.callbacks import Admin
from bot.i18n import PoI18n, pick_locale
from services.alerts import AlertService
from storage.mass_sending import Broadcast, Campaign
from storage.orders import Order
from storage.users import UsersRepository

logger = logging.getLogger(__name__)

SEND_ATTEMPTS = 4


class BotNotifier:
    """Writes to the customer in their language; to admins about stuck orders."""

    def __init__(
        self, bot: Bot, i18n: PoI18n, users: UsersRepository, admin_ids: list[int]
    ) -> None:
        self._bot = bot
        self._i18n = i18n
        self._users = users
        self._admin_ids = admin_ids
        #: set by the composition root; without it alerts go straight to admins
        self.alerts: AlertService | None = None

    async def _locale(self, user_id: int) -> str:
        user = await self._users.get(user_id)
        return pick_locale(
            self._i18n, user.language if user else None, user.telegram_language if user else None
        )

    async def _send(self, order: Order, render: str, markup: bool = True) -> None:
        with self._i18n.for_locale(await self._locale(order.user_id)):
            text = self._render(render, order)
            reply_markup: InlineKeyboardMarkup | None = (
                keyboards.after_delivery() if markup else None
            )
        try:
            await self._send_with_retries(order.chat_id, text, reply_markup)
        except TelegramForbiddenError:
            logger.warning(
                "user %s blocked the bot; order %s message not delivered", order.user_id, order.id
            )
            await self._users.set_blocked(order.user_id, True)

    async def _send_with_retries(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """``sendMessage``, tried again on a flood limit (after its ``retry_after``, at most
        a minute) and on transient network or server errors: a key must reach its buyer."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                await self._bot.send_message(chat_id, text, reply_markup=markup)
                return
            except TelegramRetryAfter as exc:
                delay = min(float(exc.retry_after), 60.0)
                error: Exception = exc
            except (TelegramNetworkError, TelegramServerError) as exc:
                delay, error = 2.0**attempt, exc
            if attempt + 1 == SEND_ATTEMPTS:
                raise error
            logger.warning(
                "message to chat %s failed (%s); retrying in %.0f s", chat_id, error, delay
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _render(kind: str, order: Order) -> str:
        if kind == "completed":
            return texts.delivery_text(order)
        if kind == "processing":
            return _("delivery.processing").format(order=order.id)
        if kind == "failed":
            return _("delivery.failed").format(
                order=order.id, reason=texts.failure_reason(order), stars=order.stars
            )
        if kind == "unknown":
            return _("delivery.unknown").format(order=order.id, stars=order.stars)
        if kind == "delayed":
            return _("delivery.delayed").format(order=order.id, stars=order.stars)
        return _("delivery.refunded").format(order=order.id, stars=order.stars)

    async def order_completed(self, order: Order) -> None:
        await self._send(order, "completed")

    async def order_processing(self, order: Order) -> None:
        await self._send(order, "processing", markup=False)

    async def order_failed(self, order: Order) -> None:
        await self._send(order, "failed", markup=False)
        await self.alert(
            "order_failed",
            f"❌ Order #{order.id} ({order.product_name} — {order.offer_name}, {order.stars} Stars) "
            f"failed: {order.failure_code}: {order.failure_reason}. Refund queued.",
        )

    async def order_refunded(self, order: Order) -> None:
        await self._send(order, "refunded")
        await self.alert(
            "order_refunded",
            f"↩️ Order #{order.id}: {order.stars} Stars refunded to user {order.user_id}.",
        )

    async def order_stuck(self, order: Order) -> None:
        await self.alert(
            "order_stuck",
            f"⚠️ Order #{order.id} ({order.product_name} — {order.offer_name}) is still "
            f"{order.status.value} since {order.paid_at}; supplier order {order.supplier_order_id}.",
        )

    async def order_unknown(self, order: Order) -> None:
        """Tell the customer once: paid, the supplier has not confirmed yet, we keep at it."""
        await self._send(order, "unknown", markup=False)

    async def order_delayed(self, order: Order) -> None:
        """Tell the customer a stuck order is still being worked on (or will be refunded)."""
        await self._send(order, "delayed", markup=False)

    async def alert(self, key: str, text: str) -> None:
        """A rate-limited alert to admins (see :class:`services.alerts.AlertService`)."""
        if self.alerts is not None:
            await self.alerts.alert(key, text)
        else:
            await self.alert_admins(text)

    # -- mass sending progress (services.mass_sending.ProgressReporter) ----------------

    async def _show_progress(
        self,
        admin_id: int,
        chat_id: int | None,
        message_id: int | None,
        text: str,
        cancel: CallbackData | None,
    ) -> None:
        markup = None
        if cancel is not None:
            with self._i18n.for_locale(await self._locale(admin_id)):
                label = _("mass.cancel")
            markup = InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=cancel.pack())]]
            )
        try:
            if chat_id is not None and message_id is not None:
                await self._bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, reply_markup=markup
                )
            else:
                await self._bot.send_message(admin_id, text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise

    async def broadcast_progress(
        self, broadcast: Broadcast, counts: dict[str, int], rate: float, final: bool
    ) -> None:
        with self._i18n.for_locale(await self._locale(broadcast.admin_id)):
            text = _("mass.broadcast_done" if final else "mass.broadcast_progress").format(
                id=broadcast.id, total=sum(counts.values()), sent=counts.get("sent", 0),
                failed=counts.get("failed", 0), blocked=counts.get("blocked", 0),
                left=counts.get("pending", 0) + counts.get("sending", 0), rate=f"{rate:.1f}",
                status=broadcast.status,
            )  # fmt: skip
        cancel = None if final else Admin(action="bc_cancel", arg=str(broadcast.id))
        await self._show_progress(
            broadcast.admin_id,
            broadcast.progress_chat_id,
            broadcast.progress_message_id,
            text,
            cancel,
        )

    async def campaign_progress(
        self, campaign: Campaign, counts: dict[str, int], final: bool, report: bytes | None
    ) -> None:
        with self._i18n.for_locale(await self._locale(campaign.admin_id)):
            text = _("mass.campaign_done" if final else "mass.campaign_progress").format(
                id=campaign.id, name=escape(campaign.name), completed=counts.get("completed", 0),
                failed=counts.get("failed", 0), left=counts.get("pending", 0) + counts.get("sending", 0),
                unresolved=counts.get("unresolved", 0), status=campaign.status,
            )  # fmt: skip
            caption = _("mass.campaign_report").format(id=campaign.id)
        cancel = None if final else Admin(action="cp_cancel", arg=str(campaign.id))
        await self._show_progress(
            campaign.admin_id, campaign.progress_chat_id, campaign.progress_message_id, text, cancel
        )
        if final and report is not None:
            await self._bot.send_document(
                campaign.admin_id,
                BufferedInputFile(report, filename=f"campaign_{campaign.id}.csv"),
                caption=caption,
            )

    async def reward_received(self, campaign: Campaign, user_id: int, stars: int) -> None:
        with self._i18n.for_locale(await self._locale(user_id)):
            text = _("mass.reward_received").format(promo=escape(campaign.promo_text), stars=stars)
        try:
            await self._bot.send_message(user_id, text)
        except TelegramForbiddenError:
            await self._users.set_blocked(user_id, True)

    async def alert_admins(self, text: str) -> None:
        """Plain-text alert to every admin (admins read the shop's working language)."""
        for admin_id in self._admin_ids:
            try:
                await self._bot.send_message(admin_id, text, parse_mode=None)
            except Exception:
                logger.exception("could not alert admin %s", admin_id)
