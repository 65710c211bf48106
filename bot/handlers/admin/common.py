"""What every admin area shares: the filters that admit admins, the value prompts' states,
number parsing and its translated problems, and the Back button."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.enums import ChatType
from aiogram.filters import BaseFilter
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message, TelegramObject, User
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.settings import Settings
from services.parsing import SQLITE_INT_MAX, BadNumber, parse_int


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


def arg_id(callback_data: Admin) -> int | None:
    """The id in a button's data, or ``None`` when it is not a valid id (crafted data)."""
    try:
        return parse_id(callback_data.arg)
    except BadNumber:
        return None


def button(text: str, action: str, arg: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=Admin(action=action, arg=arg).pack())


def back(builder: InlineKeyboardBuilder | None = None, action: str = "menu", arg: str = "") -> Any:
    """``builder``'s buttons (if any) with a Back row under them."""
    builder = builder or InlineKeyboardBuilder()
    builder.row(button(_("admin.back"), action, arg))
    return builder.as_markup()
