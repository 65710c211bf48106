"""Users: find one by id or username, ban and unban."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import AdminInput, arg_id, back, bad_number_text, parse_id
from bot.middlewares import UserMiddleware
from bot.settings import Settings
from bot.ui import show
from services.admin import AdminService
from services.parsing import BadNumber
from storage.users import User as StoredUser
from storage.users import UsersRepository

router = Router(name=__name__)


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
    return text, back(builder)


@router.callback_query(Admin.filter(F.action == "users"))
async def users_prompt(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(AdminInput.user_query)
    await show(callback, _("admin.ask_user"), back())


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
    user_id = arg_id(callback_data)
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
