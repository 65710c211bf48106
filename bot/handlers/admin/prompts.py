"""The last admin handler: anything but text while a value prompt waits. Its router is
included after every area router, so an area's commands still win in a prompt state."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.handlers.admin.common import AdminInput

router = Router(name=__name__)


@router.message(StateFilter(AdminInput))
async def admin_value_hint(message: Message, state: FSMContext) -> None:
    """Anything but text for a value prompt (a photo, a sticker): ask again."""
    keys = {AdminInput.markup.state: "admin.ask_markup", AdminInput.star_usd.state: "admin.ask_star_usd",
            AdminInput.user_query.state: "admin.ask_user"}  # fmt: skip
    await message.answer(_(keys.get(await state.get_state() or "", "admin.ask_user")))
