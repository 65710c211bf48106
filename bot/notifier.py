"""Messages about orders sent outside any handler: delivery, processing, failure, refund,
and alerts to admins. Implements :class:`services.orders.OrderNotifier`."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import keyboards, texts
from bot.i18n import PoI18n, pick_locale
from services.alerts import AlertService
from storage.orders import Order
from storage.users import UsersRepository

logger = logging.getLogger(__name__)


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
            await self._bot.send_message(order.chat_id, text, reply_markup=reply_markup)
        except TelegramForbiddenError:
            logger.warning(
                "user %s blocked the bot; order %s message not delivered", order.user_id, order.id
            )
            await self._users.set_blocked(order.user_id, True)

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
        return _("delivery.refunded").format(order=order.id, stars=order.stars)

    async def order_completed(self, order: Order) -> None:
        await self._send(order, "completed")

    async def order_processing(self, order: Order) -> None:
        await self._send(order, "processing", markup=False)

    async def order_failed(self, order: Order) -> None:
        if order.failure_code != "ADMIN_REFUND":
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

    async def alert(self, key: str, text: str) -> None:
        """A rate-limited alert to admins (see :class:`services.alerts.AlertService`)."""
        if self.alerts is not None:
            await self.alerts.alert(key, text)
        else:
            await self.alert_admins(text)

    async def alert_admins(self, text: str) -> None:
        """Plain-text alert to every admin (admins read the shop's working language)."""
        for admin_id in self._admin_ids:
            try:
                await self._bot.send_message(admin_id, text, parse_mode=None)
            except Exception:
                logger.exception("could not alert admin %s", admin_id)
