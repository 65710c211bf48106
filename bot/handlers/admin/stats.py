"""Stats with a chart and a CSV per day, the orders export, and the audit log."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import back
from bot.ui import show
from services.admin import AdminService
from services.charts import ChartError, ChartLabels, DayPoint, render_stats_chart
from services.parsing import SQLITE_INT_MAX, BadNumber, parse_int

logger = logging.getLogger(__name__)
router = Router(name=__name__)
#: ``/export`` dates: one day past the last must still be a date
EXPORT_FIRST, EXPORT_LAST = date(2000, 1, 1), date(2999, 12, 31)


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
    lines = [
        _("admin.stats_supplier_line").format(
            supplier=escape(f.supplier),
            orders=f.orders,
            cost=f.cost_usd,
            revenue=f.revenue_usd,
            margin=f.margin_usd,
        )
        for f in figures.by_supplier
    ]
    if lines:
        text += "\n" + _("admin.stats_suppliers").format(lines="\n".join(lines))
    builder = InlineKeyboardBuilder()
    for option in ("1", "7", "30"):
        builder.button(
            text=_(f"admin.period_{option}"), callback_data=Admin(action="stats", arg=option)
        )
    await show(callback, text, back(builder))
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
    await show(callback, text, back(builder))


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
