"""The admin menu (/admin) and the way back to it."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import AdminInput
from bot.ui import show
from services.suppliers.marketplace import Marketplace

router = Router(name=__name__)


def _menu_markup(marketplace: Marketplace | None = None) -> Any:
    builder = InlineKeyboardBuilder()
    for key, action, arg in (
        ("admin.balance", "bal", ""), ("admin.sources", "sources", ""), ("admin.transactions", "tx", "1"), ("admin.orders", "orders", "all"),
        ("admin.stats", "stats", "1"), ("admin.catalogue", "cat", ""), ("admin.prices", "prices", ""),
        ("admin.users", "users", ""), ("admin.export", "export", "7"),
        ("admin.broadcast", "broadcast", ""), ("admin.campaign", "campaign", ""),
        ("admin.audit", "audit", "1"), ("admin.own_stock", "stock", ""),
        ("admin.loyalty", "loy", ""),
    ):  # fmt: skip
        builder.button(text=_(key), callback_data=Admin(action=action, arg=arg))
    if marketplace is not None:
        builder.button(text=_("market.menu"), callback_data=Admin(action="mk"))
    builder.adjust(2)
    return builder.as_markup()


@router.message(StateFilter(AdminInput), Command("cancel"))
async def cancel_prompt(
    message: Message, state: FSMContext, marketplace: Marketplace | None = None
) -> None:
    """``/cancel`` while a value prompt waits leaves it. Here, in the first admin area, so
    no prompt reads ``/cancel`` as the value it asked for."""
    await state.clear()
    await message.answer(_("common.cancelled"), reply_markup=_menu_markup(marketplace))


@router.message(Command("admin"))
async def admin_command(
    message: Message, state: FSMContext, marketplace: Marketplace | None = None
) -> None:
    await state.clear()
    await message.answer(_("admin.menu"), reply_markup=_menu_markup(marketplace))


@router.callback_query(Admin.filter(F.action == "menu"))
async def admin_menu(
    callback: CallbackQuery, state: FSMContext, marketplace: Marketplace | None = None
) -> None:
    await state.clear()
    await show(callback, _("admin.menu"), _menu_markup(marketplace))
