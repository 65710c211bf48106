"""Supplier money: the balance of every supplier that has one, and transactions."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import back
from bot.ui import show
from services.orders import OrderService
from services.parsing import BadNumber, parse_int
from services.suppliers.base import Capability
from services.suppliers.errors import SupplierError

router = Router(name=__name__)


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
    await show(callback, "\n\n".join(parts) or "-", back())


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
            await show(callback, "-", back())
            return
        history = await suppliers[0].list_transactions(page=page, limit=10)
    except SupplierError as exc:
        await show(callback, _("admin.supplier_error").format(error=escape(str(exc))), back())
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
    await show(callback, text, back(builder))
