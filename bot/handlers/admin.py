"""The admin console. Every handler here sits behind the router's filters: a private chat
with an admin from settings. Anyone else gets no trace: their updates fall through to
the customer routers, which ignore admin commands and admin callback data."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter, Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    Message,
    TelegramObject,
    User,
)
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.callbacks import TEXT_ID_PATTERN, Admin
from bot.middlewares import UserMiddleware
from bot.notifier import BotNotifier
from bot.settings import Settings
from bot.ui import show
from services.admin import AdminService
from services.catalogue import HeldSyncGone
from services.charts import ChartError, ChartLabels, DayPoint, render_stats_chart
from services.orders import OrderService
from services.parsing import SQLITE_INT_MAX, BadNumber, parse_decimal, parse_int
from services.pricing import PLACES, RANGES, PricedOffer, PriceSetting
from services.suppliers.base import Capability
from services.suppliers.errors import SupplierError
from storage.orders import Order, OrderStatus
from storage.users import User as StoredUser
from storage.users import UsersRepository

logger = logging.getLogger(__name__)


class IsAdmin(BaseFilter):
    """The update comes from an admin listed in settings."""

    async def __call__(
        self, event: TelegramObject, settings: Settings, event_from_user: User | None = None
    ) -> bool:
        return event_from_user is not None and event_from_user.id in settings.admin_ids


class InPrivateChat(BaseFilter):
    async def __call__(self, event: TelegramObject) -> bool:
        message = event.message if isinstance(event, CallbackQuery) else event
        return isinstance(message, Message) and message.chat.type == ChatType.PRIVATE


class AdminInput(StatesGroup):
    markup = State()
    star_usd = State()
    user_query = State()


router = Router(name=__name__)
router.message.filter(InPrivateChat(), IsAdmin())
router.callback_query.filter(InPrivateChat(), IsAdmin())

ORDER_FILTERS = ("all", "processing", "unknown", "failed", "completed", "refunded")
#: ``/export`` dates: one day past the last must still be a date
EXPORT_FIRST, EXPORT_LAST = date(2000, 1, 1), date(2999, 12, 31)
_NUMBER_PROBLEMS = {
    "empty": "admin.number.empty", "not_whole": "admin.number.not_whole",
    "not_decimal": "admin.number.not_decimal", "too_precise": "admin.number.too_precise",
    "out_of_range": "admin.number.out_of_range",
}  # fmt: skip


def bad_number_text(error: BadNumber) -> str:
    """What is wrong with a number an admin typed, in the admin's language."""
    return _(_NUMBER_PROBLEMS[error.problem.value]).format(
        text=escape(error.text.strip()[:40]), low=error.low, high=error.high
    )


def parse_id(text: str) -> int:
    """An order or user id (``#`` allowed in front), 1 to SQLite's largest integer.
    Raises :class:`BadNumber`."""
    return parse_int(text.strip().lstrip("#"), low=1, high=SQLITE_INT_MAX)


def _arg_id(callback_data: Admin) -> int | None:
    """The id in a button's data, or ``None`` when it is not a valid id (crafted data)."""
    try:
        return parse_id(callback_data.arg)
    except BadNumber:
        return None


def _menu_markup() -> Any:
    builder = InlineKeyboardBuilder()
    for key, action, arg in (
        ("admin.balance", "bal", ""), ("admin.transactions", "tx", "1"), ("admin.orders", "orders", "all"),
        ("admin.stats", "stats", "1"), ("admin.catalogue", "cat", ""), ("admin.prices", "prices", ""),
        ("admin.users", "users", ""), ("admin.export", "export", "7"),
        ("admin.broadcast", "broadcast", ""), ("admin.campaign", "campaign", ""),
        ("admin.audit", "audit", "1"),
    ):  # fmt: skip
        builder.button(text=_(key), callback_data=Admin(action=action, arg=arg))
    builder.adjust(2)
    return builder.as_markup()


def _button(text: str, action: str, arg: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=Admin(action=action, arg=arg).pack())


def _back(builder: InlineKeyboardBuilder | None = None, action: str = "menu", arg: str = "") -> Any:
    """``builder``'s buttons (if any) with a Back row under them."""
    builder = builder or InlineKeyboardBuilder()
    builder.row(_button(_("admin.back"), action, arg))
    return builder.as_markup()


@router.message(Command("admin"))
async def admin_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("admin.menu"), reply_markup=_menu_markup())


