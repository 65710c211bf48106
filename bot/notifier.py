"""Messages about orders sent outside any handler: delivery, processing, failure, refund,
and alerts to admins. Implements :class:`services.orders.OrderNotifier`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot import keyboards, texts
from bot.callbacks import Admin
from bot.i18n import PoI18n, pick_locale
from services.alerts import AlertService
from services.loyalty import PayoutResult
from storage.deliveries import DeliveriesRepository, Delivery
from storage.loyalty import Payout
from storage.mass_sending import Broadcast, Campaign
from storage.orders import IncomingCharge, Order, OrdersRepository, PendingRefund, RecordedCharge
from storage.users import UsersRepository

logger = logging.getLogger(__name__)

#: outbox kinds rendered from their parameters rather than from an order
CHARGE_KINDS = ("charge_rejected", "charge_refunded")
LOYALTY_KINDS = ("payout_finished",)


@dataclass(frozen=True, slots=True)
class AlertText:
    """An alert before translation: the .po ``msgid`` and its placeholders. ``user_id``,
    when given, fills ``{user}`` as ``@username`` where the shop knows one, else ``id N``."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)
    user_id: int | None = None


class BotNotifier:
    """Writes to the customer in their language, through the durable delivery outbox
    (:mod:`bot.outbox`); alerts admins."""

    def __init__(
        self,
        bot: Bot,
        i18n: PoI18n,
        users: UsersRepository,
        admin_ids: list[int],
        orders: OrdersRepository,
        deliveries: DeliveriesRepository,
    ) -> None:
        self._bot = bot
        self._i18n = i18n
        self._users = users
        self._admin_ids = admin_ids
        self._orders = orders
        self._deliveries = deliveries
        #: set by the composition root; without it alerts go straight to admins
        self.alerts: AlertService | None = None
        #: set by the composition root: wakes the delivery outbox after a message is queued
        self.wake_outbox: Callable[[], None] = lambda: None
        #: set by the composition root: wakes the loyalty worker when an order completes,
        #: fails or is refunded (accruals and reversals come from the order log)
        self.wake_loyalty: Callable[[], None] = lambda: None

    async def _locale(self, user_id: int) -> str:
        user = await self._users.get(user_id)
        return pick_locale(
            self._i18n, user.language if user else None, user.telegram_language if user else None
        )

    async def _queue(
        self,
        dedup_key: str,
        user_id: int,
        chat_id: int,
        kind: str,
        *,
        order_id: int | None = None,
        params: dict[str, Any] | None = None,
        with_menu: bool = False,
    ) -> None:
        await self._deliveries.enqueue(
            dedup_key, user_id, chat_id, kind, time.time(),
            order_id=order_id, params=params, with_menu=with_menu,
        )  # fmt: skip
        self.wake_outbox()

    async def _send(self, order: Order, render: str, markup: bool = True) -> None:
        """Queue the ``render`` message of an order (once per order and kind) for the
        customer's private chat (its id is the user's), wherever the order was opened."""
        await self._queue(
            f"order:{order.id}:{render}", order.user_id, order.user_id, render,
            order_id=order.id, with_menu=markup,
        )  # fmt: skip

    async def render(self, delivery: Delivery) -> tuple[str, InlineKeyboardMarkup | None]:
        """An outbox row as text and keyboard in the customer's language, from the order
        as it is now. Raises ``LookupError`` for a row whose order is gone."""
        with self._i18n.for_locale(await self._locale(delivery.user_id)):
            if delivery.kind in CHARGE_KINDS:
                text = self._render_charge(delivery.kind, delivery.params)
            elif delivery.kind in LOYALTY_KINDS:
                text = texts.payout_text(delivery.params)
            else:
                order = await self._orders.get(delivery.order_id or 0)
                if order is None:
                    raise LookupError(f"delivery {delivery.id}: order {delivery.order_id} is gone")
                text = self._render(delivery.kind, order)
            markup = keyboards.after_delivery() if delivery.with_menu else None
        return text, markup

    @staticmethod
    def _render_charge(kind: str, params: dict[str, Any]) -> str:
        if kind == "charge_refunded":
            return _("charge.refunded").format(stars=params["stars"])
        return _(f"charge.rejected.{params['reason']}").format(
            stars=params["stars"], order=params.get("order")
        )

    @staticmethod
    def _render(kind: str, order: Order) -> str:
        if kind == "completed":
            return f"{texts.delivery_text(order)}\n\n{texts.receipt_text(order)}"
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
        self.wake_loyalty()

    async def payout_finished(self, result: PayoutResult) -> None:
        """Tell the customer what a loyalty payout delivered and what went back to their
        balance, and why (once per payout, through the outbox)."""
        payout = result.payout
        await self._queue(
            f"payout:{payout.id}:finished", payout.user_id, payout.user_id, "payout_finished",
            params={"payout": payout.id, "paid": result.paid, "returned": result.returned,
                    "reason": result.reason},
        )  # fmt: skip
        if result.returned:
            await self.alert(
                "payout_failed", "alert.payout_failed", user_id=payout.user_id,
                payout=payout.id, returned=result.returned, reason=result.reason,
            )  # fmt: skip

    async def payout_stuck(self, payout: Payout) -> None:
        """Admins: a loyalty payout has been open for long (its packs are still asked about)."""
        await self.alert(
            "payout_stuck", "alert.payout_stuck", user_id=payout.user_id, payout=payout.id,
            stars=payout.stars, since=payout.created_at[:16].replace("T", " "),
        )  # fmt: skip

    async def resend_completed(self, order: Order) -> None:
        """Send the delivery message of a completed order once more (an admin's order)."""
        await self._queue(
            f"order:{order.id}:completed:resend:{time.time_ns()}", order.user_id, order.user_id,
            "completed", order_id=order.id, with_menu=True,
        )  # fmt: skip

    async def charge_rejected(self, charge: IncomingCharge, recorded: RecordedCharge) -> None:
        """Tell a customer that a charge could not be attached to an order and is being
        refunded (a private chat: its id is the user's); alert admins."""
        assert recorded.rejection is not None
        reason = recorded.rejection.value
        await self._queue(
            f"charge:{charge.charge_id}:charge_rejected", charge.user_id, charge.user_id,
            "charge_rejected", order_id=recorded.order_id,
            params={"stars": charge.stars, "reason": reason, "order": recorded.order_id},
        )  # fmt: skip
        await self.alert(
            "charge_rejected", "alert.charge_rejected", user_id=charge.user_id,
            stars=charge.stars, currency=charge.currency, order=charge.order_id, reason=reason,
        )  # fmt: skip

    async def charge_refunded(self, refund: PendingRefund) -> None:
        """Telegram confirmed the refund of a charge that was never attached."""
        await self._queue(
            f"charge:{refund.charge_id}:charge_refunded", refund.user_id, refund.user_id,
            "charge_refunded", order_id=refund.order_id, params={"stars": refund.stars},
        )  # fmt: skip

    async def order_processing(self, order: Order) -> None:
        await self._send(order, "processing", markup=False)

    async def order_failed(self, order: Order) -> None:
        await self._send(order, "failed", markup=False)
        self.wake_loyalty()
        await self.alert(
            "order_failed", "alert.order_failed", user_id=order.user_id, order=order.id,
            product=order.product_name, offer=order.offer_name, stars=order.stars,
            code=order.failure_code, reason=order.failure_reason,
        )  # fmt: skip

    async def order_refunded(self, order: Order) -> None:
        await self._send(order, "refunded")
        self.wake_loyalty()
        await self.alert(
            "order_refunded", "alert.order_refunded", user_id=order.user_id, order=order.id,
            stars=order.stars,
        )  # fmt: skip

    async def order_stuck(self, order: Order) -> None:
        await self.alert(
            "order_stuck", "alert.order_stuck", user_id=order.user_id, order=order.id,
            product=order.product_name, offer=order.offer_name, status=order.status.value,
            since=order.paid_at, supplier_order=order.supplier_order_id,
        )  # fmt: skip

    async def order_unknown(self, order: Order) -> None:
        """Tell the customer once: paid, the supplier has not confirmed yet, we keep at it."""
        await self._send(order, "unknown", markup=False)

    async def order_delayed(self, order: Order) -> None:
        """Tell the customer a stuck order is still being worked on (or will be refunded)."""
        await self._send(order, "delayed", markup=False)

    async def alert(
        self, key: str, msgid: str, *, user_id: int | None = None, **params: Any
    ) -> None:
        """A rate-limited alert to admins (see :class:`services.alerts.AlertService`), the
        .po message ``msgid`` with ``params``, rendered per admin in the admin's language;
        ``user_id`` names a customer as ``{user}`` (see :class:`AlertText`)."""
        message = AlertText(msgid, params, user_id)
        if self.alerts is not None:
            await self.alerts.alert(key, message)
        else:
            await self.alert_admins(message)

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

    async def _user_label(self, user_id: int | None) -> str:
        if user_id is None:
            return ""
        user = await self._users.get(user_id)
        return f"@{user.username}" if user and user.username else f"id {user_id}"

    async def alert_admins(self, message: AlertText, folded: int = 0) -> None:
        """Plain-text alert (Bot API ``sendMessage``, no parse mode) to every admin in the
        admin's language (chosen, else Telegram's, else the shop's default); ``folded``
        alerts of the same kind held back since the last one are counted at the end."""
        label = await self._user_label(message.user_id)
        for admin_id in self._admin_ids:
            try:
                with self._i18n.for_locale(await self._locale(admin_id)):
                    text = _(message.msgid).format(user=label, **message.params)
                    if folded:
                        text += "\n" + ngettext("alert.folded", "alert.folded", folded).format(
                            count=folded
                        )
                await self._bot.send_message(admin_id, text, parse_mode=None)
            except Exception:
                logger.exception("could not alert admin %s: %s", admin_id, message)