@router.callback_query(Admin.filter(F.action == "menu"))
async def admin_menu(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(callback, _("admin.menu"), _menu_markup())


# -- supplier --------------------------------------------------------------------------


@router.callback_query(Admin.filter(F.action == "bal"))
async def balance(callback: CallbackQuery, order_service: OrderService) -> None:
    """The balance of every supplier that has one (``BALANCE``), each under its name."""
    parts = []
    for supplier in order_service.suppliers.having(Capability.BALANCE):
        try:
            info = await supplier.get_balance()
        except SupplierError as exc:
            parts.append(_("admin.supplier_error").format(error=escape(str(exc))))
            continue
        parts.append(_("admin.balance_text").format(
            balance=info.balance, draft=info.draft_balance, currency=info.currency,
            profile=info.balance_profile or "-", postpaid=_("admin.yes") if info.is_postpaid else _("admin.no"),
            partner=info.partner_id or "-",
        ))  # fmt: skip
        if len(order_service.suppliers) > 1:
            parts[-1] = f"<b>{escape(supplier.name)}</b>\n{parts[-1]}"
    await show(callback, "\n\n".join(parts) or "-", _back())


@router.callback_query(Admin.filter(F.action == "tx"))
async def transactions(
    callback: CallbackQuery, callback_data: Admin, order_service: OrderService
) -> None:
    try:
        page = parse_int(callback_data.arg, low=1, high=100_000)
    except BadNumber:
        page = 1
    try:
        suppliers = order_service.suppliers.having(Capability.TRANSACTIONS)
        if not suppliers:
            await show(callback, "-", _back())
            return
        history = await suppliers[0].list_transactions(page=page, limit=10)
    except SupplierError as exc:
        await show(callback, _("admin.supplier_error").format(error=escape(str(exc))), _back())
        return
    lines = [
        f"{(t.created_at.strftime('%Y-%m-%d %H:%M') if t.created_at else '-')}  {t.type:<8} {t.amount:>9}  "
        f"→ {t.balance_after if t.balance_after is not None else '-'}  {escape(t.description)}"
        for t in history.transactions
    ]
    pages = max(1, -(-history.total // 10))
    text = (
        _("admin.transactions_text").format(page=page, pages=pages, total=history.total)
        + "\n<code>"
        + ("\n".join(lines) or "-")
        + "</code>"
    )
    builder = InlineKeyboardBuilder()
    if page > 1:
        builder.button(text="‹", callback_data=Admin(action="tx", arg=str(page - 1)))
    if page < pages:
        builder.button(text="›", callback_data=Admin(action="tx", arg=str(page + 1)))
    await show(callback, text, _back(builder))


# -- orders ----------------------------------------------------------------------------


@router.callback_query(Admin.filter(F.action == "orders"))
async def orders_list(
    callback: CallbackQuery, callback_data: Admin, admin_service: AdminService
) -> None:
    status = callback_data.arg if callback_data.arg in ORDER_FILTERS else "all"
    orders = await admin_service.latest_orders(None if status == "all" else status)
    builder = InlineKeyboardBuilder()
    for order in orders:
        builder.button(
            text=f"#{order.id} {order.product_name[:20]} · {order.stars}⭐ · {order.status.value}",
            callback_data=Admin(action="order", arg=str(order.id)),
        )
    builder.adjust(1)
    filters = [
        _button(("• " if name == status else "") + name, "orders", name) for name in ORDER_FILTERS
    ]
    builder.row(*filters[:3])
    builder.row(*filters[3:])
    text = (
        _("admin.orders_text").format(status=status, count=len(orders))
        if orders
        else _("admin.no_orders")
    )
    await show(callback, text, _back(builder))


async def _order_text(
    order: Order,
    order_service: OrderService,
    users: UsersRepository,
    supplier_status: str | None = None,
) -> str:
    customer = await users.get(order.user_id)
    who = f"{order.user_id}" + (f" @{customer.username}" if customer and customer.username else "")
    events = await order_service.orders.events(order.id)
    log = "\n".join(
        f"{e.at[5:19].replace('T', ' ')} {e.from_status or '∅'} → {e.to_status}: {escape(e.detail or '')}"
        for e in events
    )
    lines = [
        _("admin.order_head").format(order=order.id, status=order.status.value),
        f"{escape(order.product_name)} — {escape(order.offer_name)}",
        _("admin.order_customer").format(customer=escape(who)),
        _("admin.order_money").format(
            stars=order.stars,
            price=order.supplier_price,
            currency=order.supplier_currency,
            cost=order.cost_usd.quantize(Decimal("0.0001")),
        ),
        _("admin.order_supplier").format(
            supplier_order=order.supplier_order_id or "-",
            status=order.supplier_status or "-",
            transaction=escape(order.transaction_id),
        ),
    ]
    if order.game_user_id:
        lines.append(texts.player_line(order).strip() or escape(order.game_user_id))
    if order.recipient_name:
        lines.append(_("orders.recipient").format(recipient=escape(order.recipient_name)).strip())
    if order.delivered_key:
        lines.append(_("orders.key").format(key=texts.keys_html(order)).strip())
    if order.failure_reason:
        lines.append(_("orders.reason").format(reason=escape(order.failure_reason)).strip())
    if supplier_status:
        lines.append(_("admin.order_supplier_now").format(status=escape(supplier_status)))
    return "\n".join(lines) + f"\n\n<code>{log}</code>"


def _order_markup(order: Order) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.refresh"), callback_data=Admin(action="refresh", arg=str(order.id))
    )
    if order.status is OrderStatus.COMPLETED:
        builder.button(
            text=_("admin.resend"), callback_data=Admin(action="resend", arg=str(order.id))
        )
    if AdminService.refund_refusal(order) is None:
        builder.button(
            text=_("admin.refund"), callback_data=Admin(action="refund", arg=str(order.id))
        )
    if order.status.is_open:
        builder.button(
            text=_("admin.resolve_now"), callback_data=Admin(action="resolve", arg=str(order.id))
        )
    builder.adjust(3)
    return _back(builder, "orders", "all")


async def _load_order(
    callback: CallbackQuery, callback_data: Admin, order_service: OrderService
) -> Order | None:
    order_id = _arg_id(callback_data)
    order = await order_service.orders.get(order_id) if order_id is not None else None
    if order is None:
        await callback.answer(_("admin.order_not_found"), show_alert=True)
    return order


@router.callback_query(Admin.filter(F.action == "order"))
async def order_detail(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is not None:
        await show(callback, await _order_text(order, order_service, users), _order_markup(order))


@router.message(Command("order"))
async def order_command(
    message: Message, command: CommandObject, order_service: OrderService, users: UsersRepository
) -> None:
    try:
        order = await order_service.orders.get(parse_id(command.args or ""))
    except BadNumber as exc:
        await message.answer(bad_number_text(exc) + "\n" + _("admin.order_usage"))
        return
    if order is None:
        await message.answer(_("admin.refund_refused.not_found"))
        return
    await message.answer(
        await _order_text(order, order_service, users), reply_markup=_order_markup(order)
    )


@router.callback_query(Admin.filter(F.action == "refresh"))
async def order_refresh(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
    admin_service: AdminService,
) -> None:
    """Ask the supplier now: an open order is checked (and moves on if it finished)."""
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    supplier_status = None
    try:
        if order.status.is_open:
            await order_service.check_order(order)
        supplier = order_service.supplier_of(order)
        if order.supplier_order_id:
            current = await supplier.get_order(order_id=order.supplier_order_id)
        else:
            current = await supplier.get_order(
                transaction_id=order.transaction_id, attempt=order_service.attempt_of(order)
            )
        supplier_status = current.status.value + (
            f" ({current.message})" if current.message else ""
        )
    except SupplierError as exc:
        supplier_status = f"{type(exc).__name__}: {exc}"
    await admin_service.audit(callback.from_user.id, "refresh", f"order {order.id}")
    order = await order_service.orders.get(order.id)
    assert order is not None
    await show(
        callback,
        await _order_text(order, order_service, users, supplier_status),
        _order_markup(order),
    )


@router.callback_query(Admin.filter(F.action == "resolve"))
async def order_resolve_now(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
    admin_service: AdminService,
) -> None:
    """Resolve now: ask the supplier about an open order and act on its answer; the order
    is failed and refunded only when the supplier confirms it has no such order
    (:meth:`services.orders.OrderService.resolve_now`)."""
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    order, outcome = await order_service.resolve_now(order.id)
    assert order is not None
    await admin_service.audit(callback.from_user.id, "resolve", f"order {order.id}: {outcome}")
    verdict = _(f"admin.resolve.{outcome.value}").format(
        order=order.id, status=texts.status_text(order.status)
    )
    await show(
        callback,
        verdict + "\n\n" + await _order_text(order, order_service, users),
        _order_markup(order),
    )


@router.callback_query(Admin.filter(F.action == "resend"))
async def order_resend(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    notifier: BotNotifier,
    admin_service: AdminService,
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    if order.status is not OrderStatus.COMPLETED:
        await callback.answer(_("admin.resend_not_completed"), show_alert=True)
        return
    await notifier.resend_completed(order)
    await admin_service.audit(callback.from_user.id, "resend", f"order {order.id}")
    await callback.answer(_("admin.resent"), show_alert=True)


def _refund_confirm_markup(order_id: int) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.refund_yes"), callback_data=Admin(action="refund_yes", arg=str(order_id))
    )
    builder.button(text=_("admin.back"), callback_data=Admin(action="order", arg=str(order_id)))
    return builder.as_markup()


def _refund_question(order: Order) -> str:
    return _("admin.refund_confirm").format(
        order=order.id, stars=order.stars, user=order.user_id, product=escape(order.product_name)
    )


@router.message(Command("refund"))
async def refund_command(
    message: Message, command: CommandObject, order_service: OrderService
) -> None:
    try:
        order = await order_service.orders.get(parse_id(command.args or ""))
    except BadNumber as exc:
        await message.answer(bad_number_text(exc) + "\n" + _("admin.refund_usage"))
        return
    refusal = AdminService.refund_refusal(order)
    if refusal is not None or order is None:
        await message.answer(_(f"admin.refund_refused.{refusal.value if refusal else 'not_found'}"))
    else:
        await message.answer(_refund_question(order), reply_markup=_refund_confirm_markup(order.id))


@router.callback_query(Admin.filter(F.action == "refund"))
async def refund_button(
    callback: CallbackQuery, callback_data: Admin, order_service: OrderService
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    refusal = AdminService.refund_refusal(order)
    if refusal is not None:
        await callback.answer(_(f"admin.refund_refused.{refusal.value}"), show_alert=True)
        return
    await show(callback, _refund_question(order), _refund_confirm_markup(order.id))


@router.callback_query(Admin.filter(F.action == "refund_yes"))
async def refund_confirmed(
    callback: CallbackQuery, callback_data: Admin, admin_service: AdminService
) -> None:
    order_id = _arg_id(callback_data)
    if order_id is None:
        await callback.answer(_("admin.order_not_found"), show_alert=True)
        return
    order, refusal = await admin_service.refund(order_id, callback.from_user.id)
    if refusal is not None:
        await callback.answer(_(f"admin.refund_refused.{refusal.value}"), show_alert=True)
        return
    assert order is not None
    await show(
        callback,
        _("admin.refund_queued").format(order=order.id, stars=order.stars),
        _back(None, "order", str(order.id)),
    )


# -- stats and export ------------------------------------------------------------------


@router.callback_query(Admin.filter(F.action == "stats"))
async def stats(
    callback: CallbackQuery, callback_data: Admin, bot: Bot, admin_service: AdminService
) -> None:
    """Figures for today, 7 or 30 days; for 7 and 30 days also a chart and a CSV per day."""
    days = int(callback_data.arg) if callback_data.arg in ("1", "7", "30") else 1
    figures = await admin_service.stats(days)
    by_status = (
        ", ".join(f"{name} {count}" for name, count in figures.orders_by_status.items()) or "-"
    )
    top = (
        "\n".join(
            f"  {escape(name)}: {count} · {stars}⭐" for name, count, stars in figures.top_products
        )
        or "  -"
    )
    text = _("admin.stats_text").format(
        period=_(f"admin.period_{days}"), orders=by_status, taken=figures.stars_taken, refunded=figures.stars_refunded,
        revenue=figures.revenue_usd, cost=figures.supplier_cost_usd, margin=figures.margin_usd, top=top,
        new_users=figures.new_users,
    )  # fmt: skip
    builder = InlineKeyboardBuilder()
    for option in ("1", "7", "30"):
        builder.button(
            text=_(f"admin.period_{option}"), callback_data=Admin(action="stats", arg=option)
        )
    await show(callback, text, _back(builder))
    if days > 1 and callback.message is not None:
        await _send_series(bot, callback.message.chat.id, days, admin_service)


async def _send_series(bot: Bot, chat_id: int, days: int, admin_service: AdminService) -> None:
    """Revenue, orders and refunds per day of the last ``days``: a chart (Bot API
    ``sendPhoto``, drawn in a child process by :mod:`services.charts`) and the same series
    as CSV (``sendDocument``). A chart that cannot be drawn is logged and said so; the
    CSV goes out anyway."""
    series = await admin_service.daily_series(days)
    period = _(f"admin.period_{days}")
    caption = _("admin.chart_caption").format(period=period)
    labels = ChartLabels(
        title=_("admin.chart_title").format(period=period),  # no emoji: the font has none
        revenue=_("admin.chart_revenue"),
        orders=_("admin.chart_orders"),
        refunds=_("admin.chart_refunds"),
    )
    points = [DayPoint(d.day, d.revenue_usd, d.orders, d.refunds) for d in series]
    try:
        png = await render_stats_chart(points, labels)
    except ChartError:
        logger.exception("stats chart for %d days could not be drawn", days)
        await bot.send_message(chat_id, _("admin.chart_failed"))
    else:
        await bot.send_photo(
            chat_id, BufferedInputFile(png, filename=f"stats_{days}d.png"), caption=caption
        )
    await bot.send_document(
        chat_id,
        BufferedInputFile(admin_service.series_csv(series), filename=f"stats_{days}d.csv"),
        caption=_("admin.series_caption").format(period=period),
    )


async def _send_export(
    bot: Bot, chat_id: int, since: date, until: date, admin_service: AdminService, admin_id: int
) -> None:
    content, count = await admin_service.export_csv(
        since.isoformat(), (until + timedelta(days=1)).isoformat()
    )
    name = f"orders_{since.isoformat()}_{until.isoformat()}.csv"
    await bot.send_document(
        chat_id, BufferedInputFile(content, filename=name),
        caption=ngettext("admin.export_caption", "admin.export_caption", count).format(count=count, since=since, until=until),
    )  # fmt: skip
    await admin_service.audit(admin_id, "export", f"{since}..{until}: {count} orders")


@router.callback_query(Admin.filter(F.action == "export"))
async def export_button(
    callback: CallbackQuery, callback_data: Admin, bot: Bot, admin_service: AdminService
) -> None:
    days = int(callback_data.arg) if callback_data.arg in ("1", "7", "30") else 7
    until = datetime.now(UTC).date()
    await callback.answer()
    if callback.message is not None:
        await _send_export(
            bot,
            callback.message.chat.id,
            until - timedelta(days=days - 1),
            until,
            admin_service,
            callback.from_user.id,
        )


@router.message(Command("export"))
async def export_command(
    message: Message, command: CommandObject, bot: Bot, admin_service: AdminService
) -> None:
    """``/export 2026-11-01 2026-11-22`` (both days included)."""
    parts = (command.args or "").split()
    try:
        since, until = (
            (date.fromisoformat(parts[0]), date.fromisoformat(parts[1]))
            if len(parts) == 2
            else (None, None)
        )
    except ValueError:
        since = until = None
    if since is None or until is None or since > until:
        await message.answer(_("admin.export_usage"))
        return
    if since < EXPORT_FIRST or until > EXPORT_LAST:
        await message.answer(_("admin.export_range").format(low=EXPORT_FIRST, high=EXPORT_LAST))
        return
    assert message.from_user is not None
    await _send_export(bot, message.chat.id, since, until, admin_service, message.from_user.id)


# -- audit log -------------------------------------------------------------------------

AUDIT_PAGE = 10


@router.callback_query(Admin.filter(F.action == "audit"))
async def audit_log(
    callback: CallbackQuery, callback_data: Admin, admin_service: AdminService
) -> None:
    """The audit log, newest first, ten entries a page, with a CSV export button."""
    try:
        page = parse_int(callback_data.arg, low=1, high=SQLITE_INT_MAX // AUDIT_PAGE)
    except BadNumber:
        page = 1
    entries, total = await admin_service.audit_page(page, AUDIT_PAGE)
    pages = max(1, -(-total // AUDIT_PAGE))
    lines = [
        f"{escape(e.at[:16].replace('T', ' '))} · "
        f"{escape('@' + e.admin_username if e.admin_username else str(e.admin_id))} · "
        f"<b>{escape(e.action)}</b> {escape(e.detail)}"
        for e in entries
    ]
    text = _("admin.audit_text").format(page=page, pages=pages, total=total)
    text += "\n" + ("\n".join(lines) or _("admin.audit_empty"))
    builder = InlineKeyboardBuilder()
    if page > 1:
        builder.button(text="‹", callback_data=Admin(action="audit", arg=str(page - 1)))
    if page < pages:
        builder.button(text="›", callback_data=Admin(action="audit", arg=str(page + 1)))
    if total:
        builder.button(text=_("admin.audit_export"), callback_data=Admin(action="audit_csv"))
    await show(callback, text, _back(builder))


@router.callback_query(Admin.filter(F.action == "audit_csv"))
async def audit_export(callback: CallbackQuery, bot: Bot, admin_service: AdminService) -> None:
    """The whole audit log as a CSV document (Bot API ``sendDocument``)."""
    await callback.answer()
    if callback.message is None:
        return
    content, count = await admin_service.audit_csv()
    await bot.send_document(
        callback.message.chat.id,
        BufferedInputFile(content, filename="audit_log.csv"),
        caption=ngettext("admin.audit_caption", "admin.audit_caption", count).format(count=count),
    )
    await admin_service.audit(callback.from_user.id, "audit_export", f"{count} entries")


# -- catalogue and prices --------------------------------------------------------------


def _apply_held_markup(run_id: int) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.sync_apply"), callback_data=Admin(action="sync_apply", arg=str(run_id))
    )
    return builder.as_markup()


@router.callback_query(Admin.filter(F.action == "cat"))
async def catalogue_info(callback: CallbackQuery, order_service: OrderService) -> None:
    catalogue = order_service.catalogue
    repo = catalogue.repo
    last = await repo.last_sync()
    text = _("admin.catalogue_text").format(
        offers=await repo.size(), last=(last[0][:19].replace("T", " ") + " UTC") if last else "-",
        syncing=_("admin.yes") if catalogue.is_syncing else _("admin.no"),
    )  # fmt: skip
    builder = InlineKeyboardBuilder()
    held = await catalogue.held_run()
    if held is not None:
        text += "\n\n" + ngettext(
            "admin.catalogue_held", "admin.catalogue_held", held.offers
        ).format(run=held.id, listed=held.offers)
        builder.button(
            text=_("admin.sync_apply"), callback_data=Admin(action="sync_apply", arg=str(held.id))
        )
    builder.button(text=_("admin.sync_now"), callback_data=Admin(action="sync"))
    builder.adjust(1)
    await show(callback, text, _back(builder))


async def _run_sync(
    bot: Bot, chat_id: int, order_service: OrderService, admin_service: AdminService, admin_id: int
) -> None:
    catalogue = order_service.catalogue
    if catalogue.is_syncing:
        await bot.send_message(chat_id, _("admin.sync_busy"))
        return
    progress = await bot.send_message(chat_id, _("admin.sync_started"))
    await admin_service.audit(admin_id, "sync", "started")
    try:
        reports = await catalogue.sync_all()
    except Exception as exc:
        logger.exception("catalogue sync asked by admin %s failed", admin_id)
        await progress.edit_text(
            _("admin.sync_failed").format(error=escape(f"{type(exc).__name__}: {exc}"))
        )
        return
    for report in reports:
        if report.held:
            await progress.edit_text(
                ngettext("admin.sync_held", "admin.sync_held", report.listed).format(
                    run=report.run_id, listed=report.listed, previous=report.previous
                ),
                reply_markup=_apply_held_markup(report.run_id),
            )
            return
    offers = sum(r.offers for r in reports)
    await progress.edit_text(
        ngettext("admin.sync_done", "admin.sync_done", offers).format(
            offers=offers, seconds=f"{sum(r.seconds for r in reports):.1f}"
        )
    )


async def _apply_held(
    bot: Bot,
    chat_id: int,
    order_service: OrderService,
    admin_service: AdminService,
    admin_id: int,
    run_id: int | None,
) -> None:
    """Apply held sync ``run_id`` (``None``: the latest held one) after an admin confirmed."""
    catalogue = order_service.catalogue
    if run_id is None:
        held = await catalogue.held_run()
        run_id = held.id if held is not None else None
    if run_id is None:
        await bot.send_message(chat_id, _("admin.sync_nothing_held"))
        return
    try:
        report = await catalogue.apply_held(run_id)
    except HeldSyncGone:
        logger.info(
            "admin %s asked to apply sync #%s, which is not held any more", admin_id, run_id
        )
        await bot.send_message(chat_id, _("admin.sync_nothing_held"))
        return
    await admin_service.audit(
        admin_id, "sync_apply", f"run {run_id}: {report.previous} -> {report.offers} offers"
    )
    await bot.send_message(
        chat_id,
        ngettext("admin.sync_applied", "admin.sync_applied", report.offers).format(
            run=run_id, offers=report.offers, previous=report.previous
        ),
    )


@router.callback_query(Admin.filter(F.action == "sync"))
async def sync_button(
    callback: CallbackQuery, bot: Bot, order_service: OrderService, admin_service: AdminService
) -> None:
    await callback.answer()
    if callback.message is not None:
        await _run_sync(
            bot, callback.message.chat.id, order_service, admin_service, callback.from_user.id
        )


@router.callback_query(Admin.filter(F.action == "sync_apply"))
async def sync_apply_button(
    callback: CallbackQuery,
    callback_data: Admin,
    bot: Bot,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """ "Apply anyway" under a held sync: applies that very run, if it is still the latest."""
    await callback.answer()
    if callback.message is None:
        return
    run_id = int(callback_data.arg) if callback_data.arg.isdigit() else 0
    await _apply_held(
        bot, callback.message.chat.id, order_service, admin_service, callback.from_user.id, run_id
    )


MAX_LISTED_AT_ONCE = 200  # offer ids one /offers command may list


@router.message(Command("offers"))
async def offers_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/offers <supplier> <id> [<id> ...]``: list more offers of a supplier that has no
    catalogue feed (each then refreshed by find-one), and refresh them at once."""
    assert message.from_user is not None
    suppliers = order_service.suppliers
    without_feed = [s.name for s in suppliers if Capability.CATALOGUE_SYNC not in s.capabilities]
    name, *ids = (command.args or "").split() or [""]
    usage = _("admin.offers_usage").format(suppliers=", ".join(without_feed) or "—")
    if not name or not ids:
        await message.answer(usage)
        return
    if name not in suppliers:
        await message.answer(usage)
        return
    if name not in without_feed:
        await message.answer(_("admin.offers_has_feed").format(supplier=escape(name)))
        return
    bad = [offer_id for offer_id in ids if not re.fullmatch(TEXT_ID_PATTERN, offer_id)]
    if bad or len(ids) > MAX_LISTED_AT_ONCE:
        await message.answer(
            _("admin.offers_bad_id").format(ids=escape(" ".join(bad[:5])), most=MAX_LISTED_AT_ONCE)
        )
        return
    added = await order_service.catalogue.repo.add_listed_offers(
        name, list(dict.fromkeys(ids)), message.from_user.id
    )
    await admin_service.audit(message.from_user.id, "offers", f"{name}: {' '.join(ids)}")
    try:
        report = await order_service.catalogue.refresh_listed(name)
    except Exception as exc:
        logger.exception("refreshing the listed offers of %s failed", name)
        await message.answer(
            _("admin.sync_failed").format(error=escape(f"{type(exc).__name__}: {exc}"))
        )
        return
    await message.answer(
        _("admin.offers_added").format(supplier=escape(name), new=added, active=report.offers)
    )


@router.message(Command("sync"))
async def sync_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/sync`` runs a sync; ``/sync force`` applies the latest held sync."""
    assert message.from_user is not None
    argument = (command.args or "").strip().lower()
    if argument == "force":
        await _apply_held(
            bot, message.chat.id, order_service, admin_service, message.from_user.id, None
        )
    elif argument:
        await message.answer(_("admin.sync_usage"))
    else:
        await _run_sync(bot, message.chat.id, order_service, admin_service, message.from_user.id)


def _prices_text(order_service: OrderService) -> str:
    book = order_service.pricing.book
    return _("admin.prices_text").format(
        markup=book.markup,
        percent=texts.percent(book.markup),
        star_usd=book.star_usd,
        example=book.stars(Decimal("1"), "USD"),
    )


@router.callback_query(Admin.filter(F.action == "prices"))
async def prices(callback: CallbackQuery, order_service: OrderService) -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("admin.set_markup"), callback_data=Admin(action="ask", arg="markup"))
    builder.button(text=_("admin.set_star_usd"), callback_data=Admin(action="ask", arg="star_usd"))
    await show(callback, _prices_text(order_service), _back(builder))


@router.callback_query(Admin.filter(F.action == "ask"))
async def ask_value(callback: CallbackQuery, callback_data: Admin, state: FSMContext) -> None:
    prompts = {"markup": (AdminInput.markup, "admin.ask_markup"), "star_usd": (AdminInput.star_usd, "admin.ask_star_usd"),
               "user": (AdminInput.user_query, "admin.ask_user")}  # fmt: skip
    if callback_data.arg not in prompts:
        await callback.answer()
        return
    target, key = prompts[callback_data.arg]
    await state.set_state(target)
    await show(callback, _(key), _back())


async def _price_offers(order_service: OrderService) -> list[PricedOffer]:
    return [
        PricedOffer(f"{o.product_name} — {o.offer_name}", o.price, o.currency, o.stars_amount)
        for o in await order_service.catalogue.repo.price_samples()
    ]


def _parse_price(raw: str, which: PriceSetting) -> Decimal:
    """Raises :class:`BadNumber` (out of the setting's range included)."""
    low, high = RANGES[which]
    return parse_decimal(raw, low=low, high=high, places=PLACES[which])


async def _preview_price_value(
    message: Message, raw: str, which: PriceSetting, order_service: OrderService
) -> bool:
    """Check the value and show what it would do to a few real offers, with an Apply
    button; nothing is saved here. ``False`` when the value is refused."""
    try:
        value = _parse_price(raw, which)
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return False
    changes = order_service.pricing.preview(which, value, await _price_offers(order_service))
    offers = "\n".join(
        f"  {escape(c.name)}: {c.old_stars} ⭐ → {c.new_stars} ⭐" for c in changes
    ) or _("admin.price_no_offers")
    current = getattr(order_service.pricing.book, which)
    shown = texts.percent if which == "markup" else str
    text = _("admin.price_preview").format(
        setting=_(f"admin.price_setting.{which}"),
        old=shown(current),
        new=shown(value),
        offers=offers,
    )
    builder = InlineKeyboardBuilder()
    # the current value rides along: Apply refuses if someone changed it meanwhile
    builder.button(
        text=_("admin.price_apply"),
        callback_data=Admin(action="price_ok", arg=f"{which}={value}={current}"),
    )
    await message.answer(text, reply_markup=_back(builder, "prices"))
    return True


@router.message(Command("markup", "starvalue"))
async def price_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
) -> None:
    """``/markup 0.2`` or ``/starvalue 0.013``: a preview to confirm; without a value,
    show the prices."""
    if not command.args:
        await message.answer(_prices_text(order_service))
        return
    which: PriceSetting = "markup" if command.command == "markup" else "star_usd"
    await _preview_price_value(message, command.args, which, order_service)


@router.message(StateFilter(AdminInput.markup), F.text)
@router.message(StateFilter(AdminInput.star_usd), F.text)
async def price_value_entered(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    which: PriceSetting = (
        "markup" if await state.get_state() == AdminInput.markup.state else "star_usd"
    )
    if await _preview_price_value(message, message.text or "", which, order_service):
        await state.clear()


@router.callback_query(Admin.filter(F.action == "price_ok"))
async def price_confirmed(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """Apply a previewed price setting (checked again: button data can be crafted)."""
    which, raw, seen = [*callback_data.arg.split("="), "", "", ""][:3]
    if which not in RANGES:
        await callback.answer()
        return
    setting: PriceSetting = "markup" if which == "markup" else "star_usd"
    try:
        value = _parse_price(raw, setting)
    except BadNumber as exc:
        await callback.answer(bad_number_text(exc), show_alert=True)
        return
    if str(getattr(order_service.pricing.book, setting)) != seen:
        await callback.answer(_("admin.price_changed_meanwhile"), show_alert=True)
        return
    if setting == "markup":
        await order_service.pricing.set_markup(value, callback.from_user.id)
    else:
        await order_service.pricing.set_star_usd(value, callback.from_user.id)
    await admin_service.audit(callback.from_user.id, f"set_{setting}", f"{seen} -> {value}")
    await show(callback, _prices_text(order_service), _back(None, "prices"))


# -- users -----------------------------------------------------------------------------


async def _user_card(
    user: StoredUser, admin_service: AdminService, settings: Settings
) -> tuple[str, Any]:
    text = _("admin.user_text").format(
        id=user.id, username=escape(f"@{user.username}" if user.username else "-"), name=escape(user.first_name),
        language=user.language or user.telegram_language or "-", first_seen=user.first_seen[:19].replace("T", " "),
        orders=await admin_service.user_order_count(user.id),
        banned=_("admin.yes") if user.is_banned else _("admin.no"), blocked=_("admin.yes") if user.is_blocked else _("admin.no"),
    )  # fmt: skip
    builder = InlineKeyboardBuilder()
    if user.is_banned:
        builder.button(text=_("admin.unban"), callback_data=Admin(action="unban", arg=str(user.id)))
    elif user.id not in settings.admin_ids:  # an admin banned is an admin locked out
        builder.button(text=_("admin.ban"), callback_data=Admin(action="ban", arg=str(user.id)))
    return text, _back(builder)


@router.callback_query(Admin.filter(F.action == "users"))
async def users_prompt(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(AdminInput.user_query)
    await show(callback, _("admin.ask_user"), _back())


async def _find_user(
    message: Message,
    query: str,
    users: UsersRepository,
    admin_service: AdminService,
    settings: Settings,
) -> bool:
    text = query.strip().removeprefix("@")
    if text[:1].isdigit():  # any digit, ASCII or not: it is meant as an id
        try:
            user = await users.get(parse_id(text))
        except BadNumber as exc:
            await message.answer(bad_number_text(exc))
            return False
    else:
        user = await users.find(text) if text else None
    if user is None:
        await message.answer(_("admin.user_not_found").format(query=escape(query[:64])))
        return False
    card, markup = await _user_card(user, admin_service, settings)
    await message.answer(card, reply_markup=markup)
    return True


@router.message(Command("user"))
async def user_command(
    message: Message,
    command: CommandObject,
    users: UsersRepository,
    admin_service: AdminService,
    settings: Settings,
) -> None:
    await _find_user(message, command.args or "", users, admin_service, settings)


@router.message(StateFilter(AdminInput.user_query), F.text)
async def user_query_entered(
    message: Message,
    state: FSMContext,
    users: UsersRepository,
    admin_service: AdminService,
    settings: Settings,
) -> None:
    if await _find_user(message, message.text or "", users, admin_service, settings):
        await state.clear()


@router.callback_query(Admin.filter(F.action.in_({"ban", "unban"})))
async def ban_toggle(
    callback: CallbackQuery,
    callback_data: Admin,
    admin_service: AdminService,
    user_middleware: UserMiddleware,
    settings: Settings,
) -> None:
    user_id = _arg_id(callback_data)
    if user_id is None:
        await callback.answer(_("admin.user_not_found").format(query="-"), show_alert=True)
        return
    if callback_data.action == "ban" and user_id in settings.admin_ids:
        await callback.answer(_("admin.cannot_ban_admin"), show_alert=True)
        return
    user = await admin_service.set_banned(
        user_id, callback_data.action == "ban", callback.from_user.id
    )
    user_middleware.forget(user_id)
    if user is None:
        await callback.answer(_("admin.user_not_found").format(query=user_id), show_alert=True)
        return
    text, markup = await _user_card(user, admin_service, settings)
    await show(callback, text, markup)


@router.message(StateFilter(AdminInput))
async def admin_value_hint(message: Message, state: FSMContext) -> None:
    """Anything but text for a value prompt (a photo, a sticker): ask again."""
    keys = {AdminInput.markup.state: "admin.ask_markup", AdminInput.star_usd.state: "admin.ask_star_usd",
            AdminInput.user_query.state: "admin.ask_user"}  # fmt: skip
    await message.answer(_(keys.get(await state.get_state() or "", "admin.ask_user")))
